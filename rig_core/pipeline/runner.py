"""Running a pipeline: the plan's stages in order, each recorded in DIR/pipeline.json as it starts and ends,
then DIR/report.md."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import yaml

from rig_core.fsutil import atomic_write_json, atomic_write_text, ensure_writable_dir
from rig_core.pipeline.commands import clear, run_stage
from rig_core.pipeline.plan import STATE, Step, load_checked, plan, read_state
from rig_core.pipeline.report import write_report
from rig_core.versions import versions


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def step_row(step: Step) -> dict[str, Any]:
    return {"stage": step.stage.name, "run": step.stage.kind.name, "action": step.action, "why": step.why,
            "estimate_s": None if step.estimate_s is None else round(step.estimate_s, 1),
            "fingerprint": step.fingerprint}


def run_pipeline(recipe: str | Path, out: Path, *, sets: list[str] | None = None, until: str | None = None,
                 dry_run: bool = False, workers: int = 1, quiet: bool = False, on_plan=None) -> dict[str, Any]:
    """Plan, then (unless ``dry_run``) run every stage that is not kept; returns the plan and what ran."""
    doc = load_checked(recipe, sets)
    out = Path(out)
    steps = plan(doc, out, until, workers)
    rows = [step_row(s) for s in steps]
    summary: dict[str, Any] = {"recipe": str(doc.path), "out": str(out), "dry_run": dry_run, "stages": rows,
                               "estimate_s": round(sum(s.estimate_s or 0 for s in steps), 1)}
    if on_plan is not None:
        on_plan(summary)
    if dry_run:
        return summary
    ensure_writable_dir(out, "pipeline output")
    state = read_state(out)
    atomic_write_text(out / "recipe.yaml", yaml.safe_dump(
        {"source": str(doc.path), "sets": list(sets or []), "vars": doc.vars,
         "stages": {n: {"run": s.kind.name, **s.given} for n, s in doc.stages.items()}}, sort_keys=False))
    atomic_write_json(out / "versions.json", versions())
    start = time.perf_counter()
    for step, row in zip(steps, rows):
        if step.action == "keep":
            continue
        folder = out / step.stage.name
        if step.action in ("run", "redo"):
            clear(folder)
        rec = {"run": step.stage.kind.name, "fingerprint": step.fingerprint, "settings": step.settings,
               "inputs": step.inputs, "identities": step.identities, "status": "running", "started": _now()}
        if step.action == "resume":
            rec["resumed"] = True
        state["stages"][step.stage.name] = rec
        atomic_write_json(out / STATE, state)
        t0 = time.perf_counter()
        if not quiet:
            print(f"[{step.stage.name}] {step.stage.kind.name}: {step.action} ({step.why})", flush=True)
        run_stage(doc, step.stage, step.inputs, folder, resume=step.action == "resume", workers=workers,
                  quiet=quiet)
        wall = time.perf_counter() - t0
        rec.update(status="complete", finished=_now(), wall_s=round(wall, 2))
        if step.action != "resume" and "rate_key" in step.extra:  # a whole run measures the rate
            rec.update(rate_key=step.extra["rate_key"], units=step.extra["units"], workers=workers)
        atomic_write_json(out / STATE, state)
        row["wall_s"] = round(wall, 2)
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    summary["report"] = str(write_report(doc, out, steps, state))
    return summary
