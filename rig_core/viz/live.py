"""The live view of `rig play --live`: real and imagined frames side by side, thought, action, state."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rig_core.records import StepRecord
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
        info.add_row("review", review_words(rec))
    if rec.candidates and len(rec.candidates) > 1:
        info.add_row("candidates", candidate_words(rec))
    info.add_row("vitals", "  ".join(f"{k} {rec.inventory.get(k, 0)}" for k in VITALS))
    items = {k: v for k, v in rec.inventory.items() if k not in VITALS and v > 0}
    info.add_row("inventory", ", ".join(f"{k} {v}" for k, v in items.items()) or "(empty)")
    info.add_row("achievements", ", ".join(rec.unlocked) or "(none yet)")
    parts = [frames, info]
    if header:
        parts.insert(0, Text(header, style="bold"))
    return Group(*parts)


def review_words(rec: StepRecord) -> str:
    """The review of a lookahead step: the proposal, P(correction), the text, and what changed."""
    p = "" if rec.p_worse is None else f"P(correction) {rec.p_worse:.2f}: "
    changed = f" [{rec.proposed_name} -> {rec.action_name}]" if rec.proposed_name not in ("", rec.action_name) else ""
    return f"{p}{' '.join(rec.review.split())}{changed}"


def candidate_words(rec: StepRecord) -> str:
    """The policy's candidates of a step, in its order, with the review's P(worse) of each; the one played marked."""
    return ", ".join(f"{'*' if a == rec.action else ''}{name}" + ("" if p is None else f" {p:.2f}")
                     for a, name, _, p in rec.candidates)


def log_line(rec: StepRecord) -> str:
    """One line per step for --no-live runs and logs (with lookahead, the review follows the thought; with
    candidates, each with its P(worse), the one played starred)."""
    thought = " | " + " ".join(rec.thought.split()) if rec.thought else ""
    review = " | review " + review_words(rec) if rec.review else ""
    if rec.candidates and len(rec.candidates) > 1:
        review += " | P(worse) " + candidate_words(rec)
    ach = f" | unlocked {rec.unlocked[-1]}" if rec.reward >= 1.0 and rec.unlocked else ""
    return f"t={rec.t:5d} {rec.action_name:<20}{thought}{review}{ach}"
