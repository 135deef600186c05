"""What the expert knows of the world: a remembered material map and the creatures in view.

In the default (view-limited) mode only the cells that have been inside the
player's 9x7 view this episode are remembered; ``oracle`` mode copies the whole
map every step. Cell value 0 means "never seen".
"""

from __future__ import annotations

import numpy as np

HALF_W, HALF_H = 4, 3  # the view spans x-4..x+4, y-3..y+3
CREATURES = ("cow", "zombie", "skeleton", "arrow", "plant")


class WorldMemory:
    def __init__(self, oracle: bool = False):
        self.oracle = oracle
        self.map = np.zeros((64, 64), np.uint8)
        self.seen_step = np.full((64, 64), -1, np.int32)  # last step each cell was in view
        self.ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.version = 0  # bumps whenever a remembered cell changes
        self.creatures: list[tuple[str, tuple[int, int], object]] = []
        self.occupied: dict[tuple[int, int], str] = {}
        self.pos = (0, 0)
        self.step = 0
        self.sightings: dict[str, tuple[tuple[int, int], int]] = {}  # kind -> (last cell seen, step)
        self.cow_sightings: dict[tuple[int, int], int] = {}  # coarse 4x4 block -> last step a cow was seen there
        self._cache: dict[tuple, np.ndarray] = {}
        self._cache_version = -1

    def reset(self) -> None:
        self.map[:] = 0
        self.seen_step[:] = -1
        self.version += 1
        self.creatures = []
        self.occupied = {}
        self.sightings = {}
        self.cow_sightings = {}
        self.step = 0

    # -- per-step update ---------------------------------------------------------
    def update(self, world) -> None:
        """Refresh from the live world: the view window (or everything in oracle mode)."""
        if not self.ids:
            self.ids = dict(world.material_ids)
            self.names = {i: n for n, i in self.ids.items()}
        px, py = (int(v) for v in world.player.pos)
        self.pos = (px, py)
        mats = world.materials
        w, h = mats.shape
        if self.oracle:
            x0, x1, y0, y1 = 0, w, 0, h
        else:
            x0, x1 = max(px - HALF_W, 0), min(px + HALF_W + 1, w)
            y0, y1 = max(py - HALF_H, 0), min(py + HALF_H + 1, h)
        new = mats[x0:x1, y0:y1]
        self.seen_step[max(px - HALF_W, 0): px + HALF_W + 1, max(py - HALF_H, 0): py + HALF_H + 1] = self.step
        old = self.map[x0:x1, y0:y1]
        if not np.array_equal(old, new):
            old[...] = new
            self.version += 1
        self.creatures = []
        occ = {}
        for obj in world.world.objects:
            kind = type(obj).__name__.lower()
            if kind == "player":
                continue
            x, y = int(obj.pos[0]), int(obj.pos[1])
            visible = abs(x - px) <= HALF_W and abs(y - py) <= HALF_H
            if visible:  # creatures act on the player only near it: react to those in view
                self.creatures.append((kind, (x, y), obj))
                occ[(x, y)] = kind
            if (visible or self.oracle) and kind in ("cow", "zombie", "skeleton"):
                old_seen = self.sightings.get(kind)
                d = abs(x - px) + abs(y - py)
                if visible or old_seen is None or old_seen[1] < self.step or d < abs(old_seen[0][0] - px) + abs(old_seen[0][1] - py):
                    self.sightings[kind] = ((x, y), self.step)
                if kind == "cow":
                    self.cow_sightings[(x // 4, y // 4)] = self.step
        self.occupied = occ
        self.step += 1

    # -- queries -----------------------------------------------------------------
    def name_at(self, cell: tuple[int, int]) -> str | None:
        x, y = cell
        if not (0 <= x < 64 and 0 <= y < 64):
            return None
        v = int(self.map[x, y])
        return self.names.get(v) if v else None

    def in_view(self, cell: tuple[int, int]) -> bool:
        return abs(cell[0] - self.pos[0]) <= HALF_W and abs(cell[1] - self.pos[1]) <= HALF_H

    def mask(self, *names: str) -> np.ndarray:
        """Boolean (64, 64) mask of remembered cells holding any of these materials (cached per version)."""
        if self._cache_version != self.version:
            self._cache.clear()
            self._cache_version = self.version
        key = names
        m = self._cache.get(key)
        if m is None:
            ids = [self.ids[n] for n in names if n in self.ids]
            m = np.isin(self.map, ids) if ids else np.zeros(self.map.shape, bool)
            self._cache[key] = m
        return m

    def known(self) -> np.ndarray:
        return self.map > 0

    def creatures_of(self, kind: str) -> list[tuple[int, int]]:
        return [p for k, p, _ in self.creatures if k == kind]


def dilate(mask: np.ndarray, cross: bool = True) -> np.ndarray:
    """One step of 4-neighbour (cross) or 8-neighbour dilation, without wrap-around."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    if not cross:
        out[1:, 1:] |= mask[:-1, :-1]
        out[:-1, :-1] |= mask[1:, 1:]
        out[1:, :-1] |= mask[:-1, 1:]
        out[:-1, 1:] |= mask[1:, :-1]
    return out
