"""The agent contract."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from rig_core.envs.base import Obs
from rig_core.tasks import Task


@runtime_checkable
class Agent(Protocol):
    name: str

    def reset(self, task: Task, seed: int) -> None: ...

    def act(self, obs: Obs) -> int: ...


def explain(agent: Any, obs: Obs) -> dict[str, Any]:
    """The agent's current intent, or an empty dict when it cannot say.

    Intent keys: ``subgoal`` (what it works on), ``target`` (what it moves to or
    acts on, if any), ``reason`` (why), ``noise`` (True when the last action was a
    random epsilon action rather than the plan's).
    """
    fn = getattr(agent, "explain", None)
    return dict(fn(obs)) if fn else {}
