"""Environments behind one protocol; Crafter is the default backend."""

from __future__ import annotations

from rig_core.envs.base import Env, Obs
from rig_core.errors import RigError

ENV_IDS = ("crafter", "minerl")


def make_env(env_id: str = "crafter", **kwargs) -> Env:
    """Build an environment by id; a clear error for unknown or absent backends.

    ``minerl`` takes ``factory`` (a callable ``factory(gym_id) -> env`` or ``"module:function"``; default
    ``$RIG_MINERL_FACTORY``, else the installed minerl's ``gym.make``), ``length`` and ``size``.
    """
    if env_id == "crafter":
        from rig_core.envs.crafter import CrafterEnv

        return CrafterEnv(**kwargs)
    if env_id == "minerl":
        from rig_core.envs.minerl import MineRLEnv

        return MineRLEnv(**kwargs)
    raise RigError(f"unknown environment '{env_id}'", f"choose one of: {', '.join(ENV_IDS)}")


__all__ = ["Env", "Obs", "make_env", "ENV_IDS"]
