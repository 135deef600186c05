"""`rig models`: the pretrained models that ship with rig, usable by name wherever a checkpoint is accepted."""

from __future__ import annotations

import typer

from rig_cli.common import handle_errors, print_json


@handle_errors
def models(json_output: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List the shipped models with their figures (rig play --checkpoint NAME, rig train --init NAME, ...)."""
    from rig_core.model.shipped import list_models
    from rig_core.viz.tables import print_models

    rows = list_models()
    if json_output:
        print_json(rows)
    else:
        print_models(rows)
