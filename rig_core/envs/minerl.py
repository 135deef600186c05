"""MineRL backend: MineRL 1.0 (or a MineStudio-style simulator) behind rig's Env protocol.

The game itself comes from an *env factory*: a callable ``factory(gym_id) -> env`` returning a gym-style
environment with MineRL 1.0's dict observations and actions. By default that is ``gym.make(gym_id)`` from the
installed ``minerl`` package; ``make_env("minerl", factory=...)`` or the environment variable
``RIG_MINERL_FACTORY=module:function`` put another one in its place (the tests' stand-in, a MineStudio wrapper,
a remote simulator). The action table, the game id, the tracked items and the achievements are data
(``resources/minerl_env.yaml``, ``resources/minerl_tasks.yaml``).

Frames are MineRL's ``pov`` (360x640) resized to ``size`` x ``size`` with PIL's bilinear filter, the whole
picture squeezed to a square as VPT does (no crop). The game is started lazily, at the first ``reset``.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from importlib import metadata, resources
from typing import Any, Callable

import numpy as np
import yaml
from PIL import Image

from rig_core.envs.base import Obs
from rig_core.errors import RigError

FACTORY_VAR = "RIG_MINERL_FACTORY"
MINERL_SOURCE = "git+https://github.com/minerllabs/minerl@v1.0.2"  # 1.0 is not on PyPI (0.4.4 is the newest there)
INSTALL_DOCS = "https://minerl.readthedocs.io/en/v1.0.2/tutorials/index.html"
CAMERA_LIMIT = 180.0
VITALS = ("life", "food")
LOCATION = ("xpos", "ypos", "zpos", "pitch", "yaw")


# -- data -------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def load_spec() -> dict[str, Any]:
    """The backend's data: gym id, action keys, action table, tracked items and achievements, checked."""
    env_doc = _read_yaml("minerl_env.yaml")
    task_doc = _read_yaml("minerl_tasks.yaml")
    try:
        keys = [str(k) for k in env_doc["keys"]]
        actions: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {}
        for name, spec in env_doc["actions"].items():
            spec = spec or {}
            pressed = tuple(str(k) for k in spec.get("keys", ()))
            unknown = [k for k in pressed if k not in keys]
            if unknown or set(spec) - {"keys", "camera"}:
                raise ValueError(f"action {name}: unknown keys {unknown or sorted(set(spec) - {'keys', 'camera'})}")
            pitch, yaw = (float(v) for v in spec.get("camera", (0.0, 0.0)))
            if not (abs(pitch) <= CAMERA_LIMIT and abs(yaw) <= CAMERA_LIMIT):
                raise ValueError(f"action {name}: camera {[pitch, yaw]} outside [-180, 180]")
            actions[str(name)] = (pressed, (pitch, yaw))
        items = {str(k): tuple(str(i) for i in v) for k, v in env_doc["items"].items()}
        achievements = {}
        for name, spec in task_doc["achievements"].items():
            if spec["item"] not in items:
                raise ValueError(f"achievement {name} names unknown item {spec['item']}")
            achievements[str(name)] = (str(spec["item"]), int(spec.get("count", 1)))
        if len(achievements) > 32:
            raise ValueError("more than 32 achievements (datasets store them as a 32-bit mask)")
        return {"gym_id": str(env_doc["gym_id"]), "keys": keys, "actions": actions, "items": items,
                "achievements": achievements}
    except (KeyError, TypeError, ValueError) as exc:
        raise RigError(f"the MineRL data files are malformed ({exc})",
                       "fix rig_core/resources/minerl_env.yaml or minerl_tasks.yaml") from exc


def _read_yaml(name: str) -> dict:
    return yaml.safe_load(resources.files("rig_core.resources").joinpath(name).read_text())


def action_dict(name: str, keys: list[str] | None = None) -> dict[str, Any]:
    """The MineRL 1.0 action dict of the discrete action ``name``: every key 0 but the pressed ones, camera as
    float32 [pitch, yaw] degrees."""
    spec = load_spec()
    pressed, camera = spec["actions"][name]
    act: dict[str, Any] = {k: 0 for k in (keys if keys is not None else spec["keys"])}
    for k in pressed:
        act[k] = 1
    act["camera"] = np.asarray(camera, dtype=np.float32)
    return act


# -- the game -----------------------------------------------------------------------------------------
def resolve_factory(factory: Callable | str | None = None) -> tuple[Callable[[str], Any], str]:
    """The env factory and a label for provenance: the argument, else ``$RIG_MINERL_FACTORY``, else MineRL's
    ``gym.make``. Without any of them: a one-line RigError naming what to install."""
    if factory is None:
        factory = os.environ.get(FACTORY_VAR) or None
    if callable(factory):
        return factory, f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', repr(factory))}"
    if isinstance(factory, str):
        return _import_factory(factory), factory
    try:
        import minerl  # noqa: F401
    except ImportError as exc:
        raise RigError(
            "the MineRL backend needs the minerl package, which is not installed",
            f"install a Java 8 JDK, then MineRL 1.0: pip install {MINERL_SOURCE} (see {INSTALL_DOCS}); "
            f"or point {FACTORY_VAR}=module:function at another simulator; or use --env crafter",
        ) from exc
    return _gym_make, f"minerl {_package_version('minerl')}"


def _import_factory(spec: str) -> Callable[[str], Any]:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise RigError(f"{FACTORY_VAR}={spec!r} is not of the form module:function",
                       "set it to e.g. mypkg.sim:make_env, or unset it to use the installed minerl")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise RigError(f"cannot load the MineRL env factory {spec!r} ({exc})",
                       f"check {FACTORY_VAR}, or unset it to use the installed minerl") from exc
    if not callable(fn):
        raise RigError(f"the MineRL env factory {spec!r} is not callable", f"point {FACTORY_VAR} at a function")
    return fn


def _gym_make(gym_id: str) -> Any:  # pragma: no cover - needs the real game
    import gym
    import minerl  # noqa: F401  (registers the MineRL gym ids)

    return gym.make(gym_id)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


class MineRLEnv:
    """MineRL behind rig's Env protocol: discrete named actions, square frames, inventory-read achievements.

    ``reset(seed)`` seeds the world (``env.seed(seed)`` before every reset, as MineRL 1.0 requires; a
    gymnasium-style env gets ``reset(seed=seed)``). ``length`` (None: no limit) truncates episodes.
    """

    env_id = "minerl"

    def __init__(self, length: int | None = None, size: int = 64, factory: Callable | str | None = None):
        self._factory, self.version = resolve_factory(factory)
        spec = load_spec()
        self.gym_id: str = spec["gym_id"]
        self.length = length
        self.frame_shape = (int(size), int(size), 3)
        self.action_names: list[str] = list(spec["actions"])
        self.item_names: list[str] = list(spec["items"])
        self.achievement_names: list[str] = list(spec["achievements"])
        self._items: dict[str, tuple[str, ...]] = spec["items"]
        self._achievements: dict[str, tuple[str, int]] = spec["achievements"]
        self._keys: list[str] = spec["keys"]
        self._env: Any = None
        self._actions: list[dict[str, Any]] = []
        self._unlocked: set[str] = set()
        self._steps = 0
        self._done = True

    # -- protocol -------------------------------------------------------
    def reset(self, seed: int) -> Obs:
        env = self._game()
        if hasattr(env, "seed"):
            env.seed(int(seed))
            out = env.reset()
        else:  # gymnasium-style: reset(seed=...) -> (obs, info)
            out = env.reset(seed=int(seed))
        raw, info = (out if isinstance(out, tuple) and len(out) == 2 else (out, {}))
        self._unlocked = set()
        self._steps = 0
        self._done = False
        return self._make_obs(raw, info or {}, [])

    def step(self, action: int) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset(seed) first")
        if not 0 <= int(action) < len(self.action_names):
            raise ValueError(f"action {action} outside 0..{len(self.action_names) - 1}")
        act = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self._actions[int(action)].items()}
        out = self._env.step(act)
        if len(out) == 5:  # gymnasium-style
            raw, reward, terminated, truncated, info = out
        else:  # MineRL 1.0 (old gym): done is death or the server quitting
            raw, reward, terminated, info = out
            truncated = bool((info or {}).get("TimeLimit.truncated", False))  # gym's TimeLimit wrapper
            terminated = bool(terminated) and not truncated
        info = dict(info or {})
        self._steps += 1
        terminated = bool(terminated)
        truncated = bool(truncated) or (self.length is not None and self._steps >= self.length)
        truncated = truncated and not terminated
        self._done = terminated or truncated
        inventory = self._inventory(raw, info)
        new = [name for name, (item, count) in self._achievements.items()
               if name not in self._unlocked and inventory[item] >= count]
        self._unlocked.update(new)
        obs = self._make_obs(raw, info, new, inventory)
        out_info: dict[str, Any] = {"achievements": new}
        if "error" in info:
            out_info["error"] = info["error"]
        return obs, float(reward), terminated, truncated, out_info

    # -- helpers --------------------------------------------------------
    @property
    def unlocked(self) -> set[str]:
        return set(self._unlocked)

    def close(self) -> None:
        if self._env is not None and hasattr(self._env, "close"):
            self._env.close()
        self._env = None

    def _game(self) -> Any:
        """The simulator, made at the first reset (starting Minecraft takes a minute)."""
        if self._env is None:
            try:
                env = self._factory(self.gym_id)
            except RigError:
                raise
            except Exception as exc:  # the game failed to start: Java, display, download ...
                raise RigError(f"MineRL could not start {self.gym_id} ({exc.__class__.__name__}: {exc})",
                               f"check the Java 8 JDK and the minerl install ({INSTALL_DOCS})") from exc
            self._actions = self._action_dicts(env)
            self._env = env
        return self._env

    def _action_dicts(self, env: Any) -> list[dict[str, Any]]:
        """One action dict per discrete action, on the key set of the env's own action space when it shows one
        (MineRL's ``noop()``, a gym/gymnasium ``Dict``'s ``spaces``); keys the table never presses stay 0."""
        keys = self._keys
        space = getattr(env, "action_space", None)
        noop = getattr(space, "noop", None) or getattr(space, "no_op", None)
        theirs = list(noop()) if callable(noop) else list(getattr(space, "spaces", None) or ())
        if theirs:
            theirs = [k for k in theirs if k != "camera"]
            pressed = {k for name in self.action_names for k in load_spec()["actions"][name][0]}
            missing = sorted(pressed - set(theirs))
            if missing:
                raise RigError(f"the MineRL env has no action keys {missing} (not MineRL 1.0's action space)",
                               f"install MineRL 1.0: pip install {MINERL_SOURCE}")
            keys = theirs
        return [action_dict(name, keys) for name in self.action_names]

    def _inventory(self, raw: dict, info: dict) -> dict[str, int]:
        counts = minerl_counts(raw.get("inventory", info.get("inventory", {})))
        return {name: sum(counts.get(i, 0) for i in parts) for name, parts in self._items.items()}

    def _make_obs(self, raw: dict, info: dict, new: list[str], inventory: dict[str, int] | None = None) -> Obs:
        pov = raw.get("pov", raw.get("image", info.get("pov")))
        if pov is None:
            raise RuntimeError("the MineRL observation has no 'pov' image")
        privileged: dict[str, Any] = {}
        life = raw.get("life_stats")
        if isinstance(life, dict):
            privileged["vitals"] = {k: int(round(float(np.asarray(life.get(k, 0))))) for k in VITALS}
        loc = raw.get("location_stats", info.get("location_stats"))
        if isinstance(loc, dict):
            privileged["location"] = [float(np.asarray(loc.get(k, 0.0))) for k in LOCATION]
        privileged["achievements"] = list(new)
        return Obs(frame=resize_frame(pov, self.frame_shape[:2]),
                   inventory=inventory if inventory is not None else self._inventory(raw, info),
                   privileged=privileged, state=raw)


def minerl_counts(inventory: Any) -> dict[str, int]:
    """Item counts by Minecraft name from MineRL's flat ``{item: count}`` inventory or a slot list/dict of
    ``{"type": item, "quantity": n}`` (MineStudio); ``minecraft:`` prefixes dropped."""
    slots = inventory.values() if isinstance(inventory, dict) else inventory
    slots = list(slots or ())
    counts: dict[str, int] = {}
    if slots and all(isinstance(s, dict) for s in slots):
        for s in slots:
            name = str(s.get("type", "air")).removeprefix("minecraft:")
            counts[name] = counts.get(name, 0) + int(s.get("quantity", 0))
        return counts
    for name, n in (inventory or {}).items():
        counts[str(name).removeprefix("minecraft:")] = int(np.asarray(n))
    return counts


def resize_frame(pov: Any, hw: tuple[int, int]) -> np.ndarray:
    """An RGB frame resized to ``hw`` (height, width) with PIL's bilinear filter (antialiased when shrinking)."""
    frame = np.asarray(pov)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise RuntimeError(f"the MineRL 'pov' has shape {frame.shape}, not HxWx3")
    frame = frame.astype(np.uint8, copy=False)
    if frame.shape[:2] == tuple(hw):
        return frame.copy()
    image = Image.fromarray(frame).resize((int(hw[1]), int(hw[0])), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)
