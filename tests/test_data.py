import json
import subprocess
import sys
import zlib

import h5py
import hdf5plugin
import numpy as np
import pytest

from rig_core.data.episode import EpisodeRecord
from rig_core.data.reader import Dataset, open_shard
from rig_core.data.schema import FRAME_CHUNK, MANIFEST, read_manifest
from rig_core.data.writer import BZIP2_ONLY, DEFLATE_ONLY, UNFILTERED, ShardWriter, noisy, write_frames
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


def _frames(n: int, night: bool, seed: int) -> np.ndarray:
    """Crafter-like frames: a mosaic of flat 8x8 cells; at night, grey per-pixel noise on top."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    day = np.kron(cells, np.ones((8, 8, 1), np.uint8))
    out = np.repeat(day[None], n, axis=0)
    if night:
        noise = rng.integers(0, 24, (n, 64, 64, 1), dtype=np.uint8)
        out = (out // 2 + noise).astype(np.uint8)
    return out


def test_frames_round_trip_with_per_chunk_compression(tmp_path):
    day, night = _frames(FRAME_CHUNK, False, 1), _frames(FRAME_CHUNK, True, 2)
    rand = np.random.default_rng(3).integers(0, 256, (FRAME_CHUNK, 64, 64, 3), dtype=np.uint8)
    tail = _frames(5, False, 4)  # a partial last chunk
    frames = np.concatenate([day, night, rand, tail])
    assert not noisy(day) and noisy(night)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        write_frames(f, "frames", frames)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        ds = f["frames"]
        assert ds.dtype == np.uint8 and ds.shape == frames.shape and ds.chunks == (FRAME_CHUNK, 64, 64, 3)
        np.testing.assert_array_equal(ds[()], frames)  # lossless, plain numpy
        np.testing.assert_array_equal(ds[FRAME_CHUNK + 3], night[3])
        dcpl = ds.id.get_create_plist()
        assert [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())] == [h5py.h5z.FILTER_DEFLATE,
                                                                              hdf5plugin.BZIP2_ID]
        info = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
        assert [c.filter_mask for c in info] == [DEFLATE_ONLY, BZIP2_ONLY, UNFILTERED, DEFLATE_ONLY]
        assert info[0].size < day.nbytes / 50
        assert info[1].size < len(zlib.compress(night.tobytes(), 6))  # bzip2 beats deflate on noise
        assert info[2].size == rand.nbytes
        assert ds.id.get_storage_size() == sum(c.size for c in info)


def test_shard_frames_readable_through_the_reader_alone(tmp_path):
    """A process that imports only the reader can read noisy (bzip2) chunks: the reader registers the filter."""
    rec = _record(T=2 * FRAME_CHUNK)
    rec.frames = list(_frames(2 * FRAME_CHUNK + 1, True, 5))
    w = ShardWriter(tmp_path, 0)
    w.write_episode(0, rec)
    path = w.close()
    assert w.frame_bytes < 0.5 * (2 * FRAME_CHUNK + 1) * 64 * 64 * 3
    code = ("import sys, numpy as np; from rig_core.data.reader import open_shard; "
            "f = open_shard(sys.argv[1]); d = f['episodes/000000/frames']; "
            f"assert d.id.get_chunk_info(0).filter_mask == {BZIP2_ONLY}; np.save(sys.argv[2], d[()])")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out.npy")], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.stack(rec.frames))


def test_interrupt_right_after_a_shard_closes_keeps_it_listed(tmp_path):
    """SIGINT between a shard's rename into place and its manifest entry: the shard stays listed."""
    from rig_core.collect.runner import Collection
    from rig_core.collect.worker import collect_chunks, worker_main
    from rig_core.config import CollectConfig
    from rig_core.errors import CollectInterrupted

    cfg = CollectConfig(out=str(tmp_path / "c"), agent="random", task="basic", episodes=3, seed=1,
                        max_steps=20, episodes_per_shard=1).validate()
    col = Collection(cfg, "rig collect", resume=False)

    def interrupted_at_first_shard(cfg, chunks, emit):
        def on_event(event):
            if event[0] == "shard":
                raise KeyboardInterrupt  # the shard file is closed and renamed; its event never arrives
            emit(event)
        collect_chunks(cfg, chunks, on_event)

    with pytest.raises(CollectInterrupted, match="1 of 3 episodes are saved"):
        col.run(interrupted_at_first_shard, worker_main, "collect", lambda p: "", "resume", quiet=True)
    with Dataset(tmp_path / "c") as ds:
        assert len(ds) == 1 and not ds.complete


def test_texts_with_a_nul_are_stored_not_crashed_on(tmp_path):
    """A model may write a NUL byte in its thought; HDF5 strings cannot hold one. The step log and a dataset
    store it as U+FFFD instead of failing after the whole run."""
    from rig_core.data.writer import text_array
    from rig_core.evaluate.steps import write_steps

    thoughts = np.asarray(["I see a tree\x00 so I go", "fine"], dtype=object)
    stored = text_array(thoughts)
    assert [str(s) for s in stored] == ["I see a tree\ufffd so I go", "fine"]
    assert text_array(np.asarray([["a\x00", "b"]], dtype=object)).shape == (1, 2)
    rec = {"arrays": {"actions": np.asarray([1, 2], np.int16), "thoughts": thoughts}, "frames": None, "attrs": {}}
    assert write_steps(tmp_path, [rec], 0) == 1
    with h5py.File(tmp_path / "steps" / "shard-00000.h5") as f:
        assert [s.decode() for s in f["episodes/000000/thoughts"][()]] == ["I see a tree\ufffd so I go", "fine"]
