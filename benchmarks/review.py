"""Review quality: does a lookahead model's review tell a worse proposal from a good one?

    python benchmarks/review.py --run runs/lookahead
    python benchmarks/review.py --run runs/lookahead-a --run runs/lookahead-b --samples 400 --update

For each lookahead run: held-out review samples (its validation split: review episodes it never trained
on), each given as at test time up to the review's first text token; the probability the review opens
with a correction ("Wait, ...") rather than a confirmation, against the expert's verdict
(rig_core/diagnostics/review_quality.py). Prints the ROC AUC with a 95% bootstrap interval (0.5: the
review is no better than chance, so more test-time steps cannot help), the share of worse proposals, the
share the review would call worse and its agreement with the expert. Then the review is written out as
at test time (greedy, or with --review-threshold) and the action after it read: of the worse proposals,
the share replaced by the expert's action, kept, or replaced by a third action; of the fine ones, the
share kept (does a correction land where the expert would go?). Per reason, which actions the
corrections land on against the expert's (a review that corrects towards one action whatever the state
shows it), and how often the policy's own second choice at the proposal is the expert's action.
``--frames real`` shows the review the fork's real frames instead of the stored imagined ones: can it
read a true outcome at all? Last, the same by the expert's reason for each worse verdict (damage,
progress, wasted, farther): which mistakes the review sees; by how right the proposal's first imagined
frame is (equal-count bins of its PSNR against the fork's real frame): does the review correct more and
spoil less where its imagination is right; and for the proposals that are moves, whether the model's own
imagined frame shows the move blocked or going through (rig_core/review/moves.py), against the real
frame after it. Writes OUT/review.json (with --update also benchmarks/results/review.json). A few
minutes per run on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.review.moves import imagined_moves
from rig_core.diagnostics.review_quality import (review_discrimination, review_outcomes, review_samples,
                                                  second_choices)
from rig_core.results import publish
from rig_core.inference.policy import RigPolicy

out = Console()
RESULTS = Path(__file__).parent / "results" / "review.json"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _p(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _top(counts: dict, k: int = 3) -> str:
    return ", ".join(f"{name} {n}" for name, n in list(counts.items())[:k]) or "-"


def _auc(r: dict) -> str:
    return "-" if r["auc"] is None else f"{r['auc']:.2f} [{r['auc_ci95'][0]:.2f}, {r['auc_ci95'][1]:.2f}]"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, action="append", required=True, help="a lookahead run (repeat to compare)")
    p.add_argument("--samples", type=int, default=300, help="held-out review samples per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--review-threshold", type=float, default=None,
                   help="write the reviews as rig evaluate --review-threshold tau does (default: the free verdict)")
    p.add_argument("--frames", choices=("imagined", "real"), default="imagined",
                   help="what the proposal shows the review: the stored imagined frames (as at test time) or the "
                        "fork's real ones (can the review read a true outcome?)")
    p.add_argument("--out", type=Path, default=Path("bench-review"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the results file it writes")
    p.add_argument("--update", action="store_true", help="also write the section of benchmarks/results/review.json")
    a = p.parse_args(argv)
    rows = []
    for run in a.run:
        policy = RigPolicy.from_checkpoint(run, review_threshold=a.review_threshold)
        samples = review_samples(policy, a.samples, a.seed, a.frames)
        r = review_discrimination(policy, samples)
        rows.append({"run": str(run), "checkpoint": str(policy.checkpoint), **r,
                     "outcomes": review_outcomes(policy, samples), "second_choice": second_choices(policy, samples),
                     "imagined_moves": imagined_moves(policy, samples)})
    table = Table(title=f"Review quality on held-out review samples ({a.frames} frames in the proposal)",
                  title_justify="left")
    for col in ("run", "samples", "AUC [95%]", "worse", "says worse", "agreement"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in rows:
        name = Path(r["run"])
        table.add_row(f"{name.parent.name}/{name.name}", str(r["samples"]), _auc(r), _pct(r["worse_share"]),
                      _pct(r["says_worse_share"]), _pct(r["agreement"]))
    out.print(table)
    table = Table(title="--review-threshold tau on the same samples: share corrected / share of those the expert "
                  "calls worse", title_justify="left")
    table.add_column("run", no_wrap=True)
    for t in rows[0]["thresholds"]:
        table.add_column(f"tau {t}", justify="right")
    for r in rows:
        name = Path(r["run"])
        table.add_row(f"{name.parent.name}/{name.name}",
                      *[f"{_pct(v['says_worse'])} / {_pct(v['precision'])}" for v in r["thresholds"].values()])
    out.print(table)
    how = "free verdict" if a.review_threshold is None else f"tau {a.review_threshold:g}"
    table = Table(title=f"The action after the review ({how}): of worse proposals fixed (the expert's action) / "
                  "kept / another; of fine ones kept", title_justify="left")
    for col in ("run", "worse", "fixed", "kept", "another", "fine", "kept "):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in rows:
        name, w, f = Path(r["run"]), r["outcomes"]["worse"], r["outcomes"]["fine"]
        table.add_row(f"{name.parent.name}/{name.name}", str(w["samples"]), _pct(w["fixed"]), _pct(w["kept"]),
                      _pct(w["other"]), str(f["samples"]), _pct(f["kept"]))
    out.print(table)
    table = Table(title="By the expert's reason for a worse verdict: its samples against all the fine ones "
                  "(which mistakes the review sees), and the action after the review", title_justify="left")
    for col in ("run", "reason", "samples", "P(worse)", "AUC [95%]", "fixed", "kept", "another"):
        table.add_column(col, justify="left" if col in ("run", "reason") else "right", no_wrap=True)
    for r in rows:
        name = Path(r["run"])
        table.add_row(f"{name.parent.name}/{name.name}", "(fine)", str(r["outcomes"]["fine"]["samples"]),
                      _p(r["p_worse_when_fine"]), "", "", _pct(r["outcomes"]["fine"]["kept"]), "")
        for reason, d in r["by_reason"].items():
            o = r["outcomes"]["worse_by_reason"][reason]
            table.add_row("", reason, str(d["samples"]), _p(d["p_worse"]), _auc(d), _pct(o["fixed"]),
                          _pct(o["kept"]), _pct(o["other"]))
    out.print(table)
    table = Table(title="Where corrections of worse proposals land: the review's replacement actions against the "
                  "expert's, and the share where the policy's own second choice is the expert's action",
                  title_justify="left")
    for col in ("run", "reason", "corrected", "review's actions", "expert's actions", "2nd choice"):
        table.add_column(col, justify="left" if col in ("run", "reason") else "right", no_wrap=col != "run")
    for r in rows:
        name = Path(r["run"])
        label = f"{name.parent.name}/{name.name}"
        for reason, d in r["outcomes"]["landed"].items():
            second = r["second_choice"]["by_reason"].get(reason, {}).get("expert")
            table.add_row(label, reason, str(d["corrected"]), _top(d["review"]), _top(d["expert"]), _pct(second))
            label = ""
    out.print(table)
    table = Table(title="By how right the proposal's first imagined frame is (equal-count PSNR bins against the "
                  "fork's real frame): does the review decide better where the imagination is right?",
                  title_justify="left")
    for col in ("run", "PSNR dB", "cells match", "samples", "worse", "AUC", "fixed", "kept worse", "spoiled fine"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in rows:
        name = Path(r["run"])
        label = f"{name.parent.name}/{name.name}"
        for d, o in zip(r["by_imagination"], r["outcomes"]["by_imagination"]):
            lo, hi = d["psnr_db"]
            table.add_row(label, f"{lo:.0f}-{hi:.0f}", _pct(d["cell_match"]),
                          str(d["samples"]), _pct(d["worse_share"]), _p(d["auc"]), _pct(o["worse"]["fixed"]),
                          _pct(o["worse"]["kept"]), _pct(o["fine"]["changed"]))
            label = ""  # the run named once
    out.print(table)
    table = Table(title="Proposed moves: does the model's own imagination show which are blocked? (the view held "
                  "in the imagined frame; AUC 0.5: it does not know)", title_justify="left")
    for col in ("run", "moves", "blocked", "through", "held | blocked", "held | through", "AUC [95%]"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in rows:
        name, m = Path(r["run"]), r["imagined_moves"]
        table.add_row(f"{name.parent.name}/{name.name}", str(m["moves"]), str(m["blocked"]), str(m["through"]),
                      _pct(m["imagined_held_when_blocked"]), _pct(m["imagined_held_when_through"]), _auc(m))
    out.print(table)
    doc = {"samples": a.samples, "seed": a.seed, "review_threshold": a.review_threshold, "frames": a.frames,
           "rows": rows}
    return publish(doc, "benchmarks/review.py", a.section, sys.argv[1:] if argv is None else argv,
                   a.out / "review.json", RESULTS if a.update else None)


if __name__ == "__main__":
    main()
