"""`--backend ray`: the same episodes, shards and figures as the process backend; a dead worker is retried;
without Ray installed, one line naming the extra. Ray is started once for the module (2 CPUs)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import one_line_error, rig
from rig_core.collect.ray_backend import FAULT_ONCE

TINY = ["--agent", "random", "--task", "basic", "--max-steps", "20", "--episodes", "4", "--seed", "7"]
TIMING = {"act_seconds"}  # the only episode attribute that measures the run rather than the episode


@pytest.fixture(scope="module")
def ray_marker(tmp_path_factory):
    """A local Ray for the whole module; the path its workers watch for a one-time fault (see FAULT_ONCE)."""
    ray = pytest.importorskip("ray")
    marker = tmp_path_factory.mktemp("fault") / "die-once"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, runtime_env={"env_vars": {FAULT_ONCE: str(marker)}})
    yield marker
    ray.shutdown()


@pytest.fixture(scope="module")
def process_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("proc") / "d"
    r = rig("collect", "--out", out, *TINY, "--workers", 2, "--episodes-per-shard", 1, "--quiet")
    assert r.exit_code == 0, r.output
    return out


def _contents(root: Path) -> dict:
    """Every shard's episodes: each dataset (values, dtype, attributes) and each attribute, timing aside."""
    from rig_core.data.reader import open_shard

    out = {}
    for path in sorted(root.glob("shard-*.h5")):
        with open_shard(path) as f:
            out[path.name] = {"attrs": {k: np.asarray(v).tolist() for k, v in f.attrs.items()}}
            for key, group in f["episodes"].items():
                ep = {"attrs": {k: np.asarray(v).tolist() for k, v in group.attrs.items() if k not in TIMING}}

                def visit(name, obj, ep=ep):
                    if hasattr(obj, "dtype"):
                        ep[name] = (str(obj.dtype), obj[()], {k: np.asarray(v).tolist() for k, v in obj.attrs.items()})

                group.visititems(visit)
                out[path.name][key] = ep
    return out


def assert_same_dataset(a: Path, b: Path) -> None:
    ca, cb = _contents(a), _contents(b)
    assert list(ca) == list(cb)  # the same shard layout
    for shard in ca:
        assert ca[shard].keys() == cb[shard].keys(), shard
        assert ca[shard]["attrs"] == cb[shard]["attrs"], shard
        for key in ca[shard].keys() - {"attrs"}:
            ea, eb = ca[shard][key], cb[shard][key]
            assert ea.keys() == eb.keys(), (shard, key)
            for name in ea:
                if name == "attrs":
                    assert ea[name] == eb[name], (shard, key)
                    continue
                (da, va, aa), (db, vb, ab) = ea[name], eb[name]
                assert da == db and aa == ab, (shard, key, name)
                assert np.array_equal(va, vb), (shard, key, name)
    ma, mb = (json.loads((d / "dataset.json").read_text()) for d in (a, b))
    assert ma["shards"] == mb["shards"] and ma["complete"] and mb["complete"]


def test_a_ray_collection_equals_the_process_one(ray_marker, process_dataset, tmp_path):
    out = tmp_path / "ray"
    r = rig("collect", "--out", out, *TINY, "--workers", 2, "--episodes-per-shard", 1, "--backend", "ray", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["episodes"] == 4 and summary["complete"]
    man = json.loads((out / "dataset.json").read_text())
    assert man["producer"]["config"]["backend"] == "ray"
    assert_same_dataset(process_dataset, out)
    with pytest.raises(AssertionError):  # the comparison does see a difference
        other = tmp_path / "other"
        assert rig("collect", "--out", other, *TINY[:-1], 8, "--episodes-per-shard", 1, "--quiet").exit_code == 0
        assert_same_dataset(process_dataset, other)


def test_a_worker_that_dies_is_retried_and_every_episode_is_saved_once(ray_marker, process_dataset, tmp_path):
    """The first episode to finish kills its worker (its shard half written): Ray reruns the chunk, the shard
    is written again from scratch, and the progress events count each episode once."""
    from rig_core.collect.ray_backend import run_ray_chunks
    from rig_core.collect.runner import Collection
    from rig_core.collect.worker import chunk_indices, collect_chunks
    from rig_core.config import CollectConfig

    cfg = CollectConfig(out=str(tmp_path / "d"), agent="random", task="basic", max_steps=20, episodes=4, seed=7,
                        workers=2, episodes_per_shard=1, backend="ray")
    col = Collection(cfg, "test", resume=False)
    ray_marker.write_text("")
    events: list[tuple] = []

    def on_event(event):
        events.append(event)
        if event[0] == "shard":
            col.add_shard(event[1])

    try:
        run_ray_chunks(col.cfg, chunk_indices(list(range(4)), 2, 1), on_event, collect_chunks)
        col.write_manifest(complete=True)
    finally:
        col.unlock()
    assert not ray_marker.exists(), "no worker died"
    assert sorted(e[1]["index"] for e in events if e[0] == "episode") == [0, 1, 2, 3]
    assert sorted(e[1]["file"] for e in events if e[0] == "shard") == [f"shard-{i:05d}.h5" for i in range(4)]
    shards = {e[1]["file"]: e[1]["steps"] for e in events if e[0] == "shard"}
    assert sum(e[1] for e in events if e[0] == "steps") == sum(shards.values())
    assert not list(Path(cfg.out).glob(".*.tmp"))
    assert_same_dataset(process_dataset, Path(cfg.out))


def test_resume_with_ray_plays_only_the_missing_episodes(ray_marker, process_dataset, tmp_path):
    out = tmp_path / "d"
    shutil.copytree(process_dataset, out)
    (out / "shard-00002.h5").unlink()
    r = rig("collect", "--out", out, "--resume", "--backend", "ray", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["collected_steps"] > 0
    assert_same_dataset(process_dataset, out)


def _figures(path: Path) -> list[dict]:
    doc = json.loads(path.read_text())
    run = ("seconds", "actions_per_s", "peak_memory_mb")  # what measures the run rather than the episodes
    return [{k: v for k, v in e.items() if k not in run} for e in doc["sweep"]]


def test_evaluation_figures_are_the_same_with_ray(ray_marker, tmp_path):
    args = ["evaluate", "--agent", "random", "--suite", "basic", "--episodes", 1, "--max-steps", 12, "--gifs", 0,
            "--workers", 2, "--quiet"]
    assert rig(*args, "--out", tmp_path / "p").exit_code == 0
    r = rig(*args, "--out", tmp_path / "r", "--backend", "ray")
    assert r.exit_code == 0, r.output
    proc, ray_ = _figures(tmp_path / "p" / "eval.json"), _figures(tmp_path / "r" / "eval.json")
    assert len(proc[0]["episodes"]) == 5 and proc == ray_


def test_a_pipeline_stage_runs_on_ray_and_switching_back_keeps_it(ray_marker, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  data: {run: collect, agent: random, task: basic, episodes: 2, max_steps: 8, "
                      "backend: ray}\n")
    out = tmp_path / "run"
    r = rig("pipeline", recipe, "--out", out, "--workers", 2, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "data" / "dataset.json").read_text())["producer"]["config"]["backend"] == "ray"
    r = rig("pipeline", recipe, "--out", out, "--set", "data.backend=process", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    assert [s["action"] for s in json.loads(r.stdout)["stages"]] == ["keep"]
    line = one_line_error(rig("pipeline", recipe, "--out", out, "--set", "data.backend=dask", "--dry-run"))
    assert "unknown --backend 'dask'" in line


def test_without_ray_backend_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for args in (["collect", "--out", tmp_path / "c", "--agent", "random"],
                 ["evaluate", "--agent", "random", "--out", tmp_path / "e"],
                 ["augment", "--stage", "review", "--data", tmp_path, "--checkpoint", tmp_path / "x",
                  "--out", tmp_path / "a"]):
        line = one_line_error(rig(*args, "--backend", "ray"))
        assert "pip install 'rig[ray]'" in line, line
    assert not (tmp_path / "c").exists()  # nothing written


def test_bad_backend_options_are_one_line(tmp_path):
    assert "unknown --backend 'dask'" in one_line_error(rig("collect", "--out", tmp_path / "c", "--backend", "dask"))
    line = one_line_error(rig("collect", "--out", tmp_path / "c", "--address", "ray://head:10001"))
    assert "--address applies to --backend ray only" in line
    line = one_line_error(rig("augment", "--stage", "reason", "--data", tmp_path, "--out", tmp_path / "o",
                              "--backend", "ray"))
    assert "--stage review only" in line


def test_review_rollouts_are_the_same_with_ray(ray_marker, tiny_checkpoint, reasoned_dataset, tmp_path):
    args = ["augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset,
            "--episodes", 2, "--batch", 1, "--max-steps", 3, "--horizon", 2, "--workers", 2, "--quiet"]
    r = rig(*args, "--out", tmp_path / "p")
    assert r.exit_code == 0, r.output
    r = rig(*args, "--out", tmp_path / "r", "--backend", "ray")
    assert r.exit_code == 0, r.output
    assert_same_dataset(tmp_path / "p", tmp_path / "r")


def test_a_policy_evaluation_is_the_same_with_ray(ray_marker, tiny_checkpoint, tmp_path):
    args = ["evaluate", "--checkpoint", tiny_checkpoint, "--suite", "collect_wood", "--episodes", 2, "--max-steps", 4,
            "--gifs", 0, "--imagination-episodes", 0, "--batch", 1, "--workers", 2, "--quiet"]
    assert rig(*args, "--out", tmp_path / "p").exit_code == 0
    r = rig(*args, "--out", tmp_path / "r", "--backend", "ray")
    assert r.exit_code == 0, r.output
    assert _figures(tmp_path / "p" / "eval.json") == _figures(tmp_path / "r" / "eval.json")
