"""Goal selection: survival first, then the tech tree (data from crafter_expert.yaml).

``Planner.choose`` returns a ``Goal`` (what to do now and why); the executor in
``executor.py`` turns it into actions with the skills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig_core.agents.expert.knowledge import Knowledge
from rig_core.agents.expert.memory import WorldMemory, dilate

FAR_STATION = 24  # place a new table/furnace rather than walk further than this (Manhattan)


@dataclass(frozen=True)
class Goal:
    subgoal: str  # e.g. "collect wood"
    kind: str  # collect | place | make | hunt | fight | sleep | explore | plant_eat | idle
    arg: str | None
    reason: str
    urgent: bool = False  # survival goals are never put aside for tech-tree ones


@dataclass
class Context:
    inv: dict[str, int]
    unlocked: set[str]
    daylight: float
    sleeping: bool
    step: int
    sheltered: bool = False
    sealing: bool = False  # standing in (or just behind) a chosen shelter core, walling it in
    plant: tuple[int, int] | None = None  # the tracked sapling, its ripeness and open sides
    plant_ripe: bool = False
    plant_open: int = 0


class Planner:
    def __init__(self, kb: Knowledge, memory: WorldMemory):
        self.kb = kb
        self.mem = memory
        self.reset(None)

    def reset(self, target: str | None, open_play: bool = True) -> None:
        self.target = target
        self.open = open_play and target is None
        self.th = self.kb.survival["open" if self.open else "task"]
        self.resting = False
        self._far: dict[str, bool] = {}
        self.refill: str | None = None  # keep drinking/eating until full once started
        self.failed: dict[str, int] = {}  # goal kind+arg -> step until which it is skipped

    # -- helpers ---------------------------------------------------------------------------
    def _nearest(self, kind: str) -> tuple[tuple[int, int], int] | None:
        px, py = self.mem.pos
        best = None
        for p in self.mem.creatures_of(kind):
            d = abs(p[0] - px) + abs(p[1] - py)
            if best is None or d < best[1]:
                best = (p, d)
        return best

    def arrow_threat(self) -> tuple[int, int] | None:
        """The direction of an arrow flying at the player along its row/column, if any."""
        px, py = self.mem.pos
        for kind, (x, y), obj in self.mem.creatures:
            if kind != "arrow":
                continue
            fx, fy = (int(v) for v in obj.facing)
            dx, dy = px - x, py - y
            if fx and dy == 0 and 0 < dx * fx <= 4:
                return (fx, fy)
            if fy and dx == 0 and 0 < dy * fy <= 4:
                return (fx, fy)
        return None

    def _stone_near(self, r: int = 4) -> bool:
        px, py = self.mem.pos
        return bool(self.mem.mask("stone")[max(px - r, 0): px + r + 1, max(py - r, 0): py + r + 1].any())

    def station_zone(self, stations) -> np.ndarray:
        """Cells from which all the stations are within reach (3x3 around the player)."""
        zone = np.ones((64, 64), bool)
        for s in stations:
            zone &= dilate(self.mem.mask(s), cross=False)
        return zone & self.mem.mask(*self.kb.walkable)

    def zone_distance(self, zone: np.ndarray) -> int:
        xs, ys = np.nonzero(zone)
        if len(xs) == 0:
            return 1 << 20
        px, py = self.mem.pos
        return int((np.abs(xs - px) + np.abs(ys - py)).min())

    def skip(self, key: str, step: int, for_steps: int) -> None:
        self.failed[key] = step + for_steps

    def skipped(self, key: str, step: int) -> bool:
        return self.failed.get(key, -1) > step

    # -- survival ----------------------------------------------------------------------------
    def survival(self, ctx: Context) -> Goal | None:
        inv, th = ctx.inv, self.th
        if ctx.sleeping:
            return Goal("sleep", "sleep", None, "asleep until rested", urgent=True)
        z = self._nearest("zombie")
        if z and z[1] <= 1:
            return Goal("fight zombie", "fight", "zombie", "a zombie is next to me", urgent=True)
        s = self._nearest("skeleton")
        if s and s[1] <= 1:
            return Goal("fight skeleton", "fight", "skeleton", "a skeleton is next to me", urgent=True)
        if self.arrow_threat() is not None and not ctx.sheltered and not ctx.sealing:
            return Goal("dodge an arrow", "dodge", None, "an arrow flies at me", urgent=True)
        dark = ctx.daylight < th["night_daylight"]
        # hysteresis: once drinking/eating started, go on until full
        if self.refill == "drink" and inv["drink"] >= 9:
            self.refill = None
        if self.refill == "food" and inv["food"] >= th["food_full"]:
            self.refill = None
        crit = th["critical"]
        if inv["drink"] <= crit:
            self.refill = "drink"
            return Goal("drink water", "collect", "water", f"very thirsty (drink {inv['drink']})", urgent=True)
        if inv["food"] <= crit and not self.skipped("eat", ctx.step):
            self.refill = "food"
            return Goal("eat", "eat", None, f"very hungry (food {inv['food']})", urgent=True)
        # low health: wall in and rest
        if inv["health"] <= th["rest_health"]:
            self.resting = True
        elif inv["health"] >= th["rest_until"]:
            self.resting = False
        if self.resting and not self.skipped("sleep", ctx.step):
            return Goal("rest", "sleep", "rest", f"health is low ({inv['health']})", urgent=True)
        # night or tiredness: wall in (after drinking/eating enough unless already walled in)
        energy_low = inv["energy"] <= th["energy"]
        dusk = ctx.daylight < th["morning_daylight"] and ctx.sheltered  # stay walled in until it is light
        night = (dark or dusk) and inv["energy"] <= th["night_energy"]
        if (energy_low or night) and not self.skipped("sleep", ctx.step):
            fed = inv["drink"] > th["night_drink"] and inv["food"] > th["night_food"]
            if fed or ctx.sheltered or inv["energy"] <= 1:
                return Goal("sleep", "sleep", None, "energy is low" if energy_low else "it is night", urgent=True)
            if self.refill is None:
                self.refill = "drink" if inv["drink"] <= th["night_drink"] else "food"
        if self.refill is None and inv["drink"] <= th["drink"]:
            self.refill = "drink"
        elif self.refill is None and inv["food"] <= th["food"] and not self.skipped("eat", ctx.step):
            self.refill = "food"
        armed = inv.get("wood_sword", 0) or inv.get("stone_sword", 0) or inv["health"] >= 7
        if z and z[1] <= th["chase_distance"] and inv["health"] >= th["fight_health"] and not dark and armed:
            return Goal("fight zombie", "fight", "zombie", "a zombie is coming close", urgent=True)
        cow = self._nearest("cow")
        if cow and cow[1] <= th["cow_distance"] and inv["food"] <= th["top_up"]:
            return Goal("eat", "eat", None, f"a cow is close and food is {inv['food']}", urgent=True)
        if self.refill == "drink":
            return Goal("drink water", "collect", "water", f"thirsty (drink {inv['drink']})", urgent=True)
        if self.refill == "food":
            return Goal("eat", "eat", None, f"hungry (food {inv['food']})", urgent=True)
        if (self.open and not dark and inv.get("stone_pickaxe", 0)
                and inv.get("stone", 0) < self.kb.stock.get("stone", 0) and self._stone_near()):
            return Goal("collect stone", "collect", "stone", "keep stone for shelters", urgent=True)
        return None

    # -- tech tree ----------------------------------------------------------------------------
    def need_item(self, item: str, count: int, ctx: Context, why: str, depth: int = 0) -> Goal | None:
        """The first step toward holding ``count`` of ``item``, or None if already held."""
        if ctx.inv.get(item, 0) >= count or depth > 6:
            return None
        if item in self.kb.make:
            return self.need_make(item, ctx, why, depth + 1)
        material = self.kb.source_of(item)
        if material is None:
            return None
        for tool, n in self.kb.collect[material]["require"].items():
            g = self.need_item(tool, n, ctx, f"{item} needs a {tool.replace('_', ' ')}", depth + 1)
            if g:
                return g
        return Goal(f"collect {item}", "collect", material, why)

    def need_make(self, item: str, ctx: Context, why: str, depth: int = 0) -> Goal | None:
        rule = self.kb.make[item]
        uses = dict(rule["uses"])
        missing = []
        for s in rule["nearby"]:
            far = self.zone_distance(self.station_zone([s])) > FAR_STATION - (8 if self._far.get(s) else 0)
            self._far[s] = far  # hysteresis: do not flip between walking there and placing a new one
            if far:
                missing.append(s)
        for s in missing:
            for k, v in self.kb.place[s]["uses"].items():
                uses[k] = uses.get(k, 0) + v
        nice = item.replace("_", " ")
        for k, v in uses.items():
            g = self.need_item(k, v, ctx, f"{nice} needs {v} {k}", depth + 1)
            if g:
                return g
        for s in missing:
            return Goal(f"place {s}", "place", s, f"{nice} needs a {s} nearby")
        return Goal(f"make {nice}", "make", item, why)

    def for_achievement(self, ach: str, ctx: Context) -> Goal | None:
        spec = self.kb.achievements[ach]
        kind = spec["kind"]
        why = f"to unlock {ach.replace('_', ' ')}"
        inv = ctx.inv
        if kind == "collect":
            material = spec["material"]
            item = self.kb.collect[material]["receive"]
            if material == "water":
                return Goal("drink water", "collect", "water", why)
            for tool, n in self.kb.collect[material]["require"].items():
                g = self.need_item(tool, n, ctx, f"{item} needs a {tool.replace('_', ' ')}")
                if g:
                    return g
            return Goal(f"collect {item}", "collect", material, why)
        if kind == "make":
            return self.need_make(spec["item"], ctx, why)
        if kind == "place":
            item = spec["item"]
            for k, v in self.kb.place[item]["uses"].items():
                g = self.need_item(k, v, ctx, f"placing a {item} needs {v} {k}")
                if g:
                    return g
            return Goal(f"place {item}", "place", item, why)
        if kind == "eat":
            return Goal("hunt cow", "eat", None, why)
        if kind == "defeat":
            return Goal(f"defeat {spec['creature']}", "hunt", spec["creature"], why)
        if kind == "sleep":
            if inv["energy"] >= 9:
                return Goal("wait to get tired", "idle", None, "sleep only starts below full energy")
            return Goal("sleep", "sleep", None, why)
        if kind == "plant_eat":
            return Goal("grow and eat a plant", "plant_eat", None, why)
        raise ValueError(f"unknown achievement kind {kind}")

    def plant_care(self, ctx: Context) -> Goal | None:
        """Open play: eat the tracked plant when ripe, wall it in when stone allows."""
        if ctx.plant is None:
            return None
        px, py = self.mem.pos
        dist = abs(ctx.plant[0] - px) + abs(ctx.plant[1] - py)
        inv = ctx.inv
        if ctx.plant_ripe and dist <= 30 and ("eat_plant" not in ctx.unlocked or inv["food"] <= 6):
            return Goal("eat the ripe plant", "plant_eat", None, "the sapling is ripe")
        if (ctx.plant_open and inv.get("stone", 0) >= ctx.plant_open and dist <= 20
                and ctx.daylight >= self.th["night_daylight"]):
            return Goal("wall in the plant", "plant_eat", None, "cows and zombies eat unprotected plants")
        return None

    def choose(self, ctx: Context) -> Goal:
        g = self.survival(ctx)
        if g:
            return g
        if self.target is not None:
            if self.target in ctx.unlocked:
                return Goal("done", "idle", None, "the task is done")
            return self.for_achievement(self.target, ctx) or Goal("wait", "idle", None, "nothing to do")
        g = self.plant_care(ctx)
        if g:
            return g
        for ach in self.kb.open_priorities:
            if ach in ctx.unlocked or self.skipped(ach, ctx.step):
                continue
            g = self.for_achievement(ach, ctx)
            if g is not None and not self.skipped(f"{g.kind}:{g.arg}", ctx.step):
                return g
        # everything done: stock up and stay safe
        if ctx.inv["drink"] < 8:
            return Goal("drink water", "collect", "water", "stay topped up")
        if ctx.inv["food"] < 7:
            return Goal("eat", "eat", None, "stay fed")
        return Goal("rest", "idle", None, "all reachable achievements done")
