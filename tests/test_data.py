import json

import h5py
import numpy as np
import pytest

from rig_core.data.episode import EpisodeRecord
from rig_core.data.reader import Dataset, open_shard
from rig_core.data.schema import MANIFEST, read_manifest
from rig_core.data.writer import ShardWriter
from rig_core.envs.base import Obs
from rig_core.errors import RigError

ITEMS = ["health", "wood"]
ACH = ["collect_wood", "place_table"]


def _record(T=5, seed=0):
    rng = np.random.default_rng(seed)
    rec = EpisodeRecord(item_names=ITEMS, achievement_names=ACH, attrs={"seed": seed, "task": "collect_wood"})
    for t in range(T + 1):
        frame = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        rec.add_observation(Obs(frame, {"health": 9, "wood": t},
                                {"semantic": np.full((7, 9), t, np.uint8), "position": (t, 2 * t),
                                 "facing": (0, 1), "vitals": {"health": 9, "food": 8, "drink": 7, "energy": 6},
                                 "sleeping": False, "daylight": 1.0, "achievements": []}))
        if t < T:
            new = ["collect_wood", "place_table"] if t == 2 else []
            rec.add_step(t % 3, 0.5, False, t == T - 1, new, {"subgoal": "s", "noise": t == 1})
    return rec


def test_round_trip(tmp_path):
    rec = _record()
    w = ShardWriter(tmp_path, 0)
    w.write_episode(0, rec)
    assert not (tmp_path / "shard-00000.h5").exists(), "the shard is invisible until closed"
    w.close()
    assert not list(tmp_path.glob(".*.tmp"))
    with open_shard(tmp_path / "shard-00000.h5") as f:
        g = f["episodes/000000"]
        arrays = rec.arrays()
        for name, data in arrays.items():
            stored = g[name][()]
            if data.dtype == object:
                assert [s.decode() for s in stored] == list(data)
            else:
                np.testing.assert_array_equal(stored, data)
        assert g["frames"].compression == "gzip"
        assert list(g["inventory"].attrs["names"]) == ITEMS
        assert g.attrs["length"] == 5 and g.attrs["task"] == "collect_wood"
        assert g["achievements"][2] == 0 and g["achievements_mask"][2] == 0b11
        assert json.loads(g["privileged/intent"][1])["noise"] is True
    assert rec.unlocked == ACH


def test_abort_leaves_nothing(tmp_path):
    w = ShardWriter(tmp_path, 3)
    w.write_episode(3, _record())
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_frames_must_match_steps():
    rec = _record()
    rec.frames.pop()
    with pytest.raises(ValueError):
        rec.arrays()


def test_reader_reads_collected_dataset(random_dataset):
    with Dataset(random_dataset) as ds:
        assert len(ds) == 4 and ds.indices() == [0, 1, 2, 3]
        ep = ds.episode(2)
        assert ep["frames"].shape == (ep.length + 1, 64, 64, 3)
        assert ep["actions"].shape == (ep.length,)
        assert ep["privileged/semantic"].shape == (ep.length + 1, 7, 9)
        assert ep.attrs["agent"] == "random" and ep.attrs["seed"] == 5
        with pytest.raises(RigError, match="episode 9 is not in"):
            ds.episode(9)


def test_schema_version_mismatch(random_dataset, tmp_path):
    doc = json.loads((random_dataset / MANIFEST).read_text())
    doc["schema_version"] = 2
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(RigError, match="schema version 2, this rig reads version 1.*upgrade rig"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content,match", [
    (None, "not a rig dataset"),
    ("{not json", "corrupt"),
    ('{"format": "other"}', "not a rig dataset manifest"),
])
def test_bad_manifests(tmp_path, content, match):
    if content is not None:
        (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(RigError, match=match):
        read_manifest(tmp_path)


def test_missing_dataset(tmp_path):
    with pytest.raises(RigError, match="does not exist"):
        read_manifest(tmp_path / "nope")


def test_corrupt_shard(tmp_path):
    bad = tmp_path / "shard-00000.h5"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(RigError, match="not a readable HDF5 file.*--resume"):
        open_shard(bad)
    ok = h5py.File(tmp_path / "x.h5", "w")
    ok.close()
