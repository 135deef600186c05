"""Candidate samples of a review episode: at every state, each of the policy's candidates, what the policy
imagined after it, and the judge's verdict on it.

The candidates of a state are the policy's K most probable actions after its thought (its order) and the expert's
action where that is not among them; each was imagined ``horizon`` steps by the policy (``StepOutput.candidates``).
A candidate is judged as the oracle judges one (``oracle.ExpertPlan.verdicts``): played first, then the expert
acting on, against the expert's own branch, after ``horizon`` steps: ``same`` (the expert's action), ``fine`` (not
worse) or ``worse``. The review text is the one a review sample of that verdict has ("Good ..." or "Wait ...").
Stored as ``review/candidates/*`` (docs/data-format.md), C = K + 1 columns with -1 where a state has fewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rig_core.review.judge import Verdict


@dataclass
class CandidateLog:
    k: int
    horizon: int
    proposed: list[np.ndarray] = field(default_factory=list)  # [C, H] the candidate, then the policy's own actions
    thoughts: list[np.ndarray] = field(default_factory=list)  # [C, H] the state's thought, then the further ones
    codes: list[np.ndarray] = field(default_factory=list)  # [C, H, tokens per frame]
    rank: list[np.ndarray] = field(default_factory=list)  # [C]
    prob: list[np.ndarray] = field(default_factory=list)  # [C]
    verdict: list[np.ndarray] = field(default_factory=list)  # [C]
    reason: list[list[str]] = field(default_factory=list)
    text: list[list[str]] = field(default_factory=list)

    @property
    def columns(self) -> int:
        return self.k + 1

    def add(self, out, judge: Callable[[int], Verdict], write: Callable[[Verdict, int, int], str]) -> None:
        """One state: the policy's step output (its ``candidates`` decoded), ``judge(action)`` the verdict on a
        candidate and ``write(verdict, action, column)`` its review text."""
        C, H = self.columns, self.horizon
        branches = out.candidates[:C]
        width = branches[0].codes.shape[-1]
        proposed, thoughts = np.full((C, H), -1, np.int16), np.full((C, H), "", dtype=object)
        codes = np.zeros((C, H, width), np.int16)
        rank, prob, verdict = np.full(C, -1, np.int8), np.full(C, np.nan, np.float32), np.full(C, -1, np.int8)
        reasons, texts = [""] * C, [""] * C
        for c, b in enumerate(branches):
            proposed[c] = [b.action, *b.actions]
            thoughts[c] = [out.thought, *b.thoughts]
            codes[c] = b.codes
            rank[c], prob[c] = b.rank, b.prob
            v = judge(b.action)
            verdict[c], reasons[c], texts[c] = v.kind, v.reason, write(v, b.action, c)
        self.proposed.append(proposed)
        self.thoughts.append(thoughts)
        self.codes.append(codes)
        self.rank.append(rank)
        self.prob.append(prob)
        self.verdict.append(verdict)
        self.reason.append(reasons)
        self.text.append(texts)

    def arrays(self, width: int) -> dict[str, np.ndarray]:
        """The ``review/candidates/*`` arrays of the episode (``width``: image tokens per frame)."""
        S, C, H = len(self.verdict), self.columns, self.horizon
        stack = lambda xs, shape, dtype: np.asarray(xs, dtype).reshape(shape)  # noqa: E731 (S may be 0)
        return {"review/candidates/proposed": stack(self.proposed, (S, C, H), np.int16),
                "review/candidates/thoughts": stack(self.thoughts, (S, C, H), object),
                "review/candidates/imagined_codes": stack(self.codes, (S, C, H, width), np.int16),
                "review/candidates/rank": stack(self.rank, (S, C), np.int8),
                "review/candidates/prob": stack(self.prob, (S, C), np.float32),
                "review/candidates/verdict": stack(self.verdict, (S, C), np.int8),
                "review/candidates/reason": stack(self.reason, (S, C), object),
                "review/candidates/text": stack(self.text, (S, C), object)}
