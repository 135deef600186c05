"""Evaluation output for people: report.md, PNG plots (matplotlib), episode GIFs, comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rig_core.fsutil import atomic_write_text  # noqa: E402


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pooled(h: dict) -> str:
    """Pooled-MSE PSNR of model / copy-last (evaluations from before it was measured have none)."""
    if h.get("psnr_pooled_model") is None:
        return "-"
    return f"{h['psnr_pooled_model']:.2f} / {h['psnr_pooled_copy_last']:.2f}"


def _player(r: dict) -> str:
    p = r["player"]
    return f"RIG policy `{p['checkpoint']}`" if p.get("checkpoint") else f"`{p['agent']}` agent"


def whole_games(e: dict[str, Any]) -> dict[str, Any] | None:
    """The whole-game figures of one test-time setting (``--suite open``) that a model card or a results file
    quotes: games, Crafter score, each achievement, game length and how the games ended; None for other suites."""
    if "open" not in e:
        return None
    keys = ("episodes", "crafter_score", "crafter_score_ci95", "achievement_rates", "achievement_ci95", "length_mean",
            "length_ci95", "ended")
    copying = ("expert_agreement", "repeat_rate", "expert_repeat_rate")  # reading the state, or copying the last action
    return {k: e["open"][k] for k in keys if k in e["open"]} | {k: e[k] for k in copying if e.get(k) is not None}


def overall(e: dict[str, Any]) -> dict[str, Any]:
    """Success over every episode of one test-time setting with its 95% Wilson interval
    (recomputed for eval.json files written before it was stored)."""
    if "overall" in e:
        return e["overall"]
    from rig_core.stats.metrics import wilson_interval

    eps = e["episodes"]
    k = sum(x["success"] for x in eps)
    return {"episodes": len(eps), "successes": k, "rate": k / len(eps) if eps else 0.0,
            "ci95": list(wilson_interval(k, len(eps)))}


def _score(e: dict[str, Any]) -> str:
    if "open" not in e:
        return "-"
    o = e["open"]
    ci = o.get("crafter_score_ci95")
    return f"{o['crafter_score']:.2f}%" + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")


def _decoding(r: dict[str, Any]) -> str:
    if not r["player"].get("checkpoint"):
        return ""
    review = ("" if r.get("review_threshold") is None else
              f"the review corrects only at P(correction) >= {r['review_threshold']:g}, ")
    k = r["player"].get("candidates")
    if k == 1:
        review += "the policy's most probable action played, "
    elif k:
        margin = r["player"].get("candidate_margin") or 0
        review += (f"the policy's {k} most probable actions each imagined N steps and scored by its review, the one "
                   f"least likely worse played" + (f" when {margin:g} less likely worse than the top one" if margin
                                                   else "") + ", ")
    if r.get("history") is not None:
        review += f"{r['history']} past steps in context, "
    if r.get("temperature"):
        return f"sampled at temperature {r['temperature']} (seed {r.get('sampling_seed', 0)}), " + review
    return "greedy decoding, " + review


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {_player(r)}", "",
             f"Suite `{r['suite']}`, {r['episodes_per_task']} episodes per task on seeds "
             f"{r['seeds'][0]}..{r['seeds'][-1]} (disjoint from training seeds), "
             + _decoding(r) + f"created {r['created']}.", ""]
    first = r["sweep"][0]
    lines += ["## Success per task (95% Wilson intervals)", "", f"test-time steps N = {first['test_time_steps']}", "",
              "| task | episodes | success | 95% CI | mean steps |", "|---|---:|---:|---:|---:|"]
    for tid, t in first["tasks"].items():
        lines.append(f"| {tid} | {t['episodes']} | {_pct(t['rate'])} | {_pct(t['ci95'][0])}–{_pct(t['ci95'][1])} | "
                     f"{t['mean_steps']:.0f} |")
    if first["groups"]:
        lines += ["", "| group | episodes | success | 95% CI |", "|---|---:|---:|---:|"]
        for g, x in first["groups"].items():
            lines.append(f"| {g} | {x['episodes']} | {_pct(x['rate'])} | {_pct(x['ci95'][0])}–{_pct(x['ci95'][1])} |")
    if "open" in first:
        o = first["open"]
        ci = o.get("crafter_score_ci95") or [o["crafter_score"]] * 2
        lines += ["", "## Open play", "", f"Crafter score **{o['crafter_score']:.2f}%** (95% CI {ci[0]:.2f}–{ci[1]:.2f}) "
                  f"over {o['episodes']} games; reward {o['reward_mean']:.2f} (95% CI {o['reward_ci95'][0]:.2f}–"
                  f"{o['reward_ci95'][1]:.2f})."]
        if "length_mean" in o:
            ended = ", ".join(f"{c} {n}" for c, n in sorted(o["ended"].items(), key=lambda x: -x[1])) or "-"
            lines += ["", f"Game length {o['length_mean']:.0f} steps (95% CI {o['length_ci95'][0]:.0f}–"
                      f"{o['length_ci95'][1]:.0f}); how the games ended: {ended}."]
        if "seconds" in first:
            memory = f", peak memory of a worker {first['peak_memory_mb']:.0f} MB" if "peak_memory_mb" in first else ""
            lines += ["", f"Played in {first['seconds'] / 60:.1f} min ({first['actions_per_s']:.1f} actions/s){memory}."]
        cis = o.get("achievement_ci95", {})
        lines += ["", "| achievement | success | 95% CI |", "|---|---:|---:|"]
        lines += [f"| {a} | {v:.1f}% | " + (f"{cis[a][0]:.1f}–{cis[a][1]:.1f}% |" if a in cis else "- |")
                  for a, v in o["achievement_rates"].items()]
    lines += ["", "## Test-time scaling (95% intervals: Wilson for success, episode bootstrap for the Crafter score)", "",
              "| N | episodes | success (all tasks) | 95% CI | Crafter score (95% CI) | invalid outputs | review changed "
              "the proposal | cut-off review kept it | mean P(correction) | thoughts on / off task | expert agreement | "
              "actions/s |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in r["sweep"]:
        o = overall(e)
        lines.append(f"| {e['test_time_steps']} | {o['episodes']} | {_pct(o['rate'])} | {_pct(o['ci95'][0])}–"
                     f"{_pct(o['ci95'][1])} | {_score(e)} | {_pct(e['invalid_rate'])} | "
                     f"{_pct(e.get('changed_rate'))} | {_pct(e.get('fallback_rate'))} | {_pct(e.get('p_worse_mean'))} | "
                     f"{_pct(e.get('on_task_rate'))} / {_pct(e.get('off_task_rate'))} | {_pct(e['expert_agreement'])} | {e['actions_per_s']:.2f} |")
    if any(e.get("rank_played") for e in r["sweep"]):
        lines += ["", "The policy's rank of the action played (1: its most probable):", "",
                  "| N | " + " | ".join(f"rank {k}" for k in range(1, 1 + r["player"]["candidates"])) + " |",
                  "|---:|" + "---:|" * r["player"]["candidates"]]
        for e in r["sweep"]:
            share = e.get("rank_played") or {}
            lines.append(f"| {e['test_time_steps']} | "
                         + " | ".join(_pct(share.get(str(k), 0.0)) for k in range(r["player"]["candidates"])) + " |")
    if r.get("imagination"):
        lines += ["", "## Imagination (open loop, the actions really taken)", "",
                  "| horizon | rollouts | PSNR model | PSNR copy-last-frame | pooled PSNR model / copy-last | "
                  "PSNR tokenizer ceiling | SSIM model | SSIM copy-last | cell accuracy | frame unchanged |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for h in r["imagination"]["horizons"]:
            lines.append(f"| {h['horizon']} | {h['samples']} | {h['psnr_model']:.2f} | {h['psnr_copy_last']:.2f} | "
                         f"{_pooled(h)} | {h['psnr_tokenizer_ceiling']:.2f} | {h['ssim_model']:.3f} | "
                         f"{h['ssim_copy_last']:.3f} | {_pct(h['cell_accuracy'])} | {_pct(h.get('unchanged_share'))} |")
        by = r["imagination"].get("by_outcome") or {}
        if by:
            lines += ["", "1 step ahead, by what the real step did (moved: a move went through; blocked: a move "
                      "that did not; other: not a move):", "",
                      "| outcome | windows | PSNR model | PSNR copy-last-frame | gain (95 % interval) | cell accuracy | "
                      "imagined view held |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for name, h in by.items():
                lo, hi = h["psnr_gain_ci95"]
                lines.append(f"| {name} | {h['samples']} | {h['psnr_model']:.2f} | {h['psnr_copy_last']:.2f} | "
                             f"{h['psnr_model'] - h['psnr_copy_last']:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
                             f"{_pct(h['cell_accuracy'])} | {_pct(h.get('imagined_held'))} |")
    lines += ["", "Plots: `success.png`, `scaling.png`" + (", `imagination.png`" if r.get("imagination") else "") +
              "; episodes: `episode-*.gif`; every number: `eval.json`.", ""]
    return "\n".join(lines)


def _bars(values: list[float], intervals: list) -> list[list[float]]:
    """Error-bar lengths below and above each value (never negative: a Wilson bound at 0 or 100 %
    can land a rounding error inside the value, which matplotlib refuses)."""
    return [[max(0.0, v - lo) for v, (lo, _) in zip(values, intervals)],
            [max(0.0, hi - v) for v, (_, hi) in zip(values, intervals)]]


def plots(r: dict[str, Any], out: Path) -> list[Path]:
    written = []
    first = r["sweep"][0]
    names = list(first["tasks"])
    rates = [first["tasks"][t]["rate"] * 100 for t in names]
    bars = _bars(rates, [[100 * v for v in first["tasks"][t]["ci95"]] for t in names])
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(names) + 2), 4))
    ax.bar(range(len(names)), rates, yerr=bars, capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"success per task, 95% Wilson intervals\n({first['tasks'][names[0]]['episodes']} episodes each)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=120)
    plt.close(fig)
    written.append(out / "success.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ns = [e["test_time_steps"] for e in r["sweep"]]
    os_ = [overall(e) for e in r["sweep"]]
    rs = [100 * o["rate"] for o in os_]
    ax.errorbar(ns, rs, yerr=_bars(rs, [[100 * v for v in o["ci95"]] for o in os_]),
                fmt="o-", capsize=3, label="success (all tasks), 95% CI")
    if all("open" in e for e in r["sweep"]):
        cs = [e["open"]["crafter_score"] for e in r["sweep"]]
        cis = [e["open"].get("crafter_score_ci95", [c, c]) for c, e in zip(cs, r["sweep"])]
        ax.errorbar(ns, cs, yerr=_bars(cs, cis),
                    fmt="s--", capsize=3, label="Crafter score, 95% CI")
    ax.set_xlabel("test-time steps N")
    ax.set_ylabel("%")
    ax.set_xticks(ns)
    ax.legend()
    ax.set_title("test-time scaling")
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=120)
    plt.close(fig)
    written.append(out / "scaling.png")
    if r.get("imagination") and r["imagination"]["horizons"]:
        hs = r["imagination"]["horizons"]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        x = [h["horizon"] for h in hs]
        ax.plot(x, [h["psnr_model"] for h in hs], "o-", label="model")
        ax.plot(x, [h["psnr_copy_last"] for h in hs], "s--", label="copy last frame")
        ax.plot(x, [h["psnr_tokenizer_ceiling"] for h in hs], "^:", label="tokenizer ceiling")
        ax.set_xlabel("imagined steps")
        ax.set_ylabel("PSNR (dB)")
        ax.set_xticks(x)
        ax.legend()
        ax.set_title("imagination vs real frames")
        fig.tight_layout()
        fig.savefig(out / "imagination.png", dpi=120)
        plt.close(fig)
        written.append(out / "imagination.png")
    return written


def gifs(recorded: list[dict], out: Path, action_names: list[str]) -> list[Path]:
    from rig_core.records import StepRecord
    from rig_core.viz.record import Recorder

    written = []
    for k, ep in enumerate(recorded):
        rec = Recorder(out / f"episode-{k}-{ep['task']}-{ep['seed']}.gif")
        for t, a in enumerate(ep["actions"]):
            thought, imagined = ep["thoughts"][t] if t < len(ep["thoughts"]) else ("", None)
            rec.add(StepRecord(env=0, t=t, frame=ep["frames"][t], action=int(a), action_name=action_names[int(a)],
                               thought=thought, imagined=imagined))
        path = rec.close()
        if path:
            written.append(path)
    return written


def write_report(r: dict[str, Any], out: Path, recorded: list[dict]) -> None:
    from rig_core.envs import make_env

    plots(r, out)
    gifs(recorded, out, make_env().action_names)
    atomic_write_text(out / "report.md", markdown(r))


def compare(paths: list[Path]) -> list[dict[str, Any]]:
    from rig_core.evaluate.compare import load_evaluation

    """One row per evaluation and test-time setting: success per group, Crafter score, 1-step imagination PSNR."""
    rows = []
    for p in paths:
        r = load_evaluation(p)
        im = (r.get("imagination") or {}).get("horizons") or []
        for e in r["sweep"]:
            o = overall(e)
            rows.append({"path": str(p), "player": r["player"].get("checkpoint") or r["player"].get("agent"),
                         "N": e["test_time_steps"], "episodes": o["episodes"], "success": o["rate"],
                         "success_ci95": o["ci95"],
                         "groups": {g: x["rate"] for g, x in e["groups"].items()},
                         "crafter_score": e.get("open", {}).get("crafter_score"),
                         "crafter_score_ci95": e.get("open", {}).get("crafter_score_ci95"),
                         "psnr_1step": im[0]["psnr_model"] if im else None,
                         "psnr_copy_last": im[0]["psnr_copy_last"] if im else None})
    return rows
