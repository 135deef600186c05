"""`rig augment --stage reason` end to end at tiny size, and its bad-input paths."""

import hashlib
import json
import shutil

import h5py
import pytest

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.data.reader import Dataset
from rig_core.errors import RigError


def digest(path):
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def reasoned(random_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "reasoned"
    before = digest(random_dataset)
    r = rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--json", "--workers", 2)
    assert r.exit_code == 0, r.output
    assert digest(random_dataset) == before, "augment never edits its input"
    return out, json.loads(r.stdout)


def test_summary_and_layout(reasoned, random_dataset):
    out, s = reasoned
    with Dataset(random_dataset) as src:
        total = sum(ep.length for ep in src)
    assert s["steps_annotated"] == total
    assert s["action_consistency"] == 1.0 and s["grounded"] == 1.0
    assert 5 < s["tokens_mean"] <= s["tokens_max"] < 80 and 0 < s["distinct_share"] <= 1
    man = json.loads((out / "dataset.json").read_text())
    assert man["stages"] == ["collect", "reason"] and man["complete"] and man["source"]["frames"] == "linked"
    with Dataset(out) as ds:
        ep = ds.episode(1)
        texts = ep.texts("reasoning")
        assert len(texts) == ep.length and all(texts)
        assert set(ep.texts("reasoning_source")) == {"rules"}
        with h5py.File(out / ds.shard_files[0]) as f:
            link = f["episodes"][next(iter(f["episodes"]))].get("frames", getlink=True)
            assert isinstance(link, h5py.ExternalLink)


def test_links_resolve_from_anywhere(reasoned, tmp_path, monkeypatch):
    out, _ = reasoned
    monkeypatch.chdir(tmp_path)
    with Dataset(out) as ds:
        assert ds.episode(0)["frames"].shape[1:] == (64, 64, 3)


def test_copy_frames_is_self_contained(random_dataset, tmp_path):
    out = tmp_path / "copy"
    assert rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--copy-frames",
               "--quiet").exit_code == 0
    moved = tmp_path / "elsewhere" / "copy"
    shutil.move(str(out), moved)
    with Dataset(moved) as ds:
        assert ds.episode(0)["frames"].shape[0] == ds.episode(0).length + 1


def test_linked_dataset_moved_away_from_its_input_names_the_missing_file(reasoned, tmp_path):
    out, _ = reasoned
    moved = tmp_path / "elsewhere" / "r"
    shutil.copytree(out, moved)  # the frames stay linked to ../random, which is not beside the copy
    with Dataset(moved) as ds:
        ep = ds.episode(0)
        assert len(ep.read("reasoning")) == ep.length  # what the shard itself holds still reads
        with pytest.raises(RigError, match=r"frames is linked from (\S+), which cannot be read") as err:
            ep["frames"]
    target = err.value.args[0].split("linked from ")[1].split(",")[0]  # where the link points from the copy
    assert target.startswith(str(tmp_path)) and target.endswith(".h5") and ".." not in target
    line = _err(rig("train", "--data", moved, "--out", tmp_path / "run", "--recipe", "tiny", "--max-steps", "1",
                    "--quiet"))
    assert "--copy-frames" in line and not (tmp_path / "run").exists()


def test_resume_redoes_only_missing_shards(random_dataset, tmp_path):
    out = tmp_path / "r"
    assert rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--quiet").exit_code == 0
    shards = sorted(out.glob("shard-*.h5"))
    keep = shards[0].stat().st_mtime_ns
    shards[1].unlink()  # as if killed before this shard closed
    (out / f".{shards[1].name}.tmp").write_bytes(b"partial")
    r = rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--resume", "--json")
    assert r.exit_code == 0, r.output
    assert shards[0].stat().st_mtime_ns == keep and shards[1].exists()
    assert not list(out.glob(".*.tmp"))
    with Dataset(out) as ds, Dataset(random_dataset) as src:
        assert ds.indices() == src.indices()
    manifest = (out / "dataset.json").read_text()
    other = tmp_path / "other"
    shutil.copytree(random_dataset, other)
    collected = (other / "dataset.json").read_text()
    line = _err(rig("augment", "--stage", "reason", "--data", random_dataset, "--out", other, "--resume"))
    assert "is not a reasoning run" in line and (other / "dataset.json").read_text() == collected
    assert "is not a reasoning run on" in _err(rig("augment", "--stage", "reason", "--data", other, "--out", out,
                                                   "--resume"))
    line = _err(rig("collect", "--out", out, "--resume"))
    assert "was made by rig augment" in line
    assert (out / "dataset.json").read_text() == manifest


def test_show_step_and_episode(reasoned):
    out, _ = reasoned
    r = rig("dataset", "show", out, "--episode", 1, "--step", 2)
    assert r.exit_code == 0 and "reasoning" in r.stdout and "▀" in r.stdout
    r = rig("dataset", "show", out, "--episode", 1, "--step", 2, "--json")
    rec = json.loads(r.stdout)
    with Dataset(out) as ds:
        assert rec["reasoning"] == ds.episode(1).texts("reasoning")[2]
        assert rec["action"] == ds.action_names[int(ds.episode(1)["actions"][2])]
    r = rig("dataset", "show", out, "--episode", 1)
    assert r.exit_code == 0 and "episode 1" in r.stdout



def test_bad_inputs(random_dataset, reasoned, tmp_path):
    out, _ = reasoned
    base = ["augment", "--stage", "reason", "--data"]
    assert "already exists" in _err(rig(*base, random_dataset, "--out", out))
    assert "unknown stage" in _err(rig("augment", "--stage", "dream", "--data", random_dataset, "--out", tmp_path / "a"))
    assert "already has reasoning" in _err(rig(*base, out, "--out", tmp_path / "b"))
    assert "never edits its input" in _err(rig(*base, random_dataset, "--out", random_dataset))
    assert "needs --model and --base-url" in _err(rig(*base, random_dataset, "--out", tmp_path / "c", "--annotator", "vlm"))
    other = tmp_path / "other"
    shutil.copytree(random_dataset, other)
    doc = json.loads((other / "dataset.json").read_text())
    doc["schema_version"] = 3
    (other / "dataset.json").write_text(json.dumps(doc))
    assert "schema version 3" in _err(rig(*base, other, "--out", tmp_path / "d"))
    bare = tmp_path / "bare"
    shutil.copytree(random_dataset, bare)
    for shard in bare.glob("shard-*.h5"):
        with h5py.File(shard, "a") as f:
            for g in f["episodes"].values():
                del g["privileged/semantic"]
    line = _err(rig(*base, bare, "--out", tmp_path / "e"))
    assert "privileged state" in line and "--annotator vlm" in line
    assert "step 999 is outside" in _err(rig("dataset", "show", out, "--step", 999))
    for name in "abcde":
        assert not (tmp_path / name).exists(), "a rejected run leaves no output"


def test_vlm_annotator_end_to_end(random_dataset, tmp_path, monkeypatch):
    """--annotator vlm against a local OpenAI-compatible server: answers checked, cached, rerun costs nothing."""
    pytest.importorskip("openai")
    from vlm_server import FakeVLM

    monkeypatch.setenv("RIG_VLM_API_KEY", "sk-test")

    def reply(req):  # commit to the first sentence the prompt offers
        text = req["messages"][-1]["content"][0]["text"]
        return text.split("End with exactly one of these sentences: '")[1].split("'")[0]

    with FakeVLM(reply) as server:
        out = tmp_path / "vlm"
        args = ["augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--annotator", "vlm",
                "--model", "fake-vlm", "--base-url", server.url, "--cache-dir", tmp_path / "cache", "--json"]
        r = rig(*args)
        assert r.exit_code == 0, r.output
        s = json.loads(r.stdout)
        assert s["sources"]["vlm"] == s["steps_annotated"] and s["action_consistency"] == 1.0
        sent = len(server.requests)
        assert sent == s["steps_annotated"]
        r = rig(*args[:6], tmp_path / "vlm2", *args[7:])
        assert r.exit_code == 0 and len(server.requests) == sent, "a rerun is served from the cache"
        assert json.loads(r.stdout)["sources"]["cache"] == s["steps_annotated"]
    for f in (tmp_path / "cache").rglob("*.json"):
        assert "sk-test" not in f.read_text()


def test_vlm_bad_inputs(random_dataset, tmp_path, monkeypatch):
    pytest.importorskip("openai")
    base = ["augment", "--stage", "reason", "--data", random_dataset, "--annotator", "vlm", "--model", "m"]
    monkeypatch.delenv("RIG_VLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert "RIG_VLM_API_KEY" in _err(rig(*base, "--base-url", "http://127.0.0.1:9/v1", "--out", tmp_path / "a"))
    monkeypatch.setenv("RIG_VLM_API_KEY", "sk-x")
    line = _err(rig(*base, "--base-url", "http://127.0.0.1:9/v1", "--out", tmp_path / "b"))
    assert "cannot reach" in line and "127.0.0.1:9" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_vlm_answer_with_a_nul_is_stored(random_dataset, tmp_path, monkeypatch):
    """HDF5 strings cannot hold a NUL; an annotator's answer with one is stored with U+FFFD, not crashed on."""
    pytest.importorskip("openai")
    from vlm_server import FakeVLM

    monkeypatch.setenv("RIG_VLM_API_KEY", "sk-test")

    def reply(req):
        text = req["messages"][-1]["content"][0]["text"]
        return "I look\x00 around. " + text.split("End with exactly one of these sentences: '")[1].split("'")[0]

    with FakeVLM(reply) as server:
        out = tmp_path / "vlm"
        r = rig("augment", "--stage", "reason", "--data", random_dataset, "--out", out, "--annotator", "vlm",
                "--model", "fake-vlm", "--base-url", server.url, "--cache-dir", tmp_path / "cache", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["sources"]["vlm"] > 0
    with Dataset(out) as ds:
        texts = [t for ep in ds for t in ep.texts("reasoning")]
    assert texts and all(t.startswith("I look\ufffd around. ") for t in texts)
