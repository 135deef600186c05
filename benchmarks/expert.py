"""Benchmark the scripted expert and the collector; prints tables, writes JSON.

    python benchmarks/expert.py                      # the full benchmark (about an hour on 2 cores)
    python benchmarks/expert.py --open-episodes 20 --task-episodes 5 --groups basic,tools
    python benchmarks/expert.py --open-episodes 0 --oracle-episodes 0 --task-episodes 0
                                                     # throughput and bytes/frame only (about a minute),
                                                     # the other sections of the JSON file kept

Measures, on fixed seeds (open play from seed 10_000, tasks from seed 20_000):
  * the expert's Crafter score and per-achievement success over `open` episodes,
    view-limited (default) and --oracle;
  * per-task success over the task suite within each task's step budget, with 95% intervals;
  * collect throughput with 1 and 2 workers next to the raw environment step rate measured
    in the same run (replaying the same recorded actions in bare environments, no agent, no writing);
  * bytes per stored frame.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import hdf5plugin
from rich.console import Console
from rich.table import Table

from rig_core.collect.runner import run_collect
from rig_core.config import CollectConfig
from rig_core.data.reader import Dataset
from rig_core.envs import make_env
from rig_core.stats.metrics import achievement_success_rates, crafter_score
from rig_core.tasks import load_suite
from rig_core.results import write_section

out = Console()
OPEN_SEED, TASK_SEED, SPEED_SEED = 10_000, 20_000, 30_000
AGENT = {"name": "expert"}
SECTIONS = ("speed", "open", "tasks")  # the results file's sections, each with the command that measured it


def _unlocked(path: Path) -> list[list[str]]:
    with Dataset(path) as ds:
        return [json.loads(r.attrs["unlocked"]) for r in ds.refs().values()]


def open_play(tmp: Path, episodes: int, workers: int, oracle: bool) -> dict:
    path = tmp / f"open-{'oracle' if oracle else 'view'}"
    s = run_collect(CollectConfig(out=str(path), task="open", episodes=episodes, seed=OPEN_SEED, agent=AGENT["name"],
                                  workers=workers, oracle=oracle), quiet=False)
    names = make_env().achievement_names
    rates = achievement_success_rates(_unlocked(path), names)
    return {"episodes": episodes, "seeds": [OPEN_SEED, OPEN_SEED + episodes - 1], "oracle": oracle,
            "score": crafter_score(list(rates.values())), "rates": rates, "deaths": s["deaths"],
            "mean_length": s["mean_length"], "bytes_per_frame": s["bytes_per_frame"]}


def task_suite(tmp: Path, groups: list[str], per_task: int, workers: int) -> dict:
    suite = load_suite()
    res = {}
    for group in groups:
        n = per_task * len(suite.groups[group])
        path = tmp / f"tasks-{group}"
        s = run_collect(CollectConfig(out=str(path), task=group, episodes=n, seed=TASK_SEED, workers=workers,
                                      agent=AGENT["name"]),
                        quiet=False)
        for tid, t in s["tasks"].items():
            res[tid] = {"group": group, "episodes": t["episodes"], "successes": t["successes"],
                        "rate": t["success_rate"], "ci95": t["ci95"], "mean_length": t["mean_length"],
                        "budget": suite.get(tid).budget}
    return res


def _replay(args) -> tuple[int, float]:
    path, indices = args
    env = make_env(length=None)
    steps, start = 0, time.perf_counter()
    with Dataset(Path(path)) as ds:
        plans = [(ds.episode(i).attrs["seed"], ds.episode(i).read("actions")) for i in indices]
    start = time.perf_counter()
    for seed, actions in plans:
        env.reset(int(seed))
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            steps += 1
            if term or trunc:
                break
    return steps, time.perf_counter() - start


def throughput(tmp: Path, episodes: int, workers: int, max_steps: int) -> dict:
    path = tmp / f"speed-w{workers}"
    s = run_collect(CollectConfig(out=str(path), task="open", episodes=episodes, seed=SPEED_SEED, agent=AGENT["name"],
                                  workers=workers, max_steps=max_steps), quiet=True)
    collect_rate = s["steps_per_s"]
    parts = [(str(path), list(range(w, episodes, workers))) for w in range(workers)]
    start = time.perf_counter()
    if workers == 1:
        results = [_replay(parts[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_replay, parts)
    wall = time.perf_counter() - start
    raw_steps = sum(r[0] for r in results)
    raw_rate = raw_steps / max(r[1] for r in results)
    return {"workers": workers, "episodes": episodes, "steps": s["steps"], "collect_steps_per_s": collect_rate,
            "raw_env_steps_per_s": raw_rate, "ratio": collect_rate / raw_rate, "replay_wall_s": wall,
            "bytes_per_frame": s["bytes_per_frame"]}


def print_tables(r: dict) -> None:
    if r.get("open"):
        t = Table(title="expert Crafter score (open play, episodes of up to 10,000 steps)", title_justify="left")
        t.add_column("expert")
        for col in ("episodes", "Crafter score", "deaths", "mean length"):
            t.add_column(col, justify="right")
        for o in r["open"]:
            t.add_row("oracle (whole map)" if o["oracle"] else "view-limited (default)", str(o["episodes"]),
                      f"{o['score']:.1f}%", str(o["deaths"]), f"{o['mean_length']:.0f}")
        out.print(t)
        a = Table(title="per-achievement success (%)", title_justify="left")
        a.add_column("achievement")
        for o in r["open"]:
            a.add_column("oracle" if o["oracle"] else "view-limited", justify="right")
        for name in r["open"][0]["rates"]:
            a.add_row(name, *[f"{o['rates'][name]:.0f}" for o in r["open"]])
        out.print(a)
    if r.get("tasks"):
        t = Table(title="task success within the step budget", title_justify="left")
        for col in ("task", "group", "budget", "episodes", "success", "95% CI", "mean length"):
            t.add_column(col, justify="left" if col in ("task", "group") else "right")
        for tid, x in r["tasks"].items():
            t.add_row(tid, x["group"], str(x["budget"]), str(x["episodes"]), f"{100 * x['rate']:.0f}%",
                      f"{100 * x['ci95'][0]:.0f}-{100 * x['ci95'][1]:.0f}%", f"{x['mean_length']:.0f}")
        out.print(t)
    if r.get("speed"):
        t = Table(title="collect throughput vs the raw environment (same run)", title_justify="left")
        for col in ("workers", "steps", "collect steps/s", "raw env steps/s", "ratio", "bytes/frame"):
            t.add_column(col, justify="right")
        for x in r["speed"]:
            t.add_row(str(x["workers"]), f"{x['steps']:,}", f"{x['collect_steps_per_s']:,.0f}",
                      f"{x['raw_env_steps_per_s']:,.0f}", f"{x['ratio']:.2f}", f"{x['bytes_per_frame']:,.0f}")
        out.print(t)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--open-episodes", type=int, default=100)
    p.add_argument("--oracle-episodes", type=int, default=100, help="0 skips the oracle expert")
    p.add_argument("--task-episodes", type=int, default=20, help="episodes per task (0 skips the suite)")
    p.add_argument("--groups", default="basic,tools,advanced,survival")
    p.add_argument("--speed-episodes", type=int, default=8, help="episodes per throughput run (0 skips)")
    p.add_argument("--speed-steps", type=int, default=1500, help="step limit of throughput episodes")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--agent", default="expert", help="agent to measure (random: a quick smoke run)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/expert.json"),
                   help="the results file: the sections this run measures (speed, open, tasks) are replaced, the "
                        "others kept")
    a = p.parse_args(argv)
    AGENT["name"] = a.agent
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="rig-bench-") as tmp:
        tmp = Path(tmp)
        if a.speed_episodes:
            result["speed"] = [throughput(tmp, a.speed_episodes, w, a.speed_steps) for w in (1, 2)]
        if a.open_episodes:
            result["open"] = [open_play(tmp, a.open_episodes, a.workers, oracle=False)]
        if a.oracle_episodes:
            result.setdefault("open", []).append(open_play(tmp, a.oracle_episodes, a.workers, oracle=True))
        if a.task_episodes:
            result["tasks"] = task_suite(tmp, [g for g in a.groups.split(",") if g], a.task_episodes, a.workers)
    measured = [k for k in SECTIONS if k in result]
    for k in measured:
        write_section(a.json, "benchmarks/expert.py", k, {k: result[k]}, sys.argv[1:] if argv is None else argv,
                      {"hdf5plugin": hdf5plugin.version})
    print_tables({k: result[k] for k in measured})
    out.print(f"results written to {a.json} (sections {', '.join(measured)})")
    return result


if __name__ == "__main__":
    main()
