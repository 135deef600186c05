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
