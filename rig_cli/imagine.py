"""`rig imagine`: roll the model forward as a world model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.errors import RigError
from rig_core.model.device import DEVICE_HELP


@handle_errors
def imagine(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="A run directory or a checkpoint."),
    frame: Optional[Path] = typer.Option(None, help="Start from this 64x64 PNG frame."),
    source: Optional[str] = typer.Option(None, "--from", help="Start from DATASET:EPISODE:STEP (shows the real frames too)."),
    actions: Optional[str] = typer.Option(None, help="Comma-separated action names to imagine, e.g. move_left,do."),
    steps: Optional[int] = typer.Option(None, help="Imagine K steps (the dataset's actions with --from, else the model's own)."),
    task: Optional[str] = typer.Option(None, help="Task whose instruction conditions the model (default: the episode's, or open)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .gif or .png strip."),
    cold: bool = typer.Option(False, "--cold", help="With --from: start without the episode's earlier steps as context."),
    no_draft: bool = typer.Option(False, "--no-draft", help="Decode imagined frames one token per forward pass "
                                  "instead of with the last frame as the draft (the same frames greedy; slower; for "
                                  "comparison)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print per-step actions and PSNR as JSON."),
) -> None:
    """Frame + actions -> imagined frames, open loop; with --from, real and imagined side by side with PSNR
    (the policy first walks the episode's earlier real steps, as when it plays; --cold skips them)."""
    from rig_core.inference.imagine import dataset_start, imagine as run, load_frame, parse_source, write_output
    from rig_core.inference.policy import RigPolicy
    from rig_core.tasks import load_suite
    from rig_core.viz.record import write_beside

    if (frame is None) == (source is None):
        raise RigError("pass exactly one of --frame F.png or --from DATASET:EPISODE:STEP", "see rig imagine --help")
    if actions is None and steps is None:
        raise RigError("say what to imagine: --actions a,b,c or --steps K", "e.g. --steps 5")
    if steps is not None and steps < 1:
        raise RigError(f"--steps {steps} must be at least 1", "pass a positive number")
    policy = RigPolicy.from_checkpoint(checkpoint, device=device, draft=not no_draft)
    names = policy.tok.action_names
    wanted = None
    if actions is not None:
        wanted = [a.strip() for a in actions.split(",") if a.strip()]
        bad = [a for a in wanted if a not in names]
        if bad:
            raise RigError(f"unknown action(s) {', '.join(bad)}", f"use names from: {', '.join(names)}")
        wanted = [names.index(a) for a in wanted]
    real = past = None
    suite = load_suite("crafter")
    instruction = suite.get(task or "open").instruction(0)
    if source is not None:
        path, ep_i, t = parse_source(source)
        got = dataset_start(path, ep_i, t, len(wanted) if wanted is not None else steps, wanted, cold)
        start, real, wanted, past = got["start"], got["real"], got["actions"], got["past"]
        instruction = suite.get(task).instruction(0) if task else (got["instruction"] or instruction)
    else:
        start = load_frame(frame, tuple(policy.image_tok.frame_shape))
        if wanted is None:
            wanted = [None] * steps
    res = run(policy, start, wanted, instruction, real, past)
    written = write_output(out, start, res, names, real)
    summary = {"out": str(written), "actions": [names[a] for a in res["actions"]], "thoughts": res["thoughts"],
               "context_steps": res["context_steps"]}
    if real is not None:
        summary["psnr"] = [round(x, 2) for x in res["psnr"]]
        summary["psnr_copy_last_frame"] = [round(x, 2) for x in res["psnr_copy_last"]]
    write_beside(written, {"checkpoint": str(checkpoint), "task": task, "start": source or str(frame), "cold": cold,
                           "draft": not no_draft, **summary}, command_line())
    if json_output:
        print_json(summary)
    else:
        typer.echo(f"wrote {written}: {len(res['actions'])} imagined steps"
                   + (f", PSNR {', '.join(f'{x:.1f}' for x in summary['psnr'])} dB "
                      f"(copy-last-frame {', '.join(f'{x:.1f}' for x in summary['psnr_copy_last_frame'])})" if real is not None else ""))
