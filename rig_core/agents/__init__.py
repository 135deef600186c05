"""Agents: the scripted Crafter expert, a random baseline, and (later) trained policies."""

from __future__ import annotations

from rig_core.agents.base import Agent, explain
from rig_core.errors import RigError

AGENT_NAMES = ("expert", "random")


def make_agent(name: str, env, *, epsilon: float = 0.0, oracle: bool = False, seed: int = 0) -> Agent:
    """Build an agent by name for an environment."""
    if not 0.0 <= epsilon <= 1.0:
        raise RigError(f"--epsilon {epsilon} is outside [0, 1]", "pass a probability such as 0.05")
    if name == "random":
        from rig_core.agents.random_agent import RandomAgent

        return RandomAgent(len(env.action_names))
    if name == "expert":
        if env.env_id != "crafter":
            raise RigError(f"the scripted expert plays Crafter only, not '{env.env_id}'", "use --env crafter")
        from rig_core.agents.crafter_expert import CrafterExpert

        return CrafterExpert(env.action_names, epsilon=epsilon, oracle=oracle)
    raise RigError(f"unknown agent '{name}'", f"choose one of: {', '.join(AGENT_NAMES)}")


__all__ = ["Agent", "explain", "make_agent", "AGENT_NAMES"]
