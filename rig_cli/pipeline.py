"""`rig pipeline`: run the stages a recipe declares, keeping what is done and unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rig_cli.common import handle_errors, print_json


@handle_errors
def pipeline(
    recipe: str = typer.Argument(..., help="A pipeline recipe (YAML file, or a shipped one by name: quickstart, "
                                 "lookahead, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the run: one subfolder per stage."),
    set_: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                             help="Override a recipe variable (--set episodes=100) or one stage's "
                                             "setting (--set basic.max_steps=500); repeatable."),
    until: Optional[str] = typer.Option(None, help="Stop after this stage."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan (kept, resumed, run, redone; estimated "
                                 "time) and run nothing."),
    workers: int = typer.Option(1, help="Parallel worker processes for collection, review and evaluation."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the plan and what ran as JSON."),
) -> None:
    """Run a recipe's stages (collect, reason, train, review, evaluate, play) into OUT/<stage>: a stage whose
    output is complete and whose settings and inputs are unchanged is kept, an interrupted one resumes, a
    changed one is redone with everything after it. Ends with OUT/report.md."""
    from rig_core.pipeline.runner import run_pipeline
    from rig_core.viz.tables import print_pipeline_plan

    show = None if (quiet or json_output) else print_pipeline_plan
    summary = run_pipeline(recipe, out, sets=list(set_ or []), until=until, dry_run=dry_run, workers=workers,
                           quiet=quiet or json_output, on_plan=show)
    if json_output:
        print_json(summary)
    elif not quiet and not dry_run:
        print(f"done in {summary['wall_s']:.0f} s; report: {summary['report']}; see it all: rig view {out}")
