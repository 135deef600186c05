"""`rig view` without a browser: what `rig evaluate` records per step, the site's files, the escaping of data in
script files, the kinds of folder it takes and the one-line error for any other, `--serve`.
(tests/test_view_browser.py opens the pages in Chromium.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli_helpers import one_line_error, rig
from rig_core.view.site import CHUNK, Sprite, js_literal


def _groups(folder: Path) -> dict:
    out = {}
    for path in sorted((folder / "steps").glob("shard-*.h5")):
        with h5py.File(path) as f:
            for g in f["episodes"].values():
                out[(int(g.attrs["n"]), str(g.attrs["task"]), int(g.attrs["seed"]))] = {
                    k: g[k][()] for k in _datasets(g)} | {"attrs": dict(g.attrs)}
    return out


def _datasets(g) -> list[str]:
    names = []
    g.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


def test_evaluate_records_every_episode_step_by_step(view_players_eval):
    doc = json.loads((view_players_eval / "expert" / "eval.json").read_text())
    steps = _groups(view_players_eval / "expert")
    episodes = doc["sweep"][0]["episodes"]
    assert len(steps) == len(episodes) == 2
    for e in episodes:
        g = steps[(0, e["task"], e["seed"])]
        t = e["steps"]
        assert g["frames"].shape == (t + 1, 64, 64, 3) and g["actions"].shape == (t,)
        assert g["rewards"].sum() == pytest.approx(e["reward"]) and g["attrs"]["success"] == e["success"]
        assert g["inventory"].shape == (t, 16) and g["achievements_mask"].shape == (t,)
        assert "imagined_codes" not in g  # a baseline imagines nothing
    # the frames are the episode's: replaying the recorded actions from the seed gives the same frames
    from rig_core.envs import make_env

    e = episodes[0]
    g = steps[(0, e["task"], e["seed"])]
    env = make_env("crafter", length=None)
    frames = [env.reset(e["seed"]).frame]
    for a in g["actions"]:
        frames.append(env.step(int(a))[0].frame)
    assert np.array_equal(np.stack(frames), g["frames"])


def test_a_policy_records_thoughts_and_imagined_codes(view_policy_eval):
    steps = _groups(view_policy_eval)
    assert (view_policy_eval / "steps" / "image_tokenizer.safetensors").is_file()
    imagined = [g for g in steps.values() if "imagined" in g]
    assert imagined  # the episodes an evaluation imagines in (--imagination-episodes) keep their codes
    g = imagined[0]
    assert g["imagined_codes"].shape == (len(g["actions"]), 81) and g["imagined"].any()
    assert all(isinstance(t, bytes) for t in g["reasoning"])


def test_lookahead_records_the_chain_and_the_review(view_lookahead_eval):
    steps = _groups(view_lookahead_eval)
    ahead = [g for (n, _, _), g in steps.items() if n == 1]
    assert ahead and all(n in (0, 1) for n, _, _ in steps)
    g = ahead[0]
    t = len(g["actions"])
    assert g["ahead/actions"].shape == (t, 1) and g["ahead/codes"].shape == (t, 1, 81)
    assert g["proposed"].shape == (t,) and g["review"].shape == (t,) and g["p_worse"].shape == (t,)
    assert g["imagined"].all()  # looking ahead always imagines


def _site(path: Path, out: Path) -> dict:
    r = rig("view", path, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _chunk(site: Path, episode: int, chunk: int = 0) -> dict:
    text = (site / "ep" / str(episode) / f"{chunk}.js").read_text()
    m = re.fullmatch(r"RIG\.chunk\((\d+),(\d+),(.*)\);\n", text, re.S)
    assert m, text[:200]
    return json.loads(m.group(3))


def _index(site: Path) -> dict:
    text = (site / "data" / "index.js").read_text()
    return json.loads(text[len("window.RIG_VIEW="):-2])


def test_view_of_an_evaluation_of_several_players(view_players_eval, tmp_path):
    info = _site(view_players_eval, tmp_path / "site")
    index = _index(tmp_path / "site")
    assert info["kind"] == "evaluation" and info["episodes"] == 4
    assert [p["name"] for p in index["players"]] == ["expert", "random"]
    assert index["compare"]["rows"][0]["paired"] and (tmp_path / "site" / "plots" / "players.png").is_file()
    assert {(c["player"], c["rows"][0]["task"]) for c in index["success"]} == {("expert", "collect_wood"),
                                                                              ("random", "collect_wood")}
    for e in index["episodes"]:
        assert e["recorded"] and e["chunks"] == 1
        data = _chunk(tmp_path / "site", e["id"])
        assert len(data["steps"]) == e["steps"] and data["final"] is not None
        assert [s["t"] for s in data["steps"]] == list(range(e["steps"]))
        assert all(s["expert"] for s in data["steps"])  # the expert's action at every state played
    for name in ("index.html", "view.js", "view.css", "view.json"):
        assert (tmp_path / "site" / name).is_file()


def test_imagined_frames_come_with_their_psnr(view_policy_eval, tmp_path):
    _site(view_policy_eval, tmp_path / "site")
    index = _index(tmp_path / "site")
    shown = [s for e in index["episodes"] for s in _chunk(tmp_path / "site", e["id"])["steps"] if "imagined" in s]
    assert shown and all(0 < s["imagined"][0]["psnr"] <= 99 for s in shown)
    assert all(s["thought"] is not None for s in shown)


def test_lookahead_steps_show_the_proposal_chain(view_lookahead_eval, tmp_path):
    _site(view_lookahead_eval, tmp_path / "site")
    index = _index(tmp_path / "site")
    ahead = [e for e in index["episodes"] if e["n"] == 1]
    steps = _chunk(tmp_path / "site", ahead[0]["id"])["steps"]
    p = steps[0]["proposal"]
    assert len(p["chain"]) == 2 and p["chain"][0]["f"] is not None and p["taken"] == steps[0]["action"]
    first = p["chain"][0]
    assert (first["real"] is None) == (p["action"] != p["taken"])  # compared only where the episode went that way


def test_view_of_a_review_dataset_shows_verdicts(review_dataset, tmp_path):
    info = _site(review_dataset, tmp_path / "site")
    assert info["kind"] == "dataset"
    with h5py.File(sorted(review_dataset.glob("shard-*.h5"))[0]) as f:
        g = next(iter(f["episodes"].values()))
        verdicts, t0 = g["review/verdict"][()], int(g["review/step"][0])
    step = _chunk(tmp_path / "site", 0)["steps"][t0]
    chain = step["proposal"]["chain"]
    assert [c["verdict"] for c in chain] == [{0: "same", 1: "fine", 2: "worse"}[int(v)] for v in verdicts[0]]
    assert all(c["reason"] is not None and c["corrected"] for c in chain)


def test_a_long_episode_is_split_into_chunks(random_dataset, tmp_path, monkeypatch):
    import rig_core.view.site as site

    monkeypatch.setattr(site, "CHUNK", 7)
    _site(random_dataset, tmp_path / "site")
    index = _index(tmp_path / "site")
    e = index["episodes"][0]
    assert e["chunks"] == -(-e["steps"] // 7) > 1
    first, last = _chunk(tmp_path / "site", 0, 0), _chunk(tmp_path / "site", 0, e["chunks"] - 1)
    assert len(first["steps"]) == 7 and "final" not in first and last["final"] is not None
    assert index["chunk"] == 7 and CHUNK == 100


def test_frames_are_stored_once_per_chunk():
    s = Sprite()
    a, b = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 7, np.uint8)
    assert [s.add(a), s.add(b), s.add(a.copy()), s.add(None)] == [0, 1, 0, None]
    from PIL import Image
    import io

    im = Image.open(io.BytesIO(s.image_bytes()))
    assert im.format == "WEBP" and im.size == (128, 64)
    assert np.array_equal(np.asarray(im.convert("RGB"))[:, 64:], b)  # lossless


def test_script_data_cannot_break_out():
    text = "</script><script>alert(1)</script> <!-- & \u2028 \u2029 \"quoted\""
    literal = js_literal({"thought": text})
    assert "<" not in literal and ">" not in literal and "&" not in literal
    assert "\u2028" not in literal and "\u2029" not in literal
    assert json.loads(literal) == {"thought": text}


def test_a_path_of_no_known_kind_is_one_line(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    line = one_line_error(rig("view", tmp_path / "stuff"))
    assert "not a dataset, an evaluation or a pipeline folder" in line
    assert "does not exist" in one_line_error(rig("view", tmp_path / "nothing"))


def test_an_output_that_is_not_a_view_is_refused_and_a_view_is_replaced(random_dataset, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert "is not a view written by rig view" in one_line_error(rig("view", random_dataset, "--out", tmp_path / "taken"))
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    _site(random_dataset, tmp_path / "site")
    (tmp_path / "site" / "ep" / "stale").mkdir()
    _site(random_dataset, tmp_path / "site")
    assert not (tmp_path / "site" / "ep" / "stale").exists()
    assert not list(tmp_path.glob(".site*"))  # no temporary folder left


def test_the_default_site_is_beside_the_input(random_dataset):
    r = rig("view", random_dataset)
    assert r.exit_code == 0, r.output
    site = random_dataset.parent / f"{random_dataset.name}-view"
    assert f"open file://{site / 'index.html'}" in r.output and (site / "index.html").is_file()


def test_view_of_a_pipeline_links_a_site_per_stage(random_dataset, tmp_path):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "data").symlink_to(random_dataset)
    (pipe / "pipeline.json").write_text(json.dumps({"format": "rig-pipeline", "version": 1, "stages": {
        "data": {"run": "collect", "status": "complete", "wall_s": 1.5},
        "basic": {"run": "train", "status": "running"}}}))
    info = _site(pipe, tmp_path / "site")
    index = _index(tmp_path / "site")
    assert info["kind"] == "pipeline" and info["episodes"] == 4
    assert [s["view"] for s in index["stages"]] == ["data/index.html", None]
    assert _index(tmp_path / "site" / "data")["up"] == {"href": "../index.html", "title": "pipeline pipe"}


def test_serve_prints_a_local_url_that_serves_the_site(random_dataset, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "rig_cli.main", "view", str(random_dataset), "--out",
                             str(tmp_path / "site"), "--serve", "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/index\.html)", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        with urllib.request.urlopen(m.group(1), timeout=10) as resp:
            assert b'<script src="view.js">' in resp.read()
        with urllib.request.urlopen(m.group(1).replace("index.html", "data/index.js"), timeout=10) as resp:
            assert resp.read().startswith(b"window.RIG_VIEW=")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_an_evaluation_without_recorded_steps_still_lists_its_episodes(view_players_eval, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(view_players_eval / "expert", old)
    shutil.rmtree(old / "steps")  # as rig evaluate wrote it before steps were recorded
    info = _site(old, tmp_path / "site")
    index = _index(tmp_path / "site")
    assert info["episodes"] == 2 and info["steps"] == 0
    assert all(not e["recorded"] and e["chunks"] == 0 for e in index["episodes"])
    assert any(k == "not recorded" for k, _ in index["facts"])



def test_the_page_never_parses_text_as_markup():
    from importlib import resources

    for name in ("lib.js", "view.js"):
        source = (resources.files("rig_core.view") / "assets" / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"


def test_the_step_log_keeps_a_long_games_frames_compressed_and_returns_them_all():
    """A game longer than a chunk: the open steps hold no frames, the packed frames come back in order."""
    from rig_core.evaluate.steps import StepLog, _FrameChunks, _unpack_all
    from rig_core.records import EpisodeResult, StepRecord

    log = StepLog(["noop", "move_left"], ["collect_wood"], ["wood"])
    rng = np.random.default_rng(0)
    T = 2 * _FrameChunks.CHUNK + 5
    frames = rng.integers(0, 255, (T + 1, 64, 64, 3), dtype=np.uint8)
    for t in range(T):
        log.add(StepRecord(env=3, t=t, frame=frames[t], action=t % 2, action_name="noop", next_frame=frames[t + 1],
                           imagined=frames[t + 1], inventory={"wood": t}))
    assert all(s.frame is None and s.next_frame is None for s in log.open[3])
    assert len(log.frames[3].packed) == 2 and len(log.frames[3].fresh) == T + 1 - 2 * _FrameChunks.CHUNK
    rec = log.close(EpisodeResult(env=3, seed=7, task="open", steps=T, success=False, died=True, reward=0.0,
                                   unlocked=[]), "x", 0)
    assert len(rec["frames"]) == 3 and np.array_equal(_unpack_all(rec["frames"]), frames)
    assert 3 not in log.open and 3 not in log.frames
    assert rec["arrays"]["inventory"][:, 0].tolist() == list(range(T))
