"""Reading the frame: the policy's thoughts and actions on held-out expert states, against the reference.

    python benchmarks/reading.py --checkpoint runs/basic --data data/basic-reason
    python benchmarks/reading.py --checkpoint runs/basic --checkpoint runs/lookahead --data D --per-episode 4

For each checkpoint: random states of held-out episodes of a reasoned expert dataset (the same states
for every checkpoint, from episodes none of them trained on: a run's validation split when D is its
training data, otherwise the episodes whose task and seed are not in its training split), each with
its reference history (frames, thoughts, actions) as context; the policy decodes its thought and
action greedily. Prints the
share of states where its action is the expert's and, where the reference thought names an offset
("3 cells to the left and 2 cells up"), where the policy names the same offsets, the same directions,
how often it names none at all ("missed": "I do not see a tree here") and how often it names an offset
the reference does not (rig_core/diagnostics/reading.py). Given a review dataset (the basic policy's own
rollouts, rig augment --stage review) it reads the policy on the states it visited, with its own earlier
thoughts and actions as history and the expert's reasoning and action at each state as the reference;
a lookahead run trained on that review data is read on the episodes it held out. Writes every
number to OUT/reading.json (with --update also to benchmarks/results/reading.json).

    python benchmarks/reading.py --checkpoint runs/basic --data datasets/review --per-episode 100 --history 3
    python benchmarks/reading.py --checkpoint runs/basic --data datasets/review --per-episode 100 --history 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.data.reader import Dataset
from rig_core.diagnostics.reading import held_out_episodes, reading_accuracy, reading_samples
from rig_core.results import publish
from rig_core.inference.policy import RigPolicy

out = Console()
RESULTS = Path(__file__).parent / "results" / "reading.json"


def _cell(r: dict) -> str:
    if r["rate"] is None:
        return "-"
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.0f}% [{100 * lo:.0f}-{100 * hi:.0f}] /{r['n']}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, action="append", required=True, help="a run (repeat to compare)")
    p.add_argument("--data", type=Path, required=True,
                   help="a reasoned expert dataset (rig augment --stage reason), or a review dataset: the policy's "
                        "own rollouts, its own thoughts as history, the expert's as reference")
    p.add_argument("--episodes", type=int, default=48, help="held-out episodes to draw states from")
    p.add_argument("--per-episode", type=int, default=4)
    p.add_argument("--history", type=int, default=3,
                   help="earlier steps given as context (the reference's, or on review data the policy's own)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-reading"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the results file it writes")
    p.add_argument("--update", action="store_true", help="also write the section of benchmarks/results/reading.json")
    a = p.parse_args(argv)
    rows = []
    with Dataset(a.data) as ds:
        held = set(ds.indices())
        for ck in a.checkpoint:  # every checkpoint reads the same states, which none of them trained on
            held &= set(held_out_episodes(ck, ds))
        episodes = sorted(held)[: a.episodes]
        for ck in a.checkpoint:
            policy = RigPolicy.from_checkpoint(ck)
            samples = reading_samples(ds, episodes, policy.image_tok, per_episode=a.per_episode, history=a.history,
                                      seed=a.seed)
            r = reading_accuracy(policy, samples, batch=a.batch)
            rows.append({"checkpoint": str(ck), "episodes": len(episodes), **r})
    table = Table(title=f"Reading the frame on held-out states of {a.data} (95% intervals /states)")
    for col in ("checkpoint", "action = expert", "offsets right", "directions", "missed", "invented"):
        table.add_column(col, justify="left" if col == "checkpoint" else "right")
    for r in rows:
        table.add_row(Path(r["checkpoint"]).name, _cell(r["action"]), _cell(r["where"]), _cell(r["direction"]),
                      _cell(r["missed"]), _cell(r["invented"]))
    out.print(table)
    for r in rows:
        for ex in r["examples"][:3]:
            out.print(f"[dim]{Path(r['checkpoint']).name}:[/dim] reference {ex['reference']!r}\n"
                      f"    policy    {ex['policy']!r}")
    doc = {"data": str(a.data), "per_episode": a.per_episode, "history": a.history, "seed": a.seed, "rows": rows}
    return publish(doc, "benchmarks/reading.py", a.section, sys.argv[1:] if argv is None else argv,
                   a.out / "reading.json", RESULTS if a.update else None)


if __name__ == "__main__":
    main()
