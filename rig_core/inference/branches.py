"""The policy's own candidates at one state, each decoded as a batch row: imagined, and scored by the review.

After its thought the policy gives every action a probability. ``RigPolicy.act(..., candidates=K)`` takes the
K most probable (in its order: the draws past the first are too improbable to sample, docs/experiments.md)
and any actions added per row (``also``: the expert's action, when review data is made), and branches every
environment's row into one row per candidate, all in one batch: the cache rows up to ``<act>`` are copied (the
thought is decoded once and shared), each row is fed its candidate, then imagines ``steps`` steps on its own
frames (the candidate's outcome, then further thought, action and frame), and with ``review`` the review opens
and its verdict is read at the first text token: P(worse) (``ReviewMixin.p_correction``). ``steps`` = 0 reviews
the candidate straight after its action, with no imagined frame. The branch rows live in a cache of their own,
dropped afterwards: the batch's cache, mask and positions are as before, and the step goes on with the action
chosen (``choose``) or, without ``review``, the one drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rig_core.errors import RigError
from rig_core.inference.kv_cache import take_rows
from rig_core.inference.step import SLACK, RowStep


@dataclass
class Branch:
    """One candidate of one environment: the action, the policy's probability and rank of it, what it imagined
    after it and, with a review, the review's probability that it is worse."""

    action: int
    prob: float
    rank: int  # the policy's rank of the action after its thought (0: its most probable)
    codes: np.ndarray  # [steps, tokens_per_frame] the imagined frames' codes (the candidate's outcome first)
    thoughts: list[str] = field(default_factory=list)  # of the further imagined steps (after frame 1, 2, ...)
    actions: list[int] = field(default_factory=list)  # the actions the policy took in them
    closed: bool = True  # every further thought ended before the length limit
    p_worse: float | None = None


def top_actions(probs: np.ndarray, k: int) -> list[int]:
    """The ``k`` most probable actions, most probable first (ties keep the action order)."""
    order = np.argsort(-np.asarray(probs, np.float64), kind="stable")
    return [int(a) for a in order[:k]]


def candidate_lists(probs: np.ndarray, k: int, also: list[int | None] | None = None) -> list[list[int]]:
    """Each row's candidates: its top ``k`` actions, then its ``also`` action where that is not among them."""
    out = []
    for i, p in enumerate(probs):
        cands = top_actions(p, k)
        extra = None if also is None else also[i]
        out.append(cands + ([int(extra)] if extra is not None and int(extra) not in cands else []))
    return out


def choose(p_worse: list[float], margin: float = 0.0) -> int:
    """Which of a row's candidates (the policy's order, its top one first) is played: the one the review finds
    least likely worse, but the policy's top one unless that is lower than the top one's by at least
    ``margin`` (0: the least likely worse; ties keep the policy's order)."""
    best = int(np.argmin(p_worse))
    return best if p_worse[0] - p_worse[best] >= max(margin, 1e-12) else 0


def check_candidates(k: int | None, steps: int, stage: str, checkpoint="") -> None:
    """The one-line errors of ``--candidates K`` with ``--test-time-steps``: K of at least 1; several candidates
    are scored by the review, so they need a lookahead checkpoint; one candidate is the policy's top action, with
    nothing imagined or scored."""
    if k is None:
        return
    if k < 1:
        raise RigError(f"--candidates {k} must be at least 1",
                       "pass --candidates 1 (the policy's top action) or more (scored by the review)")
    if k > 1 and stage != "lookahead":
        raise RigError(f"the checkpoint {checkpoint} was trained without review data (stage '{stage}'), so it "
                       f"cannot score --candidates {k}",
                       "use --candidates 1, or a checkpoint from rig train --stage lookahead")
    if k == 1 and steps > 0:
        raise RigError(f"--candidates 1 plays the policy's top action and imagines nothing: --test-time-steps "
                       f"{steps} has no effect", "pass --test-time-steps 0, or --candidates 2 or more")


class BranchMixin:
    """Candidate rows for ``RigPolicy`` (uses its cache state, ``_feed``, ``_image``, ``_imagine_further``,
    ``_start``, ``p_correction`` and its position tracker)."""

    candidate_margin: float = 0.0  # how much less likely worse another candidate must be to replace the top one

    @torch.no_grad()
    def _branch(self, prefixes: list[list[int]], cands: list[list[int]], probs: np.ndarray, steps: int,
                review: bool, frames: list | None = None) -> list[list[Branch]]:
        """Decode every row's candidates as rows of one batch, from where the batch stands (``<act>`` fed to
        every row; ``prefixes``: each row's tokens up to it, re-encoded only where the cache cannot be copied;
        ``frames``: each row's current frame as image token ids, the draft of its candidates' first frames).
        Returns each row's branches, in its candidates' order; the batch's cache is left as it was."""
        s = self.tok.special
        index = [k for k, c in enumerate(cands) for _ in c]
        flat = [a for c in cands for a in c]
        saved = (self._static, self._attn, self._past, self._static_columns, self.positions)
        try:
            self._branch_rows(index, prefixes, steps)
            opening = [self.builder.review_opening(a) if review else [] for a in flat]
            first = [[self.tok.action(a), s["</act>"], *([s["<imagine>"]] if steps else op)]
                     for a, op in zip(flat, opening)]
            logits = self._feed(first)
            recs = [RowStep(obs=[], proposed=self.tok.action(a)) for a in flat]
            codes = np.zeros((len(flat), 0, self.image_tok.tokens_per_frame), np.int64)
            if steps:
                then = ([[s["</imagine>"], s["<think>"]]] * len(flat) if steps > 1
                        else [[s["</imagine>"], *op] for op in opening] if review else None)
                drafts = self._drafts([frames[k] for k in index], [f[0] for f in first]) if frames else None
                images, logits = self._image(logits, then, drafts)
                for r, im in zip(recs, images):
                    r.image = im
                for m in range(steps - 1):
                    logits = self._imagine_further(recs, logits, last=m + 2 == steps, review=review)
                codes = np.stack([np.stack([self.tok.codes(r.image)] + [c for _, _, c in r.further]) for r in recs])
            p_worse = self.p_correction(logits).tolist() if review else [None] * len(flat)
        finally:
            self._static, self._attn, self._past, self._static_columns, self.positions = saved
        order = [np.argsort(-np.asarray(p, np.float64), kind="stable") for p in probs]
        rank = [{int(a): r for r, a in enumerate(o)} for o in order]
        out: list[list[Branch]] = [[] for _ in cands]
        for n, (k, a) in enumerate(zip(index, flat)):
            r = recs[n]
            out[k].append(Branch(a, float(probs[k][a]), rank[k][a], codes[n], [t for t, _, _ in r.further],
                                 [x for _, x, _ in r.further], r.ahead_closed, p_worse[n]))
        return out

    def _branch_rows(self, index: list[int], prefixes: list[list[int]], steps: int) -> None:
        """Make the current cache one of ``len(index)`` rows, row n a copy of batch row ``index[n]`` up to here,
        with room for ``steps`` imagined steps and the review's opening: copied from the batch's cache, or, where
        this transformers version's cache cannot be copied so, re-encoded from ``prefixes``. Frames decoded with
        drafts also take the masked columns of rejected drafts while they are decoded (``TokenBudget.columns``)."""
        width = self._attn.shape[1]
        drafting = 3 * self.budget.frame if steps and self.draft else 0
        columns = width + 3 + steps * self.budget.further_step + 2 + SLACK + drafting
        sub = take_rows(self._static, self.model, index, width, columns) if self._static is not None else None
        if sub is not None:
            self._static = self._past = sub
            self._static_columns = columns
            self._attn = self._attn[torch.tensor(index, device=self._attn.device)]
            self.positions = self.positions.select(index)
            return
        from rig_core.tokenize.positions import PositionTracker

        self.positions = PositionTracker(self.builder.layout)
        self._start([prefixes[k] for k in index], steps)
