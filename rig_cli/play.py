"""`rig play`: run the policy (or a baseline) in the environment; --live shows it think, act and imagine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import CANDIDATE_MARGIN_HELP, CANDIDATES_HELP, command_line, handle_errors, print_json
from rig_core.model.device import DEVICE_HELP


@handle_errors
def play(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="A run directory (its last checkpoint) or a checkpoint."),
    agent: Optional[str] = typer.Option(None, help="Play a baseline instead: expert or random."),
    task: str = typer.Option("collect_wood", help="Task id (see rig collect --help), or open."),
    seed: int = typer.Option(1_000_000, help="World seed (evaluation seeds start at 1,000,000, apart from training data)."),
    test_time_steps: int = typer.Option(0, help="Imagined lookahead steps before acting (needs a lookahead checkpoint; "
                                        "with --candidates: the steps each candidate is imagined)."),
    candidates: Optional[int] = typer.Option(
        None, help=CANDIDATES_HELP),
    candidate_margin: float = typer.Option(
        0.0, help=CANDIDATE_MARGIN_HELP),
    live: bool = typer.Option(False, "--live", help="Show frame, imagination, thought and action as it plays."),
    record: Optional[Path] = typer.Option(None, help="Write a video (.gif, or .mp4 with imageio-ffmpeg)."),
    max_steps: Optional[int] = typer.Option(None, help="Step limit (default: the task's budget)."),
    temperature: Optional[float] = typer.Option(None, help="0 = greedy; > 0 samples. Default: the model's own "
                                                "(generation_config.json; greedy when it names none)."),
    max_think: int = typer.Option(64, help="Most tokens of thought per step."),
    review_threshold: Optional[float] = typer.Option(
        None, help="With --test-time-steps > 0: correct only when the review's P(correction) is at least this (0-1)."),
    history: Optional[int] = typer.Option(
        None, help="Past steps kept in the policy's context (0: the current frame only). Default: all that fit."),
    full_prefill: bool = typer.Option(False, "--full-prefill", help="Re-encode each step's whole context "
                                      "instead of keeping the KV cache across steps (slower; for comparison)."),
    no_draft: bool = typer.Option(False, "--no-draft", help="Decode imagined frames one token per forward pass "
                                  "instead of with the last frame as the draft (the same frames greedy, the same "
                                  "distribution sampled; slower; for comparison)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-step log."),
    json_output: bool = typer.Option(False, "--json", help="Print the episode's result as JSON."),
) -> None:
    """Run the policy: reason, act, imagine (and review) at every step."""
    from rig_core.inference.play_session import run_play

    result = run_play(checkpoint=checkpoint, agent=agent, task=task, seed=seed, test_time_steps=test_time_steps,
                      live=live, record=record, max_steps=max_steps, temperature=temperature, max_think=max_think,
                      review_threshold=review_threshold, history=history, step_cache=not full_prefill,
                      draft=not no_draft, quiet=quiet or json_output, device=device, candidates=candidates,
                      candidate_margin=candidate_margin)
    if "record" in result:
        from rig_core.viz.record import write_beside

        write_beside(result["record"], result, command_line())
    if json_output:
        print_json(result)
    elif not quiet:
        typer.echo(f"{result['task']} seed {result['seed']}: {'success' if result['success'] else 'no success'} "
                   f"in {result['steps']} steps, unlocked {', '.join(result['unlocked']) or 'nothing'}, "
                   f"{result['actions_per_s']} actions/s" + (f", recorded {result['record']}" if 'record' in result else ""))
