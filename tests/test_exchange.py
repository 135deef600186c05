"""`rig dataset export/import`: Minari and LeRobot round trips are exact; foreign datasets come in or get one
clear line; a LeRobot export loads in LeRobot itself (CI gives the path of a Python with lerobot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import one_line_error, rig
from rig_core.data.reader import Dataset
from rig_core.exchange.episodes import read_episode

pytest.importorskip("minari")
pytest.importorskip("pyarrow")


def assert_same_episodes(a: Path, b: Path) -> None:
    with Dataset(a) as da, Dataset(b) as db:
        assert da.indices() == db.indices()
        for ea, eb in zip(da, db):
            x, y = read_episode(ea), read_episode(eb)
            assert sorted(x.arrays) == sorted(y.arrays)
            for k, v in x.arrays.items():
                w = y.arrays[k]
                assert v.dtype == w.dtype and v.shape == w.shape and np.array_equal(v, w), k
            assert sorted(x.attrs) == sorted(y.attrs)
            for k, v in x.attrs.items():
                assert np.array_equal(v, y.attrs[k]) and type(v) is type(y.attrs[k]), k
            assert sorted(x.dataset_attrs) == sorted(y.dataset_attrs)
            for k, v in x.dataset_attrs.items():
                assert all(np.array_equal(a, y.dataset_attrs[k][n]) for n, a in v.items())
        for key in ("env", "action_names", "item_names", "achievement_names", "frame_shape", "stages"):
            assert da.manifest[key] == db.manifest[key], key
        assert db.complete


@pytest.mark.parametrize("fixture", ["reasoned_dataset", "review_dataset"])
def test_minari_round_trip_is_exact(fixture, request, tmp_path):
    data = request.getfixturevalue(fixture)
    root = tmp_path / "minari"
    r = rig("dataset", "export", "--format", "minari", data, "rig/tiny-v0", "--root", root, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["episodes"] == len(Dataset(data)) and Path(doc["out"]).is_dir()

    import minari

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        mds = minari.load_dataset("rig/tiny-v0")  # Minari itself reads it
        first = next(mds.iterate_episodes())
        with Dataset(data) as ds:
            ep = ds.episode(ds.indices()[0])
            assert np.array_equal(first.observations["frame"], ep.read("frames"))
            assert np.array_equal(first.actions, ep.read("actions"))
    finally:
        os.environ.pop("MINARI_DATASETS_PATH")
    r = rig("dataset", "import", "--format", "minari", "rig/tiny-v0", tmp_path / "back", "--root", root, "--json")
    assert r.exit_code == 0, r.output
    assert_same_episodes(data, tmp_path / "back")
    again = rig("dataset", "export", "--format", "minari", data, "rig/tiny-v0", "--root", root)
    assert "already exists" in one_line_error(again)


@pytest.mark.parametrize("fixture", ["reasoned_dataset", "review_dataset"])
def test_lerobot_round_trip_is_exact(fixture, request, tmp_path):
    data = request.getfixturevalue(fixture)
    out = tmp_path / "lerobot"
    r = rig("dataset", "export", "--format", "lerobot", data, out, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["features"]["observation.image"]["dtype"] == "image"
    assert info["total_frames"] == sum(ep.length + 1 for ep in Dataset(data))
    stats = json.loads((out / "meta" / "stats.json").read_text())  # LeRobot normalises with these
    with Dataset(data) as ds:
        frames = np.concatenate([ep.read("frames") for ep in ds]).reshape(-1, 3) / 255
        rewards = np.concatenate([np.append(ep.read("rewards"), 0.0) for ep in ds])
    assert np.allclose(np.ravel(stats["observation.image"]["mean"]), frames.mean(0))
    assert np.allclose(np.ravel(stats["observation.image"]["std"]), frames.std(0), atol=1e-6)
    assert np.allclose(stats["next.reward"]["mean"], [rewards.mean()])
    r = rig("dataset", "import", "--format", "lerobot", out, tmp_path / "back", "--json")
    assert r.exit_code == 0, r.output
    assert_same_episodes(data, tmp_path / "back")
    assert "not empty" in one_line_error(rig("dataset", "export", "--format", "lerobot", data, out))


def test_foreign_lerobot_dataset_comes_in_with_frames_and_actions(reasoned_dataset, tmp_path):
    out = tmp_path / "lerobot"
    assert rig("dataset", "export", "--format", "lerobot", reasoned_dataset, out).exit_code == 0
    (out / "meta" / "rig.json").unlink()  # now it is just a LeRobot dataset with discrete actions
    r = rig("dataset", "import", "--format", "lerobot", out, tmp_path / "back", "--json")
    assert r.exit_code == 0, r.output
    with Dataset(reasoned_dataset) as src, Dataset(tmp_path / "back") as back:
        assert len(back) == len(src)
        for a, b in zip(src, back):
            assert np.array_equal(a.read("frames"), b.read("frames"))
            assert np.array_equal(a.read("actions"), b.read("actions"))
            assert b.attrs["task"] == a.attrs["task"]


def test_lerobot_dataset_without_frames_is_one_line(reasoned_dataset, tmp_path):
    out = tmp_path / "lerobot"
    assert rig("dataset", "export", "--format", "lerobot", reasoned_dataset, out).exit_code == 0
    (out / "meta" / "rig.json").unlink()
    info = json.loads((out / "meta" / "info.json").read_text())
    del info["features"]["observation.image"]
    (out / "meta" / "info.json").write_text(json.dumps(info))
    line = one_line_error(rig("dataset", "import", "--format", "lerobot", out, tmp_path / "back"))
    assert "no camera frames" in line
    assert not (tmp_path / "back").exists()
    assert "not a LeRobot dataset" in one_line_error(rig("dataset", "import", "--format", "lerobot", tmp_path,
                                                         tmp_path / "b2"))


def _foreign_minari(root: Path, dataset_id: str, obs_space, act_space, obs, actions) -> None:
    import warnings

    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            minari.create_dataset_from_buffers(
                dataset_id, [EpisodeBuffer(id=0, seed=5, observations=obs, actions=actions, rewards=[0.0, 1.0],
                                           terminations=[False, True], truncations=[False, False])],
                observation_space=obs_space, action_space=act_space, jpeg_encoding=False)
    finally:
        os.environ.pop("MINARI_DATASETS_PATH")


def test_foreign_minari_datasets(tmp_path):
    import gymnasium as gym

    root = tmp_path / "minari"
    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    space = gym.spaces.Dict({"pixels": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8),
                             "speed": gym.spaces.Box(-1, 1, (1,), np.float32)})
    obs = {"pixels": frames, "speed": np.zeros((3, 1), np.float32)}
    _foreign_minari(root, "other/pixels-v0", space, gym.spaces.Discrete(4), obs, np.array([1, 3]))
    r = rig("dataset", "import", "--format", "minari", "other/pixels-v0", tmp_path / "in", "--root", root, "--json")
    assert r.exit_code == 0, r.output
    with Dataset(tmp_path / "in") as ds:
        ep = ds.episode(0)
        assert np.array_equal(ep.read("frames"), frames) and ep.read("actions").tolist() == [1, 3]
        assert ds.manifest["frame_shape"] == [16, 16, 3] and len(ds.action_names) == 4
        assert ep.attrs["seed"] == 5 and ep.attrs["success"]

    _foreign_minari(root, "other/continuous-v0", space, gym.spaces.Box(-1, 1, (2,), np.float32), obs,
                    np.zeros((2, 2), np.float32))
    line = one_line_error(rig("dataset", "import", "--format", "minari", "other/continuous-v0", tmp_path / "c",
                              "--root", root))
    assert "not a discrete set" in line
    vec = gym.spaces.Box(-1, 1, (4,), np.float32)
    _foreign_minari(root, "other/state-v0", vec, gym.spaces.Discrete(2), np.zeros((3, 4), np.float32), np.array([0, 1]))
    assert "no RGB frames" in one_line_error(rig("dataset", "import", "--format", "minari", "other/state-v0",
                                                 tmp_path / "s", "--root", root))
    assert "no Minari dataset" in one_line_error(rig("dataset", "import", "--format", "minari", "other/none-v0",
                                                     tmp_path / "n", "--root", root))


def test_bad_format_and_id_are_one_line(reasoned_dataset, tmp_path):
    assert "unknown dataset format" in one_line_error(rig("dataset", "export", "--format", "rlds", reasoned_dataset,
                                                          tmp_path / "x"))
    assert "not a Minari dataset id" in one_line_error(rig("dataset", "export", "--format", "minari", reasoned_dataset, "rig/tiny",
                                              "--root", tmp_path))


LOAD_IN_LEROBOT = """
import json, sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("rig/export", root=sys.argv[1])
frames = np.stack([(ds[i]["observation.image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                   for i in range(len(ds))])
np.savez(sys.argv[2], frames=frames, action=np.array([int(ds[i]["action"]) for i in range(len(ds))]),
         episode=np.array([int(ds[i]["episode_index"]) for i in range(len(ds))]),
         reasoning=np.array([ds[i]["rig.reasoning"] for i in range(len(ds))]))
"""


@pytest.mark.skipif(not os.environ.get("RIG_LEROBOT_PYTHON"),
                    reason="set RIG_LEROBOT_PYTHON to a Python with lerobot (CI builds one: scripts/lerobot-venv.sh)")
def test_lerobot_itself_loads_the_export(reasoned_dataset, tmp_path):
    out = tmp_path / "lerobot"
    assert rig("dataset", "export", "--format", "lerobot", reasoned_dataset, out).exit_code == 0
    script = tmp_path / "load.py"
    script.write_text(LOAD_IN_LEROBOT)
    python = shutil.which(os.environ["RIG_LEROBOT_PYTHON"]) or os.environ["RIG_LEROBOT_PYTHON"]
    res = subprocess.run([python, str(script), str(out), str(tmp_path / "seen.npz")], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    seen = np.load(tmp_path / "seen.npz")
    with Dataset(reasoned_dataset) as ds:
        frames = np.concatenate([ep.read("frames") for ep in ds])
        actions = np.concatenate([np.append(ep.read("actions"), -1) for ep in ds])
        reasoning = [t for ep in ds for t in ep.texts("reasoning") + [""]]
    assert np.array_equal(seen["frames"], frames)
    assert seen["action"].tolist() == actions.tolist()
    assert seen["reasoning"].tolist() == reasoning


MAKE_VIDEO_DATASET = """
import sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
features = {"observation.images.cam": {"dtype": "video", "shape": (64, 64, 3), "names": ["height", "width", "channels"]},
            "action": {"dtype": "int64", "shape": (1,), "names": None}}
ds = LeRobotDataset.create("other/video", fps=10, root=sys.argv[1], features=features, use_videos=True)
frames = []
for e in range(2):
    for t in range(6):
        f = np.zeros((64, 64, 3), np.uint8)
        f[:, : 8 * (t + 1)] = 200
        f[..., e] = 90
        frames.append(f)
        ds.add_frame({"observation.images.cam": f, "action": np.array([t % 3]), "task": f"task {e}"})
    ds.save_episode()
ds.finalize()
np.save(sys.argv[2], np.stack(frames))
"""


@pytest.mark.skipif(not os.environ.get("RIG_LEROBOT_PYTHON"),
                    reason="set RIG_LEROBOT_PYTHON to a Python with lerobot (CI builds one: scripts/lerobot-venv.sh)")
def test_lerobot_video_dataset_comes_in(tmp_path):
    """A dataset LeRobot recorded itself, frames in AV1 video: decoded with av, actions and tasks exact."""
    script = tmp_path / "make.py"
    script.write_text(MAKE_VIDEO_DATASET)
    res = subprocess.run([os.environ["RIG_LEROBOT_PYTHON"], str(script), str(tmp_path / "video"), str(tmp_path / "f.npy")],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    r = rig("dataset", "import", "--format", "lerobot", tmp_path / "video", tmp_path / "in", "--json")
    assert r.exit_code == 0, r.output
    ref = np.load(tmp_path / "f.npy").astype(float)
    with Dataset(tmp_path / "in") as ds:
        got = np.concatenate([ep.read("frames") for ep in ds]).astype(float)
        assert [ep.read("actions").tolist() for ep in ds] == [[0, 1, 2, 0, 1]] * 2  # 6 frames = 5 steps each
        assert [ep.attrs["task"] for ep in ds] == ["task 0", "task 1"]
    assert got.shape == ref.shape
    assert 10 * np.log10(255 ** 2 / np.mean((got - ref) ** 2)) > 30  # a lossy codec, but close
