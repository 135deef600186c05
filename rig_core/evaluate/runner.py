"""`rig evaluate`: one evaluator for the policy and the baselines, on fixed seed lists apart from training data."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import queue
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.config import EVAL_SEED, EvalConfig  # noqa: F401  (EVAL_SEED: the default first seed, re-exported)
from rig_core.envs.deaths import CAUSES as DEATH_CAUSES
from rig_core.errors import RigError
from rig_core.evaluate.compare import EVAL_FORMAT, EVAL_VERSION
from rig_core.stats.metrics import (achievement_success_rates, crafter_score, crafter_score_interval,
                                      wilson_interval)
from rig_core.tasks import OPEN, load_suite
from rig_core.versions import versions

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


def _play_share(args) -> tuple[list[dict], list[dict], float, int, list[dict], float]:
    """Worker: play a share of (task, seed) pairs in batches; returns results, a few recorded episodes, the
    time and steps, every episode's steps (for ``steps/``) and the process's peak resident memory in MB."""
    # done: a queue that gets 1 per finished episode
    (checkpoint, agent, pairs, n, batch, max_steps, compare, record, seed, temperature, threshold, history, step_cache,
     draft, device, candidates, margin, done) = args
    from rig_core.inference.episodes import play

    policy = None
    if checkpoint:
        from rig_core.inference.policy import RigPolicy

        policy = RigPolicy.from_checkpoint(Path(checkpoint), seed=seed, temperature=temperature,
                                           review_threshold=threshold, history=history, step_cache=step_cache,
                                           draft=draft, device=device, candidate_margin=margin)
    from rig_core.envs import make_env
    from rig_core.evaluate.steps import StepLog

    suite = load_suite("crafter")
    env = make_env()
    log = StepLog(env.action_names, env.achievement_names, env.item_names)  # every episode, step by step
    results, recorded, logged = [], {}, []
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
            log.add(rec)
            if rec.env in keep:
                if not frames[rec.env]:
                    frames[rec.env].append(rec.frame)
                frames[rec.env].append(rec.next_frame)
                acts[rec.env].append(rec.action)
                thoughts[rec.env].append((rec.thought, rec.imagined))

        for r in play(tasks, seeds, policy=policy, agent=agent, max_steps=max_steps, test_time_steps=n,
                      compare_expert=compare, on_step=on_step, imagine=keep,  # only recorded episodes imagine
                      candidates=candidates if policy is not None else None):
            steps += r.steps
            if done is not None:
                done.put(1)
            results.append({"task": r.task, "seed": r.seed, "steps": r.steps, "success": r.success, "died": r.died,
                            "ended": r.ended, "reward": r.reward, "unlocked": r.unlocked, "invalid": r.invalid,
                            "agree": r.agree, "changed": r.changed, "fallback": r.fallback, "p_worse": r.p_worse,
                            "compared": r.compared, "repeats": r.repeats, "expert_repeats": r.expert_repeats}
                           | ({"on_task": r.on_task, "off_task": r.off_task} if policy is not None else {})
                           | ({"ranks": r.ranks} if r.ranks else {}))
            logged.append(log.close(r, tasks[r.env].instruction(r.seed), n))
            if r.env in keep:
                recorded[(r.task, r.seed)] = {"task": r.task, "seed": r.seed, "frames": np.stack(frames[r.env]),
                                              "actions": np.asarray(acts[r.env]),
                                              "instruction": tasks[r.env].instruction(r.seed),
                                              "thoughts": thoughts[r.env]}
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (KB on Linux)
    return results, list(recorded.values()), time.perf_counter() - start, steps, logged, peak_mb


class _Ticks:
    """Episodes finished in this process go straight to the progress bar."""

    def __init__(self, rep):
        self.rep = rep

    def put(self, n: int) -> None:
        self.rep.advance(n)
        self.rep.add("episodes", n)


def _share_task(args: tuple, emit) -> tuple[list[dict], list[dict], float, int, list[dict], float]:
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
        lengths = np.array([r["steps"] for r in opens], float)
        spread = 1.96 * lengths.std(ddof=1) / np.sqrt(len(lengths)) if len(lengths) > 1 else 0.0
        ended = {c: sum(r.get("ended") == c for r in opens) for c in DEATH_CAUSES}
        out["open"] = {"episodes": len(opens), "crafter_score": crafter_score(list(rates.values())),
                       "crafter_score_ci95": list(crafter_score_interval([r["unlocked"] for r in opens],
                                                                         achievement_names)),
                       "achievement_rates": rates,
                       "achievement_ci95": {a: [100 * x for x in wilson_interval(
                                            sum(a in r["unlocked"] for r in opens), len(opens))] for a in rates},
                       "length_mean": float(lengths.mean()),
                       "length_ci95": [float(lengths.mean() - spread), float(lengths.mean() + spread)],
                       "ended": {c: n for c, n in ended.items() if n}, "reward_mean": float(rewards.mean()),
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
    ranks = [k for r in results for k in r.get("ranks") or []]
    if ranks:  # with candidates: how often the action played was the policy's own top one, its second, ...
        out["rank_played"] = {str(k): ranks.count(k) / len(ranks) for k in sorted(set(ranks))}
    if any("on_task" in r for r in results) and not all(r["task"] == OPEN for r in results):
        # a policy's thoughts: share of steps naming the task's goal, and naming another task's goal instead
        task_steps = sum(r["steps"] for r in results if r["task"] != OPEN)
        out["on_task_rate"] = sum(r.get("on_task", 0) for r in results) / task_steps if task_steps else None
        out["off_task_rate"] = sum(r.get("off_task", 0) for r in results) / task_steps if task_steps else None
    compared = sum(r["compared"] for r in results)
    out["expert_agreement"] = sum(r["agree"] for r in results) / compared if compared else None
    # copying the last action: the share of steps after an episode's first that repeat the action just taken, and
    # the share where the expert's action is the one just taken (what copying would score against the expert)
    later = sum(max(r["steps"] - 1, 0) for r in results)
    out["repeat_rate"] = sum(r.get("repeats", 0) for r in results) / later if later else None
    out["expert_repeat_rate"] = (sum(r.get("expert_repeats", 0) for r in results) / later
                                 if compared and later else None)
    return out


def run_evaluate(cfg: EvalConfig, *, checkpoint: Path | None = None, agent: str | None = None, out: Path,
                 quiet: bool = False) -> dict[str, Any]:
    """Play one player (a checkpoint or a baseline agent) with the settings ``cfg`` into ``out``."""
    from rig_core.collect.ray_backend import session_for
    from rig_core.envs import make_env
    from rig_core.evaluate.report import write_report
    from rig_core.evaluate.steps import clear_steps, save_image_tokenizer, write_steps
    from rig_core.fsutil import atomic_write_json, ensure_writable_dir
    from rig_core.ui import progress

    if (checkpoint is None) == (agent is None):
        raise RigError("pass --checkpoint RUN, or --agent expert|random", "e.g. rig evaluate --checkpoint runs/tiny")
    cfg = replace(cfg).validate()  # a copy: the temperature and device resolved below are this player's
    if agent is not None and cfg.candidates is not None:
        raise RigError(f"--candidates {cfg.candidates} chooses among a policy's actions, not the {agent} agent's",
                       "drop --candidates, or pass --checkpoint RUN")
    tasks = resolve_suite(cfg.suite)
    sweep = parse_steps(cfg.test_time_steps)
    imagines = False  # whether the player imagines frames, so its imagination can be measured
    if checkpoint is not None:  # fail early: a basic checkpoint cannot look ahead
        from rig_core.inference.policy import RigPolicy

        probe = RigPolicy.from_checkpoint(checkpoint, review_threshold=cfg.review_threshold, history=cfg.history,
                                          temperature=cfg.temperature, device=cfg.device)
        cfg.device = str(probe.device)  # auto resolved once, the same for every share
        cfg.temperature = probe.temperature  # the model's own when not given
        if cfg.candidates is not None:
            from rig_core.inference.branches import check_candidates

            for n in sweep:
                check_candidates(cfg.candidates, n, probe.stage, probe.checkpoint)
        elif max(sweep) > 0 and probe.stage != "lookahead":
            raise RigError(f"the checkpoint {probe.checkpoint} was trained without review data (stage '{probe.stage}'), "
                           f"so it cannot look ahead with --test-time-steps {cfg.test_time_steps}",
                           "evaluate with --test-time-steps 0, or a checkpoint from rig train --stage lookahead")
        imagines = probe.imagines  # the checkpoint's --spans
        image_tok = probe.image_tok
        del probe  # a single share plays in this process: do not hold a second copy of the model meanwhile
    cfg.temperature = float(cfg.temperature or 0.0)
    out = ensure_writable_dir(Path(out), "evaluation output")
    clear_steps(out)  # a rerun into the same folder records afresh
    if checkpoint is not None:
        save_image_tokenizer(out, image_tok)
    seeds = [cfg.seed_start + j for j in range(cfg.episodes)]
    pairs = [(t.id, s) for t in tasks for s in seeds]
    names = make_env().achievement_names
    report: dict[str, Any] = {
        "format": EVAL_FORMAT, "version": EVAL_VERSION,
        "player": {"checkpoint": str(checkpoint) if checkpoint else None, "agent": agent}
        | ({"candidates": cfg.candidates, "scorer": "review" if cfg.candidates > 1 else None,
            "candidate_margin": cfg.candidate_margin} if checkpoint is not None and cfg.candidates else {}),
        "suite": cfg.suite, "episodes_per_task": cfg.episodes, "seeds": seeds, "max_steps": cfg.max_steps,
        "temperature": cfg.temperature, "sampling_seed": cfg.seed, "review_threshold": cfg.review_threshold,
        "history": cfg.history, "step_cache": not cfg.full_prefill, "draft": cfg.draft, "device": cfg.device,
        "command": cfg.command, "config": cfg.to_dict(), "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "sweep": []}
    recorded: list[dict] = []
    record = max(cfg.gifs, cfg.imagination_episodes)
    first = 0  # the next episode index of steps/
    with session_for(cfg.backend, cfg.workers, cfg.address):  # one Ray for the whole sweep
        for n in sweep:
            shares = [pairs[w::cfg.workers] for w in range(cfg.workers)]
            args = [(str(checkpoint) if checkpoint else None, agent, share, n, cfg.batch, cfg.max_steps,
                     cfg.compare_expert and n == sweep[0], (record if (w == 0 and n == sweep[0]) else 0), cfg.seed,
                     cfg.temperature, cfg.review_threshold, cfg.history, not cfg.full_prefill, cfg.draft, cfg.device,
                     cfg.candidates, cfg.candidate_margin)
                    for w, share in enumerate(shares) if share]
            start = time.perf_counter()
            results: list[dict] = []
            with progress(f"evaluate N={n}", len(pairs), quiet=quiet, rate_field="episodes",
                          rate_unit="episodes/s") as rep:
                parts = _run_shares(args, rep, cfg.backend, cfg.address)
            elapsed = time.perf_counter() - start
            logged = []
            for res, rec, _, _, log, _ in parts:
                results.extend(res)
                recorded.extend(rec)
                logged.extend(log)
            first = write_steps(out, logged, first)
            entry = {"test_time_steps": n, **summarize_results(results, names), "seconds": elapsed}
            entry["actions_per_s"] = entry["steps"] / elapsed if elapsed > 0 else None
            entry["peak_memory_mb"] = max(p[5] for p in parts)  # of the process that played a share
            entry["episodes"] = results
            report["sweep"].append(entry)
    if checkpoint is not None and recorded and cfg.imagination_episodes > 0 and imagines:
        from rig_core.evaluate.imagination import evaluate_imagination
        from rig_core.inference.policy import RigPolicy
        from rig_core.envs.view import content_shifts

        policy = RigPolicy.from_checkpoint(checkpoint, seed=cfg.seed, temperature=0.0, draft=cfg.draft,
                                           device=cfg.device)  # greedy
        report["imagination"] = evaluate_imagination(policy, recorded[:cfg.imagination_episodes],
                                                     k=cfg.imagination_steps, limit=10 * cfg.imagination_episodes,
                                                     batch=cfg.batch,
                                                     shifts=content_shifts(list(policy.tok.action_names)))
    atomic_write_json(out / "eval.json", report)
    write_report(report, out, recorded[:cfg.gifs])
    return report
