"""Does the imagination show whether a move goes through?

A move in Crafter either shifts the player's view by one cell (the player walked) or leaves it where it
was (the way was blocked: water, a tree, stone, a table; the player only turns). That is the outcome a
review most needs to see in an imagined frame ("to move left changes nothing here, a wasted step"). It can
be read off the frames cell by cell (Crafter draws its view on a grid of 7-pixel cells): compare the frame
after the move with the frame before it, unshifted and shifted by the move, over the view (the player's
own cell left out, since turning changes it either way). Cells are compared by their pixels, not by image
codes: a tokenizer's codebook holds near-copies of one texture (grass under slightly different light), so
equal-looking cells can carry different codes. The real frame says what happened; the imagined
frame says what the model expected. An imagination that knows when a move is blocked holds the view for
blocked moves and shifts it for the others; one that does not holds it as often for both.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from rig_core.envs.crafter import VIEW_COLS, VIEW_ROWS
from rig_core.envs.view import content_shifts
from rig_core.stats.metrics import roc_auc, roc_auc_interval

HELD, MOVED = "held", "moved"
MARGIN = 0.1  # a real outcome is called only when one reading matches this many more cells than the other
SAME_CELL = 10.0  # two cells look the same below this mean absolute pixel difference (of 255)


def view_cells(frame: np.ndarray, rows: int = VIEW_ROWS, cols: int = VIEW_COLS) -> np.ndarray:
    """The view part of a frame [H, W, 3] as cells [rows, cols, cell * cell * 3] (float), the cell size
    ``W // cols`` (the rows below the view show the inventory)."""
    frame = np.asarray(frame, np.float32)
    c = frame.shape[1] // cols
    x = frame[: rows * c, : cols * c].reshape(rows, c, cols, c, -1)
    return x.transpose(0, 2, 1, 3, 4).reshape(rows, cols, -1)


def shifted_match(before: np.ndarray, after: np.ndarray, shift: tuple[int, int]) -> float:
    """Share of view cells (``view_cells``) where ``after`` looks like what ``before`` showed ``shift`` (rows,
    columns) cells away, over the cells both frames cover, the player's cell (the centre) left out."""
    dr, dc = shift
    rows, cols = before.shape[:2]
    r0, r1, c0, c1 = max(0, -dr), min(rows, rows - dr), max(0, -dc), min(cols, cols - dc)
    diff = np.abs(before[r0:r1, c0:c1] - after[r0 + dr:r1 + dr, c0 + dc:c1 + dc]).mean(-1)
    same = diff < SAME_CELL
    centre = (rows // 2, cols // 2)
    keep = np.ones_like(same, bool)
    for r, c in (centre, (centre[0] - dr, centre[1] - dc)):  # the player's cell, before and after
        if r0 <= r < r1 and c0 <= c < c1:
            keep[r - r0, c - c0] = False
    return float(same[keep].mean()) if keep.any() else 0.0


def hold_score(before: np.ndarray, after: np.ndarray, shift: tuple[int, int]) -> float:
    """How much more ``after`` looks like the view held than like it moved (in share of cells)."""
    return shifted_match(before, after, (0, 0)) - shifted_match(before, after, shift)


def move_outcome(before: np.ndarray, after: np.ndarray, shift: tuple[int, int], margin: float = MARGIN) -> str | None:
    """HELD (the move was blocked), MOVED (it went through) or None when the frames cannot tell (a field of
    grass looks the same one cell over)."""
    score = hold_score(before, after, shift)
    return HELD if score > margin else MOVED if score < -margin else None


def move_reading(pairs: Iterable[tuple[str | None, float]], groups: Iterable | None = None) -> dict[str, Any]:
    """Summary of (real outcome, the imagined frame's ``hold_score``) per proposed move: how many moves were
    blocked, went through or could not be told; the share of each whose imagined frame held the view (score
    above 0); the ROC AUC of the score for telling a blocked move from one that went through (0.5: the
    imagination does not know), its interval resampling ``groups`` (the episode of each pair) when given."""
    pairs = list(pairs)
    told = [i for i, (o, _) in enumerate(pairs) if o == HELD] + [i for i, (o, _) in enumerate(pairs) if o == MOVED]
    y = np.asarray([pairs[i][0] == HELD for i in told], bool)
    x = np.asarray([pairs[i][1] for i in told], float)
    out: dict[str, Any] = {"moves": len(pairs), "blocked": int(y.sum()), "through": int((~y).sum()),
                           "unclear": len(pairs) - len(told),
                           "imagined_held_when_blocked": float((x[y] > 0).mean()) if y.any() else None,
                           "imagined_held_when_through": float((x[~y] > 0).mean()) if (~y).any() else None,
                           "auc": None, "auc_ci95": None}
    if y.any() and not y.all():
        out["auc"] = roc_auc(x, y)
        groups = None if groups is None else list(groups)
        kept = None if groups is None else [groups[i] for i in told]
        out["auc_ci95"] = list(roc_auc_interval(x, y, groups=kept))
    return out


def imagined_moves(policy, samples, batch: int = 16) -> dict[str, Any]:
    """``move_reading`` of a checkpoint's own imagination on held-out review samples
    (``review_quality.review_samples``) whose proposal is a move: each state's context up to the proposal's
    ``<imagine>``, the frame the model imagines from it (greedy, ``RigPolicy.imagine_from``), against the
    real frame after the proposal (interval: held-out episodes resampled)."""
    shifts = content_shifts(list(policy.tok.action_names))
    picked, seen = [], set()
    for x in samples:  # one per state: a state's samples j = 1..k share the context up to its first imagined frame
        context = _imagine_context(x.arrays["input_ids"], policy.tok.special)
        key = np.asarray(context).tobytes()
        if x.proposed in shifts and x.real_next is not None and key not in seen:
            seen.add(key)
            picked.append((x, context))
    pairs: list[tuple[str | None, float]] = []
    for i in range(0, len(picked), batch):
        part = picked[i:i + batch]
        imagined = policy.decode_frames(policy.imagine_from([context for _, context in part]))
        for (x, _), frame in zip(part, imagined):
            b, a, m = (view_cells(f) for f in (x.observed, x.real_next, frame))
            shift = shifts[x.proposed]
            pairs.append((move_outcome(b, a, shift), hold_score(b, m, shift)))
    return move_reading(pairs, [x.episode for x, _ in picked])


def reviewed_token(ids, special: dict[str, int], token: str) -> int:
    """Where the reviewed step's first ``token`` (e.g. ``<act>``, ``<imagine>``) is in a review sample's tokens:
    the first after the state's frame (the last ``<obs>`` before ``<review>``)."""
    ids = list(np.asarray(ids).tolist())
    head = ids[: ids.index(special["<review>"])]
    obs = len(head) - 1 - head[::-1].index(special["<obs>"])
    return ids.index(special[token], obs)


def _imagine_context(ids: np.ndarray, special: dict[str, int]) -> list[int]:
    """A review sample's tokens up to and including the reviewed step's ``<imagine>``: the state's frame,
    thought and proposed action, with the history before them."""
    ids = list(np.asarray(ids).tolist())
    return ids[: reviewed_token(ids, special, "<imagine>") + 1]
