"""`rig export`: turn a run into a stand-alone model directory."""

from __future__ import annotations

from pathlib import Path

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.errors import RigError
from rig_core.ui import console


@handle_errors
def export(
    run: Path = typer.Argument(..., help="Run directory (or checkpoint) holding a LoRA adapter."),
    out: Path = typer.Option(..., "--out", "-o", help="New run directory with merged full weights."),
    merge: bool = typer.Option(False, "--merge", help="Fold the adapter into the base weights."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Merge a run's LoRA adapter into its base: a run that loads with transformers alone."""
    from rig_core.train.export import export_merged

    if not merge:
        raise RigError("rig export needs --merge (the only export today)", f"run: rig export --merge {run} --out DIR")
    summary = export_merged(run, out, command=command_line())
    if json_output:
        print_json(summary)
    else:
        console.print(f"merged {summary['from']} -> {summary['run']} ({summary['parameters'] / 1e6:.2f}M parameters)")
