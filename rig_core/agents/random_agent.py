"""A uniformly random agent: the floor every learned policy must beat."""

from __future__ import annotations

import numpy as np

from rig_core.envs.base import Obs
from rig_core.tasks import Task


class RandomAgent:
    name = "random"

    def __init__(self, n_actions: int):
        self.n_actions = n_actions
        self._rng = np.random.default_rng(0)

    def reset(self, task: Task, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Obs) -> int:
        return int(self._rng.integers(self.n_actions))

    def explain(self, obs: Obs) -> dict:
        return {"subgoal": "act randomly", "target": None, "reason": "random baseline", "noise": True}
