"""Play one episode with an agent and record it (frames, actions, privileged state, intent)."""

from __future__ import annotations

import json
import time
from typing import Callable

from rig_core.agents.base import explain
from rig_core.data.episode import EpisodeRecord
from rig_core.tasks import Task


def play_episode(
    env,
    agent,
    task: Task,
    seed: int,
    *,
    max_steps: int | None = None,
    attrs: dict | None = None,
    on_steps: Callable[[int], None] | None = None,
    report_every: int = 250,
) -> EpisodeRecord:
    """Run ``agent`` on ``task`` from ``env.reset(seed)`` until success, death or the step budget.

    The budget is the task's, or ``max_steps`` when given. An episode that reaches
    its task's goal ends there with ``terminated`` set on its last step; ``died``
    in the attrs tells death apart from success.
    """
    budget = max_steps if max_steps is not None else task.budget
    record = EpisodeRecord(item_names=list(env.item_names), achievement_names=list(env.achievement_names))
    obs = env.reset(seed)
    agent.reset(task, seed)
    record.add_observation(obs)
    unlocked: set[str] = set()
    success = died = False
    act_seconds = 0.0
    reported = 0
    for t in range(budget):
        start = time.perf_counter()
        action = agent.act(obs)
        intent = explain(agent, obs)
        act_seconds += time.perf_counter() - start
        obs, reward, terminated, truncated, info = env.step(action)
        unlocked.update(info.get("achievements", ()))
        success = task.is_success(unlocked, obs.inventory)
        died = terminated
        last = t + 1 == budget
        record.add_observation(obs)
        record.add_step(action, reward, terminated or success, (truncated or last) and not (terminated or success),
                        info.get("achievements", []), intent)
        if on_steps and (t + 1 - reported) >= report_every:
            on_steps(t + 1 - reported)
            reported = t + 1
        if terminated or truncated or success:
            break
    if on_steps and record.length > reported:
        on_steps(record.length - reported)
    record.attrs.update(attrs or {})
    record.attrs.update(
        seed=int(seed),
        task=task.id,
        instruction=task.instruction(seed),
        agent=getattr(agent, "name", type(agent).__name__),
        success=bool(success),
        died=bool(died),
        unlocked=json.dumps(sorted(unlocked)),
        act_seconds=float(act_seconds),
    )
    return record
