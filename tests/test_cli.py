"""The CLI end to end at tiny size, and every bad-input path."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.data.reader import Dataset

TINY = ["--agent", "random", "--task", "basic", "--max-steps", "30"]



def test_collect_json_summary_and_info(tmp_path):
    out = tmp_path / "d"
    r = rig("collect", "--out", out, "--episodes", 3, *TINY, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["episodes"] == 3 and s["complete"] and s["steps"] == sum(t["steps"] for t in s["tasks"].values())
    man = json.loads((out / "dataset.json").read_text())
    assert man["schema_version"] == 1 and man["producer"]["config"]["episodes"] == 3
    assert "h5py" in man["producer"]["versions"] and man["producer"]["command"].startswith("rig")
    r = rig("dataset", "info", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["episodes"] == 3
    r = rig("dataset", "info", out)
    assert r.exit_code == 0 and "success per task" in r.stdout


def test_collect_tables_and_quiet(tmp_path):
    r = rig("collect", "--out", tmp_path / "a", "--episodes", 2, *TINY)
    assert r.exit_code == 0 and "achievements unlocked" in r.stdout
    r = rig("collect", "--out", tmp_path / "b", "--episodes", 2, *TINY, "--quiet")
    assert r.exit_code == 0 and r.stdout == ""


def test_gif(random_dataset, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "ep.gif"
    r = rig("dataset", "gif", random_dataset, "--episode", 1, "--out", out, "--scale", 2)
    assert r.exit_code == 0, r.output
    frames = iio.imread(out)
    with Dataset(random_dataset) as ds:
        assert len(frames) == ds.episode(1).length + 1
    assert frames.shape[1] > 128 and frames.shape[2] == 128  # text band under the 2x frame



def test_bad_inputs(tmp_path, random_dataset):
    assert "already exists" in _err(rig("collect", "--out", random_dataset, *TINY))
    assert "unknown task 'nope'" in _err(rig("collect", "--out", tmp_path / "x", "--task", "nope"))
    assert "unknown agent 'alien'" in _err(rig("collect", "--out", tmp_path / "x", "--agent", "alien"))
    assert "--workers 0" in _err(rig("collect", "--out", tmp_path / "x", "--workers", 0))
    assert "--episodes 0" in _err(rig("collect", "--out", tmp_path / "x", "--episodes", 0, *TINY))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write" in _err(rig("collect", "--out", blocker / "sub", *TINY))
    assert "nothing to resume" in _err(rig("collect", "--out", tmp_path / "empty", *TINY, "--resume"))
    assert not (tmp_path / "x").exists(), "a rejected run writes nothing"
    # a shard that is not HDF5
    bad = tmp_path / "bad"
    shutil.copytree(random_dataset, bad)
    (bad / "shard-00000.h5").write_bytes(b"garbage")
    assert "not a readable HDF5 file" in _err(rig("dataset", "info", bad))
    # another schema version
    other = tmp_path / "other"
    shutil.copytree(random_dataset, other)
    doc = json.loads((other / "dataset.json").read_text())
    doc["schema_version"] = 99
    (other / "dataset.json").write_text(json.dumps(doc))
    assert "schema version 99" in _err(rig("dataset", "info", other))
    assert "does not exist" in _err(rig("dataset", "info", tmp_path / "nowhere"))
    assert "episode 42 is not in" in _err(rig("dataset", "gif", random_dataset, "-e", 42, "-o", tmp_path / "g.gif"))
    for start, stop in ((0, -1), (5, 2)):  # a range that holds no step
        assert "is outside the episode" in _err(rig("dataset", "gif", random_dataset, "--start", start, "--stop", stop,
                                                    "-o", tmp_path / "g.gif"))


def test_resume_rejects_changed_options(tmp_path):
    out = tmp_path / "d"
    assert rig("collect", "--out", out, "--episodes", 2, *TINY, "--quiet").exit_code == 0
    line = _err(rig("collect", "--out", out, "--episodes", 2, *TINY, "--seed", 5, "--resume"))
    assert "seed: stored 0, given 5" in line
    r = rig("collect", "--out", out, "--resume", "--json", "--agent", "random")
    assert r.exit_code == 0 and json.loads(r.stdout)["episodes"] == 2  # nothing left to do


def _shards(path: Path) -> list[Path]:
    return sorted(path.glob("shard-*.h5"))


def test_ctrl_c_keeps_closed_shards_and_names_the_resume_command(tmp_path):
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "rig_cli.main", "collect", "--out", str(out), "--episodes", "40",
           "--episodes-per-shard", "1", "--agent", "random", "--task", "basic", "--max-steps", "150", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "400"})
    deadline = time.time() + 120
    while time.time() < deadline and len(_shards(out)) < 1:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted:" in output and f"continue with: rig collect --out {out} --resume" in output
    assert _shards(out) and not (out / ".collect.lock").exists()
    with Dataset(out) as ds:
        assert not ds.complete and len(ds) == len(_shards(out))


def test_kill_minus_9_then_resume(tmp_path):
    """kill -9 of a two-worker collect loses only open shards; --resume completes exactly N episodes."""
    out = tmp_path / "k"
    n = 8
    cmd = [sys.executable, "-m", "rig_cli.main", "collect", "--out", str(out), "--episodes", str(n),
           "--workers", "2", "--episodes-per-shard", "1", "--agent", "random", "--task", "basic",
           "--max-steps", "150", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(_shards(out)) < 2:
        time.sleep(0.1)
    assert len(_shards(out)) >= 2, "the collector closed shards before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    closed = len(_shards(out))
    assert closed < n, "killed before the end (make episodes longer if this fails)"
    for shard in _shards(out):  # every closed shard is complete and readable
        with h5py.File(shard) as f:
            assert len(f["episodes"]) == 1
    r = subprocess.run(cmd[:-1] + ["--resume", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == n
    with Dataset(out) as ds:
        assert ds.indices() == list(range(n)) and ds.complete
        for ep in ds:
            assert ep["frames"].shape[0] == ep.length + 1
    assert not list(out.glob(".*.tmp")) and not (out / ".collect.lock").exists()


def test_tables_in_a_log_are_not_cut(capsys):
    """Printed to a pipe or a log (not a terminal), a wide table keeps every cell whole."""
    from rig_core.viz.tables import print_compare

    long = "runs/" + "a-rather-long-experiment-name/" * 3 + "checkpoints/last"
    row = {"player": long, "N": 0, "episodes": 100, "success": 0.42, "success_ci95": [0.33, 0.52],
           "groups": {"basic": 0.42, "tools": 0.1}, "crafter_score": None, "psnr_1step": 33.4, "psnr_copy_last": 29.5}
    print_compare([row, {**row, "player": "expert"}])
    out = capsys.readouterr().out
    assert "…" not in out and long in out and "success" in out and "Crafter score" in out


def test_a_comparison_printed_to_a_log_keeps_long_run_paths_whole(tiny_checkpoint, tmp_path):
    """`rig evaluate --compare` through a pipe (not a terminal), 80 columns as in a CI log: the run's long path and
    every header stay whole on one line."""
    from typer.testing import CliRunner

    from rig_cli.main import app

    run = tmp_path.joinpath(*["a-rather-long-experiment-folder"] * 4, "basic")
    shutil.copytree(tiny_checkpoint, run, symlinks=True)
    evals = [tmp_path / "eval-policy", tmp_path / "eval-random"]
    for player, out in zip((["--checkpoint", run], ["--agent", "random"]), evals):
        r = rig("evaluate", *player, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 3, "--gifs", 0,
                "--imagination-episodes", 0, "--out", out, "--quiet")
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["evaluate", "--compare", str(evals[0]), "--compare", str(evals[1])],
                           env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    assert any(str(run) in line for line in r.output.splitlines()), r.output
    for header in ("Crafter score", "episodes to separate", "achievements diff"):
        assert header in r.output


def test_the_cli_reference_is_current():
    """docs/cli.md is generated from the CLI; change an option and this fails until it is regenerated."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "scripts" / "gen_cli_docs.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    text = (repo / "docs" / "cli.md").read_text()
    for command in ("collect", "augment", "train", "play", "imagine", "evaluate", "export", "dataset info"):
        assert f"## `rig {command}`" in text
    assert "| `mix_review` |" in text  # the recipe fields --set takes
