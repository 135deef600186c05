"""An episode in memory while it is played: filled step by step, written whole to a shard."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rig_core.envs.base import Obs


@dataclass
class EpisodeRecord:
    """Arrays of one episode in the layout of docs/data-format.md (T steps, T+1 observations)."""

    item_names: list[str]
    achievement_names: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)
    inventory: list[list[int]] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    achievements: list[int] = field(default_factory=list)
    achievements_mask: list[int] = field(default_factory=list)
    intent: list[str] = field(default_factory=list)
    noise: list[bool] = field(default_factory=list)
    privileged: dict[str, list] = field(default_factory=dict)
    vital_names: tuple[str, ...] = ()
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # further datasets by path (reasoning, review/*)

    def add_observation(self, obs: Obs) -> None:
        self.frames.append(np.asarray(obs.frame, dtype=np.uint8))
        self.inventory.append([int(obs.inventory.get(n, 0)) for n in self.item_names])
        p = obs.privileged
        for key, value in p.items():
            if key == "achievements":
                continue  # stored per step as indices, below
            if key == "vitals":
                self.vital_names = tuple(value)
                value = [int(v) for v in value.values()]
            self.privileged.setdefault(key, []).append(value)

    def add_step(self, action: int, reward: float, terminated: bool, truncated: bool,
                 new_achievements: list[str], intent: dict[str, Any]) -> None:
        idx = [self.achievement_names.index(a) for a in new_achievements]
        self.actions.append(int(action))
        self.rewards.append(float(reward))
        self.terminated.append(bool(terminated))
        self.truncated.append(bool(truncated))
        self.achievements.append(min(idx) if idx else -1)
        self.achievements_mask.append(sum(1 << i for i in idx))
        self.noise.append(bool(intent.get("noise", False)))
        self.intent.append(json.dumps(intent, sort_keys=True) if intent else "")

    @property
    def length(self) -> int:
        return len(self.actions)

    @property
    def unlocked(self) -> list[str]:
        mask = 0
        for m in self.achievements_mask:
            mask |= m
        return [a for i, a in enumerate(self.achievement_names) if mask >> i & 1]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every dataset of the episode group, by its path inside the group."""
        if len(self.frames) != self.length + 1:
            raise ValueError(f"episode has {len(self.frames)} frames for {self.length} steps")
        out = {
            "frames": np.stack(self.frames).astype(np.uint8),
            "actions": np.asarray(self.actions, np.int16),
            "rewards": np.asarray(self.rewards, np.float32),
            "terminated": np.asarray(self.terminated, bool),
            "truncated": np.asarray(self.truncated, bool),
            "inventory": np.asarray(self.inventory, np.int16).reshape(-1, len(self.item_names)),
            "achievements": np.asarray(self.achievements, np.int16),
            "achievements_mask": np.asarray(self.achievements_mask, np.uint32),
            "privileged/intent": np.asarray(self.intent, dtype=object),
            "privileged/noise": np.asarray(self.noise, bool),
        }
        dtypes = {"semantic": np.uint8, "position": np.int16, "facing": np.int8, "vitals": np.int8,
                  "sleeping": bool, "daylight": np.float32}
        for key, values in self.privileged.items():
            out[f"privileged/{key}"] = np.asarray(values, dtype=dtypes.get(key))
        out.update(self.extra)
        return out
