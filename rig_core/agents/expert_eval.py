"""Run the expert (or any agent) for one episode and measure it: reused by the benchmarks."""

from __future__ import annotations

import time

from rig_core.tasks import Task

ALL_ACHIEVEMENTS = 22


def run_episode(env, agent, task: Task, seed: int, max_steps: int | None = None, trace=None) -> dict:
    """Play ``task`` from ``env.reset(seed)``.

    Stops at death, at the env's own end, after ``max_steps`` (default: the
    task's budget), once the task succeeds, or (open task) once every
    achievement is unlocked. ``trace(step, obs, action, agent)`` is called per
    step if given.
    """
    budget = task.budget if max_steps is None else int(max_steps)
    obs = env.reset(seed)
    agent.reset(task, seed)
    unlocked: list[str] = []
    reward = 0.0
    act_seconds = 0.0
    died = False
    success = False
    steps = 0
    while steps < budget:
        t0 = time.perf_counter()
        action = agent.act(obs)
        act_seconds += time.perf_counter() - t0
        if trace is not None:
            trace(steps, obs, action, agent)
        obs, r, terminated, truncated, info = env.step(action)
        steps += 1
        reward += r
        for a in info.get("achievements", []):
            if a not in unlocked:
                unlocked.append(a)
        if task.is_success(unlocked, obs.inventory):
            success = True
            break
        if terminated:
            died = True
            break
        if truncated or len(unlocked) >= ALL_ACHIEVEMENTS:
            break
    return {
        "steps": steps,
        "unlocked": unlocked,
        "success": success,
        "died": died,
        "reward": reward,
        "act_seconds": act_seconds,
    }
