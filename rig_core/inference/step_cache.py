"""The cross-step KV cache: each environment keeps its keys and values from one real step to the next.

Without it, every real step re-encodes each row's whole context (task, history, new frame) before
decoding. With it, one ``act`` ends with the cache holding, per row, the context and the thought up to
``<act>``, at a column shared by every row (the action is fed to all rows at once). The next ``act``
rewinds the cache to that column and feeds only what is new: the action taken, the imagine span with
the frame that really came next, and the new observation. Everything decoded after the action (the
imagined frame, further imagined steps, the review) is dropped by the rewind.

When a row's context is full, its oldest whole steps are dropped, down to half the room (a slide), and
that row alone is re-encoded into its cache row, so the cost is amortised and the model always sees whole
steps. The masked columns such slides leave behind, and those of thoughts shorter than the batch's
longest, are packed away (each row's columns moved together, in order) once they pass a sixteenth of the
cache, so decoding reads little more than the longest row. The whole batch is re-encoded when every row
slid, when the active rows change in a way the cache cannot follow, or when the history stops extending
what the cache holds (``history`` caps the past at K steps); a cache out of columns is copied into a
larger one.
"""

from __future__ import annotations

import torch

from rig_core.inference.kv_cache import compact, grow, rewind, select_rows, write_rows


def newest_fitting(past: list[list[int]], room: int) -> int:
    """Index of the oldest of the newest steps that together fit in ``room`` tokens."""
    used, k = 0, len(past)
    while k > 0 and used + len(past[k - 1]) <= room:
        used += len(past[k - 1])
        k -= 1
    return k


class StepCacheMixin:
    """Cross-step cache state for ``RigPolicy`` (``step_cache=True``)."""

    compact_share = 1 / 16  # pack the cache once masked holes pass this share of its columns

    @property
    def spare_columns(self) -> int:
        """Cache columns beyond what an act needs: two steps' worth, so the cache grows every other step."""
        return 2 * self.budget.step

    def _reset_step_cache(self, n: int) -> None:
        self._first_kept = [0] * n  # per row: index of the oldest history step still in the context
        self._drop_step_cache()

    def _drop_step_cache(self) -> None:
        self._groups: dict[tuple[int, ...], dict] = {}  # caches of row groups acted on separately, by their rows
        self._cache_rows: list[int] | None = None  # rows of the cache's batch, in order
        self._kept: list[list[int]] = []  # per cache row: the token ids the cache holds up to the act column
        self._act_col = 0  # the column of the last act's action: everything from it on is rewound
        self._past = self._static = None

    def _first_step(self, b: int, past: list, room: int) -> int:
        """Index of the oldest past step a row's context keeps. Full prefill: as many as fit. With the step
        cache: the steps kept so far, and when they no longer fit, only the newest ``slide_keep`` of the room's worth
        (each row on its own: a row's context never depends on the others in its batch)."""
        if not self.step_cache:
            return newest_fitting(past, room)
        first = self._first_kept[b]
        if sum(len(step) for step in past[first:]) > room:  # slide: drop oldest whole steps to half the room
            first = min(newest_fitting(past, int(room * self.slide_keep)),
                        max(newest_fitting(past, room), len(past) - 1))
        self._first_kept[b] = first
        return first

    def _resume(self, rows: list[int], contexts: list[list[int]], lookahead: int, tail: int) -> torch.Tensor | None:
        """Feed only what each row's context adds to what the cache holds; None when it cannot (the caller
        re-encodes every row). A row whose context slid is re-encoded on its own up to its last ``tail`` tokens
        (the new observation), into its cache row just before the act column."""
        if not self.step_cache or not self._load_group(rows) or self._static is None:
            return None
        if rows != self._cache_rows:
            where = {r: i for i, r in enumerate(self._cache_rows)}
            if not all(r in where for r in rows) or not select_rows(self._static, [where[r] for r in rows]):
                return None
            keep = torch.tensor([where[r] for r in rows])
            self._attn = self._attn[keep]
            self._kept = [self._kept[where[r]] for r in rows]
            self._cache_rows = list(rows)
        slid = [i for i, (c, k) in enumerate(zip(contexts, self._kept)) if c[: len(k)] != k]
        if any(len(c) <= len(k) for i, (c, k) in enumerate(zip(contexts, self._kept)) if i not in slid):
            return None  # a context the cache already holds whole (no past steps, an unchanged frame): no new token
        if len(slid) == len(rows) or not rewind(self._static, int(self._static.get_seq_length()) - self._act_col):
            return None
        self._attn = self._attn[:, : self._act_col]
        if slid and not self._reencode_rows(slid, [contexts[i][:-tail] for i in slid]):
            return None
        if not self._compact():
            return None
        new = [c[len(k):] for c, k in zip(contexts, self._kept)]
        need = self._act_col + max(len(x) for x in new) + self.budget.columns(lookahead)
        if need > self._static_columns:  # copy into a larger cache, with room for the next steps
            bigger = grow(self._static, self.model, len(rows), need + self.spare_columns, self._act_col)
            if bigger is None:
                return None
            self._static, self._static_columns = bigger, need + self.spare_columns
        self.positions.start(contexts)  # the tracker continues from each row's whole context
        self._past = self._static
        return self._feed(new, positions=[self.positions.layout.positions(c)[len(k):].tolist()
                                          for c, k in zip(contexts, self._kept)])

    def _remember_act_column(self, rows: list[int], contexts: list[list[int]], thoughts: list[list[int]],
                             lookahead: int = 0, closing: list[int] | None = None) -> None:
        """Called when every row's ``<act>`` has been fed: the cache holds each row's context and thought up
        to here, the column the next act rewinds to. Steps with further imagined steps (N > 0) keep no cache:
        their reserve leaves room for about one past step, so contexts slide at nearly every step and the
        cache costs more than it saves."""
        if not self.step_cache or self._static is None or lookahead:
            return
        s = self.tok.special
        self._cache_rows = list(rows)
        self._act_col = self._attn.shape[1]
        closing = [s["</think>"], s["<act>"]] if closing is None else closing  # what follows the thought
        self._kept = [c + t + closing for c, t in zip(contexts, thoughts)]
        for key in [k for k in self._groups if set(k) & set(rows)]:  # what they held of these rows is stale now
            del self._groups[key]
        self._groups[tuple(rows)] = {"static": self._static, "columns": self._static_columns, "attn": self._attn,
                                     "kept": self._kept, "act_col": self._act_col, "rows": self._cache_rows}

    def _compact(self) -> bool:
        """Pack the rows' cached columns together when the masked holes (thoughts shorter than the batch's
        longest, rows re-encoded after a slide) have grown past ``compact_share`` of the cache: decoding reads every
        column up to the act column. False where there are too many holes and the cache cannot be packed."""
        width = int(self._attn.sum(1).max())
        if self._act_col - width <= self._act_col * self.compact_share:
            return True
        attn = compact(self._static, self._attn, self._act_col)
        if attn is None:  # pragma: no cover - older cache APIs: re-encode once the holes outgrow a step
            return self._act_col <= self.context + self.budget.step
        self._attn, self._act_col = attn, width
        return True

    def _reencode_rows(self, slid: list[int], bases: list[list[int]]) -> bool:
        """Encode the slid rows' contexts (without the new observation) apart and write them into their cache
        rows, right-aligned at the act column; False where they do not fit or the cache cannot be written."""
        n = max(len(b) for b in bases)
        if n > self._act_col:
            return False
        sub, attn, _ = self._prefill(bases, [self.positions.layout.positions(b) for b in bases], n)
        if sub is None or not write_rows(self._static, slid, sub, self._act_col - n, n):
            return False
        for i, b, a in zip(slid, bases, attn):
            self._attn[i] = 0
            self._attn[i, self._act_col - n:] = a
            self._kept[i] = b
        return True

    def _load_group(self, rows: list[int]) -> bool:
        """Make the cache of these rows (or of a group holding them all) the current one. Rows played in
        separate groups (``play(imagine=...)`` decodes recorded episodes apart) each keep their own cache."""
        key = tuple(rows) if tuple(rows) in self._groups else next(
            (k for k in self._groups if set(rows) <= set(k)), None)
        if key is None:
            return False
        g = self._groups.pop(key)
        self._static, self._static_columns, self._attn = g["static"], g["columns"], g["attn"]
        self._kept, self._act_col, self._cache_rows = g["kept"], g["act_col"], g["rows"]
        return True
