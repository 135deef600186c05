"""Players evaluated on the same seeds, paired: the figures of a comparison as a section of the results file.

    python benchmarks/paired.py --section NAME EVAL [EVAL ...] [--baseline EVAL] [--ablation] \\
        [--made-by "rig evaluate ..."] [--question "..."] [--update]

EVAL is a `rig evaluate` output: one player's folder (eval.json), or the folder of several players played in
one run (one sub-folder each). Every player is compared with the baseline (default: the first player) on the
episodes both played: success with its 95 % Wilson interval, the paired difference with Newcombe's interval,
the exact McNemar p-value and paired bootstrap intervals of reward and achievements per episode
(rig_core/evaluate/compare.py, as `rig evaluate --compare`). With --ablation the players are models trained
with different `--spans` / `data_fraction` (`rig pipeline ablation`'s evaluate stage): success against training
episodes per layout, the paired differences against `act` at each fraction and the data multiple, as the
pipeline's ablation stage reports them. --made-by records the commands that made the evaluations (repeatable).
Prints the table; writes OUT/paired.json and, with --update, the section of benchmarks/results/paired.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.evaluate.compare import compare_players, players_of
from rig_core.results import write_section
from rig_core.stats.metrics import wilson_interval

out = Console()
SCRIPT = "benchmarks/paired.py"
RESULTS = Path(__file__).parent / "results" / "paired.json"


def evaluation_folders(paths: list[Path]) -> list[Path]:
    """Each player's evaluation folder: a folder with eval.json, or the player folders of a several-player run."""
    found = []
    for p in map(Path, paths):
        if (p / "eval.json").is_file():
            found.append(p)
        else:
            found += sorted(d for d in p.iterdir() if (d / "eval.json").is_file()) if p.is_dir() else []
    return found


def _whole_games(folder: Path) -> dict:
    """A player's whole-game figures (``--suite open``): Crafter score, achievements, length, how games ended,
    time; empty for other suites."""
    from rig_core.evaluate.compare import load_evaluation
    from rig_core.evaluate.report import whole_games

    e = load_evaluation(folder)["sweep"][0]
    if "open" not in e:
        return {}
    return {"open": whole_games(e), "seconds": e.get("seconds"), "actions_per_s": e.get("actions_per_s"),
            "expert_agreement": e.get("expert_agreement")}


def figures(paths: list[Path], baseline: Path | None, ablation: bool) -> dict:
    folders = evaluation_folders(paths)
    if len(folders) < 2:
        sys.exit(f"error: {', '.join(map(str, paths))} hold fewer than two evaluations. pass rig evaluate outputs")
    base = None if baseline is None else evaluation_folders([baseline])[0]
    paired = compare_players(folders, baseline=base)
    players = []
    for f in folders:
        games = _whole_games(f)
        for pl in players_of(f):
            wins, n = sum(bool(e["success"]) for e in pl.episodes.values()), len(pl.episodes)
            players.append({"player": pl.label, "episodes": n, "success": wins / n,
                            "success_ci95": list(wilson_interval(wins, n))} | games)
    doc = {"players": players, "baseline": paired["baseline"], "paired": paired["rows"]}
    if ablation:
        from rig_core.pipeline.ablation import run_ablation

        with tempfile.TemporaryDirectory(prefix="rig-ablation-") as tmp:
            doc["ablation"] = run_ablation(Path(paths[0]), Path(tmp), "act", "think,act,imagine")
    return doc


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("evaluations", nargs="+", type=Path, help="rig evaluate output folders")
    p.add_argument("--section", required=True, help="the question this comparison answers, as a short name")
    p.add_argument("--question", default="", help="the question in words")
    p.add_argument("--baseline", type=Path, help="the evaluation the others are compared against (default: the first)")
    p.add_argument("--ablation", action="store_true", help="also the span ablation's data multiple and curve")
    p.add_argument("--made-by", action="append", default=[], help="a command that made the evaluations (repeat)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="where paired.json is written")
    p.add_argument("--update", action="store_true", help=f"also write the section of {RESULTS}")
    a = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    doc = {"question": a.question, "commands": a.made_by, **figures(a.evaluations, a.baseline, a.ablation)}
    t = Table(title=f"{a.section}: against {doc['baseline']}")
    games = any("open" in pl for pl in doc["players"])
    for c in ("player", "episodes", "success (95 % CI)", "paired difference (95 % CI)", "McNemar p") + (
            ("Crafter score (95 % CI)", "score difference (95 % CI)") if games else ()):
        t.add_column(c)
    rows = {r["player"]: r for r in doc["paired"]}
    for pl in doc["players"]:
        r = rows.get(pl["player"])
        lo, hi = pl["success_ci95"]
        diff = "-" if r is None else (f"{100 * r['success_diff']:+.1f} [{100 * r['success_diff_ci95'][0]:+.1f}, "
                                       f"{100 * r['success_diff_ci95'][1]:+.1f}]")
        pv = "-" if r is None or r.get("mcnemar_p") is None else f"{r['mcnemar_p']:.3g}"
        extra = ()
        if games:
            o = pl.get("open") or {}
            score = f"{o['crafter_score']:.2f} [{o['crafter_score_ci95'][0]:.2f}, {o['crafter_score_ci95'][1]:.2f}]" \
                if o else "-"
            d = "-" if r is None or "crafter_score_diff" not in r else (
                f"{r['crafter_score_diff']:+.2f} [{r['crafter_score_diff_ci95'][0]:+.2f}, "
                f"{r['crafter_score_diff_ci95'][1]:+.2f}]")
            extra = (score, d)
        t.add_row(pl["player"], str(pl["episodes"]), f"{100 * pl['success']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]",
                  diff, pv, *extra)
    out.print(t)
    write_section(a.out / "paired.json", SCRIPT, a.section, doc, argv)
    if a.update:
        write_section(RESULTS, SCRIPT, a.section, doc, argv)
    out.print(f"wrote {a.out / 'paired.json'}" + (f" and the section '{a.section}' of {RESULTS}" if a.update else ""))
    return doc


if __name__ == "__main__":
    main()
