"""Path finding over the remembered map: a bucket-queue Dijkstra with cached paths.

Cells are flat indices ``x * 64 + y``. Walkable cells cost 1 (more next to lava),
cells the expert can dig through (stone with a pickaxe, trees) cost 3, unknown
cells, water, lava and cells holding a creature are impassable. Paths are cached
and only recomputed when the goal changes, the path is blocked or it grows old.
"""

from __future__ import annotations

import numpy as np

from rig_core.agents.expert.memory import WorldMemory, dilate

W = 64
N = W * W
INF = 1 << 30
LAVA_PENALTY = 4
DIG_COST = 3
DANGER = {"zombie": 1, "skeleton": 2, "arrow": 1}  # creature -> radius of extra path cost
DANGER_COST = 3


def flat(cell: tuple[int, int]) -> int:
    return cell[0] * W + cell[1]


def unflat(i: int) -> tuple[int, int]:
    return (i // W, i % W)


def settle(cost: list[int], start: int, limit: int = INF, prev: dict[int, int] | None = None):
    """Dial's algorithm (a bucket-queue Dijkstra for small integer costs): yields ``(cell, dist)`` for every
    cell reachable within ``limit``, once, when its path cost is final, cheapest first; ``prev`` (when given)
    gets each cell's predecessor. The caller may stop early: nothing past the last yield is relaxed."""
    dist = {start: 0}
    buckets: list[list[int]] = [[start]]
    d = 0
    while d < len(buckets) and d <= limit:
        for i in buckets[d]:
            if dist[i] != d:
                continue
            yield i, dist
            y = i & 63
            for j in (i - W, i + W, i - 1 if y else -1, i + 1 if y < 63 else -1):
                if j < 0 or j >= N:
                    continue
                c = cost[j]
                if not c:
                    continue
                nd = d + c
                if nd < dist.get(j, INF):
                    dist[j] = nd
                    if prev is not None:
                        prev[j] = i
                    while len(buckets) <= nd:
                        buckets.append([])
                    buckets[nd].append(j)
        d += 1


def dijkstra(cost: list[int], start: int, goals, limit: int = INF) -> list[int] | None:
    """Cheapest path start..goal (list of flat cells) to the nearest cell in ``goals``, or None."""
    prev: dict[int, int] = {}
    for i, _ in settle(cost, start, limit, prev):
        if i in goals:
            path = [i]
            while i != start:
                i = prev[i]
                path.append(i)
            path.reverse()
            return path
    return None


def distance_map(cost: list[int], start: int, limit: int = INF) -> dict[int, int]:
    """Path costs from start to every reachable cell (up to ``limit``)."""
    dist = {start: 0}
    for _, dist in settle(cost, start, limit):
        pass
    return dist


class Navigator:
    def __init__(self, memory: WorldMemory, walkable, tunnel: dict[str, str | None]):
        self.mem = memory
        self.walkable = tuple(walkable)
        self.tunnel = dict(tunnel)
        self._base_key = None
        self._base: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.path: list[int] | None = None
        self.index: dict[int, int] = {}
        self.key = None
        self.age = 0
        self._base_key = None
        self.plans = 0
        self.protected: set[int] = set()  # cells never to dig or walk through (e.g. a plant's walls)
        self.allow_protected = False

    # -- costs -----------------------------------------------------------------------
    def diggable(self, inv: dict[str, int]) -> tuple[str, ...]:
        return tuple(m for m, tool in self.tunnel.items() if tool is None or inv.get(tool, 0) > 0)

    def base_cost(self, inv: dict[str, int], tunnel: bool) -> np.ndarray:
        dig = self.diggable(inv) if tunnel else ()
        key = (self.mem.version, dig)
        if key != self._base_key:
            walk = self.mem.mask(*self.walkable)
            cost = walk.astype(np.int32)
            lava = self.mem.mask("lava")
            if lava.any():
                near = dilate(dilate(lava, cross=False), cross=True)
                cost[walk & near] += LAVA_PENALTY
            if dig:
                cost[self.mem.mask(*dig)] = DIG_COST
            self._base = cost
            self._base_key = key
        return self._base

    def cost_list(self, inv, tunnel: bool, avoid: tuple = ()) -> list[int]:
        cost = self.base_cost(inv, tunnel).ravel().tolist()
        for (x, y), kind in self.mem.occupied.items():
            if kind in DANGER:  # keep a berth around hostile creatures
                r = DANGER[kind]
                for dx in range(-r, r + 1):
                    for dy in range(-r + abs(dx), r - abs(dx) + 1):
                        cx, cy = x + dx, y + dy
                        if 0 <= cx < W and 0 <= cy < W and cost[cx * W + cy]:
                            cost[cx * W + cy] += DANGER_COST
        for (x, y), kind in self.mem.occupied.items():
            if kind == "skeleton":  # its line of fire (row and column, 5 cells)
                for k in range(1, 6):
                    for cx, cy in ((x + k, y), (x - k, y), (x, y + k), (x, y - k)):
                        if 0 <= cx < W and 0 <= cy < W and cost[cx * W + cy]:
                            cost[cx * W + cy] += DANGER_COST
        for (x, y), kind in self.mem.occupied.items():
            cost[x * W + y] = 0
        if not self.allow_protected:
            for i in self.protected:
                cost[i] = 0
        for i in avoid:
            cost[i] = 0
        return cost

    def passable(self, cell: tuple[int, int], inv, tunnel: bool = True) -> bool:
        x, y = cell
        if not (0 <= x < W and 0 <= y < W) or cell in self.mem.occupied:
            return False
        return bool(self.base_cost(inv, tunnel)[x, y])

    # -- following --------------------------------------------------------------------
    def plan(self, key, goals, inv, tunnel: bool = True, avoid: tuple = ()) -> bool:
        self.plans += 1
        start = flat(self.mem.pos)
        cost = self.cost_list(inv, tunnel, avoid)
        path = dijkstra(cost, start, goals)
        self.key = key
        self.age = 0
        self.path = path
        self.index = {c: k for k, c in enumerate(path)} if path else {}
        return path is not None

    def step(self, key, goals_fn, inv, tunnel: bool = True, replan_every: int = 25):
        """Next move toward the goals: ('arrived', cell) | ('move', dir) | ('dig', dir) | ('fail', None).

        ``goals_fn()`` returns the goal cells (a set or dict of flat indices); it is
        only called when a new plan is needed.
        """
        start = flat(self.mem.pos)
        self.age += 1
        fresh = False
        if key != self.key or self.path is None or start not in self.index or self.age > replan_every:
            if not self.plan(key, goals_fn(), inv, tunnel):
                return ("fail", None)
            fresh = True
        k = self.index[start]
        if k == len(self.path) - 1:
            return ("arrived", self.path[-1])
        nxt = self.path[k + 1]
        cell = unflat(nxt)
        d = (cell[0] - self.mem.pos[0], cell[1] - self.mem.pos[1])
        name = self.mem.name_at(cell)
        if cell in self.mem.occupied:
            if not fresh:
                if not self.plan(key, goals_fn(), inv, tunnel):
                    return ("fail", None)
                return self.step(key, goals_fn, inv, tunnel, replan_every)
            return ("blocked", d)
        if name in self.walkable:
            return ("move", d)
        if tunnel and name in self.diggable(inv):
            return ("dig", d)
        if fresh:
            return ("fail", None)
        self.path = None
        return self.step(key, goals_fn, inv, tunnel, replan_every)
