"""Review text from a verdict: "Wait, ..." with the reason and the better action, or a short confirmation.

Phrasings live in ``resources/review.yaml``; one is picked with a seeded RNG per sample. Every
text names the action the policy then takes, so the review and the final action agree.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from rig_core.annotate.review_words import opening_tokens, review_phrases, split_openings
from rig_core.review.judge import WORSE, Verdict


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
        if "review/candidates/verdict" in ep:  # candidate samples (review/candidates), judged the same way
            kinds = ep.read("review/candidates/verdict").ravel()
            for kind, text in zip(kinds, ep.texts("review/candidates/text")):
                if kind >= 0:
                    (corrections if kind == WORSE else confirmations).add(str(text))
    book_worse, book_fine = opening_tokens(tok)  # a kind the data lacks: review.yaml's words
    worse, fine = split_openings(tok, sorted(corrections), sorted(confirmations), f"dataset {ds.root}")
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

    def write(self, verdict: Verdict, proposal: int, better: int, intent: dict[str, Any], key: tuple) -> str:
        """The review for one sample; ``key`` (episode, step, horizon) makes the phrasing choice reproducible."""
        rng = random.Random(hash((self.seed,) + tuple(int(k) for k in key)) & 0xFFFFFFFF)
        target, subgoal = intent_words(intent)
        slots = {"proposal": action_phrase(self.action_names[proposal]),
                 "better": action_phrase(self.action_names[better]), "target": target or "goal",
                 "subgoal": subgoal, "health": verdict.health, "item": verdict.item or "item",
                 "deed": deed_phrase(verdict.deed) if verdict.deed else None}
        book = review_phrases()
        if verdict.kind != WORSE:
            return rng.choice(book["confirm"]).format(**slots)
        reason = verdict.reason
        if reason == "farther" and target is None:
            reason = "progress_plain"
        if reason == "progress" and not verdict.item:
            reason = "progress_deed" if verdict.deed else "progress_plain"
        return rng.choice(book["correct"][reason]).format(**slots)
