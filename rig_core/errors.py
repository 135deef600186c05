"""User-facing errors: one line naming the problem and the fix, exit code 2."""

from __future__ import annotations


class RigError(Exception):
    """An error caused by the user's input, reported as one line with a fix.

    The CLI prints ``error: <problem>. <fix>`` and exits with code 2; no traceback
    unless ``--debug`` is given.
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem.rstrip(".")
        self.fix = fix.strip()
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.problem}. {self.fix}" if self.fix else f"{self.problem}."


class CollectInterrupted(Exception):
    """Raised after a Ctrl-C in a command that writes episodes: what was closed is kept, ``--resume``
    continues. The CLI prints the message (which names the resume command) and exits with 130."""
