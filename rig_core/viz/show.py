"""`rig dataset show`: a step (or an episode) of a dataset as a person reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.viz.terminal import halfblock

VITALS = ("health", "food", "drink", "energy")


def step_record(root: Path, episode: int, step: int) -> dict[str, Any]:
    """Everything about one step, as plain data (the frame is not included)."""
    with Dataset(root) as ds:
        ep = ds.episode(episode)
        if not 0 <= step < ep.length:
            raise RigError(f"step {step} is outside episode {episode} (0..{ep.length - 1})", "pass --step in range")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in ep["inventory"].attrs["names"]]
        inv = dict(zip(names, ep["inventory"][step].tolist()))
        rec = {
            "episode": episode, "step": step, "task": ep.attrs.get("task"),
            "instruction": ep.attrs.get("instruction"),
            "action": ds.action_names[int(ep["actions"][step])],
            "reward": float(ep["rewards"][step]),
            "vitals": {k: inv[k] for k in VITALS if k in inv},
            "inventory": {k: v for k, v in inv.items() if k not in VITALS and v > 0},
            "reasoning": ep.texts("reasoning")[step] if "reasoning" in ep else None,
            "intent": json.loads(ep.texts("privileged/intent")[step] or "{}") if "privileged/intent" in ep else {},
        }
        ach = int(ep["achievements"][step])
        rec["achievement"] = ds.manifest["achievement_names"][ach] if ach >= 0 else None
        return rec


def render_step(root: Path, episode: int, step: int) -> Group:
    rec = step_record(root, episode, step)
    with Dataset(root) as ds:
        frame = ds.episode(episode)["frames"][step]
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold cyan", no_wrap=True)
    info.add_column(overflow="fold")
    info.add_row("episode", f"{episode}  step {step}")
    info.add_row("task", f"{rec['task']}: {rec['instruction']}")
    info.add_row("vitals", "  ".join(f"{k} {v}" for k, v in rec["vitals"].items()))
    info.add_row("inventory", ", ".join(f"{k} {v}" for k, v in rec["inventory"].items()) or "(empty)")
    info.add_row("reasoning", rec["reasoning"] or "[dim](none yet: rig augment --stage reason)[/]")
    info.add_row("action", f"[bold]{rec['action']}[/]")
    if rec["achievement"]:
        info.add_row("unlocked", rec["achievement"])
    if rec["intent"]:
        info.add_row("intent", f"[dim]{rec['intent'].get('subgoal', '')} — {rec['intent'].get('reason', '')}[/]")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(min_width=30)
    grid.add_row(Panel(halfblock(frame), title="frame", expand=False), info)
    return Group(grid)


def render_episode(root: Path, episode: int, limit: int = 40) -> Group:
    """The first frame and a table of the first ``limit`` steps."""
    with Dataset(root) as ds:
        ep = ds.episode(episode)
        actions = ep["actions"][:limit]
        texts = ep.texts("reasoning")[:limit] if "reasoning" in ep else [""] * len(actions)
        head = ", ".join(f"{k}={ep.attrs[k]}" for k in ("task", "seed", "agent", "length", "success") if k in ep.attrs)
        table = Table(title=f"episode {episode}: {head}", title_justify="left")
        table.add_column("t", justify="right")
        table.add_column("action")
        table.add_column("reasoning", overflow="fold")
        for t, (a, txt) in enumerate(zip(actions, texts)):
            table.add_row(str(t), ds.action_names[int(a)], txt)
        frame = ep["frames"][0]
    return Group(Panel(halfblock(frame), title="step 0", expand=False), table)
