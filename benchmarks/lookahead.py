"""Test-time scaling benchmark: RIG-basic next to RIG-lookahead at N = 0..4, on the same seeds.

    python benchmarks/lookahead.py --basic runs/basic --lookahead runs/lookahead
    python benchmarks/lookahead.py --basic runs/basic --lookahead runs/lookahead --suite basic \\
        --episodes 20 --steps 0,1,2 --max-steps 60 --update

Runs `rig evaluate`'s evaluator for both checkpoints on the same seeds (from --seed-start, default
1,000,000, disjoint from training) and measures imagination for both on the same open-loop windows:
episodes played on held-out seeds by --imagine-on (the lookahead checkpoint at N = 0 by default: the states
the policy reaches itself; or basic, or the expert), k imagined steps from every 5th state with the actions
really taken (in context: the policy walks the real episode up to each start; --cold starts each window
without history), against the copy-last-frame baseline and the tokenizer ceiling, one step ahead also by
what the real step did (a move that went through, a blocked move, not a move). Prints the success and
Crafter score against N with 95% intervals, the imagination, the test-time curve as paired differences
(each N against basic at N = 0 and against lookahead at N = 0), and the targets, read on the paired
differences; writes every number to OUT/lookahead.json (with --update also to
benchmarks/results/lookahead.json). Evaluations already in OUT with the same settings are reused (one
directory per player and N), so an interrupted or extended sweep only runs what is missing (--fresh redoes
them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.evaluate.imagination import evaluate_imagination
from rig_core.evaluate.compare import Player, pair_row
from rig_core.stats.metrics import episodes_to_separate
from rig_core.evaluate.report import overall
from rig_core.config import EVAL_SEED, EvalConfig
from rig_core.evaluate.runner import parse_steps, resolve_suite, run_evaluate
from rig_core.results import publish
from rig_core.inference.episodes import play
from rig_core.inference.policy import RigPolicy
from rig_core.envs.view import content_shifts

out = Console()
RESULTS = Path(__file__).parent / "results" / "lookahead.json"
IMAGINE_SEED = EVAL_SEED + 500_000  # expert episodes for the imagination windows, apart from both


def evaluation(name: str, checkpoint: Path, steps: str, a: argparse.Namespace) -> dict:
    """One evaluation per N in OUT/<name>-n<N>[-t<threshold>] (reused when its settings match), merged into one
    sweep. The review threshold only acts at N > 0, so N = 0 is shared by every threshold."""
    merged: dict | None = None
    for n in parse_steps(steps):
        threshold = a.review_threshold if n > 0 else None
        where = a.out / (f"{name}-n{n}" + ("" if threshold is None else f"-t{threshold:g}"))
        settings = {"checkpoint": str(checkpoint), "suite": a.suite, "episodes_per_task": a.episodes,
                    "max_steps": a.max_steps, "steps": [n], "review_threshold": threshold, "seed_start": a.seed_start}
        done = where / "eval.json"
        r = None
        if done.exists() and not a.fresh:
            r = json.loads(done.read_text())
            if {"checkpoint": r["player"]["checkpoint"], "suite": r["suite"], "episodes_per_task": r["episodes_per_task"],
                    "max_steps": r["max_steps"], "steps": [e["test_time_steps"] for e in r["sweep"]],
                    "review_threshold": r.get("review_threshold"),
                    "seed_start": r["seeds"][0] if r.get("seeds") else None} == settings:
                out.print(f"[dim]{name} N={n}: reusing {done}[/dim]")
            else:
                r = None
        if r is None:
            cfg = EvalConfig(suite=a.suite, episodes=a.episodes, seed_start=a.seed_start, test_time_steps=str(n),
                             max_steps=a.max_steps, batch=a.batch, workers=a.workers, imagination_episodes=0,
                             gifs=2, seed=a.seed, review_threshold=threshold, command=" ".join(sys.argv))
            r = run_evaluate(cfg, checkpoint=checkpoint, out=where, quiet=a.quiet)
        if merged is None:
            merged = r
        else:
            merged["sweep"] += r["sweep"]
    return merged


def own_windows(a: argparse.Namespace) -> list[dict]:
    """Episodes of the suite on held-out seeds played by ``--imagine-on`` (the expert, or a checkpoint at N = 0
    with its own decoding: the states that policy reaches itself): frames [T+1], actions [T], instruction."""
    tasks = resolve_suite(a.suite)
    picked = [tasks[i % len(tasks)] for i in range(a.imagination_episodes)]
    seeds = [IMAGINE_SEED + i for i in range(len(picked))]
    frames: dict[int, list] = {i: [] for i in range(len(picked))}
    actions: dict[int, list] = {i: [] for i in range(len(picked))}

    def on_step(rec):
        if not frames[rec.env]:
            frames[rec.env].append(rec.frame)
        frames[rec.env].append(rec.next_frame)
        actions[rec.env].append(rec.action)

    who = {"basic": a.basic, "lookahead": a.lookahead}.get(a.imagine_on)
    player = {"agent": "expert"} if who is None else {"policy": RigPolicy.from_checkpoint(who, seed=a.seed),
                                                      "imagine": False}
    for _ in play(picked, seeds, max_steps=a.max_steps, on_step=on_step, **player):
        pass
    import numpy as np

    return [{"frames": np.stack(frames[i]), "actions": np.asarray(actions[i]),
             "instruction": t.instruction(s)} for i, (t, s) in enumerate(zip(picked, seeds)) if actions[i]]


def imagination(checkpoint: Path, episodes: list[dict], a: argparse.Namespace) -> dict:
    policy = RigPolicy.from_checkpoint(checkpoint, seed=a.seed)
    return evaluate_imagination(policy, episodes, k=a.horizon, every=5, limit=a.rollouts, batch=a.batch,
                                context=not a.cold, shifts=content_shifts(list(policy.tok.action_names)))


def _ci(o: dict) -> str:
    return f"{100 * o['rate']:.1f}% ({100 * o['ci95'][0]:.1f}-{100 * o['ci95'][1]:.1f})"


def _needed(ea: dict, eb: dict) -> str:
    """When b's rate is above a's but the intervals overlap: the episodes per player that would part them with
    unpaired intervals, and the paired episodes at the discordance this run measured (same seeds)."""
    a, b = overall(ea), overall(eb)
    if b["ci95"][0] > a["ci95"][1]:  # already apart
        return ""
    n = episodes_to_separate(a["rate"], b["rate"])
    if n is None:
        return ""
    paired = None
    if "episodes" in ea and "episodes" in eb:  # the same seeds: plan from the discordant pairs
        row = _paired(ea, eb, "a", "b")
        paired = row["episodes_to_separate"] if row["paired"] else None
    return (f"; apart from ~{n:,} episodes per player at these rates"
            + (f", ~{paired:,} paired episodes at this run's discordance" if paired else ""))


def _gain_ci(h: dict) -> str:
    ci = h.get("psnr_gain_ci95")
    return f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else ""


def _paired(a: dict, b: dict, na: str, nb: str) -> dict:
    """``b`` against ``a`` on the same seeds (``rig evaluate --compare``'s paired row)."""
    keyed = lambda e: {(x["task"], int(x["seed"])): x for x in e["episodes"]}
    return pair_row(Player(na, na, a["test_time_steps"], keyed(a)), Player(nb, nb, b["test_time_steps"], keyed(b)))


def _diff(row: dict) -> str:
    lo, hi = row["success_diff_ci95"]
    p = "" if row["mcnemar_p"] is None else f", McNemar p {row['mcnemar_p']:.2g}"
    return (f"{100 * row['success']:.1f} % vs {100 * row['baseline_success']:.1f} %: "
            f"{100 * row['success_diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{p}")


def curve(basic: dict, look: dict) -> list[dict]:
    """Each lookahead N against basic at N = 0 and against lookahead at N = 0, paired on the seeds."""
    eb, entry = basic["sweep"][0], {e["test_time_steps"]: e for e in look["sweep"]}
    return [{"test_time_steps": n, "vs_basic": _paired(eb, e, "basic", f"lookahead N={n}"),
             "vs_n0": _paired(entry[0], e, "lookahead N=0", f"lookahead N={n}") if 0 in entry else None}
            for n, e in sorted(entry.items())]


def targets(basic: dict, look: dict, im_look: dict, rows: list[dict]) -> list[tuple[str, bool, str]]:
    """The lookahead targets on ``curve(basic, look)`` (``rows``) and on the lookahead's imagination."""
    rows_by_n = {r["test_time_steps"]: r for r in rows}
    best_n = max(rows_by_n, key=lambda n: rows_by_n[n]["vs_basic"]["success"])
    best = rows_by_n[best_n]["vs_basic"]
    checks = [(f"lookahead at its best N ({best_n}) beats basic at N = 0: paired interval above 0",
               best["success_diff_ci95"][0] > 0, _diff(best) + _needed(basic["sweep"][0], _entry(look, best_n)))]
    if 0 in rows_by_n and 2 in rows_by_n:
        two = rows_by_n[2]["vs_n0"]
        checks.append(("N = 2 beats N = 0: paired interval above 0", two["success_diff_ci95"][0] > 0,
                       _diff(two) + _needed(_entry(look, 0), _entry(look, 2))))
    h1 = im_look["horizons"][0] if im_look and im_look["horizons"] else None
    if h1:
        gain = h1["psnr_model"] - h1["psnr_copy_last"]
        ci = h1.get("psnr_gain_ci95")
        checks.append(("1-step imagination PSNR at least copy-last + 3 dB", gain >= 3.0,
                       f"{h1['psnr_model']:.2f} vs {h1['psnr_copy_last']:.2f} dB ({gain:+.2f}"
                       + (f", 95% interval {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else ")")))
    return checks


def _entry(r: dict, n: int) -> dict:
    return next(e for e in r["sweep"] if e["test_time_steps"] == n)


def success_table(a: argparse.Namespace, basic: dict, look: dict) -> None:
    t = Table(title=f"test-time scaling on '{a.suite}' ({a.episodes} episodes per task, same seeds; 95% intervals)",
              title_justify="left")
    for col in ("player", "N", "episodes", "success (95% CI)", "Crafter score (95% CI)", "invalid", "changed",
                "fallback", "P(corr.)", "actions/s"):
        t.add_column(col, justify="left" if col == "player" else "right")
    for name, r in (("basic", basic), ("lookahead", look)):
        for e in r["sweep"]:
            o = overall(e)
            score = "-"
            if "open" in e:
                lo, hi = e["open"]["crafter_score_ci95"]
                score = f"{e['open']['crafter_score']:.2f}% ({lo:.2f}-{hi:.2f})"
            t.add_row(name, str(e["test_time_steps"]), str(o["episodes"]), _ci(o), score,
                      f"{100 * e['invalid_rate']:.1f}%", f"{100 * e.get('changed_rate', 0):.1f}%",
                      f"{100 * e.get('fallback_rate', 0):.1f}%",
                      "-" if e.get("p_worse_mean") is None else f"{100 * e['p_worse_mean']:.0f}%",
                      f"{e['actions_per_s']:.2f}")
    out.print(t)


def imagination_table(im: dict, on: str) -> None:
    how = "in context" if im["basic"].get("context", "none") == "history" else "cold, no history"
    t = Table(title=f"imagination: {im['basic']['rollouts']} open-loop windows ({how}) "
                    f"from {on}'s own play on held-out seeds",
              title_justify="left")
    for col in ("player", "horizon", "PSNR model", "copy-last", "model - copy", "pooled model / copy", "ceiling",
                "SSIM", "cells", "unchanged"):
        t.add_column(col, justify="left" if col == "player" else "right")
    for name, r in im.items():
        for h in r["horizons"]:
            pooled = ("-" if h.get("psnr_pooled_model") is None
                      else f"{h['psnr_pooled_model']:.2f} / {h['psnr_pooled_copy_last']:.2f}")
            t.add_row(name, str(h["horizon"]), f"{h['psnr_model']:.2f}", f"{h['psnr_copy_last']:.2f}",
                      f"{h['psnr_model'] - h['psnr_copy_last']:+.2f}" + _gain_ci(h), pooled, f"{h['psnr_tokenizer_ceiling']:.2f}",
                      f"{h['ssim_model']:.3f}", f"{100 * h['cell_accuracy']:.1f}%",
                      f"{100 * h.get('unchanged_share', 0):.0f}%")
    out.print(t)
    t = Table(title="1 step ahead, by what the real step did (moved: a move went through; blocked: a move that did "
                    "not; other: not a move)", title_justify="left")
    for col in ("player", "outcome", "windows", "PSNR model", "copy-last", "model - copy", "cells"):
        t.add_column(col, justify="left" if col in ("player", "outcome") else "right")
    for name, r in im.items():
        for outcome, h in (r.get("by_outcome") or {}).items():
            t.add_row(name, outcome, str(h["samples"]), f"{h['psnr_model']:.2f}", f"{h['psnr_copy_last']:.2f}",
                      f"{h['psnr_model'] - h['psnr_copy_last']:+.2f}" + _gain_ci(h), f"{100 * h['cell_accuracy']:.1f}%")
    out.print(t)


def curve_table(rows: list[dict]) -> None:
    t = Table(title="the test-time curve, paired on the same seeds: success difference [95% interval]",
              title_justify="left")
    for col in ("N", "lookahead", "against basic at N = 0", "against lookahead at N = 0"):
        t.add_column(col, justify="right")
    for r in rows:
        d = lambda row: "-" if row is None else f"{100 * row['success_diff']:+.1f} [{100 * row['success_diff_ci95'][0]:+.1f}, " \
                                               f"{100 * row['success_diff_ci95'][1]:+.1f}]"
        t.add_row(str(r["test_time_steps"]), f"{100 * r['vs_basic']['success']:.1f}%", d(r["vs_basic"]), d(r["vs_n0"]))
    out.print(t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--basic", type=Path, required=True, help="RIG-basic run or checkpoint")
    p.add_argument("--lookahead", type=Path, required=True, help="RIG-lookahead run or checkpoint")
    p.add_argument("--suite", default="basic")
    p.add_argument("--episodes", type=int, default=20, help="episodes per task")
    p.add_argument("--steps", default="0,1,2,3,4", help="test-time steps N to sweep for the lookahead checkpoint")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=3, help="imagined steps per open-loop window")
    p.add_argument("--seed-start", type=int, default=EVAL_SEED, help="first world seed of the evaluations")
    p.add_argument("--imagination-episodes", type=int, default=20, help="0: skip the imagination measurement")
    p.add_argument("--imagine-on", choices=("lookahead", "basic", "expert"), default="lookahead",
                   help="whose play the imagination windows come from: a checkpoint's own (the states it reaches "
                        "itself, at N = 0) or the expert's")
    p.add_argument("--review-threshold", type=float, default=None,
                   help="lookahead at N > 0: correct only when the review's P(correction) is at least this")
    p.add_argument("--rollouts", type=int, default=120, help="open-loop windows at most")
    p.add_argument("--cold", action="store_true", help="imagine each window without the episode before it as history")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/lookahead"))
    p.add_argument("--fresh", action="store_true", help="redo evaluations found in --out")
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the results file it writes")
    p.add_argument("--update", action="store_true", help=f"also write the section of {RESULTS}")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()

    basic = evaluation("basic", a.basic, "0", a)
    look = evaluation("lookahead", a.lookahead, a.steps, a)
    im = {}
    if a.imagination_episodes > 0:
        episodes = own_windows(a)
        im = {"basic": imagination(a.basic, episodes, a), "lookahead": imagination(a.lookahead, episodes, a)}
    success_table(a, basic, look)
    if im:
        imagination_table(im, a.imagine_on)
    rows = curve(basic, look)
    curve_table(rows)
    checks = targets(basic, look, im.get("lookahead"), rows)
    t = Table(title="lookahead targets", title_justify="left")
    for col in ("target", "met", "measured"):
        t.add_column(col)
    for name, ok, what in checks:
        t.add_row(name, "[green]yes[/green]" if ok else "[red]no[/red]", what)
    out.print(t)

    strip = lambda r: {k: v for k, v in r.items() if k != "sweep"} | {
        "sweep": [{k: v for k, v in e.items() if k != "episodes"} for e in r["sweep"]]}
    result = {"basic": strip(basic), "lookahead": strip(look),
              "imagination": im, "imagine_on": a.imagine_on, "review_threshold": a.review_threshold,
              "seed_start": a.seed_start, "curve": rows,
              "imagination_seeds": [IMAGINE_SEED, IMAGINE_SEED + a.imagination_episodes - 1] if im else None,
              "targets": [{"target": n, "met": ok, "measured": w} for n, ok, w in checks]}
    publish(result, "benchmarks/lookahead.py", a.section, sys.argv[1:], a.out / "lookahead.json",
            RESULTS if a.update else None)
    out.print(f"wrote {a.out / 'lookahead.json'}" + (f" and the section '{a.section}' of {RESULTS}" if a.update else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
