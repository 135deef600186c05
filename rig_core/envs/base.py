"""The environment contract every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Obs:
    """One observation.

    ``frame`` and ``inventory`` are what a player sees. ``privileged`` holds the
    backend's internal state (semantic view, position, vitals, ...): annotators,
    experts and metrics may read it, the policy never does. ``state`` is an
    optional live handle on the backend's world for scripted experts in the same
    process; it is never stored.
    """

    frame: np.ndarray
    inventory: dict[str, int]
    privileged: dict[str, Any] = field(default_factory=dict)
    state: Any = None


@runtime_checkable
class Env(Protocol):
    env_id: str
    version: str
    action_names: list[str]
    frame_shape: tuple[int, int, int]
    item_names: list[str]
    achievement_names: list[str]

    def reset(self, seed: int) -> Obs: ...

    def step(self, action: int) -> tuple[Obs, float, bool, bool, dict[str, Any]]: ...
