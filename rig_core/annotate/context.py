"""What an annotator may know about one step: only what the policy can observe, plus the agent's intent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from rig_core.errors import RigError

VIEW_ROWS, VIEW_COLS = 7, 9
CENTER = (3, 4)  # (row, col) of the player in the view
VITALS = ("health", "food", "drink", "energy")
FACING_WORD = {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}
REQUIRED = ("privileged/semantic", "privileged/facing", "inventory", "actions")


def view_names(semantic: np.ndarray, names: dict) -> list[list[str]]:
    """A privileged semantic view (VIEW_ROWS x VIEW_COLS ids) as names; ``names`` maps ids (int or str) to names."""
    lookup = {int(k): str(v) for k, v in names.items()}
    return [[lookup.get(int(i), "unknown") for i in row] for row in np.asarray(semantic)]


def offsets_in_view(view: list[list[str]], name: str) -> list[tuple[int, int]]:
    """Offsets (dx, dy) from the player of every cell of ``view`` holding ``name``, nearest first."""
    found = [(c - CENTER[1], r - CENTER[0]) for r, row in enumerate(view) for c, n in enumerate(row)
             if n == name and (r, c) != CENTER]
    return sorted(found, key=lambda d: (abs(d[0]) + abs(d[1]), d))


@dataclass
class StepContext:
    """One step as the annotator sees it. Offsets are (dx, dy): dx > 0 right, dy > 0 down."""

    step: int
    task_id: str
    instruction: str
    view: list[list[str]]  # VIEW_ROWS x VIEW_COLS material/creature names, player in the centre
    inventory: dict[str, int]  # items held (count > 0), vitals excluded
    vitals: dict[str, int]
    action: str
    noise: bool
    facing: tuple[int, int]
    sleeping: bool = False
    daylight: float = 1.0
    intent: dict[str, Any] = field(default_factory=dict)
    frame: np.ndarray | None = None

    def cells(self) -> Iterator[tuple[str, int, int]]:
        """(name, dx, dy) for every cell in view but the player's own."""
        for r, row in enumerate(self.view):
            for c, name in enumerate(row):
                if (r, c) != CENTER:
                    yield name, c - CENTER[1], r - CENTER[0]

    def visible(self, name: str) -> list[tuple[int, int]]:
        """Offsets of every visible cell holding ``name``, nearest first."""
        return offsets_in_view(self.view, name)

    def visible_names(self) -> set[str]:
        return {n for n, _, _ in self.cells()}

    def front(self) -> str:
        dx, dy = self.facing
        r, c = CENTER[0] + dy, CENTER[1] + dx
        return self.view[r][c] if 0 <= r < VIEW_ROWS and 0 <= c < VIEW_COLS else "none"

    @property
    def facing_word(self) -> str:
        return FACING_WORD.get(tuple(self.facing), "down")


def episode_contexts(ep, action_names: list[str], semantic_names: dict[str, str],
                     with_frames: bool = False, actions=None) -> list[StepContext]:
    """The StepContext of every step of a stored episode (raises a clear error if state is missing).
    ``actions``: the action to phrase at each step instead of the one taken (e.g. the expert's)."""
    missing = [k for k in REQUIRED if k not in ep]
    if missing:
        raise RigError(
            f"episode {ep.index} lacks {', '.join(missing)}, which the rule annotator needs",
            "use --annotator vlm (frames only), or re-collect with rig collect (it records the privileged state)",
        )
    sem = ep.read("privileged/semantic")
    facing = ep.read("privileged/facing")
    inv = ep.read("inventory")
    item_names = [n.decode() if isinstance(n, bytes) else str(n) for n in ep["inventory"].attrs["names"]]
    actions = ep.read("actions") if actions is None else actions
    noise = ep.read("privileged/noise") if "privileged/noise" in ep else np.zeros(len(actions), bool)
    sleeping = ep.read("privileged/sleeping") if "privileged/sleeping" in ep else np.zeros(len(actions) + 1, bool)
    daylight = ep.read("privileged/daylight") if "privileged/daylight" in ep else np.ones(len(actions) + 1)
    intents = ep.texts("privileged/intent") if "privileged/intent" in ep else [""] * len(actions)
    frames = ep["frames"] if with_frames else None
    lookup = np.array([semantic_names.get(str(i), "unknown") for i in range(256)], dtype=object)
    task = str(ep.attrs.get("task", "open"))
    instruction = str(ep.attrs.get("instruction", ""))
    out = []
    for t in range(len(actions)):
        held = {n: int(v) for n, v in zip(item_names, inv[t]) if n not in VITALS and v > 0}
        vitals = {n: int(v) for n, v in zip(item_names, inv[t]) if n in VITALS}
        out.append(StepContext(
            step=t, task_id=task, instruction=instruction, view=lookup[sem[t]].tolist(), inventory=held,
            vitals=vitals, action=action_names[int(actions[t])], noise=bool(noise[t]),
            facing=(int(facing[t][0]), int(facing[t][1])), sleeping=bool(sleeping[t]),
            daylight=float(daylight[t]), intent=json.loads(intents[t]) if intents[t] else {},
            frame=frames[t] if frames is not None else None,
        ))
    return out
