"""Data-parallel training on one machine: `rig train --processes P --threads T` side by side with one
process, same global batch, same steps, same data.

    python benchmarks/ddp_train.py --data datasets/basic-reason [--recipe cpu-2m] [--steps 30]

Runs each (processes, threads) setting as a real `rig train` and reads the training tokens/s from its
metrics (the first 5 steps left out as warm-up), and checks the loss curves agree with the one-process run.
On a machine with few cores this measures the overhead of data parallelism, not a speed-up: the speed-up
belongs to machines with a GPU (or many cores) per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.results import write_section

WARMUP = 5
out = Console()


def run(data: Path, recipe: str, steps: int, batch: int, processes: int, threads: int, where: Path) -> dict:
    args = [sys.executable, "-m", "rig_cli.main", "train", "--data", str(data), "--out", str(where), "--recipe",
            recipe, "--max-steps", str(steps), "--batch-size", str(batch), "--eval-every", str(10**9),
            "--save-every", str(10**9), "--quiet"]
    env = {**os.environ}
    if processes > 1:
        args += ["--processes", str(processes), "--threads", str(threads)]
    else:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env)
    wall = time.perf_counter() - start
    recs = [json.loads(ln) for ln in (where / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    train = [r for r in recs if r["split"] == "train"]
    timed = train[WARMUP:]
    tok_s = sum(r["tokens"] for r in timed) / sum(r["tokens"] / r["tokens_per_s"] for r in timed)
    return {"processes": processes, "threads_per_process": threads, "tokens_per_s": round(tok_s, 1),
            "wall_s": round(wall, 1), "losses": [r["loss"] for r in train]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--recipe", default="cpu-2m")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8, help="the global batch")
    p.add_argument("--settings", default="1x2,2x1,2x2", help="PROCESSESxTHREADS settings to compare")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/ddp_train.json"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the --json results file it replaces (the others are kept)")
    a = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="rig-ddp-") as tmp:
        for i, s in enumerate(a.settings.split(",")):
            procs, threads = (int(x) for x in s.split("x"))
            results.append(run(a.data, a.recipe, a.steps, a.batch_size, procs, threads, Path(tmp) / f"run{i}"))
    base = results[0]
    table = Table(title=f"rig train, {a.recipe}, global batch {a.batch_size}, {a.steps} steps ({os.cpu_count()} cores)")
    for col in ("processes x threads", "tokens/s", "vs first", "wall s", "max |loss diff|"):
        table.add_column(col, justify="right")
    for r in results:
        diff = max(abs(x - y) for x, y in zip(r["losses"], base["losses"]))
        r["max_loss_diff_vs_first"] = diff
        r["speed_vs_first"] = round(r["tokens_per_s"] / base["tokens_per_s"], 3)
        table.add_row(f"{r['processes']} x {r['threads_per_process']}", f"{r['tokens_per_s']:.0f}",
                      f"{r['speed_vs_first']:.2f}x", f"{r['wall_s']:.0f}", f"{diff:.2e}")
    out.print(table)
    doc = {"benchmark": "ddp_train", "recipe": a.recipe, "steps": a.steps, "global_batch": a.batch_size,
           "cores": os.cpu_count(), "results": [{k: v for k, v in r.items() if k != "losses"} for r in results]}
    write_section(a.json, "benchmarks/ddp_train.py", a.section, doc, sys.argv[1:] if argv is None else argv)
    return doc


if __name__ == "__main__":
    main()
