"""The review's words (``resources/review.yaml``): its phrasings, and the first tokens that tell a correction
("Wait, ...") from a confirmation ("Good, ..."), which the policy's verdict at test time reads."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from rig_core.errors import RigError


@lru_cache(maxsize=None)
def review_phrases() -> dict[str, Any]:
    return yaml.safe_load(resources.files("rig_core.resources").joinpath("review.yaml").read_text())


def split_openings(tok, corrections, confirmations, where: str) -> tuple[list[int], list[int]]:
    worse = {tok.text(t)[0] for t in corrections if t}
    fine = {tok.text(t)[0] for t in confirmations if t}
    if worse & fine:
        raise RigError(f"a correction and a confirmation in {where} open with the same token",
                       "make their first words differ in rig_core/resources/review.yaml and remake the review data")
    return sorted(worse), sorted(fine)


def opening_tokens(tok) -> tuple[list[int], list[int]]:
    """(first text tokens of the correction phrasings, of the confirmation phrasings) in review.yaml."""
    book = review_phrases()
    return split_openings(tok, [p for group in book["correct"].values() for p in group], list(book["confirm"]),
                           "rig_core/resources/review.yaml")
