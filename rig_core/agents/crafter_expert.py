"""The scripted Crafter expert: plans over the tech tree, path-finds, survives.

By default it acts only on what a player could know (cells seen so far this
episode, its inventory and vitals, creatures in view); ``oracle=True`` lets it
use the whole map. With probability ``epsilon`` per step it takes a uniformly
random action instead (reproducible from the reset seed); ``explain`` reports it.
"""

from __future__ import annotations

import numpy as np

from rig_core.agents.expert.executor import Executor
from rig_core.agents.expert.knowledge import load_knowledge
from rig_core.agents.expert.memory import WorldMemory
from rig_core.agents.expert.navigation import Navigator
from rig_core.agents.expert.planner import Context, Goal, Planner
from rig_core.agents.expert.shelter import Shelter
from rig_core.agents.expert.skills import Skills
from rig_core.envs.base import Obs
from rig_core.tasks import OPEN, Task


def describe(offset: tuple[int, int], what: str | None) -> str:
    """'tree 2 right 1 up' style words for a cell relative to the player."""
    dx, dy = offset
    parts = [what or "cell"]
    if dx:
        parts.append(f"{abs(dx)} {'right' if dx > 0 else 'left'}")
    if dy:
        parts.append(f"{abs(dy)} {'down' if dy > 0 else 'up'}")
    if not dx and not dy:
        parts.append("here")
    return " ".join(parts)


class CrafterExpert:
    name = "expert"

    def __init__(self, action_names, epsilon: float = 0.0, oracle: bool = False):
        self.action_names = list(action_names)
        self.action_index = {n: i for i, n in enumerate(self.action_names)}
        self.epsilon = float(epsilon)
        self.oracle = bool(oracle)
        self.kb = load_knowledge()
        self.memory = WorldMemory(oracle=self.oracle)
        self.nav = Navigator(self.memory, self.kb.walkable, self.kb.tunnel)
        self.skills = Skills(self.memory, self.nav, self.kb)
        self.shelter = Shelter(self.memory, self.nav, self.kb)
        self.planner = Planner(self.kb, self.memory)
        self.executor = Executor(self.kb, self.memory, self.skills, self.shelter, self.planner)
        self._rng = np.random.default_rng(0)
        self.goal: Goal | None = None
        self.noise = False
        self.last_action = 0
        self.steps = 0

    def reset(self, task: Task, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
        self.memory.reset()
        self.nav.reset()
        self.skills.reset()
        self.shelter.reset()
        self.executor.reset()
        target = None if task is None or task.id == OPEN else task.target_achievement
        self.planner.reset(target, open_play=task is None or task.id == OPEN)
        self.goal = None
        self.noise = False
        self.steps = 0

    def act(self, obs: Obs) -> int:
        world = obs.state
        if world is None:
            raise ValueError("the Crafter expert needs obs.state (a live CrafterWorld)")
        self.memory.update(world)
        player = world.player
        inv = obs.inventory
        facing = (int(player.facing[0]), int(player.facing[1]))
        self.skills.observe(inv, facing)
        unlocked = {k for k, v in player.achievements.items() if v > 0}
        ctx = Context(inv=inv, unlocked=unlocked, daylight=world.daylight, sleeping=bool(player.sleeping),
                      step=self.steps, sheltered=self.shelter.sealed(inv), sealing=self._sealing())
        self.executor.observe(ctx)
        ctx.plant, ctx.plant_ripe, ctx.plant_open = self.executor.plant_status()
        self.goal = self._choose(ctx)
        name = self.executor.run(self.goal, ctx)
        action = self.action_index.get(name, 0)
        self.steps += 1
        self.noise = bool(self.epsilon > 0 and self._rng.random() < self.epsilon)
        if self.noise:
            action = int(self._rng.integers(len(self.action_names)))
        self.last_action = action
        return action

    def _sealing(self) -> bool:
        """Inside (or one step from) the shelter being walled in: finishing it beats dodging arrows."""
        core = self.shelter.core
        if not core:
            return False
        px, py = self.memory.pos
        return min(abs(c[0] - px) + abs(c[1] - py) for c in core) <= 1

    def _choose(self, ctx: Context) -> Goal:
        g = self.planner.choose(ctx)
        if self.planner.open and not g.urgent and g.kind in ("collect", "hunt", "eat") and not self.executor.actionable(g, ctx):
            # the first goal needs exploring: prefer a later goal that can be worked on now
            for ach in self.kb.open_priorities:
                if ach in ctx.unlocked or self.planner.skipped(ach, ctx.step):
                    continue
                alt = self.planner.for_achievement(ach, ctx)
                if alt is None or alt == g or self.planner.skipped(f"{alt.kind}:{alt.arg}", ctx.step):
                    continue
                if alt.kind in ("collect", "hunt", "eat", "make", "place") and self.executor.actionable(alt, ctx):
                    if alt.kind in ("make", "place") or alt.arg not in ("water",):
                        return alt
        return g

    def explain(self, obs: Obs | None = None) -> dict:
        g = self.goal
        if g is None:
            return {"subgoal": "start", "target": None, "reason": "no observation yet", "noise": self.noise}
        target = None
        t = self.skills.target
        if t is not None:
            px, py = self.memory.pos
            what = self.memory.occupied.get(t) or self.memory.name_at(t)
            target = describe((t[0] - px, t[1] - py), what)
        sub = g.subgoal
        if self.executor.note:
            sub = f"{sub}: {self.executor.note}"
        return {"subgoal": sub, "target": target, "reason": g.reason, "noise": self.noise}
