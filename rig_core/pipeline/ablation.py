"""The `ablation` stage: success against episodes of training data per span layout, from one evaluation of
every (variant, data fraction) on the same seeds; the paired difference against the baseline layout at each
fraction; and the data multiple (how much more data the baseline needs to reach the target layout's success
at the smallest fraction, read off the baseline's curve, linear in log episodes)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.evaluate.compare import load_evaluation, pair_row, players_of
from rig_core.fsutil import atomic_write_json, atomic_write_text
from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint
from rig_core.model.run_config import load_run_config
from rig_core.stats.metrics import wilson_interval
from rig_core.train.setup import training_split


def _point(folder: Path) -> dict[str, Any] | None:
    """One player of the evaluation: its layout, data fraction, training episodes and N = 0 result."""
    doc = load_evaluation(folder)
    checkpoint = doc["player"].get("checkpoint")
    if not checkpoint:
        return None  # a baseline agent: not a point of the curves
    cfg = load_run_config(run_of_checkpoint(find_checkpoint(Path(checkpoint))))
    with Dataset(Path(cfg.data)) as ds:
        episodes = len(training_split(ds, cfg)[0])
    player = next(p for p in players_of(folder) if p.n == 0)
    wins = sum(bool(e["success"]) for e in player.episodes.values())
    n = len(player.episodes)
    return {"spans": cfg.spans, "fraction": cfg.data_fraction, "episodes": episodes, "steps": cfg.max_steps,
            "folder": str(folder), "success": wins / n, "success_ci95": list(wilson_interval(wins, n)), "n": n,
            "player": player}


def data_multiple(curve: list[tuple[int, float]], level: float, start: int) -> tuple[float | None, str]:
    """How many times ``start`` episodes a curve of (episodes, success) needs to reach ``level``: interpolated
    linearly in log episodes; (None, why) when it is reached at ``start`` already or never."""
    curve = sorted(curve)
    if curve and curve[0][1] >= level:
        return 1.0, "reached at the smallest fraction already (1x or less)"
    for (e0, s0), (e1, s1) in zip(curve, curve[1:]):
        if s1 >= level > s0:
            t = (level - s0) / (s1 - s0)
            episodes = math.exp(math.log(e0) + t * (math.log(e1) - math.log(e0)))
            return episodes / start, f"{episodes / start:.1f}x (interpolated at {episodes:.0f} episodes)"
    largest = curve[-1][0] if curve else start
    return None, f"more than {largest / start:.0f}x: never reached up to the largest fraction ({largest} episodes)"


def run_ablation(eval_dir: Path, out: Path, baseline: str, target: str) -> dict[str, Any]:
    eval_dir, out = Path(eval_dir), Path(out)
    points = [p for d in sorted(eval_dir.iterdir()) if (d / "eval.json").is_file() for p in [_point(d)] if p]
    variants = sorted({p["spans"] for p in points}, key=lambda s: (len(s), s))
    for need in (baseline, target):
        if need not in variants:
            raise RigError(f"the evaluation {eval_dir} has no player trained with --spans {need}",
                           f"evaluate one (variants found: {', '.join(variants) or 'none'})")
    fractions = sorted({p["fraction"] for p in points})
    by = {(p["spans"], p["fraction"]): p for p in points}
    paired = []
    for f in fractions:
        base = by.get((baseline, f))
        for v in variants:
            if v != baseline and base and (v, f) in by:
                row = pair_row(base["player"], by[(v, f)]["player"])
                paired.append({"fraction": f, "variant": v, "baseline": baseline,
                               **{k: row[k] for k in ("paired", "success_diff", "success_diff_ci95", "mcnemar_p")}})
    smallest = min(fractions)
    start = by[(target, smallest)]["episodes"] if (target, smallest) in by else None
    level = by[(target, smallest)]["success"] if (target, smallest) in by else None
    multiple, why = (data_multiple([(p["episodes"], p["success"]) for p in points if p["spans"] == baseline],
                                   level, start) if start else (None, "the target has no point at the smallest fraction"))
    result = {"baseline": baseline, "target": target, "fractions": fractions,
              "points": [{k: v for k, v in p.items() if k != "player"} for p in points],
              "paired": paired, "data_multiple": multiple, "data_multiple_note": why}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablation.json", result)
    _plot(result, variants, out / "ablation.png")
    atomic_write_text(out / "report.md", markdown(result))
    return result


def _plot(result: dict[str, Any], variants: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for v in variants:
        pts = sorted((p["episodes"], p["success"], p["success_ci95"]) for p in result["points"] if p["spans"] == v)
        xs, ys = [p[0] for p in pts], [100 * p[1] for p in pts]
        err = [[100 * (p[1] - p[2][0]) for p in pts], [100 * (p[2][1] - p[1]) for p in pts]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=v)
    ax.set_xscale("log")
    ax.set_xlabel("training episodes (log)")
    ax.set_ylabel("success % (95 % interval)")
    ax.set_title(f"data multiple of {result['baseline']} to reach {result['target']}: {result['data_multiple_note']}",
                 fontsize=8)
    ax.legend(title="--spans", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    pct = lambda x: f"{100 * x:.0f} %"
    lines = ["# Ablation: success against training data per span layout", "",
             "| spans | fraction | training episodes | success | 95 % interval | episodes played |",
             "|---|---|---|---|---|---|"]
    for p in sorted(result["points"], key=lambda p: (p["spans"], p["fraction"])):
        lines.append(f"| {p['spans']} | {p['fraction']:g} | {p['episodes']} | {pct(p['success'])} | "
                     f"[{pct(p['success_ci95'][0])}, {pct(p['success_ci95'][1])}] | {p['n']} |")
    lines += ["", f"## Against `{result['baseline']}` at each fraction (paired on the same seeds)", "",
              "| fraction | spans | difference | 95 % interval | McNemar p |", "|---|---|---|---|---|"]
    for r in result["paired"]:
        lo, hi = r["success_diff_ci95"]
        p = "-" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.3g}"
        lines.append(f"| {r['fraction']:g} | {r['variant']} | {100 * r['success_diff']:+.0f} | "
                     f"[{100 * lo:+.0f}, {100 * hi:+.0f}] | {p} |")
    lines += ["", f"**Data multiple** (the episodes `{result['baseline']}` needs to reach the success of "
              f"`{result['target']}` at the smallest fraction, as a multiple of that fraction's episodes): "
              f"{result['data_multiple_note']}.", "",
              "![success against training episodes](ablation.png)", ""]
    return "\n".join(lines)
