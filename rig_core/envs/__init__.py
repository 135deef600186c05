"""Environments behind one protocol; Crafter is the default backend."""

from __future__ import annotations

from rig_core.envs.base import Env, Obs
from rig_core.errors import RigError

ENV_IDS = ("crafter", "minerl")


def make_env(env_id: str = "crafter", **kwargs) -> Env:
    """Build an environment by id; a clear error for unknown or absent backends."""
    if env_id == "crafter":
        from rig_core.envs.crafter import CrafterEnv

        return CrafterEnv(**kwargs)
    if env_id == "minerl":
        try:
            import minerl  # noqa: F401
        except ImportError as exc:
            raise RigError(
                "the MineRL backend is not installed",
                "install it with: pip install 'rig[minerl]' (needs Java 8), or use --env crafter",
            ) from exc
        raise RigError("the MineRL backend is not available in this release", "use --env crafter")
    raise RigError(f"unknown environment '{env_id}'", f"choose one of: {', '.join(ENV_IDS)}")


__all__ = ["Env", "Obs", "make_env", "ENV_IDS"]
