"""DIR/report.md: what each stage did and the paired comparison of every evaluation the recipe declares."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rig_core.fsutil import atomic_write_text

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_report(recipe, out: Path, steps, state: dict[str, Any]) -> Path:
    records = state["stages"]
    lines = [f"# Pipeline `{recipe.path.name}`", ""]
    if recipe.description:
        lines += [recipe.description, ""]
    lines += ["| stage | runs | this time | wall time of its last run | folder |", "|---|---|---|---|---|"]
    for step in steps:
        rec = records.get(step.stage.name, {})
        done = "kept" if step.action == "keep" else step.action
        lines.append(f"| {step.stage.name} | {step.stage.kind.name} | {done} | {_duration(rec.get('wall_s'))} "
                     f"| `{step.stage.name}/` |")
    for step in steps:
        folder = out / step.stage.name
        if step.stage.kind.name == "evaluate":
            lines += ["", f"## {step.stage.name}: players on the same seeds", ""]
            report = folder / "report.md"
            if report.is_file():
                text = _IMAGE.sub(lambda m: f"![{m.group(1)}]({step.stage.name}/{m.group(2)})", report.read_text())
                lines.append(_demote(text).strip())
        elif step.stage.kind.name == "ablation" and (folder / "report.md").is_file():
            lines += ["", f"## {step.stage.name}", ""]
            text = _IMAGE.sub(lambda m: f"![{m.group(1)}]({step.stage.name}/{m.group(2)})",
                              (folder / "report.md").read_text())
            lines.append(_demote(text).strip())
        elif step.stage.kind.name == "play" and (folder / "play.gif").is_file():
            lines += ["", f"## {step.stage.name}: one recorded episode", "", f"![play]({step.stage.name}/play.gif)"]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _demote(markdown: str) -> str:
    """Headings of an included report one level down, under the stage's own heading."""
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", markdown, flags=re.M)
