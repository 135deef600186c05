"""Low-level skills: act on a target, place on a free cell, explore, fight.

Each skill returns the name of the next action, or None when it cannot make
progress (the planner then picks something else, usually exploration).
"""

from __future__ import annotations

import numpy as np

from rig_core.agents.expert.knowledge import DIR_ACTION, DIRS, Knowledge
from rig_core.agents.expert.memory import WorldMemory, dilate
from rig_core.agents.expert.navigation import W, Navigator, flat, unflat


def shift(mask: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    """out[c] = mask[c + d] (False outside the map)."""
    out = np.zeros_like(mask)
    dx, dy = d
    xs = slice(max(-dx, 0), W - max(dx, 0))
    ys = slice(max(-dy, 0), W - max(dy, 0))
    xt = slice(max(dx, 0), W - max(-dx, 0))
    yt = slice(max(dy, 0), W - max(-dy, 0))
    out[xs, ys] = mask[xt, yt]
    return out


class Skills:
    def __init__(self, memory: WorldMemory, nav: Navigator, kb: Knowledge):
        self.mem = memory
        self.nav = nav
        self.kb = kb
        self.reset()

    def reset(self) -> None:
        self.facing = (0, 1)
        self.inv: dict[str, int] = {}
        self.target: tuple[int, int] | None = None  # what the current skill moves to / acts on
        self.explore_goal: int | None = None
        self.explore_key = None
        self.bad_frontier: set[int] = set()
        self._payload: dict[int, tuple[int, int]] = {}

    def observe(self, inv: dict[str, int], facing: tuple[int, int]) -> None:
        self.inv = inv
        self.facing = facing

    @property
    def pos(self) -> tuple[int, int]:
        return self.mem.pos

    def front(self) -> tuple[int, int]:
        return (self.pos[0] + self.facing[0], self.pos[1] + self.facing[1])

    def safe_move(self, d: tuple[int, int]) -> str:
        """Move (or turn) toward d, never onto lava."""
        cell = (self.pos[0] + d[0], self.pos[1] + d[1])
        if self.mem.name_at(cell) in self.kb.deadly:
            return "noop"
        return DIR_ACTION[d]

    def _nav_result(self, res) -> str | None:
        kind, arg = res
        if kind == "move":
            return self.safe_move(arg)
        if kind in ("dig", "blocked"):
            if self.facing != arg:
                return self.safe_move(arg)  # the cell is blocked: this only turns
            front = self.mem.occupied.get(self.front())
            if kind == "blocked" and front in ("plant", "arrow"):
                return "noop"
            return "do"
        return None

    # -- act on a blocked target (material or creature) --------------------------------------
    def act_on(self, key, targets: np.ndarray | set, action: str, tunnel: bool = True) -> str | None:
        """Stand next to one of the target cells, face it and perform ``action``.

        ``targets``: a (64, 64) mask or a set of (x, y) cells.
        """
        if isinstance(targets, np.ndarray):
            is_target = lambda c: 0 <= c[0] < W and 0 <= c[1] < W and bool(targets[c])  # noqa: E731
        else:
            is_target = targets.__contains__
        front = self.front()
        if is_target(front):
            self.target = front
            return action
        for d in DIRS:
            c = (self.pos[0] + d[0], self.pos[1] + d[1])
            if is_target(c):
                self.target = c
                return self.safe_move(d)  # blocked cell: turns to face it

        def goals():
            if isinstance(targets, np.ndarray):
                m = targets
            else:
                m = np.zeros((W, W), bool)
                for c in targets:
                    m[c] = True
            stand = dilate(m) & ~m
            return set(np.flatnonzero(stand).tolist())

        res = self.nav.step(key, goals, self.inv, tunnel)
        if res[0] == "arrived":  # next to a target that moved or was not adjacent: replan next step
            self.nav.path = None
            return "noop"
        if self.nav.path:
            self.target = unflat(self.nav.path[-1])
        return self._nav_result(res)

    # -- place / do on a free cell -------------------------------------------------------
    def act_on_free(self, key, cells: np.ndarray, action: str, zone: np.ndarray | None = None,
                    tunnel: bool = True) -> str | None:
        """Face a free cell of ``cells`` (standing inside ``zone`` if given) and perform ``action``.

        Facing a free cell needs arriving at the stand cell S by a move toward it,
        so the navigation goal is the cell behind S.
        """
        front = self.front()
        in_zone = zone is None or bool(zone[self.pos])
        if (0 <= front[0] < W and 0 <= front[1] < W and cells[front] and front not in self.mem.occupied
                and in_zone):
            self.target = front
            return action
        free = self.mem.mask(*self.kb.walkable) & ~self._occupied_mask()

        def goals():
            payload: dict[int, tuple[int, int]] = {}
            targets = cells & free
            for d in DIRS:
                stand = shift(targets, d) & free  # S with S + d a target
                if zone is not None:
                    stand &= zone
                pre = shift(stand, d) & free  # P with P + d = S
                for i in np.flatnonzero(pre).tolist():
                    payload.setdefault(i, d)
            self._payload = payload
            return payload

        res = self.nav.step(key, goals, self.inv, tunnel)
        if res[0] == "arrived":
            d = self._payload.get(res[1])
            if d is None:
                self.nav.path = None
                return "noop"
            self.nav.path = None
            return self.safe_move(d)
        if self.nav.path:
            self.target = unflat(self.nav.path[-1])
        return self._nav_result(res)

    def _occupied_mask(self) -> np.ndarray:
        m = np.zeros((W, W), bool)
        for c in self.mem.occupied:
            m[c] = True
        return m

    # -- go somewhere --------------------------------------------------------------------
    def go_to(self, key, cells: set[int], tunnel: bool = True) -> tuple[bool, str | None]:
        """(arrived, action) for walking onto one of ``cells`` (flat indices)."""
        if flat(self.pos) in cells:
            return True, None
        res = self.nav.step(key, lambda: cells, self.inv, tunnel)
        if res[0] == "arrived":
            return True, None
        if self.nav.path:
            self.target = unflat(self.nav.path[-1])
        return False, self._nav_result(res)

    # -- explore -------------------------------------------------------------------------
    def explore(self, hints: tuple[str, ...], tunnel: bool = True) -> str | None:
        """Walk toward unseen cells, preferring those near the hinted materials."""
        key = ("explore", hints)
        g = self.explore_goal
        known = self.mem.known()
        if g is not None and (self.explore_key != key or flat(self.pos) == g):
            g = None
        if g is not None:
            x, y = unflat(g)
            x0, x1, y0, y1 = max(x - 4, 0), min(x + 5, W), max(y - 3, 0), min(y + 4, W)
            if known[x0:x1, y0:y1].all():
                g = None  # nothing left to see from there
        if g is None:
            g = self._pick_frontier(hints, tunnel, known)
            self.explore_goal = g
            self.explore_key = key
            if g is None:
                return None
        arrived, act = self.go_to(("explore", g), {g}, tunnel)
        if arrived:
            self.explore_goal = None
            return "noop"
        if act is None:
            self.bad_frontier.add(g)
            self.explore_goal = None
        return act

    def patrol(self, material: str) -> str | None:
        """Revisit the remembered ``material`` cells seen longest ago (creatures wander back)."""
        g = self.explore_goal
        if g is not None and (self.explore_key != ("patrol", material) or flat(self.pos) == g
                              or self.mem.seen_step.flat[g] >= self.mem.step - 5):
            g = None
        if g is None:
            mask = self.mem.mask(material) & (self.nav.base_cost(self.inv, False) > 0)
            xs, ys = np.nonzero(mask)
            if len(xs) == 0:
                return None
            px, py = self.pos
            age = self.mem.step - self.mem.seen_step[xs, ys]
            score = np.abs(xs - px) + np.abs(ys - py) - 0.5 * np.minimum(age, 200)
            k = int(np.argmin(score))
            g = int(xs[k]) * W + int(ys[k])
            self.explore_goal, self.explore_key = g, ("patrol", material)
        arrived, act = self.go_to(("patrol", g), {g}, tunnel=False)
        if arrived or act is None:
            self.explore_goal = None
            return "noop" if arrived else None
        return act

    def _pick_frontier(self, hints, tunnel: bool, known: np.ndarray) -> int | None:
        cost = self.nav.base_cost(self.inv, tunnel) > 0
        unknown = ~known
        frontier = cost & dilate(unknown)
        if not frontier.any():
            return None
        # unseen cells a view placed there would reveal (approximation: 7x7 box sum)
        u = unknown.astype(np.int16)
        gain = np.zeros_like(u)
        for dx in (-3, 0, 3):
            for dy in (-3, 0, 3):
                gain += shift(u, (dx, dy))
        hint = self.mem.mask(*hints) if hints else np.zeros_like(known)
        for _ in range(3):
            hint = dilate(hint, cross=False)
        xs, ys = np.nonzero(frontier)
        px, py = self.pos
        dist = np.abs(xs - px) + np.abs(ys - py)
        score = dist - 10.0 * hint[xs, ys] - 0.8 * gain[xs, ys]
        score[dist < 2] += 50
        order = np.argsort(score)
        for k in order[:50]:
            i = int(xs[k]) * W + int(ys[k])
            if i not in self.bad_frontier:
                return i
        return None
