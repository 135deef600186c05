"""Shared CLI plumbing: one-line errors with exit code 2, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer
from rich.markup import escape

from rig_core.errors import CollectInterrupted, RigError
from rig_core.ui import console

STATE = {"debug": False}

# options `rig evaluate` and `rig play` share
CANDIDATES_HELP = (
    "Play the best of the policy's K most probable actions after its thought: each is imagined N steps "
    "(--test-time-steps; 0: none, the review reads the action alone) and scored by the review's probability that "
    "it is worse (a lookahead checkpoint), all in one batch; the one least likely worse is played "
    "(--candidate-margin). --candidates 1 plays the policy's most probable action, with nothing imagined or "
    "scored (any checkpoint). Default: the action the policy draws.")
CANDIDATE_MARGIN_HELP = (
    "With --candidates K > 1: another candidate replaces the policy's top one only when its P(worse) is "
    "at least this much lower (0-1; 0: the least likely worse is played).")


def handle_errors(fn: Callable) -> Callable:
    """Turn a RigError into ``error: <problem>. <fix>`` on stderr and exit code 2 (traceback with --debug);
    an interrupted collection into its resume hint and exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RigError as exc:
            if STATE["debug"]:
                raise
            console.print(f"[bold red]error:[/] {escape(exc.line())}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None
        except CollectInterrupted as exc:  # Ctrl-C: what is saved stays; the message names the resume command
            console.print(f"[yellow]{exc}[/]")
            raise typer.Exit(code=130) from None

    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def command_line() -> str:
    return " ".join(["rig", *sys.argv[1:]])
