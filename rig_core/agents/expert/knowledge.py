"""The expert's data: game rules, tech tree, priorities and thresholds (crafter_expert.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))
DIR_ACTION = {(-1, 0): "move_left", (1, 0): "move_right", (0, -1): "move_up", (0, 1): "move_down"}
DIR_WORD = {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}


@dataclass(frozen=True)
class Knowledge:
    walkable: tuple[str, ...]
    deadly: tuple[str, ...]
    collect: dict[str, dict[str, Any]]
    place: dict[str, dict[str, Any]]
    make: dict[str, dict[str, Any]]
    tunnel: dict[str, str | None]
    achievements: dict[str, dict[str, Any]]
    open_priorities: tuple[str, ...]
    stock: dict[str, int]
    explore_hints: dict[str, tuple[str, ...]]
    survival: dict[str, dict[str, float]]
    plant_ripe_after: int
    update_distance: int

    def source_of(self, item: str) -> str | None:
        """The material whose collection gives ``item``."""
        for material, info in self.collect.items():
            if info["receive"] == item:
                return material
        return None


@lru_cache(maxsize=None)
def load_knowledge() -> Knowledge:
    text = resources.files("rig_core.resources").joinpath("crafter_expert.yaml").read_text()
    d = yaml.safe_load(text)
    return Knowledge(
        walkable=tuple(d["walkable"]),
        deadly=tuple(d["deadly"]),
        collect=d["collect"],
        place=d["place"],
        make=d["make"],
        tunnel=d["tunnel"],
        achievements=d["achievements"],
        open_priorities=tuple(d["open_priorities"]),
        stock=dict(d.get("stock", {})),
        explore_hints={k: tuple(v) for k, v in d["explore_hints"].items()},
        survival=d["survival"],
        plant_ripe_after=int(d["plant_ripe_after"]),
        update_distance=int(d["object_update_distance"]),
    )
