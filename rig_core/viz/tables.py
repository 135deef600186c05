"""Rich tables for dataset and collection summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from rig_core.ui import stdout_console


def summary_tables(s: dict[str, Any]) -> list[Table]:
    head = Table(title=f"dataset {s['path']}", show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    state = "complete" if s["complete"] else f"INCOMPLETE ({s['episodes']}/{s['episodes_planned']})"
    rows = [
        ("env", f"{s['env']['id']} {s['env']['version']}"),
        ("stages", ", ".join(s["stages"])),
        ("state", state),
        ("episodes", f"{s['episodes']}"),
        ("steps", f"{s['steps']:,}"),
        ("agents", ", ".join(s["agents"])),
        ("deaths", f"{s['deaths']}"),
        ("mean length", f"{s['mean_length']:.1f}"),
        ("shards", f"{s['shards']} ({s['bytes_on_disk'] / 1e6:.2f} MB)"),
        ("bytes / frame", f"{s['bytes_per_frame']:,.0f} (frames only), {s['bytes_per_step_total']:,.0f} (all data)"),
    ]
    if s.get("steps_per_s"):
        rows.append(("throughput", f"{s['steps_per_s']:,.0f} steps/s over {s['elapsed_s']:.1f} s"))
    for k, v in rows:
        head.add_row(k, v)

    tasks = Table(title="success per task", title_justify="left")
    for col, just in (("task", "left"), ("episodes", "right"), ("success", "right"),
                      ("95% CI", "right"), ("mean length", "right")):
        tasks.add_column(col, justify=just)
    for name, t in s["tasks"].items():
        lo, hi = t["ci95"]
        rate = "-" if name == "open" else f"{100 * t['success_rate']:.1f}%"
        ci = "-" if name == "open" else f"{100 * lo:.0f}-{100 * hi:.0f}%"
        tasks.add_row(name, str(t["episodes"]), rate, ci, f"{t['mean_length']:.0f}")

    ach = Table(title="achievements unlocked (episodes)", title_justify="left")
    ach.add_column("achievement")
    ach.add_column("episodes", justify="right")
    ach.add_column("share", justify="right")
    n = max(s["episodes"], 1)
    for name, count in s["achievements"].items():
        ach.add_row(name, str(count), f"{100 * count / n:.0f}%", style=None if count else "dim")
    return [head, tasks, ach]


def print_summary(s: dict[str, Any]) -> None:
    for table in summary_tables(s):
        stdout_console().print(table)
    if s.get("review"):
        print_review_summary(s["review"])


def print_reason_summary(s: dict[str, Any]) -> None:
    t = Table(title=f"reasoning added: {s['path']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("steps annotated", f"{s['steps_annotated']:,}")
    t.add_row("tokens per text", f"mean {s['tokens_mean']:.1f}, max {s['tokens_max']} (words and punctuation)")
    t.add_row("distinct texts", f"{100 * s['distinct_share']:.1f}%")
    t.add_row("action consistency", f"{100 * s['action_consistency']:.2f}% (the action each text commits to)")
    t.add_row("grounded", f"{100 * s['grounded']:.2f}% (texts naming only what is in view or held)")
    t.add_row("sources", ", ".join(f"{k} {v}" for k, v in s["sources"].items() if v))
    if "vlm" in s:
        t.add_row("VLM", ", ".join(f"{k} {v}" for k, v in s["vlm"].items()))
    if s.get("elapsed_s"):
        t.add_row("time", f"{s['elapsed_s']:.1f} s")
    stdout_console().print(t)


def print_review_summary(s: dict[str, Any]) -> None:
    t = Table(title=f"review data: {s['dataset']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("episodes", f"{s['episodes']} ({s['steps']:,} steps, task success {100 * (s['success_rate'] or 0):.0f}%)")
    t.add_row("states reviewed", f"{s['states']:,} x horizon {s['horizon']} = {s['samples']:,} samples")
    if s.get("expert_agreement") is not None:
        t.add_row("proposal = expert's action", f"{100 * s['expert_agreement']:.1f}%")
    t.add_row("verdicts", ", ".join(f"{k} {v}" for k, v in s["verdicts"].items()))
    t.add_row("reasons (worse)", ", ".join(f"{k} {v}" for k, v in s["reasons"].items()) or "-")
    t.add_row("selected for review", f"{s['selected']:,} ({s['selected_corrections']:,} corrections, "
              f"{s['selected_confirmations']:,} confirmations)")
    fmt = lambda xs: ", ".join("-" if x is None else f"{x:.1f}" for x in xs)  # noqa: E731
    t.add_row("imagined vs real PSNR", f"{fmt(s['imagination_psnr_db'])} dB (steps 1..{s['horizon']})")
    t.add_row("copy-last-frame PSNR", f"{fmt(s['copy_last_psnr_db'])} dB")
    m = s.get("imagined_moves")
    if m and m["moves"]:
        pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
        auc = "" if m["auc"] is None else f"; AUC {m['auc']:.2f} [{m['auc_ci95'][0]:.2f}, {m['auc_ci95'][1]:.2f}]"
        t.add_row("imagined moves (step 1)", f"{m['moves']:,} proposed: {m['blocked']:,} blocked, {m['through']:,} went "
                  f"through, {m['unclear']:,} unclear; the imagined view held for {pct(m['imagined_held_when_blocked'])} "
                  f"of the blocked, {pct(m['imagined_held_when_through'])} of the others{auc}")
    c = s.get("candidates")
    if c:
        pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
        t.add_row(f"candidates (top {c['k']} + the expert's)",
                  f"{c['samples']:,} judged at {c['states']:,} states; worse by the policy's rank: "
                  + ", ".join(pct(x) for x in c["worse_by_rank"]) + f"; top one worse and another fine "
                  f"{pct(c['top1_worse_another_fine'])}; the expert's action outside the top {c['k']} "
                  f"{pct(c['expert_outside_top_k'])}")
    if s.get("elapsed_s"):
        t.add_row("time", f"{s['elapsed_s']:.1f} s")
    stdout_console().print(t)


def print_train_summary(s: dict[str, Any]) -> None:
    t = Table(title=f"run {s['run']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("steps", str(s["steps"]))
    if s.get("train_loss") is not None:
        t.add_row("train loss", f"{s['train_loss']:.4f}")
    for k, v in (s.get("val") or {}).items():
        if k.startswith("loss") or k == "action_acc":
            t.add_row(f"held-out {k.replace('_', ' ')}", "-" if v is None else f"{v:.4f}")
    if s.get("tokenizer_psnr_db") is not None:
        t.add_row("image tokenizer PSNR", f"{s['tokenizer_psnr_db']:.2f} dB (held-out frames)")
    t.add_row("tokens seen", f"{s['tokens_seen']:,}")
    t.add_row("time", f"{s['elapsed_s']:.1f} s")
    t.add_row("checkpoint", s["checkpoint"])
    if s.get("best"):
        b = s["best"]
        t.add_row(f"best held-out {b['metric'].replace('_', ' ')}",
                  f"{b['value']:.4f} at step {b['step']}: {b['checkpoint']}"
                  + ("; stopped early (patience)" if s.get("stopped_early") else ""))
    stdout_console().print(t)


def print_eval(r: dict[str, Any], out) -> None:
    t = Table(title="evaluation (95% Wilson intervals)", title_justify="left")
    for col in ("N", "task", "episodes", "success", "95% CI"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for e in r["sweep"]:
        for tid, x in e["tasks"].items():
            t.add_row(str(e["test_time_steps"]), tid, str(x["episodes"]), f"{100 * x['rate']:.1f}%",
                      f"{100 * x['ci95'][0]:.0f}-{100 * x['ci95'][1]:.0f}%")
    stdout_console().print(t)
    for e in r["sweep"]:
        o = e["overall"]
        extra = f", Crafter score {e['open']['crafter_score']:.2f}%" if "open" in e else ""
        if "open" in e:
            extra += " ({:.2f}-{:.2f})".format(*e["open"]["crafter_score_ci95"])
        agree = "" if e["expert_agreement"] is None else f", expert agreement {100 * e['expert_agreement']:.1f}%"
        if e["test_time_steps"] and "changed_rate" in e:
            agree += (f", review changed {100 * e['changed_rate']:.1f}% of proposals"
                      f" (cut-off texts kept {100 * e['fallback_rate']:.1f}%)")
            if e.get("p_worse_mean") is not None:
                agree += f", mean P(correction) {100 * e['p_worse_mean']:.1f}%"
        if e.get("rank_played"):
            agree += f", played the policy's top action {100 * e['rank_played'].get('0', 0.0):.1f}%"
        if e.get("off_task_rate") is not None:
            agree += f", thoughts off task {100 * e['off_task_rate']:.1f}%"
        stdout_console().print(f"N={e['test_time_steps']}: success {100 * o['rate']:.1f}% "
                   f"({100 * o['ci95'][0]:.1f}-{100 * o['ci95'][1]:.1f}%, {o['episodes']} episodes), invalid outputs {100 * e['invalid_rate']:.2f}%{agree}{extra}, "
                   f"{e['actions_per_s']:.2f} actions/s")
    for h in (r.get("imagination") or {}).get("horizons", []):
        pooled = ("" if h.get("psnr_pooled_model") is None else
                  f"; pooled {h['psnr_pooled_model']:.2f} vs {h['psnr_pooled_copy_last']:.2f}")
        stdout_console().print(f"imagination {h['horizon']}-step: PSNR {h['psnr_model']:.2f} dB (copy-last {h['psnr_copy_last']:.2f}, "
                   f"tokenizer ceiling {h['psnr_tokenizer_ceiling']:.2f}{pooled}), SSIM {h['ssim_model']:.3f}, "
                   f"cells {100 * h['cell_accuracy']:.1f}%")
    stdout_console().print(f"wrote {out}/eval.json, report.md, plots and GIFs")


def print_compare(rows: list[dict[str, Any]]) -> None:
    t = Table(title="evaluations side by side", title_justify="left")
    groups = sorted({g for r in rows for g in r["groups"]})
    for col in ("player", "N", "episodes", "success", "95% CI", *groups, "Crafter score", "PSNR 1-step", "copy-last"):
        t.add_column(col, justify="left" if col == "player" else "right")
    f = lambda x, pct=True: "-" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.2f}")
    for r in rows:
        t.add_row(str(r["player"]), str(r["N"]), str(r["episodes"]), f(r["success"]),
                  f"{f(r['success_ci95'][0])}-{f(r['success_ci95'][1])}",
                  *[f(r["groups"].get(g)) for g in groups],
                  "-" if r["crafter_score"] is None else f"{r['crafter_score']:.2f}%",
                  f(r["psnr_1step"], False), f(r["psnr_copy_last"], False))
    stdout_console().print(t)


def print_paired(result: dict[str, Any]) -> None:
    """Every player against the baseline: success difference with its 95 % interval, McNemar, reward."""
    t = Table(title=f"against {result['baseline']}", title_justify="left")
    for col in ("player", "pairing", "episodes", "success", "difference", "95% CI", "McNemar p", "reward diff",
                "achievements diff", "episodes to separate"):
        t.add_column(col, justify="left" if col in ("player", "pairing") else "right")
    pct = lambda x: f"{100 * x:+.1f}"
    for r in result["rows"]:
        lo, hi = r["success_diff_ci95"]
        t.add_row(r["player"], "paired" if r["paired"] else "unpaired: seeds differ", str(r["episodes"][1]),
                  f"{100 * r['success']:.1f}%", pct(r["success_diff"]), f"{pct(lo)} to {pct(hi)}",
                  "-" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.3g}",
                  f"{r['reward_diff']:+.2f} [{r['reward_diff_ci95'][0]:+.2f}, {r['reward_diff_ci95'][1]:+.2f}]",
                  f"{r['achievements_diff']:+.2f}",
                  "-" if r["episodes_to_separate"] is None else f"~{r['episodes_to_separate']}")
    stdout_console().print(t)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def print_pipeline_plan(s: dict[str, Any]) -> None:
    """The plan of `rig pipeline`: each stage kept, resumed, run or redone, why, and its estimated time."""
    t = Table(title=f"pipeline {Path(s['recipe']).name} -> {s['out']}" + (" (dry run)" if s["dry_run"] else ""))
    for col in ("stage", "runs", "plan", "why", "est. time"):
        t.add_column(col, justify="right" if col == "est. time" else "left")
    colour = {"keep": "green", "resume": "yellow", "run": "cyan", "redo": "magenta"}
    for r in s["stages"]:
        t.add_row(r["stage"], r["run"], f"[{colour[r['action']]}]{r['action']}[/]", r["why"],
                  "-" if r["action"] == "keep" else _minutes(r["estimate_s"]))
    t.caption = f"estimated total {_minutes(s['estimate_s'])} (rates measured on 2 CPU cores, or in this folder)"
    stdout_console().print(t)


def print_models(rows: list[dict[str, Any]]) -> None:
    """`rig models`: each shipped model's stage, size and evaluation with its interval (success over the task
    episodes, or the Crafter score of whole games)."""
    t = Table(title="shipped models (use the name as --checkpoint / --init)", title_justify="left")
    for col in ("name", "stage", "parameters", "steps", "suite", "episodes", "result", "95% CI", "model card"):
        t.add_column(col, justify="left" if col in ("name", "model card") else "right")
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"
    for r in rows:
        ev = r.get("evaluation") or {}
        whole = ev.get("open") or {}
        if "crafter_score" in whole:  # whole games: the Crafter score (a percentage already)
            lo, hi = whole.get("crafter_score_ci95", [0.0, 0.0])
            result, ci = f"Crafter score {whole['crafter_score']:.1f}", f"{lo:.1f}-{hi:.1f}"
        else:
            lo, hi = ev.get("success_ci95", [None, None])
            result, ci = f"{pct(ev.get('success'))} success", f"{pct(lo)}-{pct(hi)}"
        t.add_row(r["name"], str(r.get("stage")), f"{(r.get('parameters') or 0) / 1e6:.1f}M",
                  str(r.get("training_steps")), str(ev.get("suite", "-")), str(ev.get("episodes", "-")),
                  result, ci, f"{r['path']}/README.md")
    if not rows:
        t.caption = "no shipped models in this installation"
    stdout_console().print(t)
