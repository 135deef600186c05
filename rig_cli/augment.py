"""`rig augment`: add reasoning text (and, later, review data) to a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.annotate.augment import ReasonConfig, run_reason
from rig_core.errors import RigError
from rig_core.viz.tables import print_reason_summary


@handle_errors
def augment(
    stage: str = typer.Option(..., "--stage", help="What to add: reason (reasoning text per step)."),
    data: Path = typer.Option(..., "--data", help="Input dataset (never modified)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    annotator: str = typer.Option("rules", help="rules (default, offline) or vlm (an OpenAI-compatible endpoint)."),
    seed: int = typer.Option(0, help="Seed of the phrasing choice."),
    workers: int = typer.Option(1, help="Parallel worker processes (one shard each)."),
    copy_frames: bool = typer.Option(False, "--copy-frames", help="Copy frames instead of linking to the input."),
    model: Optional[str] = typer.Option(None, help="VLM model name (with --annotator vlm)."),
    base_url: Optional[str] = typer.Option(None, help="VLM endpoint, e.g. http://127.0.0.1:8000/v1."),
    api_key_env: str = typer.Option("RIG_VLM_API_KEY", help="Environment variable holding the VLM key."),
    cache_dir: Optional[Path] = typer.Option(None, help="VLM answer cache (default: OUT/.vlm-cache)."),
    concurrency: int = typer.Option(4, help="Concurrent VLM requests."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Write a new dataset with reasoning text for every step (the input is never modified)."""
    if stage != "reason":
        raise RigError(f"unknown stage '{stage}'", "use --stage reason (review data arrives with issue 8)")
    cfg = ReasonConfig(data=str(data), out=str(out), annotator=annotator, seed=seed, workers=workers,
                       copy_frames=copy_frames, model=model, base_url=base_url, api_key_env=api_key_env,
                       cache_dir=str(cache_dir) if cache_dir else None, concurrency=concurrency)
    summary = run_reason(cfg, command=command_line(), resume=resume, quiet=quiet or json_output)
    if json_output:
        print_json(summary)
    elif not quiet:
        print_reason_summary(summary)
