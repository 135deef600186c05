"""Position ids: one per token, or the aligned layout where every think/review text takes a fixed budget.

RoPE attention sees only differences of position ids. When positions count tokens, the offset from
a cell of the frame in ``<obs>`` to the same cell in the step's ``<imagine>`` changes with the length
of the thought written between them, so copying the frame (most of the next frame is the current
one, at most one cell shifted) needs a lookup by content. With ``budget`` > 0 each
``<think>``/``<review>`` text is given ``budget`` positions whatever its length (the closing tag sits
``budget + 1`` after the opening one; longer texts simply count on), so that offset is a constant
and copying is a fixed-offset attention pattern a small model learns quickly.

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

    @classmethod
    def of(cls, tok, budget: int) -> "PositionLayout":
        s = tok.special
        return cls(int(budget), frozenset((s["<think>"], s["<review>"])), frozenset((s["</think>"], s["</review>"])))

    def positions(self, ids) -> np.ndarray:
        """Position ids of a token sequence that starts at position 0."""
        ids = np.asarray(ids, np.int64)
        n = len(ids)
        if self.budget <= 0 or n == 0:
            return np.arange(n, dtype=np.int64)
        inc = np.ones(n, np.int64)
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

    def start(self, rows: list[list[int]]) -> list[np.ndarray]:
        """Positions of each row's first tokens; remembers where each row stands."""
        out = [self.layout.positions(r) for r in rows]
        self.last = [int(p[-1]) if len(p) else -1 for p in out]
        self.open = []
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

    def advance(self) -> None:
        """Every row took one token that opens or closes nothing (an image token)."""
        self.last = [p + 1 for p in self.last]
