"""`rig augment`: add reasoning text (and, later, review data) to a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.annotate.augment import ReasonConfig, run_reason
from rig_core.config import ReviewConfig
from rig_core.errors import RigError
from rig_core.model.device import DEVICE_HELP
from rig_core.viz.tables import print_reason_summary, print_review_summary


@handle_errors
def augment(
    stage: str = typer.Option(..., "--stage", help="What to add: reason (reasoning text per step) or review "
                              "(roll out a RIG-basic checkpoint; the expert judges its imagined proposals)."),
    data: Path = typer.Option(..., "--data", help="Input dataset (never modified)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    checkpoint: Optional[Path] = typer.Option(None, help="[review] RIG-basic run or checkpoint to roll out."),
    episodes: int = typer.Option(8, help="[review] Episodes to roll out (tasks cycle through the input's)."),
    horizon: int = typer.Option(3, help="[review] Imagined steps per proposal, each simulated in a fork."),
    confirm_share: float = typer.Option(0.5, help="[review] Share of confirmations among the selected samples."),
    confirm_floor: float = typer.Option(0.0, help="[review] Share of each episode's confirmations kept at least "
                                        "(an episode with no correction still teaches the review to confirm)."),
    follow: str = typer.Option("corrected", help="[review] Action the rollout takes: corrected, policy or expert."),
    candidates: Optional[int] = typer.Option(None, help="[review] Also candidate samples: at every state the "
                                             "policy's K most probable actions after its thought and the expert's, "
                                             "each imagined --horizon steps by the policy and judged fine or worse "
                                             "(review/candidates/*: rig train --stage lookahead --set "
                                             "mix_verify=0.2 trains the review on them)."),
    batch: int = typer.Option(8, help="[review] Environments per worker played in lock-step."),
    max_steps: Optional[int] = typer.Option(None, help="[review] Step limit per episode (default: the task's)."),
    annotator: str = typer.Option("rules", help="rules (default, offline) or vlm (an OpenAI-compatible endpoint)."),
    seed: Optional[int] = typer.Option(None, help="Seed (reason: phrasing choice, default 0; review: first world "
                                       "seed and phrasing, default 500000)."),
    workers: int = typer.Option(1, help="Parallel worker processes (one shard each)."),
    backend: str = typer.Option("process", help="[review] Where episodes run: process (worker processes here) or ray "
                                "(Ray tasks; needs pip install 'rig[ray]')."),
    address: Optional[str] = typer.Option(None, help="[review] With --backend ray: an existing Ray cluster "
                                          "(ray://HEAD:10001, or auto); default: a local Ray with --workers CPUs, "
                                          "shut down after."),
    device: str = typer.Option("auto", help="[review] " + DEVICE_HELP),
    no_draft: bool = typer.Option(False, "--no-draft", help="[review] Decode imagined frames one token per forward "
                                  "pass instead of with the last frame as the draft (the same distribution; slower; "
                                  "for comparison)."),
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
    """Write a new dataset: reasoning text for every step, or review samples (the input is never modified)."""
    if stage == "review":
        rcfg = ReviewConfig(out=str(out), data=str(data), checkpoint=str(checkpoint or ""), episodes=episodes,
                            seed=500_000 if seed is None else seed, workers=workers, horizon=horizon,
                            confirm_share=confirm_share, confirm_floor=confirm_floor, follow=follow,
                            batch=batch, max_steps=max_steps, backend=backend, address=address, device=device,
                            draft=not no_draft, candidates=candidates)
        from rig_core.review.runner import run_review

        summary = run_review(rcfg, command=command_line(), resume=resume, quiet=quiet or json_output)
        if json_output:
            print_json(summary)
        elif not quiet:
            print_review_summary(summary)
        return
    if stage != "reason":
        raise RigError(f"unknown stage '{stage}'", "use --stage reason or --stage review")
    if backend != "process" or address is not None or candidates is not None:
        raise RigError("--backend, --address and --candidates apply to --stage review only",
                       "drop them for --stage reason")
    cfg = ReasonConfig(data=str(data), out=str(out), annotator=annotator, seed=seed or 0, workers=workers,
                       copy_frames=copy_frames, model=model, base_url=base_url, api_key_env=api_key_env,
                       cache_dir=str(cache_dir) if cache_dir else None, concurrency=concurrency)
    summary = run_reason(cfg, command=command_line(), resume=resume, quiet=quiet or json_output)
    if json_output:
        print_json(summary)
    elif not quiet:
        print_reason_summary(summary)
