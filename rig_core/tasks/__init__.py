"""Tasks as data: id, instruction phrasings, success predicate, step budget."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterable

import yaml

from rig_core.errors import RigError

OPEN = "open"


@dataclass(frozen=True)
class Task:
    id: str
    group: str
    instructions: tuple[str, ...]
    budget: int
    success: dict = field(default_factory=dict)

    def instruction(self, seed: int) -> str:
        """One phrasing, chosen reproducibly from the episode seed."""
        return self.instructions[random.Random(f"{self.id}:{seed}").randrange(len(self.instructions))]

    def is_success(self, unlocked: Iterable[str], inventory: dict[str, int]) -> bool:
        """Whether the task is done, given the achievements unlocked so far and the inventory."""
        if self.id == OPEN:
            return False  # open play has no end condition but the budget
        if "achievement" in self.success:
            return self.success["achievement"] in set(unlocked)
        if "item" in self.success:
            return inventory.get(self.success["item"], 0) >= int(self.success.get("count", 1))
        raise ValueError(f"task {self.id}: unsupported success predicate {self.success}")

    @property
    def target_achievement(self) -> str | None:
        return self.success.get("achievement")


@dataclass(frozen=True)
class TaskSuite:
    env: str
    tasks: dict[str, Task]
    groups: dict[str, tuple[str, ...]]

    def get(self, task_id: str) -> Task:
        if task_id not in self.tasks:
            raise RigError(
                f"unknown task '{task_id}'",
                f"use a task id ({', '.join(sorted(t for t in self.tasks if t != OPEN))}), "
                f"a group ({', '.join(self.groups)}), 'all' or 'open'",
            )
        return self.tasks[task_id]

    def resolve(self, selector: str) -> list[Task]:
        """Tasks named by a task id, a group name, 'all' (every task but open; also 'tasks', as rig evaluate
        --suite says it) or 'open'."""
        if selector in ("all", "tasks"):
            return [self.tasks[t] for g in self.groups.values() for t in g]
        if selector in self.groups:
            return [self.tasks[t] for t in self.groups[selector]]
        return [self.get(selector)]


def _parse(doc: dict, source: str) -> TaskSuite:
    try:
        groups = {g: tuple(ids) for g, ids in doc["groups"].items()}
        group_of = {t: g for g, ids in groups.items() for t in ids}
        tasks: dict[str, Task] = {}
        for tid, spec in doc["tasks"].items():
            if tid not in group_of:
                raise ValueError(f"task {tid} is in no group")
            tasks[tid] = Task(
                id=tid,
                group=group_of[tid],
                instructions=tuple(spec["instructions"]),
                budget=int(spec["budget"]),
                success=dict(spec["success"]),
            )
        missing = [t for t in group_of if t not in tasks]
        if missing:
            raise ValueError(f"groups name undefined tasks: {missing}")
        o = doc[OPEN]
        tasks[OPEN] = Task(id=OPEN, group=OPEN, instructions=tuple(o["instructions"]), budget=int(o["budget"]))
        return TaskSuite(env=doc["env"], tasks=tasks, groups=groups)
    except (KeyError, TypeError, ValueError) as exc:
        raise RigError(f"task file {source} is malformed ({exc})", "fix the YAML against crafter_tasks.yaml") from exc


@lru_cache(maxsize=None)
def load_suite(env_id: str = "crafter") -> TaskSuite:
    """The task suite shipped for an environment."""
    name = f"{env_id}_tasks.yaml"
    try:
        text = resources.files("rig_core.resources").joinpath(name).read_text()
    except FileNotFoundError as exc:
        raise RigError(f"no task suite for environment '{env_id}'", "use --env crafter") from exc
    return _parse(yaml.safe_load(text), name)
