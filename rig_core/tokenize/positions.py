"""Position ids: one per token, or the aligned layout where every think/review text takes a fixed budget.

RoPE attention sees only differences of position ids. When positions count tokens, the offset from
a cell of the frame in ``<obs>`` to the same cell in the step's ``<imagine>`` changes with the length
of the thought written between them, so copying the frame (most of the next frame is the current
one, at most one cell shifted) needs a lookup by content. With ``budget`` > 0 each
``<think>``/``<review>`` text is given ``budget`` positions whatever its length (the closing tag sits
``budget + 1`` after the opening one; longer texts simply count on), so that offset is a constant
and copying is a fixed-offset attention pattern a small model learns quickly.

With ``row_stride`` > 0 the cells of a frame (``row_cells`` per row, row-major) are laid out on a
grid of ``row_stride`` positions per row: the cell below sits ``row_stride`` positions on, and the
last cell of a row no longer neighbours the first of the next, so horizontal and vertical
neighbours are told apart by their position offset alone. The frame's next token follows its last
cell.

The ids depend on the tokens only: training computes them per sample (``PositionLayout.positions``),
decoding token by token (``PositionTracker``); both give the same ids for the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PositionLayout:
    budget: int  # positions reserved for a think/review text; 0: one position per token
    openers: frozenset[int]
    closers: frozenset[int]
    images: frozenset[int] = frozenset()  # image token ids (with a row stride)
    row_cells: int = 0  # image tokens per frame row
    row_stride: int = 0  # positions per frame row; 0: one per token

    @classmethod
    def of(cls, tok, budget: int, row_cells: int = 0, row_stride: int = 0) -> "PositionLayout":
        s = tok.special
        strided = row_stride > 0
        return cls(int(budget), frozenset((s["<think>"], s["<review>"])), frozenset((s["</think>"], s["</review>"])),
                   frozenset(int(i) for i in tok.image_ids) if strided else frozenset(),
                   int(row_cells) if strided else 0, int(row_stride) if strided else 0)

    @property
    def row_jump(self) -> int:
        """Position increment from a row's last cell to the next row's first."""
        return self.row_stride - self.row_cells + 1

    def image_step(self, k: int) -> int:
        """Position increment of the k-th (0-based) image token of a run of image tokens."""
        return self.row_jump if self.row_stride and k and k % self.row_cells == 0 else 1

    def positions(self, ids) -> np.ndarray:
        """Position ids of a token sequence that starts at position 0."""
        ids = np.asarray(ids, np.int64)
        n = len(ids)
        if (self.budget <= 0 and not self.row_stride) or n == 0:
            return np.arange(n, dtype=np.int64)
        inc = np.ones(n, np.int64)
        if self.row_stride:
            img = np.isin(ids, list(self.images))
            last_other = np.maximum.accumulate(np.where(img, -1, np.arange(n)))
            k = np.arange(n) - last_other - 1  # index of each image token within its run
            inc[img & (k > 0) & (k % self.row_cells == 0)] = self.row_jump
        if self.budget <= 0:
            return np.cumsum(inc) - 1
        marks = np.nonzero(np.isin(ids, list(self.openers | self.closers)))[0]
        open_at = None
        for i in marks.tolist():
            if int(ids[i]) in self.openers:
                open_at = i
            elif open_at is not None:  # pos[close] = pos[open] + max(close - open, budget + 1)
                inc[i] = max(1, self.budget + 2 - (i - open_at))
                open_at = None
        return np.cumsum(inc) - 1


class PositionTracker:
    """Position ids of tokens fed one row at a time during decoding (same ids as ``layout.positions``)."""

    def __init__(self, layout: PositionLayout):
        self.layout = layout
        self.last: list[int] = []
        self.open: list[int | None] = []
        self.run: list[int] = []  # image tokens at the end of each row (the index of the next one)

    def start(self, rows: list[list[int]]) -> list[np.ndarray]:
        """Positions of each row's first tokens; remembers where each row stands."""
        out = [self.layout.positions(r) for r in rows]
        self.last = [int(p[-1]) if len(p) else -1 for p in out]
        self.open = []
        self.run = []
        for r in rows:
            k = 0
            while k < len(r) and r[len(r) - 1 - k] in self.layout.images:
                k += 1
            self.run.append(k)
        for r, p in zip(rows, out):
            state = None
            for k in range(len(r) - 1, -1, -1):  # the last tag decides: an opener leaves its span open
                if r[k] in self.layout.openers:
                    state = int(p[k])
                    break
                if r[k] in self.layout.closers:
                    break
            self.open.append(state)
        return out

    def feed(self, row: int, tokens: list[int]) -> list[int]:
        """Positions of ``tokens`` appended to ``row``."""
        out = []
        lay = self.layout
        for t in tokens:
            if t in lay.images:
                p = self.last[row] + lay.image_step(self.run[row])
                self.run[row] += 1
                self.last[row] = p
                out.append(p)
                continue
            self.run[row] = 0
            p = self.last[row] + 1
            if t in lay.closers:
                if self.open[row] is not None and lay.budget > 0:
                    p = max(p, self.open[row] + lay.budget + 1)
                self.open[row] = None
            elif t in lay.openers:
                self.open[row] = p
            self.last[row] = p
            out.append(p)
        return out

    def peek(self, row: int, tokens: list[int]) -> list[int]:
        """Positions ``tokens`` would take appended to ``row``, leaving the row where it stands."""
        saved = self.last[row], self.open[row], self.run[row]
        try:
            return self.feed(row, tokens)
        finally:
            self.last[row], self.open[row], self.run[row] = saved

    def select(self, rows: list[int]) -> "PositionTracker":
        """A tracker of the batch rows ``rows`` (in that order, a row may repeat), standing where they stand."""
        out = PositionTracker(self.layout)
        out.last, out.open, out.run = ([xs[r] for r in rows] for xs in (self.last, self.open, self.run))
        return out

    def advance(self) -> None:
        """Every row took one image token."""
        step = self.layout.image_step
        self.last = [p + step(k) for p, k in zip(self.last, self.run)]
        self.run = [k + 1 for k in self.run]
