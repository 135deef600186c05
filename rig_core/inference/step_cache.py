"""The cross-step KV cache: each environment keeps its keys and values from one real step to the next.

Without it, every real step re-encodes each row's whole context (task, history, new frame) before
decoding. With it, one ``act`` ends with the cache holding, per row, the context and the thought up to
``<act>``, at a column shared by every row (the action is fed to all rows at once). The next ``act``
rewinds the cache to that column and feeds only what is new: the action taken, the imagine span with
the frame that really came next, and the new observation. Everything decoded after the action (the
imagined frame, further imagined steps, the review) is dropped by the rewind.

When a row's context is full, the oldest whole steps are dropped, down to half the room, and every row
is re-encoded once (a slide), so the cost is amortised and the model always sees whole steps. The cache
is also rebuilt when the active rows change in a way it cannot follow, when its columns run out, or when
the history stops extending what the cache holds (``history`` caps the past at K steps).
"""

from __future__ import annotations

import torch

from rig_core.inference.kv_cache import grow, rewind, select_rows


def newest_fitting(past: list[list[int]], room: int) -> int:
    """Index of the oldest of the newest steps that together fit in ``room`` tokens."""
    used, k = 0, len(past)
    while k > 0 and used + len(past[k - 1]) <= room:
        used += len(past[k - 1])
        k -= 1
    return k


class StepCacheMixin:
    """Cross-step cache state for ``RigPolicy`` (``step_cache=True``)."""

    @property
    def spare_columns(self) -> int:
        """Cache columns beyond what an act needs: two steps' worth, so the cache grows every other step."""
        return 2 * self.budget.step

    def _reset_step_cache(self, n: int) -> None:
        self._first_kept = [0] * n  # per row: index of the oldest history step still in the context
        self._drop_step_cache()

    def _drop_step_cache(self) -> None:
        self._cache_rows: list[int] | None = None  # rows of the cache's batch, in order
        self._kept: list[list[int]] = []  # per cache row: the token ids the cache holds up to the act column
        self._act_col = 0  # the column of the last act's action: everything from it on is rewound
        self._past = self._static = None

    def _first_step(self, b: int, past: list, room: int, compact: bool = False) -> int:
        """Index of the oldest past step a row's context keeps. Full prefill: as many as fit. With the step
        cache: the steps kept so far, and when they no longer fit, only the newest half of the room's worth.
        ``compact``: every row is being re-encoded anyway, so any row past half the room slides now too (rows
        then slide together, not each at its own step, which would re-encode the batch at every one)."""
        if not self.step_cache:
            return newest_fitting(past, room)
        first = self._first_kept[b]
        if sum(len(step) for step in past[first:]) > (room // 2 if compact else room):  # slide: to half the room
            first = min(newest_fitting(past, room // 2), max(newest_fitting(past, room), len(past) - 1))
        self._first_kept[b] = first
        return first

    def _resume(self, rows: list[int], contexts: list[list[int]], lookahead: int) -> torch.Tensor | None:
        """Feed only what each row's context adds to what the cache holds; None when it cannot (the caller
        re-encodes every row)."""
        if not self.step_cache or self._static is None or self._cache_rows is None:
            return None
        if rows != self._cache_rows:
            where = {r: i for i, r in enumerate(self._cache_rows)}
            if not all(r in where for r in rows) or not select_rows(self._static, [where[r] for r in rows]):
                return None
            keep = torch.tensor([where[r] for r in rows])
            self._attn = self._attn[keep]
            self._kept = [self._kept[where[r]] for r in rows]
            self._cache_rows = list(rows)
        if any(c[: len(k)] != k for c, k in zip(contexts, self._kept)):
            return None  # a slide, or a history that no longer extends the cache
        new = [c[len(k):] for c, k in zip(contexts, self._kept)]
        if not rewind(self._static, self._attn.shape[1] - self._act_col):
            return None
        self._attn = self._attn[:, : self._act_col]
        need = self._act_col + max(len(x) for x in new) + self.budget.columns(lookahead)
        if need > self._static_columns:  # copy into a larger cache: attention runs over every column, so no spare
            bigger = grow(self._static, self.model, len(rows), need + self.spare_columns, self._act_col)
            if bigger is None:
                return None
            self._static, self._static_columns = bigger, need + self.spare_columns
        self.positions.start(contexts)  # the tracker continues from each row's whole context
        self._past = self._static
        return self._feed(new, positions=[self.positions.layout.positions(c)[len(k):].tolist()
                                          for c, k in zip(contexts, self._kept)])

    def _remember_act_column(self, rows: list[int], contexts: list[list[int]], thoughts: list[list[int]]) -> None:
        """Called when every row's ``<act>`` has been fed: the cache holds each row's context and thought up
        to here, the column the next act rewinds to."""
        if not self.step_cache or self._static is None:
            return
        s = self.tok.special
        self._cache_rows = list(rows)
        self._act_col = self._attn.shape[1]
        self._kept = [c + t + [s["</think>"], s["<act>"]] for c, t in zip(contexts, thoughts)]
