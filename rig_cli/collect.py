"""`rig collect`: run an existing agent in an environment and store trajectories."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.collect.runner import run_collect
from rig_core.config import CollectConfig
from rig_core.viz.tables import print_summary


@handle_errors
def collect(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to write."),
    env: str = typer.Option("crafter", help="Environment: crafter (default) or minerl."),
    agent: str = typer.Option("expert", help="Agent that plays: expert (scripted) or random."),
    task: str = typer.Option("open", help="A task id, a group (basic, tools, advanced, survival), all (or tasks), or open."),
    episodes: int = typer.Option(10, help="Number of episodes in the dataset."),
    seed: int = typer.Option(0, help="Seed of episode 0; episode i uses seed + i."),
    workers: int = typer.Option(1, help="Parallel worker processes."),
    epsilon: float = typer.Option(0.0, help="Probability of a random action per step (data variety)."),
    max_steps: Optional[int] = typer.Option(None, help="Step limit per episode (default: the task's budget)."),
    oracle: bool = typer.Option(False, "--oracle", help="Let the expert see the whole map, not only what it has seen."),
    episodes_per_shard: int = typer.Option(8, help="Episodes per HDF5 shard."),
    backend: str = typer.Option("process", help="Where episodes run: process (worker processes here) or ray "
                                "(Ray tasks; needs pip install 'rig[ray]')."),
    address: Optional[str] = typer.Option(None, help="With --backend ray: an existing Ray cluster (ray://HEAD:10001, "
                                          "or auto); default: a local Ray with --workers CPUs, shut down after."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted collection in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Run an existing agent in an environment and store its trajectories as an HDF5 dataset."""
    cfg = CollectConfig(out=str(out), env=env, agent=agent, task=task, episodes=episodes, seed=seed,
                        workers=workers, epsilon=epsilon, max_steps=max_steps, oracle=oracle,
                        episodes_per_shard=episodes_per_shard, backend=backend, address=address)
    summary = run_collect(cfg, command=command_line(), resume=resume, quiet=quiet or json_output)
    if json_output:
        print_json(summary)
    elif not quiet:
        print_summary(summary)
