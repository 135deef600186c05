"""Review text from a verdict: "Wait, ..." with the reason and the better action, or a short confirmation.

Phrasings live in ``resources/review.yaml``; one is picked with a seeded RNG per sample. Every
text names the action the policy then takes, so the review and the final action agree.
"""

from __future__ import annotations

import random
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from rig_core.errors import RigError
from rig_core.review.judge import WORSE, Verdict


@lru_cache(maxsize=None)
def review_phrases() -> dict[str, Any]:
    return yaml.safe_load(resources.files("rig_core.resources").joinpath("review.yaml").read_text())


def opening_tokens(tok) -> tuple[list[int], list[int]]:
    """(first text tokens of the correction phrasings, of the confirmation phrasings)."""
    book = review_phrases()
    worse = {tok.text(p)[0] for group in book["correct"].values() for p in group}
    fine = {tok.text(p)[0] for p in book["confirm"]}
    if worse & fine:
        raise RigError("a correction and a confirmation phrasing open with the same token",
                       "make their first words differ in rig_core/resources/review.yaml")
    return sorted(worse), sorted(fine)


def action_phrase(name: str) -> str:
    return review_phrases()["actions"].get(name, name.replace("_", " "))


GROUND = ("cell", "none", "grass", "sand", "path")  # cells the expert walks to, not what it is after


def intent_words(intent: dict[str, Any]) -> tuple[str | None, str]:
    """(what the expert is after, sub-goal) from its intent: ('tree', 'collect wood').

    The thing comes from the sub-goal's item ('wood' -> 'tree', as in reasoning.yaml) or the target cell
    when that is an object; a cell of ground next to the goal is not named."""
    from rig_core.annotate.rules import phrasebook

    subgoal = str(intent.get("subgoal") or "my goal").split(":")[0].strip() or "my goal"
    book = phrasebook()
    for word in reversed(subgoal.split()):
        if word in book.item_sources:
            return book.item_sources[word], subgoal
        if word in book.salience:
            return word, subgoal
    target = str(intent.get("target") or "").split(" ")[0] or None
    return (None if target in GROUND else target), subgoal


class ReviewWriter:
    def __init__(self, action_names: list[str], seed: int = 0):
        self.action_names = list(action_names)
        self.seed = int(seed)

    def write(self, verdict: Verdict, proposal: int, better: int, intent: dict[str, Any], key: tuple) -> str:
        """The review for one sample; ``key`` (episode, step, horizon) makes the phrasing choice reproducible."""
        rng = random.Random(hash((self.seed,) + tuple(int(k) for k in key)) & 0xFFFFFFFF)
        target, subgoal = intent_words(intent)
        slots = {"proposal": action_phrase(self.action_names[proposal]),
                 "better": action_phrase(self.action_names[better]), "target": target or "goal",
                 "subgoal": subgoal, "health": verdict.health, "item": verdict.item or "item"}
        book = review_phrases()
        if verdict.kind != WORSE:
            return rng.choice(book["confirm"]).format(**slots)
        reason = verdict.reason
        if reason == "farther" and target is None:
            reason = "progress_plain"
        if reason == "progress" and not verdict.item:
            reason = "progress_plain"
        return rng.choice(book["correct"][reason]).format(**slots)
