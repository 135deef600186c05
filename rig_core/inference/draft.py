"""Drafts of an imagined frame from the frame before it, for speculative decoding (``speculative.py``).

A frame mostly repeats the last one: a move that goes through shifts the view by one cell, a blocked move
or another action holds it, and the inventory rows rarely change. Each row's draft has one candidate per
reading (for a move: the view shifted, then held; otherwise held), cell for cell (``envs/view.py``).

Codes themselves do not repeat as well as the picture: the image codebook holds near-copies of one
texture, and as the daylight changes from step to step a whole field can move from one copy to the other.
So each candidate keeps a map of codes, learnt from the cells already decided in this frame (its old code
in that cell -> the code the model wrote), and drafts the rest of the frame through it: after the first
cell of grass, the rest of the grass is drafted with the new code. Cells whose content is a guess (those
that came into view, the player's) are drafted but teach the map nothing. The candidate whose drafts
would have predicted the decided cells best drafts the rest (ties: the first). Everything here depends
only on tokens already decided, so the verification keeps the model's outputs exact.
"""

from __future__ import annotations

import numpy as np

from rig_core.envs.crafter import VIEW_COLS, VIEW_ROWS
from rig_core.envs.view import PLAYER_CELL, shifted_cells


PLAYER_INDEX = PLAYER_CELL[0] * VIEW_COLS + PLAYER_CELL[1]  # the player's cell in a frame's token order


def crafter_grid(tokens_per_frame: int, grid: int | None) -> bool:
    """Whether a frame's tokens are Crafter's cell grid (the view's rows, then the inventory's), one per cell."""
    return grid == VIEW_COLS and grid > VIEW_ROWS and tokens_per_frame == grid * grid


class FrameDrafts:
    """Drafts for a batch of frames: ``bases`` [B, F] token ids of the frame before each, ``actions`` the
    action (index) taken between, ``shifts`` the move table (``content_shifts``), ``grid`` the cells per row
    when the tokens are Crafter's grid (None: every candidate holds the frame, no cell is a guess)."""

    def __init__(self, bases: np.ndarray, actions: list[int | None], shifts: dict[int, tuple[int, int]],
                 grid: int | None = None):
        bases = np.asarray(bases)
        self.candidates: list[list[tuple[list[int], list[bool]]]] = []
        for base, a in zip(bases, actions):
            if grid is None:
                self.candidates.append([(base.tolist(), [True] * len(base))])
                continue
            cells = base.reshape(-1, grid)
            readings = [shifts[a]] if a in shifts else []
            cands = []
            for s in (*readings, (0, 0)):
                codes, known = shifted_cells(cells, s)
                known = known.astype(np.int8).reshape(-1)
                known[PLAYER_INDEX] = -1  # the player's cell teaches nothing: its code is the player's
                if s != (0, 0):
                    left = (PLAYER_CELL[0] + s[0]) * cells.shape[1] + PLAYER_CELL[1] + s[1]
                    known[left] = -1
                cands.append((codes.reshape(-1).tolist(), known.tolist()))
            self.candidates.append(cands)
        self.maps = [[{} for _ in c] for c in self.candidates]
        self.weak = [[{} for _ in c] for c in self.candidates]
        self.scores = [[0] * len(c) for c in self.candidates]
        self.seen = [0] * len(self.candidates)

    def observe(self, row: int, decided: list[int]) -> None:
        """Learn from the row's decided tokens (its frame so far, from the first cell)."""
        for i in range(self.seen[row], len(decided)):
            x = decided[i]
            for k, (codes, known) in enumerate(self.candidates[row]):
                m, w, c = self.maps[row][k], self.weak[row][k], codes[i]
                self.scores[row][k] += m.get(c, w.get(c, c)) == x
                if known[i] > 0:
                    m[c] = x
                elif known[i] == 0:
                    w[c] = x
        self.seen[row] = len(decided)

    def chosen(self, row: int) -> int:
        """The candidate that drafts now: the one that predicted the decided cells best (the first on ties)."""
        s = self.scores[row]
        return s.index(max(s))

    def tokens(self, row: int, start: int, stop: int) -> list[int]:
        """The draft for cells ``start..stop-1``."""
        k = self.chosen(row)
        m, w = self.maps[row][k], self.weak[row][k]
        return [m.get(c, w.get(c, c)) for c in self.candidates[row][k][0][start:stop]]


