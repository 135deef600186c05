"""Review text from a verdict: "Wait, ..." with the reason and the better action, or a short confirmation.

Phrasings live in ``resources/review.yaml``; one is picked with a seeded RNG per sample. Every
text names the action the policy then takes, so the review and the final action agree.
"""

from __future__ import annotations

import random
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from rig_core.errors import RigError
from rig_core.review.judge import WORSE, Verdict


@lru_cache(maxsize=None)
def review_phrases() -> dict[str, Any]:
    return yaml.safe_load(resources.files("rig_core.resources").joinpath("review.yaml").read_text())


def _split_openings(tok, corrections, confirmations, where: str) -> tuple[list[int], list[int]]:
    worse = {tok.text(t)[0] for t in corrections if t}
    fine = {tok.text(t)[0] for t in confirmations if t}
    if worse & fine:
        raise RigError(f"a correction and a confirmation in {where} open with the same token",
                       "make their first words differ in rig_core/resources/review.yaml and remake the review data")
    return sorted(worse), sorted(fine)


def opening_tokens(tok, earlier: bool = False) -> tuple[list[int], list[int]]:
    """(first text tokens of the correction phrasings, of the confirmation phrasings) in review.yaml;
    ``earlier`` adds the confirmation openings used before they were recorded with the checkpoint."""
    book = review_phrases()
    confirmations = list(book["confirm"]) + (list(book.get("confirm_openings_before_session_9", [])) if earlier else [])
    return _split_openings(tok, [p for group in book["correct"].values() for p in group], confirmations,
                           "rig_core/resources/review.yaml")


def data_opening_tokens(ds, tok) -> dict[str, list[int]]:
    """First tokens of the selected review texts of dataset ``ds``, corrections apart from confirmations:
    what ``rig train --stage lookahead`` records in rig.json, so the test-time verdict reads the words the
    model was trained on, whatever review.yaml says later."""
    corrections, confirmations = set(), set()
    for ep in ds:
        if "review/selected" not in ep:
            continue
        sel, verdict = ep.read("review/selected"), ep.read("review/verdict")
        texts = ep.texts("review/text")
        for (s, j), text in zip(np.ndindex(*sel.shape), texts):
            if sel[s, j]:
                (corrections if verdict[s, j] == WORSE else confirmations).add(str(text))
    book_worse, book_fine = opening_tokens(tok)  # a kind the data lacks: review.yaml's words
    worse, fine = _split_openings(tok, sorted(corrections), sorted(confirmations), f"dataset {ds.root}")
    return {"correct": worse or book_worse, "confirm": fine or book_fine}


def action_phrase(name: str) -> str:
    return review_phrases()["actions"].get(name, name.replace("_", " "))


def deed_phrase(achievement: str) -> str:
    """What unlocking an achievement that gains no item is, in words (``deeds`` in review.yaml)."""
    return review_phrases()["deeds"].get(achievement, achievement.replace("_", " "))


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

    def write(self, verdict: Verdict, proposal: int, better: int, intent: dict[str, Any], key: tuple,
              where: str | None = None) -> str:
        """The review for one sample; ``key`` (episode, step, horizon) makes the phrasing choice reproducible.
        ``where``: where what the expert is after shows in the frame (``target_where``); the review then looks
        again and says so (``correct_seen`` / ``confirm_seen`` in review.yaml)."""
        rng = random.Random(hash((self.seed,) + tuple(int(k) for k in key)) & 0xFFFFFFFF)
        target, subgoal = intent_words(intent)
        slots = {"proposal": action_phrase(self.action_names[proposal]),
                 "better": action_phrase(self.action_names[better]), "target": target or "goal",
                 "subgoal": subgoal, "health": verdict.health, "item": verdict.item or "item", "where": where,
                 "deed": deed_phrase(verdict.deed) if verdict.deed else None}
        book = review_phrases()
        seen = where is not None and target is not None
        if verdict.kind != WORSE:
            return rng.choice(book["confirm_seen" if seen else "confirm"]).format(**slots)
        reason = verdict.reason
        if reason == "farther" and target is None:
            reason = "progress_plain"
        if reason == "progress" and not verdict.item:
            reason = "progress_deed" if verdict.deed else "progress_plain"
        group = book["correct_seen"].get(reason) if seen else None
        return rng.choice(group or book["correct"][reason]).format(**slots)


def target_where(view: list[list[str]], thing: str | None, pos: tuple[int, int],
                 target: tuple[int, int] | None, facing: tuple[int, int] | None = None) -> str | None:
    """Where ``thing`` (what the expert is after) shows in the player's ``view``, in the thoughts' words ("2 cells
    to the left and 1 cell up", "right in front of me" when the player faces it): the expert's ``target`` cell
    when it holds the thing, else the nearest one in view. None when it is not in view, under the player, or
    grass (everywhere; the thoughts do not place it either)."""
    from rig_core.annotate.context import offsets_in_view
    from rig_core.annotate.rules import where

    if thing is None or target is None or thing == "grass":
        return None
    seen = offsets_in_view(view, thing)
    offset = (target[0] - pos[0], target[1] - pos[1])
    if offset not in seen:
        offset = seen[0] if seen else None
    if offset is None:
        return None
    return "right in front of me" if facing is not None and offset == tuple(facing) else where(*offset)
