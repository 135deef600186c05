"""`rig train --processes N`: the same command again under `accelerate launch`, N data-parallel processes
on this machine (gloo on CPUs, NCCL on GPUs)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from rig_core.errors import RigError


def without_processes(argv: list[str]) -> list[str]:
    """The command's own arguments minus ``--processes N`` / ``--processes=N`` / ``--threads ...``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--processes", "--threads"):
            skip = True
            continue
        if a.startswith(("--processes=", "--threads=")):
            continue
        out.append(a)
    return out


def default_threads(processes: int) -> int:
    """Threads per process: this machine's cores shared out evenly (at least one)."""
    return max(1, (os.cpu_count() or 1) // processes)


def launch_command(processes: int, argv: list[str], threads: int | None = None) -> tuple[list[str], dict[str, str]]:
    """The `accelerate launch` command line and environment that run `rig train ARGV` in ``processes``
    processes (``--multi_gpu`` is Accelerate's launcher for every multi-process run on one machine; on a
    machine without GPUs each process trains on the CPU over gloo)."""
    if processes < 2:
        raise RigError("--processes needs at least 2", "drop it to train in this process")
    if torch.cuda.is_available() and torch.cuda.device_count() < processes:
        raise RigError(f"--processes {processes} on a machine with {torch.cuda.device_count()} GPU(s)",
                       "use at most one process per GPU")
    threads = threads or default_threads(processes)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--num_cpu_threads_per_process", str(threads), "-m", "rig_cli.main", "train", *without_processes(argv)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return cmd, env


def launch(processes: int, command_line: list[str], threads: int | None = None) -> int:
    """Run ``rig train`` (``command_line`` is the whole sys.argv) in ``processes`` processes; returns their
    exit code (the first non-zero one)."""
    argv = command_line[command_line.index("train") + 1:] if "train" in command_line else []
    cmd, env = launch_command(processes, argv, threads)
    return subprocess.call(cmd, env=env)
