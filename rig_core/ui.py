"""Terminal output shared by every long job: a rich progress bar with rate and ETA, quiet mode."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True)

# Width of the console on a log or a pipe: no table is wide enough to reach it, so no cell is ever cut
# ("runs/…", "succe…") or folded; a table keeps its natural width (rich pads nothing to the console's width).
LOG_WIDTH = 100_000


def stdout_console() -> Console:
    """A console on the current stdout: the terminal's width on a terminal, ``LOG_WIDTH`` elsewhere."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=LOG_WIDTH)


class RateColumn(ProgressColumn):
    """A rate over a secondary counter kept in the task's fields (e.g. steps/s while counting episodes)."""

    def __init__(self, field: str, unit: str):
        super().__init__()
        self.field, self.unit = field, unit

    def render(self, task) -> Text:
        start = task.fields.get("t0")
        count = task.fields.get(self.field, 0)
        if not start or not count:
            return Text(f"- {self.unit}", style="progress.data.speed")
        rate = count / max(time.monotonic() - start, 1e-9)
        digits = 0 if rate >= 100 else 1 if rate >= 1 else 2  # slow jobs (episodes/s) keep their decimals
        return Text(f"{rate:,.{digits}f} {self.unit}", style="progress.data.speed")


class Reporter:
    """Progress for one job: ``advance`` the main counter, ``add`` to side counters shown as rates."""

    def __init__(self, progress: Progress | None, task_id=None):
        self._progress, self._task = progress, task_id
        self.counters: dict[str, float] = {}

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def add(self, name: str, n: float) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        if self._progress is not None:
            self._progress.update(self._task, **{name: self.counters[name]})

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, note=text)


@contextmanager
def progress(description: str, total: int, *, done: int = 0, quiet: bool = False,
             rate_field: str = "steps", rate_unit: str = "steps/s") -> Iterator[Reporter]:
    """A progress bar (episodes done/total, a side rate, elapsed, ETA); nothing when quiet."""
    if quiet:
        yield Reporter(None)
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(rate_field, rate_unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, completed=done, t0=time.monotonic(), note="")
        yield Reporter(bar, task)
