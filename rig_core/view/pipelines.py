"""A pipeline in the viewer: its stages with their status and time, and a view of every stage that made a
dataset or an evaluation (a sub-site each, linked from the pipeline's page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from rig_core.pipeline.plan import read_state
from rig_core.view.detect import kind_of
from rig_core.view.site import Site


def write_pipeline(site: Site, path: Path, write_child: Callable[[Path, Path, str], dict[str, Any]],
                   report=None) -> dict[str, Any]:
    """``write_child(stage_folder, site_folder, up_title)`` writes one stage's sub-site."""
    path = Path(path)
    state = read_state(path)
    stages = []
    for name, rec in state.get("stages", {}).items():
        folder = path / name
        row = {"stage": name, "run": rec.get("run"), "status": rec.get("status"), "wall_s": rec.get("wall_s"),
               "folder": name, "view": None, "what": ""}
        kind = kind_of(folder, quiet=True) if folder.is_dir() else None
        if kind in ("dataset", "evaluation") and rec.get("status") == "complete":
            info = write_child(folder, site.child(name), "pipeline " + path.name)
            site.add_child(info)
            row["view"] = f"{name}/index.html"
            row["what"] = f"{info['episodes']} episodes, {info['steps']} steps"
        elif rec.get("run") == "play":
            row["gif"] = site.copy_file(folder / "play.gif", f"plots/{name}.gif")
            row["what"] = "one recorded episode"
        elif rec.get("run") == "train":
            row["what"] = _train_summary(folder)
        stages.append(row)
    facts = [["path", str(path)], ["stages", str(len(stages))]]
    recipe = path / "recipe.yaml"
    if recipe.is_file():
        import yaml

        facts.append(["recipe", str((yaml.safe_load(recipe.read_text()) or {}).get("source", ""))])
    return {"kind": "pipeline", "title": f"pipeline {path.name}", "facts": facts, "stages": stages, "episodes": []}


def _train_summary(folder: Path) -> str:
    """The last held-out evaluation of a training run, in a few words."""
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        return ""
    last = None
    for line in metrics.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "loss" in row and "step" in row:
            last = row
    if last is None:
        return ""
    return f"step {last['step']}, held-out loss {last['loss']:.3f}" + (
        f", action accuracy {100 * last['act_accuracy']:.0f} %" if isinstance(last.get("act_accuracy"), float) else "")
