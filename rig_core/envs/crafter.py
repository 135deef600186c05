"""Crafter backend: 64x64 RGB frames, inventory and privileged state."""

from __future__ import annotations

import collections
from importlib import metadata
from typing import Any

import numpy as np

from rig_core.envs.base import Obs
from rig_core.envs.deaths import death_cause
from rig_core.errors import RigError

VIEW_COLS, VIEW_ROWS = 9, 7  # the local view the player sees (x, y)
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
VITALS = ("health", "food", "drink", "energy")


def _import_crafter():
    try:
        import crafter  # noqa: F401
        from crafter import constants, objects
    except ImportError as exc:  # pragma: no cover - crafter is a core dependency
        raise RigError("the Crafter environment is not installed", "run: pip install crafter") from exc
    return constants, objects


class _InsertionOrderedSet(dict):
    """The add/remove/iterate part of a set, iterating in insertion order."""

    def add(self, obj: Any) -> None:
        self[obj] = None

    def remove(self, obj: Any) -> None:
        del self[obj]


def order_chunks(world: Any) -> None:
    """Make Crafter's creature balancing independent of memory addresses.

    Crafter keeps each chunk's objects in a ``set``, which iterates in the order of the objects'
    addresses, and despawns ``creatures[random index]`` of that order: the same seed and actions
    gave different worlds in different processes (e.g. under another PYTHONHASHSEED). Here each
    chunk holds its objects in the order they were added to the world (existing ones by their
    world index), so a seed and an action sequence give one world everywhere.
    """
    index = lambda obj: int(world._obj_map[tuple(obj.pos)])
    chunks = collections.defaultdict(_InsertionOrderedSet)
    for key, objs in world._chunks.items():
        chunks[key].update((obj, None) for obj in sorted(objs, key=index))
    world._chunks = chunks


class CrafterWorld:
    """Read-only handle on the live Crafter world, for scripted experts.

    Coordinates are Crafter's (x, y) with x to the right and y down.
    """

    def __init__(self, env: Any):
        self._env = env
        self._constants, self._objects = _import_crafter()

    @property
    def world(self) -> Any:
        return self._env._world

    @property
    def player(self) -> Any:
        return self._env._player

    @property
    def area(self) -> tuple[int, int]:
        return tuple(self.world.area)

    @property
    def materials(self) -> np.ndarray:
        """Material id per cell, shape (64, 64) indexed [x, y] (a live view: do not modify)."""
        return self.world._mat_map

    @property
    def material_ids(self) -> dict[str, int]:
        return {name: i for name, i in self.world._mat_ids.items() if name is not None}

    @property
    def daylight(self) -> float:
        return float(self.world.daylight)

    @property
    def step_count(self) -> int:
        return int(self._env._step or 0)

    def objects(self) -> list[tuple[str, tuple[int, int], Any]]:
        """(kind, (x, y), object) for every live object but the player."""
        out = []
        for obj in self.world.objects:
            kind = type(obj).__name__.lower()
            if kind != "player":
                out.append((kind, (int(obj.pos[0]), int(obj.pos[1])), obj))
        return out


class CrafterEnv:
    """The Crafter game behind rig's Env protocol.

    A fresh world per ``reset(seed)``: the same seed and actions give the same episode in any
    process (``order_chunks``). Episodes never rely on replay across processes.
    """

    env_id = "crafter"

    def __init__(self, length: int = 10000, size: int = 64):
        constants, objects = _import_crafter()
        import crafter

        self._crafter = crafter.Env(area=(64, 64), size=(size, size), length=length, seed=0)
        self.length = length
        self.version = metadata.version("crafter")
        self.action_names: list[str] = list(constants.actions)
        self.item_names: list[str] = list(constants.items)
        self.achievement_names: list[str] = list(constants.achievements)
        self.material_names: list[str] = list(constants.materials)
        self.frame_shape = (size, size, 3)
        sem = self._crafter._sem_view
        self.semantic_names: dict[int, str] = {0: "none"}
        self.semantic_names.update({i: n for n, i in self._crafter._world._mat_ids.items() if n})
        self.semantic_names.update({i: cls.__name__.lower() for cls, i in sem._obj_ids.items()})
        self._unlocked: set[str] = set()
        self._done = True

    # -- protocol -------------------------------------------------------
    def reset(self, seed: int) -> Obs:
        env = self._crafter
        env._seed = int(seed)
        env._episode = 0  # reset() increments: the world depends on (seed, 1) only
        frame = env.reset()
        order_chunks(env._world)
        self._unlocked = set()
        self._done = False
        return self._make_obs(frame, env._sem_view(), [])

    def step(self, action: int) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset(seed) first")
        if not 0 <= int(action) < len(self.action_names):
            raise ValueError(f"action {action} outside 0..{len(self.action_names) - 1}")
        health_before = int(self._crafter._player.health)
        frame, reward, done, info = self._crafter.step(int(action))
        new = [
            name
            for name in self.achievement_names
            if info["achievements"][name] > 0 and name not in self._unlocked
        ]
        self._unlocked.update(new)
        terminated = info["discount"] == 0.0
        truncated = bool(done and not terminated)
        self._done = bool(done)
        obs = self._make_obs(frame, info["semantic"], new)
        out: dict[str, Any] = {"achievements": new}
        if terminated:  # what took the last health (starved, thirst, zombie, skeleton, lava, tiredness)
            out["death"] = death_cause(self._crafter, health_before)
        return obs, float(reward), bool(terminated), truncated, out

    # -- helpers --------------------------------------------------------
    @property
    def unlocked(self) -> set[str]:
        return set(self._unlocked)

    def _make_obs(self, frame: np.ndarray, semantic: np.ndarray, new: list[str]) -> Obs:
        player = self._crafter._player
        inventory = {k: int(v) for k, v in player.inventory.items()}
        px, py = int(player.pos[0]), int(player.pos[1])
        local = local_view(semantic, (px, py))
        privileged = {
            "semantic": local,
            "position": (px, py),
            "facing": (int(player.facing[0]), int(player.facing[1])),
            "vitals": {k: inventory[k] for k in VITALS},
            "sleeping": bool(player.sleeping),
            "daylight": float(self._crafter._world.daylight),
            "achievements": list(new),
        }
        return Obs(frame=frame, inventory=inventory, privileged=privileged, state=CrafterWorld(self._crafter))


def local_view(semantic: np.ndarray, pos: tuple[int, int]) -> np.ndarray:
    """The 7x9 (rows y, cols x) semantic ids the player sees, 0 outside the world."""
    out = np.zeros((VIEW_ROWS, VIEW_COLS), np.uint8)
    w, h = semantic.shape
    x0, y0 = pos[0] - VIEW_COLS // 2, pos[1] - VIEW_ROWS // 2
    xs0, ys0 = max(x0, 0), max(y0, 0)
    xs1, ys1 = min(x0 + VIEW_COLS, w), min(y0 + VIEW_ROWS, h)
    if xs0 < xs1 and ys0 < ys1:
        out[ys0 - y0 : ys1 - y0, xs0 - x0 : xs1 - x0] = semantic[xs0:xs1, ys0:ys1].T
    return out
