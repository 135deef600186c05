"""`rig dataset`: look at the data."""

from __future__ import annotations

from pathlib import Path

import typer

from rig_cli.common import handle_errors, print_json
from rig_core.errors import RigError
from rig_core.review.summary import dataset_info
from rig_core.viz.gif import episode_gif
from rig_core.viz.tables import print_summary

app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@app.command("info")
@handle_errors
def info(
    path: Path = typer.Argument(..., help="Dataset directory."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summary of a dataset: episodes, steps, success per task, achievements, storage (and for review data
    its verdicts, reasons and imagination against reality)."""
    summary = dataset_info(path)
    if json_output:
        print_json(summary)
    else:
        print_summary(summary)


@app.command("gif")
@handle_errors
def gif(
    path: Path = typer.Argument(..., help="Dataset directory."),
    episode: int = typer.Option(0, "--episode", "-e", help="Episode index."),
    out: Path = typer.Option(..., "--out", "-o", help="GIF file to write."),
    scale: int = typer.Option(4, help="Pixel scale of each frame."),
    fps: int = typer.Option(8, help="Frames per second."),
    start: int = typer.Option(0, help="First step."),
    stop: int = typer.Option(None, help="Last step (default: the episode's end)."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write an episode as a GIF with the action written under each frame."""
    result = episode_gif(path, episode, out, scale=scale, fps=fps, start=start, stop=stop)
    _wrote(result, json_output, f"{result['frames']} frames")


@app.command("show")
@handle_errors
def show(
    path: Path = typer.Argument(..., help="Dataset directory."),
    episode: int = typer.Option(0, "--episode", "-e", help="Episode index."),
    step: int = typer.Option(None, "--step", "-t", help="A step to show in full (default: an episode overview)."),
    limit: int = typer.Option(40, help="Steps listed in the episode overview."),
    json_output: bool = typer.Option(False, "--json", help="Print the step as JSON (needs --step)."),
) -> None:
    """Show a step: the frame (true-colour half-block pixels), action, reasoning, inventory."""
    from rich.console import Console

    from rig_core.viz.show import render_episode, render_step, step_record

    if json_output:
        if step is None:
            raise RigError("--json needs --step", "pass --step T")
        print_json(step_record(path, episode, step))
        return
    Console().print(render_step(path, episode, step) if step is not None else render_episode(path, episode, limit))


@app.command("export")
@handle_errors
def export(
    fmt: str = typer.Option(..., "--format", "-f", help="minari or lerobot."),
    path: Path = typer.Argument(..., help="rig dataset directory."),
    out: str = typer.Argument(..., help="minari: a dataset id (namespace/name-v0); lerobot: a new folder."),
    root: Path = typer.Option(None, help="minari: the datasets folder (default: $MINARI_DATASETS_PATH or "
                                          "~/.minari/datasets)."),
    fps: int = typer.Option(10, help="lerobot: frames per second written in meta/info.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a dataset in another format, losslessly: frames, actions, rewards, terminations, truncations,
    tasks, reasoning and every other per-step array survive a round trip."""
    from rig_core.exchange import export_dataset

    result = export_dataset(fmt, path, out, root=root, fps=fps, quiet=quiet or json_output)
    _wrote(result, json_output, f"{result['episodes']} episodes, {fmt}")


@app.command("import")
@handle_errors
def import_(
    fmt: str = typer.Option(..., "--format", "-f", help="minari or lerobot."),
    src: str = typer.Argument(..., help="minari: a dataset id; lerobot: the dataset's root folder."),
    out: Path = typer.Argument(..., help="New rig dataset directory."),
    root: Path = typer.Option(None, help="minari: the datasets folder (default: Minari's own)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Read a Minari or LeRobot dataset into a rig dataset (one exported by rig comes back identical;
    others need RGB frames and discrete actions)."""
    from rig_core.exchange import import_dataset

    result = import_dataset(fmt, src, out, root=root, quiet=quiet or json_output)
    _wrote(result, json_output, f"{result['episodes']} episodes from {fmt}")


def _wrote(result: dict, json_output: bool, what: str) -> None:
    """What a writing command made: its JSON, or one line naming the output."""
    if json_output:
        print_json(result)
    else:
        typer.echo(f"wrote {result['out']} ({what})")
