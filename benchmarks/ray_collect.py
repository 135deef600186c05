"""Collection throughput of `--backend ray` against the process backend: the same N episodes (same seeds, same
shards) collected with W worker processes and with W Ray tasks at a time, steps/s of each, their ratio, and a
check that the two datasets hold the same episodes (every array and attribute but the act timing).

    python benchmarks/ray_collect.py                       # 48 open-ended expert episodes of 600 steps, 2 workers
    python benchmarks/ray_collect.py --episodes 64 --workers 4 --address auto   # Ray: a running cluster

Steps/s is over the whole command, start-up included (spawning the worker processes; starting the local Ray,
or connecting to --address). Needs `pip install 'rig[ray]'`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from rig_core.collect.runner import run_collect
from rig_core.config import CollectConfig
from rig_core.data.reader import open_shard
from rig_core.results import write_section

TIMING = {"act_seconds"}
out = Console()


def episodes_of(root: Path) -> dict[str, dict]:
    """shard/episode -> {dataset path: array, "@attr": value}, timing attributes aside."""
    found: dict[str, dict] = {}
    for path in sorted(root.glob("shard-*.h5")):
        with open_shard(path) as f:
            for key, group in f["episodes"].items():
                ep = {f"@{k}": np.asarray(v) for k, v in group.attrs.items() if k not in TIMING}
                group.visititems(lambda name, obj, ep=ep: ep.__setitem__(name, obj[()]) if hasattr(obj, "dtype")
                                 else None)
                found[f"{path.name}/{key}"] = ep
    return found


def differences(a: Path, b: Path) -> list[str]:
    ea, eb = episodes_of(a), episodes_of(b)
    if ea.keys() != eb.keys():
        return [f"episodes differ: {sorted(ea.keys() ^ eb.keys())[:5]}"]
    bad = []
    for key in ea:
        if ea[key].keys() != eb[key].keys():
            bad.append(f"{key}: fields {sorted(ea[key].keys() ^ eb[key].keys())}")
        bad += [f"{key}/{name}" for name in ea[key] if name in eb[key]
                and not np.array_equal(ea[key][name], eb[key][name])]
    return bad


def collect(backend: str, root: Path, a: argparse.Namespace) -> dict:
    cfg = CollectConfig(out=str(root / backend), agent=a.agent, task=a.task, episodes=a.episodes, seed=a.seed,
                        workers=a.workers, max_steps=a.max_steps, episodes_per_shard=a.episodes_per_shard,
                        backend=backend, address=a.address if backend == "ray" else None)
    start = time.perf_counter()
    summary = run_collect(cfg, command=f"benchmarks/ray_collect.py ({backend})", quiet=True)
    wall = time.perf_counter() - start
    return {"backend": backend, "episodes": summary["episodes"], "steps": summary["collected_steps"],
            "seconds": round(wall, 2), "steps_per_s": round(summary["collected_steps"] / wall, 1)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=48)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--agent", default="expert")
    p.add_argument("--task", default="open")
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--episodes-per-shard", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--address", default=None, help="a Ray cluster for the Ray run (default: a local Ray)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/ray_collect.json"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the --json results file it replaces (the others are kept)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [collect(backend, Path(tmp), a) for backend in ("process", "ray")]
        bad = differences(Path(tmp) / "process", Path(tmp) / "ray")
    ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    table = Table(title=f"{a.episodes} {a.agent} episodes ({a.task}, ≤ {a.max_steps} steps), {a.workers} workers")
    for col in ("backend", "episodes", "steps", "seconds", "steps/s"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        table.add_row(r["backend"], str(r["episodes"]), f"{r['steps']:,}", f"{r['seconds']:.1f}",
                      f"{r['steps_per_s']:,.1f}")
    table.add_row("ray / process", "", "", "", f"{ratio:.2f}×")
    out.print(table)
    out.print("datasets equal: " + ("yes" if not bad else f"NO ({len(bad)} differences, e.g. {bad[:3]})"))
    res = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}, "rows": rows,
           "ratio": round(ratio, 3), "equal": not bad, "differences": bad[:20]}
    write_section(a.json, "benchmarks/ray_collect.py", a.section, res, sys.argv[1:] if argv is None else argv)
    if bad:
        sys.exit(1)
    return res


if __name__ == "__main__":
    main()
