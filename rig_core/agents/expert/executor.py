"""Turns a planner ``Goal`` into the next action with the skills (and says what it targets)."""

from __future__ import annotations

import numpy as np

from rig_core.agents.expert.knowledge import DIRS, Knowledge
from rig_core.agents.expert.memory import WorldMemory
from rig_core.agents.expert.navigation import flat
from rig_core.agents.expert.planner import FAR_STATION, Context, Goal, Planner
from rig_core.agents.expert.shelter import Shelter
from rig_core.agents.expert.skills import Skills

EXPLORE_PATIENCE = 700  # steps of exploring for one goal before it is put aside
PUT_ASIDE = 1200
SIGHTING_MEMORY = 150  # steps a creature sighting is worth walking back to


class Executor:
    def __init__(self, kb: Knowledge, memory: WorldMemory, skills: Skills, shelter: Shelter, planner: Planner):
        self.kb = kb
        self.mem = memory
        self.sk = skills
        self.shelter = shelter
        self.planner = planner
        self.reset()

    def reset(self) -> None:
        self.note = ""
        self.explored: dict[str, int] = {}
        self.plant: tuple[int, int] | None = None
        self.plant_near = 0
        self.plant_target: tuple[int, int] | None = None

    # -- bookkeeping --------------------------------------------------------------------
    def observe(self, ctx: Context) -> None:
        """Track the protected plant: adopt one just placed, forget one seen gone, count growth."""
        px, py = self.mem.pos
        if self.plant is None:
            for kind, p, _ in self.mem.creatures:
                if kind == "plant" and abs(p[0] - px) + abs(p[1] - py) == 1 and p == self.plant_target:
                    self.plant, self.plant_near = p, 0
        elif self.mem.in_view(self.plant) and self.mem.occupied.get(self.plant) != "plant":
            self.plant = None
        if self.plant is not None and abs(self.plant[0] - px) + abs(self.plant[1] - py) <= self.kb.update_distance:
            self.plant_near += 1
        p = self.plant
        self.sk.nav.protected = set() if p is None else {
            flat((p[0] + d[0], p[1] + d[1])) for d in DIRS
            if 0 <= p[0] + d[0] < 64 and 0 <= p[1] + d[1] < 64} | {flat(p)}

    def plant_status(self) -> tuple[tuple[int, int] | None, bool, int]:
        """(plant cell, ripe, open neighbours) of the tracked plant."""
        if self.plant is None:
            return None, False, 0
        return self.plant, self._plant_ripe(), len(self._open_neighbours(self.plant))

    def actionable(self, goal: Goal, ctx: Context) -> bool:
        """Whether the goal can be worked on with what is known (else it means exploring)."""
        if goal.kind == "collect":
            return bool(self.mem.mask(goal.arg).any())
        if goal.kind == "hunt":
            return bool(self.mem.creatures_of(goal.arg))
        if goal.kind == "eat":
            return bool(self.mem.creatures_of("cow"))
        return True

    def _explore(self, key: str, hints, ctx: Context, tunnel: bool = True) -> str | None:
        n = self.explored.get(key, 0) + 1
        self.explored[key] = n
        if n > EXPLORE_PATIENCE and self.planner.open:
            self.explored[key] = 0
            self.planner.skip(key, ctx.step, PUT_ASIDE)
        self.note = f"explore for {key.split(':')[-1]}"
        return self.sk.explore(tuple(hints), tunnel=tunnel) or (self.sk.explore(tuple(hints)) if not tunnel else None)

    # -- dispatch -------------------------------------------------------------------------
    def run(self, goal: Goal, ctx: Context) -> str:
        self.note = ""
        self.sk.target = None
        fn = getattr(self, f"_do_{goal.kind}")
        act = fn(goal, ctx)
        if act is None:
            self.note = self.note or "wander"
            act = self.sk.explore(())
        return act or "noop"

    def _do_dodge(self, goal, ctx):
        d = self.planner.arrow_threat()
        if d is None:
            return "noop"
        px, py = self.mem.pos
        for side in ((d[1], d[0]), (-d[1], -d[0])):  # step out of the arrow's line
            c = (px + side[0], py + side[1])
            if self.mem.name_at(c) in self.kb.walkable and c not in self.mem.occupied:
                self.sk.target = c
                return self.sk.safe_move(side)
        return "noop"

    def _do_idle(self, goal, ctx):
        return "noop"

    def _do_collect(self, goal, ctx):
        m = goal.arg
        key = f"collect:{m}"
        if m == "grass":
            return self.sk.act_on_free(key, self.mem.mask("grass"), "do")
        mask = self.mem.mask(m)
        if m == "stone" and self.plant is not None:
            mask = mask.copy()  # keep the plant's walls
            for d in DIRS:
                c = (self.plant[0] + d[0], self.plant[1] + d[1])
                if 0 <= c[0] < 64 and 0 <= c[1] < 64:
                    mask[c] = False
        if mask.any():
            act = self.sk.act_on(key, mask, "do")
            if act is not None:
                return act
        return self._explore(key, self.kb.explore_hints.get(m, ()), ctx)

    def _do_fight(self, goal, ctx):
        px, py = self.mem.pos
        cells = sorted(self.mem.creatures_of(goal.arg), key=lambda p: abs(p[0] - px) + abs(p[1] - py))
        if not cells:
            return "noop"
        act = self.sk.act_on(("fight", cells[0]), {cells[0]}, "do", tunnel=False)
        return act or "noop"  # out of reach (e.g. walled in): stay put

    def _do_hunt(self, goal, ctx):
        cells = self.mem.creatures_of(goal.arg)
        if cells:
            act = self.sk.act_on(("hunt", tuple(cells)), set(cells), "do", tunnel=goal.arg == "skeleton")
            if act is not None:
                return act
        return self._seek(goal.arg, f"hunt:{goal.arg}", ctx)

    def _do_eat(self, goal, ctx):
        if self.plant is not None and self._plant_ripe():
            return self._eat_plant()
        cows = self.mem.creatures_of("cow")
        if cows:
            act = self.sk.act_on(("cow", tuple(cows)), set(cows), "do", tunnel=False)
            if act is not None:
                return act
        return self._seek("cow", "eat:cow", ctx)

    def _seek(self, kind: str, key: str, ctx) -> str | None:
        """Go back to where ``kind`` was last seen (if recent), else explore for it."""
        seen = self.mem.sightings.get(kind)
        if seen is not None and self.mem.step - seen[1] < SIGHTING_MEMORY:
            cell = seen[0]
            if self.mem.in_view(cell) and abs(cell[0] - self.mem.pos[0]) + abs(cell[1] - self.mem.pos[1]) <= 2:
                del self.mem.sightings[kind]  # nothing there any more
            else:
                self.note = f"go to where a {kind} was seen"
                arrived, act = self.sk.go_to(("seek", cell), {flat(cell)}, tunnel=False)
                if act is not None:
                    return act
                del self.mem.sightings[kind]
        if kind == "cow" and self.mem.cow_sightings:
            # walk to the nearest block where cows were seen, forgetting blocks seen empty
            px, py = self.mem.pos
            for b in [b for b in self.mem.cow_sightings if self.mem.in_view((b[0] * 4 + 2, b[1] * 4 + 2))]:
                del self.mem.cow_sightings[b]
            if self.mem.cow_sightings:
                b = min(self.mem.cow_sightings, key=lambda b: abs(b[0] * 4 + 2 - px) + abs(b[1] * 4 + 2 - py))
                cells = {flat((b[0] * 4 + i, b[1] * 4 + j)) for i in range(4) for j in range(4)}
                self.note = "go to where cows were seen"
                arrived, act = self.sk.go_to(("cow_block", b), cells, tunnel=False)
                if act is not None:
                    return act
                del self.mem.cow_sightings[b]
        if kind == "cow" and self.explored.get(key, 0) % 200 > 60:
            self.explored[key] = self.explored.get(key, 0) + 1
            self.note = "look for cows where none were seen lately"
            act = self.sk.patrol("grass")
            if act is not None:
                return act
        return self._explore(key, self.kb.explore_hints[kind], ctx, tunnel=kind == "skeleton")

    def _do_place(self, goal, ctx):
        item = goal.arg
        where = self.kb.place[item]["where"]
        action = f"place_{item}"
        free = self.mem.mask(*[w for w in where if w in self.kb.walkable])
        if item == "stone":
            front = self.sk.front()
            if self.mem.name_at(front) in where and front not in self.mem.occupied:
                return action
            water = self.mem.mask("water", "lava")
            px, py = self.mem.pos
            near = np.zeros_like(water)
            near[max(px - 6, 0): px + 7, max(py - 6, 0): py + 7] = True
            if (water & near).any():
                act = self.sk.act_on("place_stone_water", water & near, action, tunnel=False)
                if act is not None:
                    return act
            return self.sk.act_on_free("place_stone", free, action)
        zone = None
        if item == "furnace" and self.mem.mask("table").any():
            zone = self.planner.station_zone(["table"])
            if self._zone_distance(zone) > FAR_STATION:
                zone = None
        if item == "plant":
            self.plant_target = self.sk.front()
            act = self.sk.act_on_free(("place", item), free, action, zone=zone)
            if act == action:
                self.plant_target = self.sk.front()
            return act
        return self.sk.act_on_free(("place", item), free, action, zone=zone)

    def _zone_distance(self, zone: np.ndarray) -> int:
        xs, ys = np.nonzero(zone)
        if len(xs) == 0:
            return 1 << 20
        px, py = self.mem.pos
        return int((np.abs(xs - px) + np.abs(ys - py)).min())

    def _do_make(self, goal, ctx):
        item = goal.arg
        rule = self.kb.make[item]
        stations = rule["nearby"]
        zone = self.planner.station_zone(stations)
        if zone[self.mem.pos]:
            return f"make_{item}"
        far = self._zone_distance(zone) > FAR_STATION
        if far:
            # a new station here is cheaper than walking: place what we can afford
            inv = dict(ctx.inv)
            for k, v in rule["uses"].items():
                inv[k] = inv.get(k, 0) - v
            for s in stations:
                cost = self.kb.place[s]["uses"]
                sz = self.planner.station_zone([s])
                if self._zone_distance(sz) > FAR_STATION and all(inv.get(k, 0) >= v for k, v in cost.items()):
                    return self._do_place(Goal(f"place {s}", "place", s, goal.reason), ctx)
        arrived, act = self.sk.go_to(("make", item), set(np.flatnonzero(zone).tolist()))
        if arrived:
            return f"make_{item}"
        return act

    def _do_sleep(self, goal, ctx):
        if ctx.sleeping:
            self.note = "sleeping"
            return "noop"
        act, what = self.shelter.act(self.sk, ctx.inv)
        self.note = what
        if act is not None:
            return act
        inv = ctx.inv
        if inv.get("wood_pickaxe", 0) and self.mem.mask("stone").any():
            self.note = "collect stone for a shelter"
            return self._do_collect(Goal("collect stone", "collect", "stone", "shelter"), ctx)
        if inv["energy"] <= 2 or not self.planner.open:
            self.note = "sleep in the open"
            return "sleep"
        self.planner.skip("sleep", ctx.step, 25)
        return "noop"

    # -- grow a protected plant and eat it ---------------------------------------------------
    def _plant_ripe(self) -> bool:
        p = self.plant
        if p is None:
            return False
        if self.mem.in_view(p):
            for kind, q, obj in self.mem.creatures:
                if q == p and kind == "plant":
                    return bool(obj.ripe)  # the texture shows ripeness
        return self.plant_near > self.kb.plant_ripe_after

    def _eat_plant(self) -> str | None:
        nav = self.sk.nav
        nav.allow_protected = True
        nav.protected.discard(flat(self.plant))
        try:
            return self.sk.act_on(("eat_plant", self.plant), {self.plant}, "do")
        finally:
            nav.allow_protected = False

    def _open_neighbours(self, p) -> list[tuple[int, int]]:
        return [(p[0] + d[0], p[1] + d[1]) for d in DIRS
                if self.mem.name_at((p[0] + d[0], p[1] + d[1])) in self.kb.walkable]

    def _do_plant_eat(self, goal, ctx):
        inv = ctx.inv
        if self.plant is None:
            if inv.get("sapling", 0) < 1:
                return self._do_collect(Goal("collect sapling", "collect", "grass", goal.reason), ctx)
            if inv.get("stone", 0) < 4 and inv.get("wood_pickaxe", 0):
                return self._do_collect(Goal("collect stone", "collect", "stone", goal.reason), ctx)
            return self._do_place(Goal("place plant", "place", "plant", goal.reason), ctx)
        p = self.plant
        opens = self._open_neighbours(p)
        if self._plant_ripe():
            self.note = "eat the ripe plant"
            return self._eat_plant()
        if opens and inv.get("stone", 0) >= 1:
            self.note = "wall in the plant"
            cells = np.zeros((64, 64), bool)
            for c in opens:
                cells[c] = True
            act = self.sk.act_on_free(("protect", p), cells, "place_stone")
            if act is not None:
                return act
        if opens and inv.get("wood_pickaxe", 0) and self.mem.mask("stone").any():
            return self._do_collect(Goal("collect stone", "collect", "stone", goal.reason), ctx)
        px, py = self.mem.pos
        if abs(p[0] - px) + abs(p[1] - py) > 8:
            cells = {flat((p[0] + dx, p[1] + dy)) for dx in range(-3, 4) for dy in range(-3, 4)
                     if 0 <= p[0] + dx < 64 and 0 <= p[1] + dy < 64}
            arrived, act = self.sk.go_to(("near_plant", p), cells)
            self.note = "go back to the plant"
            return act or "noop"
        self.note = f"wait for the plant to ripen ({self.plant_near} steps near)"
        if inv["energy"] < 9 and ctx.daylight < 0.5:
            return self._do_sleep(goal, ctx)
        return "noop"
