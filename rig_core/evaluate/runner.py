"""`rig evaluate`: one evaluator for the policy and the baselines, on fixed seed lists apart from training data."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import queue
import time
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError
from rig_core.evaluate.compare import EVAL_FORMAT, EVAL_VERSION
from rig_core.stats.metrics import (achievement_success_rates, crafter_score, crafter_score_interval,
                                      wilson_interval)
from rig_core.tasks import OPEN, load_suite
from rig_core.versions import versions

EVAL_SEED = 1_000_000  # evaluation worlds; rig collect's seeds count up from 0
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # review thresholds whose correction share a sweep reports


def resolve_suite(suite: str) -> list:
    tasks = load_suite("crafter")
    if suite in ("tasks", "all"):  # every task; `all` as rig collect --task says it
        return tasks.resolve("all")
    if suite in ("open", *tasks.groups) or suite in tasks.tasks:
        return tasks.resolve(suite)
    raise RigError(f"unknown suite '{suite}'", f"use tasks, open, a group ({', '.join(tasks.groups)}) or a task id")


def parse_steps(spec: str) -> list[int]:
    try:
        values = [int(x) for x in str(spec).split(",") if x.strip()]
    except ValueError as exc:
        raise RigError(f"--test-time-steps {spec} is not a list of numbers", "e.g. --test-time-steps 0,1,2") from exc
    if not values or min(values) < 0:
        raise RigError(f"--test-time-steps {spec} must be numbers of 0 or more", "e.g. --test-time-steps 0,1,2")
    return values


def _play_share(args) -> tuple[list[dict], list[dict], float, int]:
    """Worker: play a share of (task, seed) pairs in batches; returns results and a few recorded episodes."""
    # done: a queue that gets 1 per finished episode
    (checkpoint, agent, pairs, n, batch, max_steps, compare, record, seed, temperature, threshold, history, step_cache,
     draft, device, done) = args
    from rig_core.inference.episodes import play

    policy = None
    if checkpoint:
        from rig_core.inference.policy import RigPolicy

        policy = RigPolicy.from_checkpoint(Path(checkpoint), seed=seed, temperature=temperature,
                                           review_threshold=threshold, history=history, step_cache=step_cache,
                                           draft=draft, device=device)
    suite = load_suite("crafter")
    results, recorded = [], {}
    start = time.perf_counter()
    steps = 0
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        tasks = [suite.get(t) for t, _ in chunk]
        seeds = [s for _, s in chunk]
        keep = {k for k in range(len(chunk)) if (i + k) < record}
        frames: dict[int, list] = {k: [] for k in keep}
        acts: dict[int, list] = {k: [] for k in keep}
        thoughts: dict[int, list] = {k: [] for k in keep}

        def on_step(rec, keep=keep, frames=frames, acts=acts, thoughts=thoughts):
            if rec.env in keep:
                if not frames[rec.env]:
                    frames[rec.env].append(rec.frame)
                frames[rec.env].append(rec.next_frame)
                acts[rec.env].append(rec.action)
                thoughts[rec.env].append((rec.thought, rec.imagined))

        for r in play(tasks, seeds, policy=policy, agent=agent, max_steps=max_steps, test_time_steps=n,
                      compare_expert=compare, on_step=on_step, imagine=keep):  # only recorded episodes imagine
            steps += r.steps
            if done is not None:
                done.put(1)
            results.append({"task": r.task, "seed": r.seed, "steps": r.steps, "success": r.success, "died": r.died,
                            "reward": r.reward, "unlocked": r.unlocked, "invalid": r.invalid, "agree": r.agree,
                            "changed": r.changed, "fallback": r.fallback, "p_worse": r.p_worse,
                            "compared": r.compared}
                           | ({"on_task": r.on_task, "off_task": r.off_task} if policy is not None else {}))
            if r.env in keep:
                recorded[(r.task, r.seed)] = {"task": r.task, "seed": r.seed, "frames": np.stack(frames[r.env]),
                                              "actions": np.asarray(acts[r.env]),
                                              "instruction": tasks[r.env].instruction(r.seed),
                                              "thoughts": thoughts[r.env]}
    return results, list(recorded.values()), time.perf_counter() - start, steps


class _Ticks:
    """Episodes finished in this process go straight to the progress bar."""

    def __init__(self, rep):
        self.rep = rep

    def put(self, n: int) -> None:
        self.rep.advance(n)
        self.rep.add("episodes", n)


def _share_task(args: tuple, emit) -> tuple[list[dict], list[dict], float, int]:
    """A share as a Ray task: ``emit.put(1)`` per finished episode reaches the bar."""
    return _play_share(args + (emit,))


def _run_shares(args: list[tuple], rep, backend: str = "process", address: str | None = None) -> list:
    """Play the shares (in this process, one worker process each, or one Ray task each); the bar advances per
    episode."""
    if backend == "ray":
        from rig_core.collect.ray_backend import run_tasks

        ticks = _Ticks(rep)
        return run_tasks(_share_task, [(a,) for a in args], lambda e: ticks.put(e[1]), workers=len(args),
                         address=address, describe=lambda i: f"evaluation share {i}")
    if len(args) == 1:
        return [_play_share(args[0] + (_Ticks(rep),))]
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(len(args)) as pool:
        done = manager.Queue()
        pending = pool.map_async(_play_share, [a + (done,) for a in args])
        ticks = _Ticks(rep)
        while not pending.ready():
            try:
                ticks.put(done.get(timeout=0.5))
            except queue.Empty:
                pass
        while not done.empty():
            ticks.put(done.get())
        return pending.get()


def summarize_results(results: list[dict], achievement_names: list[str]) -> dict[str, Any]:
    suite = load_suite("crafter")
    tasks: dict[str, Any] = {}
    for r in results:
        t = tasks.setdefault(r["task"], {"episodes": 0, "successes": 0, "steps": 0})
        t["episodes"] += 1
        t["successes"] += int(r["success"])
        t["steps"] += r["steps"]
    for tid, t in tasks.items():
        lo, hi = wilson_interval(t["successes"], t["episodes"])
        t.update(rate=t["successes"] / t["episodes"], ci95=[lo, hi], mean_steps=t["steps"] / t["episodes"])
    groups = {}
    for g, ids in suite.groups.items():
        rs = [r for r in results if r["task"] in ids]
        if rs:
            k = sum(r["success"] for r in rs)
            groups[g] = {"episodes": len(rs), "rate": k / len(rs), "ci95": list(wilson_interval(k, len(rs)))}
    k = sum(r["success"] for r in results)
    overall = {"episodes": len(results), "successes": k, "rate": k / len(results) if results else 0.0,
               "ci95": list(wilson_interval(k, len(results)))}
    out: dict[str, Any] = {"tasks": {k: tasks[k] for k in sorted(tasks)}, "groups": groups, "overall": overall}
    opens = [r for r in results if r["task"] == OPEN]
    if opens:
        rates = achievement_success_rates([r["unlocked"] for r in opens], achievement_names)
        rewards = np.array([r["reward"] for r in opens])
        half = 1.96 * rewards.std(ddof=1) / np.sqrt(len(rewards)) if len(rewards) > 1 else 0.0
        out["open"] = {"episodes": len(opens), "crafter_score": crafter_score(list(rates.values())),
                       "crafter_score_ci95": list(crafter_score_interval([r["unlocked"] for r in opens],
                                                                         achievement_names)),
                       "achievement_rates": rates, "reward_mean": float(rewards.mean()),
                       "reward_ci95": [float(rewards.mean() - half), float(rewards.mean() + half)]}
    steps = sum(r["steps"] for r in results)
    out["steps"] = steps
    out["invalid_rate"] = sum(r["invalid"] for r in results) / steps if steps else 0.0
    # with lookahead: how often the review changed the proposal, and how often a cut-off text kept it
    out["changed_rate"] = sum(r.get("changed", 0) for r in results) / steps if steps else 0.0
    out["fallback_rate"] = sum(r.get("fallback", 0) for r in results) / steps if steps else 0.0
    p_worse = np.concatenate([np.asarray(r.get("p_worse") or [], float) for r in results] or [np.zeros(0)])
    if len(p_worse):  # the review's P(correction) at test time: which --review-threshold changes how often
        out["p_worse_mean"] = float(p_worse.mean())
        out["p_worse_share_above"] = {f"{t:g}": float((p_worse >= t).mean()) for t in THRESHOLDS}
    if any("on_task" in r for r in results) and not all(r["task"] == OPEN for r in results):
        # a policy's thoughts: share of steps naming the task's goal, and naming another task's goal instead
        task_steps = sum(r["steps"] for r in results if r["task"] != OPEN)
        out["on_task_rate"] = sum(r.get("on_task", 0) for r in results) / task_steps if task_steps else None
        out["off_task_rate"] = sum(r.get("off_task", 0) for r in results) / task_steps if task_steps else None
    compared = sum(r["compared"] for r in results)
    out["expert_agreement"] = sum(r["agree"] for r in results) / compared if compared else None
    return out


def run_evaluate(*, checkpoint: Path | None, agent: str | None, suite: str, episodes: int, test_time_steps: str,
                 workers: int = 1, batch: int = 8, out: Path, max_steps: int | None = None, seed: int = 0,
                 imagination_steps: int = 3, imagination_episodes: int = 10, gifs: int = 2,
                 temperature: float | None = None, compare_expert: bool = True, command: str = "",
                 review_threshold: float | None = None, history: int | None = None,
                 seed_start: int = EVAL_SEED, step_cache: bool = True, draft: bool = True, quiet: bool = False,
                 backend: str = "process", address: str | None = None, device: str = "auto") -> dict[str, Any]:
    from rig_core.collect.ray_backend import session_for
    from rig_core.config import check_backend
    from rig_core.envs import make_env
    from rig_core.evaluate.report import write_report
    from rig_core.fsutil import atomic_write_json, ensure_writable_dir
    from rig_core.ui import progress

    if (checkpoint is None) == (agent is None):
        raise RigError("pass --checkpoint RUN, or --agent expert|random", "e.g. rig evaluate --checkpoint runs/tiny")
    if episodes < 1 or workers < 1 or batch < 1:
        raise RigError("--episodes, --workers and --batch must be at least 1", "pass positive numbers")
    if imagination_steps < 1 or imagination_episodes < 0 or gifs < 0:
        raise RigError("--imagination-steps must be at least 1, --imagination-episodes and --gifs 0 or more",
                       "pass e.g. --imagination-steps 3, or --imagination-episodes 0 to skip the imagination report")
    check_backend(backend, address)  # Ray installed when asked for: one line before anything runs
    if temperature is not None and not temperature >= 0:
        raise RigError(f"--temperature {temperature} is negative", "pass 0 (greedy) or more (sampling)")
    tasks = resolve_suite(suite)
    sweep = parse_steps(test_time_steps)
    imagines = False  # whether the player imagines frames, so its imagination can be measured
    if checkpoint is not None:  # fail early: a basic checkpoint cannot look ahead
        from rig_core.inference.policy import RigPolicy

        probe = RigPolicy.from_checkpoint(checkpoint, review_threshold=review_threshold, history=history,
                                          temperature=temperature, device=device)
        device = str(probe.device)  # auto resolved once, the same for every share
        temperature = probe.temperature  # the model's own when not given
        if max(sweep) > 0 and probe.stage != "lookahead":
            raise RigError(f"the checkpoint {probe.checkpoint} was trained without review data (stage '{probe.stage}'), "
                           f"so it cannot look ahead with --test-time-steps {test_time_steps}",
                           "evaluate with --test-time-steps 0, or a checkpoint from rig train --stage lookahead")
        imagines = probe.imagines  # the checkpoint's --spans
        del probe  # a single share plays in this process: do not hold a second copy of the model meanwhile
    temperature = float(temperature or 0.0)
    out = ensure_writable_dir(Path(out), "evaluation output")
    if seed_start < 0:
        raise RigError(f"--seed-start {seed_start} is negative", f"pass a world seed of 0 or more (default {EVAL_SEED})")
    seeds = [seed_start + j for j in range(episodes)]
    pairs = [(t.id, s) for t in tasks for s in seeds]
    names = make_env().achievement_names
    report: dict[str, Any] = {
        "format": EVAL_FORMAT, "version": EVAL_VERSION,
        "player": {"checkpoint": str(checkpoint) if checkpoint else None, "agent": agent},
        "suite": suite, "episodes_per_task": episodes, "seeds": seeds, "max_steps": max_steps,
        "temperature": temperature, "sampling_seed": seed, "review_threshold": review_threshold, "history": history,
        "step_cache": step_cache, "draft": draft, "device": device,
        "command": command, "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "sweep": []}
    recorded: list[dict] = []
    with session_for(backend, workers, address):  # one Ray for the whole sweep
        for n in sweep:
            shares = [pairs[w::workers] for w in range(workers)]
            args = [(str(checkpoint) if checkpoint else None, agent, share, n, batch, max_steps,
                     compare_expert and n == sweep[0],
                     (max(gifs, imagination_episodes) if (w == 0 and n == sweep[0]) else 0), seed, temperature,
                     review_threshold, history, step_cache, draft, device)
                    for w, share in enumerate(shares) if share]
            start = time.perf_counter()
            results: list[dict] = []
            with progress(f"evaluate N={n}", len(pairs), quiet=quiet, rate_field="episodes",
                          rate_unit="episodes/s") as rep:
                parts = _run_shares(args, rep, backend, address)
            for res, rec, _, _ in parts:
                results.extend(res)
                recorded.extend(rec)
            elapsed = time.perf_counter() - start
            entry = {"test_time_steps": n, **summarize_results(results, names), "seconds": elapsed}
            entry["actions_per_s"] = entry["steps"] / elapsed if elapsed > 0 else None
            entry["episodes"] = results
            report["sweep"].append(entry)
    if checkpoint is not None and recorded and imagination_episodes > 0 and imagines:
        from rig_core.evaluate.imagination import evaluate_imagination
        from rig_core.inference.policy import RigPolicy
        from rig_core.envs.view import content_shifts

        policy = RigPolicy.from_checkpoint(checkpoint, seed=seed, temperature=0.0, draft=draft, device=device)  # greedy
        report["imagination"] = evaluate_imagination(policy, recorded[:imagination_episodes],
                                                     k=imagination_steps, limit=10 * imagination_episodes,
                                                     batch=batch, shifts=content_shifts(list(policy.tok.action_names)))
    atomic_write_json(out / "eval.json", report)
    write_report(report, out, recorded[:gifs])
    return report
