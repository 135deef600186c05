"""A stand-in for MineRL 1.0's ``MineRLHumanSurvival-v0``, for testing rig's MineRL backend without the game.

It copies what rig relies on from MineRL 1.0.2 (minerl/herobraine/env_specs/human_survival_specs.py,
human_controls.py, hero/mc.py KEYMAP, env/_multiagent.py), written out here independently of rig's data files:

- old gym API: ``seed(int)`` (an int or None, asserted) before ``reset()``; the seed is forgotten after each
  reset, as in MineRL; ``reset() -> obs``; ``step(action) -> (obs, reward, done, info)``; reward always 0.0;
- observations: ``pov`` (360, 640, 3) uint8; ``inventory`` {Minecraft 1.16 item name: int32 count, shape ()}
  over a fixed sorted item list; ``life_stats``, ``location_stats`` and ``equipped_items`` dicts;
- actions: a dict with exactly the 23 keyboard/mouse keys below, each 0 or 1 (Discrete(2)), and ``camera``, a
  float32 array of shape (2,) [pitch, yaw] in degrees within [-180, 180]. Every action is checked; a wrong one
  raises ``InvalidAction`` (the real game would misbehave or drop it silently). ``action_space.noop()`` gives
  the all-zero action, as MineRL's does.

The world is tiny and deterministic per seed: one tree at a seeded yaw (of a seeded wood kind), ground below.
Attacking while the crosshair is on the tree (|yaw - tree yaw| <= 20 degrees, |pitch| <= 40) adds break
progress; every ``ticks_per_log`` attack ticks give a log; attacking the ground (pitch > 40) gives dirt the same
way. Progress resets when the crosshair moves to another block. ``die_after`` ends the episode (done=True) after
that many steps, as death does in the real game.
"""

from __future__ import annotations

import numpy as np

GYM_ID = "MineRLHumanSurvival-v0"
KEYS = ("forward", "left", "back", "right", "jump", "inventory", "drop", "swapHands", "sneak", "sprint",
        "attack", "use", "pickItem", "hotbar.1", "hotbar.2", "hotbar.3", "hotbar.4", "hotbar.5", "hotbar.6",
        "hotbar.7", "hotbar.8", "hotbar.9", "ESC")
WOOD = ("oak", "spruce", "birch", "jungle", "acacia", "dark_oak")
ITEMS = sorted({"air", "stone", "granite", "dirt", "grass_block", "cobblestone", "sand", "gravel", "stick",
                "crafting_table", "furnace", "torch", "coal", "iron_ore", "iron_ingot", "diamond", "apple",
                "wheat_seeds", "wooden_pickaxe", "wooden_axe", "wooden_sword", "stone_pickaxe", "iron_pickaxe"}
               | {f"{w}_{kind}" for w in WOOD for kind in ("log", "planks", "sapling")})
POV_SHAPE = (360, 640, 3)


class InvalidAction(AssertionError):
    """An action dict MineRL 1.0 would not accept."""


class ActionSpace:
    """The parts of MineRL's action space rig may use: ``noop()`` and ``contains()``."""

    def noop(self) -> dict:
        act = {k: 0 for k in KEYS}
        act["camera"] = np.zeros(2, np.float32)
        return act

    def contains(self, action) -> bool:
        try:
            check_action(action)
        except InvalidAction:
            return False
        return True


def check_action(action) -> None:
    if not isinstance(action, dict):
        raise InvalidAction(f"action is a {type(action).__name__}, not a dict")
    expected = set(KEYS) | {"camera"}
    if set(action) != expected:
        raise InvalidAction(f"action keys differ: missing {sorted(expected - set(action))}, "
                            f"unknown {sorted(set(action) - expected)}")
    for k in KEYS:
        v = action[k]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or int(v) not in (0, 1):
            raise InvalidAction(f"action[{k!r}] = {v!r} is not 0 or 1")
    cam = action["camera"]
    if not isinstance(cam, np.ndarray) or cam.shape != (2,) or cam.dtype != np.float32:
        raise InvalidAction(f"action['camera'] = {cam!r} is not a float32 array of shape (2,)")
    if not np.all(np.isfinite(cam)) or np.any(np.abs(cam) > 180.0):
        raise InvalidAction(f"action['camera'] = {cam!r} is outside [-180, 180]")


class StandInHumanSurvival:
    metadata = {"render.modes": ["rgb_array"]}

    def __init__(self, gym_id: str = GYM_ID, *, ticks_per_log: int = 4, die_after: int | None = None):
        if gym_id != GYM_ID:
            raise ValueError(f"the stand-in only plays {GYM_ID}, not {gym_id}")
        self.action_space = ActionSpace()
        self.ticks_per_log = ticks_per_log
        self.die_after = die_after
        self.actions: list[dict] = []  # every action received, for tests
        self.seeds: list[int | None] = []  # the seed of every reset
        self.closed = False
        self._seed: int | None = None
        self._ready = False

    # -- gym API (old, as MineRL 1.0) -------------------------------------------------------------
    def seed(self, seed=None, seed_spaces=True):
        assert isinstance(seed, int) or seed is None, "Seed must be an int!"
        self._seed = seed

    def reset(self):
        seed, self._seed = self._seed, None  # MineRL forgets the seed after every reset
        self.seeds.append(seed)
        rng = np.random.default_rng(seed)
        self._wood = WOOD[int(rng.integers(len(WOOD)))]
        self._tree_yaw = float(rng.uniform(-180, 180))
        self._tint = rng.integers(0, 40, size=3)
        self.yaw, self.pitch = float(rng.uniform(-180, 180)), 0.0
        self.x, self.y, self.z = 0.5, 64.0, 0.5
        self.inventory = {k: 0 for k in ITEMS}
        self._target, self._progress, self._t = None, 0, 0
        self._ready, self._done = True, False
        return self._obs()

    def step(self, action):
        if not self._ready:
            raise RuntimeError("step() before reset()")
        if self._done:
            raise RuntimeError("step() after done")
        check_action(action)
        self.actions.append(action)
        self._t += 1
        pitch, yaw = (float(v) for v in action["camera"])
        self.pitch = float(np.clip(self.pitch + pitch, -90.0, 90.0))
        self.yaw = (self.yaw + yaw + 180.0) % 360.0 - 180.0
        move = action["forward"] - action["back"]
        speed = 0.28 if action["sprint"] and move > 0 else 0.22
        self.x -= move * speed * np.sin(np.radians(self.yaw))
        self.z += move * speed * np.cos(np.radians(self.yaw))
        target = self.target()
        if target != self._target:
            self._target, self._progress = target, 0
        if action["attack"] and target is not None:
            self._progress += 1
            if self._progress >= self.ticks_per_log:
                self.inventory[target] += 1
                self._progress = 0
        self._done = self.die_after is not None and self._t >= self.die_after
        info = {"isGuiOpen": False, "location_stats": self._location()}
        return self._obs(), 0.0, self._done, info

    def close(self):
        self.closed = True

    # -- the little world -------------------------------------------------------------------------
    def tree_offset(self) -> float:
        """Degrees from the crosshair to the tree, in (-180, 180]."""
        return (self._tree_yaw - self.yaw + 180.0) % 360.0 - 180.0

    def target(self) -> str | None:
        if self.pitch > 40:
            return "dirt"
        if abs(self.tree_offset()) <= 20 and abs(self.pitch) <= 40:
            return f"{self._wood}_log"
        return None

    def _location(self) -> dict:
        return {"xpos": np.array(self.x), "ypos": np.array(self.y), "zpos": np.array(self.z),
                "pitch": np.array(self.pitch), "yaw": np.array(self.yaw)}

    def _obs(self) -> dict:
        h, w, _ = POV_SHAPE
        pov = np.empty(POV_SHAPE, np.uint8)
        horizon = int(np.clip(h / 2 - self.pitch * 4, 0, h))
        pov[:horizon] = np.array([120, 170, 255]) - self._tint
        pov[horizon:] = np.array([90, 140, 60]) + self._tint
        off = self.tree_offset()
        if abs(off) < 40:
            col = int(w / 2 + off * 8)
            pov[max(horizon - 120, 0):horizon, max(col - 20, 0):max(col + 20, 0)] = (110, 80, 40)
        return {
            "pov": pov,
            "inventory": {k: np.array(self.inventory[k], dtype=np.int32) for k in ITEMS},
            "equipped_items": {"mainhand": {"type": "air", "damage": np.array(0), "maxDamage": np.array(0)}},
            "life_stats": {"life": np.array(20.0), "food": np.array(20), "saturation": np.array(5.0),
                           "xp": np.array(0), "is_alive": True, "air": np.array(300), "score": np.array(0)},
            "location_stats": self._location(),
        }


def make_env(gym_id: str) -> StandInHumanSurvival:
    """The env factory rig calls (``RIG_MINERL_FACTORY=tests.minerl_standin:make_env``)."""
    return StandInHumanSurvival(gym_id)


def make_quick_env(gym_id: str) -> StandInHumanSurvival:
    """A stand-in where a single attack on a block breaks it."""
    return StandInHumanSurvival(gym_id, ticks_per_log=1)
