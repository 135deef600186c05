"""How a move changes Crafter's view: the shift of the view's content per move action, and a frame's cell
grid shifted so.

Crafter draws the player in the middle of a 9x7 view of 7-pixel cells, with the inventory in the rows
below. A move that goes through shifts everything in view by one cell (walking left moves the content one
cell to the right) and a new row or column comes into view; a blocked move, or an action that is not a
move, leaves the view where it was. Reading whether a move went through (``rig_core/review/moves.py``) and
drafting an imagined frame from the last one (``rig_core/inference/draft.py``) both use this table.
"""

from __future__ import annotations

import numpy as np

from rig_core.envs.crafter import DIRECTIONS, VIEW_COLS, VIEW_ROWS

PLAYER_CELL = (VIEW_ROWS // 2, VIEW_COLS // 2)  # (row, column) of the player's cell in the view


def content_shifts(action_names: list[str]) -> dict[int, tuple[int, int]]:
    """Action index -> how the view's content moves (rows, columns) when that move goes through: walking
    left moves everything in view one cell to the right. Only the env's move actions (``DIRECTIONS``)."""
    out = {}
    for name, (dx, dy) in DIRECTIONS.items():
        if f"move_{name}" in action_names:
            out[action_names.index(f"move_{name}")] = (-dy, -dx)
    return out


def shifted_cells(cells: np.ndarray, shift: tuple[int, int], rows: int = VIEW_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """A frame's cell grid [R, C] (one value per cell: an image code, say) as it looks after the content of its
    first ``rows`` rows (the view) moved by ``shift`` (rows, columns), and where that is known: (cells, known).
    Rows below the view (the inventory) are kept. Guessed, not known: the cells that came into view (they
    repeat the nearest cell that was in view), the player's cell (the player stays in the middle; kept as it
    was) and the cell the player left (kept as it was: what the player stood on is not in the frame)."""
    cells = np.asarray(cells)
    out, known = cells.copy(), np.ones(cells.shape, bool)
    dr, dc = shift
    if (dr, dc) != (0, 0):
        r, c = np.arange(rows) - dr, np.arange(cells.shape[1]) - dc
        out[:rows] = cells[:rows][np.clip(r, 0, rows - 1)][:, np.clip(c, 0, cells.shape[1] - 1)]
        known[:rows] = ((r >= 0) & (r < rows))[:, None] & ((c >= 0) & (c < cells.shape[1]))[None, :]
        left = (PLAYER_CELL[0] + dr, PLAYER_CELL[1] + dc)
        if 0 <= left[0] < rows and 0 <= left[1] < cells.shape[1]:
            out[left], known[left] = cells[left], False
    out[PLAYER_CELL], known[PLAYER_CELL] = cells[PLAYER_CELL], False  # its facing changes with the action
    return out, known
