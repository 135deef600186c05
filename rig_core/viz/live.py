"""The live view of `rig play --live`: real and imagined frames side by side, thought, action, state."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rig_core.inference.episodes import StepRecord
from rig_core.viz.terminal import halfblock

VITALS = ("health", "food", "drink", "energy")


def live_view(rec: StepRecord, *, task: str, rate: float, header: str = "") -> Group:
    """A renderable of one step; redrawn every step by rich.live (works over SSH: plain ANSI)."""
    frames = Table.grid(padding=(0, 1))
    frames.add_row(Panel(halfblock(rec.frame), title="real frame", expand=False),
                   Panel(halfblock(rec.imagined) if rec.imagined is not None else Text("(no imagination)"),
                         title="imagined next frame", expand=False))
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold cyan", no_wrap=True)
    info.add_column(overflow="fold")
    info.add_row("task", task)
    info.add_row("step", f"{rec.t}   {rate:.1f} actions/s")
    if rec.thought:
        info.add_row("thought", rec.thought)
    info.add_row("action", f"[bold]{rec.action_name}[/]" + ("" if rec.valid else " [red](thought cut at the limit)[/]"))
    if rec.review:
        info.add_row("review", rec.review)
    info.add_row("vitals", "  ".join(f"{k} {rec.inventory.get(k, 0)}" for k in VITALS))
    items = {k: v for k, v in rec.inventory.items() if k not in VITALS and v > 0}
    info.add_row("inventory", ", ".join(f"{k} {v}" for k, v in items.items()) or "(empty)")
    info.add_row("achievements", ", ".join(rec.unlocked) or "(none yet)")
    parts = [frames, info]
    if header:
        parts.insert(0, Text(header, style="bold"))
    return Group(*parts)


def log_line(rec: StepRecord) -> str:
    """One line per step for --no-live runs and logs."""
    thought = " | " + " ".join(rec.thought.split()) if rec.thought else ""
    ach = f" | unlocked {rec.unlocked[-1]}" if rec.reward >= 1.0 and rec.unlocked else ""
    return f"t={rec.t:5d} {rec.action_name:<20}{thought}{ach}"
