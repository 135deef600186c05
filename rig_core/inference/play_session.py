"""`rig play`: one episode with the policy (or a baseline), shown live, logged or recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from rig_core.errors import RigError
from rig_core.inference.episodes import play
from rig_core.records import StepRecord
from rig_core.tasks import OPEN, load_suite
from rig_core.viz.live import live_view, log_line
from rig_core.viz.record import Recorder


def run_play(*, checkpoint: Path | None, agent: str | None, task: str, seed: int, test_time_steps: int = 0,
             live: bool = False, record: Path | None = None, max_steps: int | None = None,
             temperature: float | None = None, max_think: int = 64, review_threshold: float | None = None,
             history: int | None = None, step_cache: bool = True, draft: bool = True, quiet: bool = False,
             console: Console | None = None, device: str = "auto", candidates: int | None = None,
             candidate_margin: float = 0.0) -> dict[str, Any]:
    if (checkpoint is None) == (agent is None):
        raise RigError("pass --checkpoint RUN, or --agent expert|random for a baseline", "e.g. rig play --checkpoint runs/tiny")
    if agent is not None and candidates is not None:
        raise RigError(f"--candidates {candidates} chooses among a policy's actions, not the {agent} agent's",
                       "drop --candidates, or pass --checkpoint RUN")
    suite = load_suite("crafter")
    t = suite.get(task)
    recorder = Recorder(record) if record else None
    policy = None
    if checkpoint is not None:
        from rig_core.inference.policy import RigPolicy

        policy = RigPolicy.from_checkpoint(checkpoint, temperature=temperature, max_think=max_think, seed=seed,
                                           review_threshold=review_threshold, history=history,
                                           step_cache=step_cache, draft=draft, device=device,
                                           candidate_margin=candidate_margin)
    console = console or Console()
    start = time.perf_counter()
    header = f"{'RIG policy ' + str(checkpoint) if checkpoint else agent + ' agent'} | {t.id}: {t.instruction(seed)}"
    view = Live(console=console, auto_refresh=False, transient=False) if live else None

    def on_step(rec: StepRecord) -> None:
        rate = (rec.t + 1) / max(time.perf_counter() - start, 1e-9)
        if recorder:
            recorder.add(rec)
        if view is not None:
            view.update(live_view(rec, task=f"{t.id}: {t.instruction(seed)}", rate=rate, header=header), refresh=True)
        elif not quiet:
            console.print(log_line(rec), highlight=False, markup=False)

    if view is not None:
        view.start()
    try:
        result = next(iter(play([t], [seed], policy=policy, agent=agent, max_steps=max_steps,
                                test_time_steps=test_time_steps, on_step=on_step, candidates=candidates,
                                imagine=live or recorder is not None)))  # decoded only to be shown
    finally:
        if view is not None:
            view.stop()
    elapsed = time.perf_counter() - start
    out = {"task": t.id, "seed": seed, "steps": result.steps, "success": result.success, "died": result.died,
           "reward": round(result.reward, 3), "unlocked": result.unlocked, "invalid_outputs": result.invalid,
           "actions_per_s": round(result.steps / elapsed, 2) if elapsed > 0 else None,
           "player": str(checkpoint) if checkpoint else agent,
           "max_steps": max_steps or t.budget}
    if checkpoint:  # the settings the policy played with, so a scripted run's JSON stands on its own
        out.update(test_time_steps=test_time_steps, temperature=policy.temperature, max_think=max_think,
                   review_threshold=review_threshold, history=history, step_cache=step_cache, draft=draft,
                   device=str(policy.device))
    if checkpoint and t.id != OPEN:  # steps whose thought names the task's goal / another task's goal instead
        out.update(thoughts_on_task=result.on_task, thoughts_off_task=result.off_task)
    if checkpoint and candidates:  # how often the action played was the policy's top one, its second, ...
        out.update(candidates=candidates, candidate_margin=candidate_margin,
                   rank_played=[result.ranks.count(k) for k in range(candidates)])
    elif test_time_steps:  # steps where the review changed the proposal / a cut-off text kept it
        out.update(review_changed=result.changed, review_fallbacks=result.fallback,
                   review_p_worse_mean=round(sum(result.p_worse) / len(result.p_worse), 4) if result.p_worse else None)
    if recorder:
        out["record"] = str(recorder.close())
    return out
