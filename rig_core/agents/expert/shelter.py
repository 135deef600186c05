"""A zombie-proof spot to sleep in: a small "core" of cells walled in with stone.

Facing a free cell needs arriving by a move toward it, so an opening O = X + d
(X in the core) can only be walled from X after stepping in from X - d: that
cell must be in the core too. Shapes 1x1, 1x2, 2x1 and 2x2 are tried around the
player; a 2x2 core can always be closed. Core cells may be stone to dig out.
"""

from __future__ import annotations

from rig_core.agents.expert.knowledge import DIRS
from rig_core.agents.expert.navigation import distance_map, flat

SHAPES = (
    ((0, 0),),
    ((0, 0), (1, 0)),
    ((0, 0), (0, 1)),
    ((0, 0), (1, 0), (0, 1), (1, 1)),
)
RADIUS = 5


class Shelter:
    def __init__(self, memory, nav, kb):
        self.mem = memory
        self.nav = nav
        self.kb = kb
        self.core: tuple[tuple[int, int], ...] | None = None

    def reset(self) -> None:
        self.core = None

    # -- geometry ----------------------------------------------------------------------
    def _cell_kind(self, cell, inv) -> str:
        name = self.mem.name_at(cell)
        if name is None:
            return "unknown"
        if name in self.kb.walkable:
            return "free"
        if name in ("stone", "coal", "iron") and self.nav.passable(cell, inv):
            return "dig"
        return "wall" if name not in self.kb.deadly else "lava"

    def openings(self, core, inv):
        """[(X, d, O)] free cells next to the core to wall in; None if the core cannot be closed."""
        out = []
        cs = set(core)
        for x in core:
            for d in DIRS:
                o = (x[0] + d[0], x[1] + d[1])
                if o in cs:
                    continue
                k = self._cell_kind(o, inv)
                if k in ("unknown", "lava"):
                    return None
                if k == "free":
                    if (x[0] - d[0], x[1] - d[1]) not in cs:
                        return None
                    out.append((x, d, o))
        return out

    def choose(self, inv) -> tuple | None:
        """The cheapest closable core near the player, given the stone in the inventory."""
        px, py = self.mem.pos
        stones = inv.get("stone", 0)
        cost_list = self.nav.cost_list(inv, True)
        cost_list[flat(self.mem.pos)] = 1
        reach = distance_map(cost_list, flat(self.mem.pos), limit=3 * RADIUS)
        best, best_cost = None, None
        for ax in range(px - RADIUS, px + RADIUS + 1):
            for ay in range(py - RADIUS, py + RADIUS + 1):
                for shape in SHAPES:
                    core = tuple((ax + dx, ay + dy) for dx, dy in shape)
                    digs = 0
                    ok = True
                    for c in core:
                        if not (1 <= c[0] < 63 and 1 <= c[1] < 63):
                            ok = False
                            break
                        k = self._cell_kind(c, inv)
                        if k == "dig":
                            digs += 1
                        elif k != "free" or (c in self.mem.occupied and c != self.mem.pos):
                            ok = False
                            break
                    if not ok or digs == len(core):
                        continue
                    ops = self.openings(core, inv)
                    if ops is None or len(ops) > stones:
                        continue
                    dist = min(reach.get(flat(c), 99) for c in core)
                    if dist >= 99:
                        continue
                    cost = dist + 2 * len(ops) + 3 * digs + len(core)
                    if best_cost is None or cost < best_cost:
                        best, best_cost = core, cost
        return best

    def sealed(self, inv) -> bool:
        """Whether the player stands in its current core with every opening walled."""
        core = self.core
        if core is None or self.mem.pos not in core:
            return False
        ops = self.openings(core, inv)
        return ops is not None and not ops

    # -- acting ------------------------------------------------------------------------
    def act(self, skills, inv) -> tuple[str | None, str]:
        """(action, what it does) toward sleeping walled in; (None, why) if no shelter can be made."""
        core = self.core
        px, py = self.mem.pos
        if core is not None and (self.openings(core, inv) is None
                                 or min(abs(c[0] - px) + abs(c[1] - py) for c in core) > RADIUS + 2):
            core = None
        if core is not None:
            ops = self.openings(core, inv)
            if len(ops) > inv.get("stone", 0):
                core = None
        if core is None:
            core = self.choose(inv)
            self.core = core
            if core is None:
                return None, "no closable spot and not enough stone"
        for c in core:
            if self._cell_kind(c, inv) == "dig":
                return skills.act_on(("dig_core", c), {c}, "do"), "dig out the shelter"
        pos = self.mem.pos
        if pos not in core:
            arrived, act = skills.go_to(("core", core), {flat(c) for c in core})
            if not arrived:
                return act, "walk into the shelter"
        ops = self.openings(core, inv)
        for x, d, o in ops:
            if pos == x and skills.facing == d:
                if o in self.mem.occupied:
                    return "do", "push out a creature"
                skills.target = o
                return "place_stone", "wall in the shelter"
        for x, d, o in ops:
            back = (x[0] - d[0], x[1] - d[1])
            if pos == back:
                skills.target = o
                return skills.safe_move(d), "turn to wall in the shelter"
        if ops:
            x, d, o = ops[0]
            back = (x[0] - d[0], x[1] - d[1])
            skills.target = o
            arrived, act = skills.go_to(("core_back", back), {flat(back)}, tunnel=False)
            return (act or "noop"), "step back to wall in the shelter"
        skills.target = None
        return "sleep", "sleep walled in"
