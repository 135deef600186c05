"""Data-parallel training: two CPU processes over gloo (`rig train --processes 2`, which is `accelerate
launch`) train exactly like one process with the same global batch, write one set of checkpoints and
metrics, report once, and resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import one_line_error, rig
from rig_core.train.launch import launch_command, without_processes

ARGS = ["--recipe", "tiny", "--max-steps", "6", "--batch-size", "4", "--eval-every", "3", "--save-every", "3",
        "--seed", "5"]


def metrics(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]


def rig_subprocess(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig_cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "160"})


def assert_same_curve(a: Path, b: Path, tol: float = 1e-4) -> None:
    ma, mb = metrics(a), metrics(b)
    assert [(m["split"], m["step"]) for m in ma] == [(m["split"], m["step"]) for m in mb]
    for x, y in zip(ma, mb):
        assert abs(x["loss"] - y["loss"]) < tol, (x, y)
        if x["split"] == "train":
            assert x["tokens"] == y["tokens"]  # the two processes together saw the same global batch


@pytest.fixture(scope="module")
def runs(reasoned_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    one = rig("train", "--data", reasoned_dataset, "--out", root / "one", *ARGS, "--quiet")
    assert one.exit_code == 0, one.output
    two = rig_subprocess("train", "--data", reasoned_dataset, "--out", root / "two", *ARGS, "--processes", "2",
                         "--threads", "1", "--json")
    assert two.returncode == 0, two.stderr[-3000:]
    return root / "one", root / "two", two.stdout


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    one, two, stdout = runs
    assert_same_curve(one, two)
    summary = json.loads(stdout)  # one summary: only the first process reports
    assert summary["processes"] == 2 and summary["steps"] == 6
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["000003", "000006", "last"]


def test_two_process_run_resumes(runs, tmp_path):
    one, two, _ = runs
    copy = tmp_path / "copy"
    shutil.copytree(two, copy, symlinks=True)
    shutil.rmtree(copy / "checkpoints" / "000006")
    (copy / "checkpoints" / "last").unlink()
    os.symlink("000003", copy / "checkpoints" / "last")
    single = tmp_path / "single"  # the same interrupted run, resumed in one process
    shutil.copytree(copy, single, symlinks=True)
    r = rig_subprocess("train", "--resume", copy, "--processes", "2", "--threads", "1", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_curve(one, copy)
    r = rig("train", "--resume", single, "--quiet")
    assert r.exit_code == 0, r.output
    assert_same_curve(one, single)


def test_launch_command_and_bad_process_counts():
    argv = ["--data", "d", "--processes", "2", "--out", "o", "--threads=1", "--json"]
    assert without_processes(argv) == ["--data", "d", "--out", "o", "--json"]
    cmd, env = launch_command(2, argv, threads=1)
    assert cmd[cmd.index("--num_processes") + 1] == "2" and env["OMP_NUM_THREADS"] == "1"
    assert cmd[-5:] == ["train", "--data", "d", "--out", "o", "--json"][-5:]
    assert "at least 2" in one_line_error(rig("train", "--data", "d", "--out", "o", "--processes", "0"))


def test_a_finished_process_leaves_its_process_group():
    """A process that exits with its gloo group still open can abort at interpreter shutdown, so the end of a
    run waits for every process and destroys the group."""
    import torch.distributed as dist

    from rig_core.train.distributed import Sync

    class TwoProcesses:  # what Sync reads of an Accelerator; the group itself is a real one-member gloo group
        num_processes, process_index, is_main_process = 2, 0, True
        waited = 0

        def wait_for_everyone(self):
            self.waited += 1

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        acc = TwoProcesses()
        Sync(acc).close()
        assert acc.waited == 1 and not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
