"""The agent loop, play, imagine and evaluate at tiny size."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from rich.console import Console

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.envs import make_env
from rig_core.records import StepRecord
from rig_core.inference.policy import RigPolicy
from rig_core.tokenize.image import psnr
from rig_core.viz.live import live_view





@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    return RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, device="cpu")  # its tests compare in fp32


def test_batched_loop_valid_actions_and_span_order(policy):
    envs = [make_env(length=None) for _ in range(3)]
    frames = np.stack([e.reset(1_000_000 + i).frame for i, e in enumerate(envs)])
    policy.reset(["Collect wood.", "Drink water.", "Eat a cow."])
    for _ in range(2):
        outs = policy.act(frames)
        assert len(outs) == 3
        for e, o in zip(envs, outs):
            assert 0 <= o.action < 17 and o.imagined_codes.shape == (81,)
            assert 0 <= o.imagined_codes.min() and o.imagined_codes.max() < policy.image_tok.codebook_size
        frames = np.stack([e.step(o.action)[0].frame for e, o in zip(envs, outs)])
    s = policy.tok.special
    step = policy.history[0][-1]
    tags = [t for t in step if t in (s["<obs>"], s["</obs>"], s["<think>"], s["</think>"], s["<act>"], s["</act>"],
                                      s["<imagine>"], s["</imagine>"])]
    assert tags == [s["<obs>"], s["</obs>"], s["<think>"], s["</think>"], s["<act>"], s["</act>"], s["<imagine>"],
                    s["</imagine>"]]
    a = step.index(s["<act>"])
    assert step[a + 1] in set(policy.tok.action_ids.tolist())


def test_history_keeps_the_real_next_frame_not_the_imagined_one(policy):
    envs = [make_env(length=None) for _ in range(2)]
    frames = np.stack([e.reset(1_000_010 + i).frame for i, e in enumerate(envs)])
    policy.reset(["Collect wood.", "Drink water."])
    outs = policy.act(frames)
    s = policy.tok.special
    first = [list(policy.history[b][0]) for b in range(2)]
    nxt = np.stack([e.step(3)[0].frame for e in envs])  # move_up: the real frame differs from the start
    policy.act(nxt)
    real = policy.image_tok.encode(nxt)
    for b in range(2):
        step = policy.history[b][0]
        i = step.index(s["<imagine>"]) + 1
        assert policy.tok.codes(np.asarray(step[i : i + 81])).tolist() == real[b].tolist()
        assert policy.tok.codes(np.asarray(first[b][i : i + 81])).tolist() == outs[b].imagined_codes.tolist()
        assert step[:i] == first[b][:i] and step[i + 81 :] == first[b][i + 81 :]  # nothing else changed


def test_walking_without_imagining_leaves_the_same_context(policy):
    env = make_env(length=None)
    f0 = env.reset(1_000_020).frame
    f1 = env.step(3)[0].frame
    runs = []
    for imagine in (True, False):
        policy.reset(["Collect wood."])
        walked = policy.act(f0[None], forced_actions=[3], imagine=imagine)[0]
        nxt = policy.act(f1[None])[0]  # the real frame f1 fills the walked step's imagine span either way
        runs.append((walked, nxt, [list(h) for h in policy.history[0]]))
    (w_on, n_on, h_on), (w_off, n_off, h_off) = runs
    assert h_on == h_off and w_on.thought == w_off.thought and w_on.action == w_off.action == 3
    assert n_on.thought == n_off.thought and n_on.action == n_off.action
    assert (n_on.imagined_codes == n_off.imagined_codes).all()
    assert not w_off.imagined_codes.any()  # not decoded
    with pytest.raises(ValueError):
        policy.act(f1[None], lookahead=1, imagine=False)


def test_history_option_caps_the_past_steps_in_the_context(policy, tiny_checkpoint):
    from rig_core.errors import RigError

    env = make_env(length=None)
    frames = [env.reset(1_000_040).frame] + [env.step(a)[0].frame for a in (3, 1, 4)]
    s = policy.tok.special
    counts = {}
    for k in (None, 0, 1, "cache"):  # "cache": all that fit, with the cross-step cache's slide
        p = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, history=None if k == "cache" else k,
                                      step_cache=k == "cache")
        p.reset(["Collect wood."])
        for f in frames[:3]:
            p.act(f[None], forced_actions=[3], imagine=False)
        ids = p._context(0, [s["<obs>"]])
        counts[k] = ids.count(s["<obs>"]) - 1  # past steps in the context (the last <obs> is the current one)
        if k == 0:  # the current frame only: the context a fresh episode starts from
            fresh = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6)
            fresh.reset(["Collect wood."])
            assert ids == fresh._context(0, [s["<obs>"]])
            assert p.act(frames[3][None])[0].thought == fresh.act(frames[3][None])[0].thought
    assert counts == {None: 2, 0: 0, 1: 1, "cache": 1}  # the tiny context holds two past steps; a slide keeps half
    with pytest.raises(RigError, match="--history -1"):
        RigPolicy.from_checkpoint(tiny_checkpoint, history=-1)


def test_cached_batched_decoding_equals_full_recompute(policy):
    s = policy.tok.special
    rows = [[s["<bos>"], s["<task>"], 5, 6, s["</task>"]], [s["<bos>"], s["<task>"], 7, s["</task>"]]]
    with torch.no_grad():
        policy._start(rows)
        got = policy._feed([[10, 11], [12]])
        for i, full in enumerate([rows[0] + [10, 11], rows[1] + [12]]):
            ref = policy.model(input_ids=torch.tensor([full])).logits[0, -1]
            assert torch.allclose(ref, got[i], atol=1e-4)


def test_batched_open_loop_imagination_equals_one_window_at_a_time(policy):
    from rig_core.evaluate.imagination import open_loop
    from rig_core.inference.imagine import imagine

    env = make_env(length=None)
    starts = [env.reset(1_000_020 + i).frame for i in range(3)]
    windows = [(f, np.array(a), "Collect wood.") for f, a in zip(starts, ([3, 5], [1, 1], [0, 4]))]
    batched = open_loop(policy, windows, batch=3)
    assert len(batched) == 3 and batched[0].shape == (2, 64, 64, 3)
    for (f, a, text), got in zip(windows, batched):
        one = imagine(policy, f, [int(x) for x in a], text)["imagined"]
        same = np.mean(policy.image_tok.encode(one) == policy.image_tok.encode(got))
        assert same >= 0.97, same  # left padding only moves float rounding; greedy picks agree


def _episodes(n: int, steps: int) -> list[dict]:
    out = []
    for i in range(n):
        env = make_env(length=None)
        frames, actions = [env.reset(1_000_030 + i).frame], [1 + (t + i) % 4 if t % 3 else 5 for t in range(steps)]
        for a in actions:
            frames.append(env.step(a)[0].frame)
        out.append({"frames": np.stack(frames), "actions": np.array(actions), "instruction": "Collect wood."})
    return out


def test_in_context_imagination_walks_the_real_episode(policy):
    from rig_core.evaluate.imagination import in_context, open_loop

    eps = _episodes(2, 9)
    both = in_context(policy, eps, [[0, 3, 6], [3]], k=2, batch=2)
    assert sorted(both[0]) == [0, 3, 6] and sorted(both[1]) == [3] and both[0][3].shape == (2, 64, 64, 3)
    # a window at t = 0 has no history: the same as a cold start
    cold = open_loop(policy, [(eps[0]["frames"][0], eps[0]["actions"][:2], "Collect wood.")], batch=1)[0]
    codes = policy.image_tok.encode
    assert np.mean(codes(cold) == codes(both[0][0])) >= 0.97
    # forks do not leak into the walk: the window at 6 is the same without the earlier ones
    alone = in_context(policy, eps[:1], [[6]], k=2, batch=1)[0][6]
    assert np.mean(codes(alone) == codes(both[0][6])) >= 0.97
    # each call sees the real steps before it as history; the fork's step is dropped after the window
    seen, act = [], policy.act

    def spy(frames, forced_actions=None, rows=None, **kw):
        seen.append([len(policy.history[b]) for b in rows])
        return act(frames, forced_actions=forced_actions, rows=rows, **kw)

    policy.act = spy
    try:
        in_context(policy, eps[:1], [[0, 3]], k=3, batch=1)
    finally:
        del policy.act
    # t = 0, two steps on its own frames, back to t = 1..3 on the real history, two more own steps; the history
    # holds at most the steps a context can hold at their shortest (older ones are dropped)
    cap = policy.context // policy.budget.shortest_step + 1
    assert cap < 5 and seen == [[min(n, cap)] for n in (0, 1, 2, 1, 2, 3, 4, 5)]


def test_forced_actions_are_used(policy):
    env = make_env(length=None)
    policy.reset(["Collect wood."])
    out = policy.act(env.reset(5).frame[None], forced_actions=[3])[0]
    assert out.action == 3


def test_playing_without_imagining_acts_the_same(policy):
    """Imagined frames are never acted on: leaving them out (all, or all but the recorded episodes) keeps every
    thought and action of a greedy policy, and only the environments asked for get an imagined frame."""
    from rig_core.inference.episodes import play
    from rig_core.tasks import load_suite

    suite = load_suite("crafter")
    tasks = [suite.get(t) for t in ("collect_wood", "collect_sapling", "collect_drink")]
    seeds = [1_000_000, 1_000_001, 1_000_002]
    runs = {}
    for imagine in (True, False, {1}):
        recs = []
        results = list(play(tasks, seeds, policy=policy, max_steps=4, imagine=imagine, on_step=recs.append))
        runs[str(imagine)] = ([(r.env, r.t, r.action, r.thought) for r in recs],
                              sorted((r.seed, r.steps, r.success) for r in results))
        drawn = {r.env for r in recs if r.imagined is not None}
        assert drawn == ({0, 1, 2} if imagine is True else set() if imagine is False else {1})
    assert runs["True"] == runs["False"] == runs["{1}"]


def test_live_view_renders_to_text():
    frame = np.zeros((64, 64, 3), np.uint8)
    rec = StepRecord(env=0, t=7, frame=frame, action=5, action_name="do", thought="So I chop the tree.",
                     imagined=frame, inventory={"health": 9, "wood": 2}, unlocked=["collect_wood"])
    console = Console(record=True, width=160, color_system="truecolor")
    console.print(live_view(rec, task="collect_wood: Collect wood.", rate=3.5))
    styled = console.export_text(styles=True, clear=False)
    text = console.export_text()
    for word in ("real frame", "imagined next frame", "So I chop the tree.", "do", "wood 2", "collect_wood",
                 "3.5 actions/s"):
        assert word in text
    assert "38;2;" in styled and "48;2;" in styled, "true-colour half-block pixels"


def test_psnr_by_hand():
    a = np.zeros((1, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one of 48 values off by 255: MSE = 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * np.log10(48))
    assert psnr(a, a) == float("inf")


def test_play_log_live_record_and_baselines(tiny_checkpoint, tmp_path, monkeypatch):
    from rig_core.viz.record import Recorder

    shown = []  # whether each recorded step carried an imagined frame
    add = Recorder.add
    monkeypatch.setattr(Recorder, "add", lambda self, rec: (shown.append(rec.imagined is not None), add(self, rec)))
    r = rig("play", "--checkpoint", tiny_checkpoint, "--task", "collect_wood", "--max-steps", 3, "--max-think", 4)
    assert r.exit_code == 0, r.output
    assert r.output.count("t=") == 3
    r = rig("play", "--checkpoint", tiny_checkpoint, "--task", "collect_wood", "--max-steps", 2, "--max-think", 4,
            "--json", "--quiet")
    played = json.loads(r.stdout)
    assert 0 <= played["thoughts_on_task"] + played["thoughts_off_task"] <= played["steps"] == 2
    assert (played["max_steps"], played["max_think"], played["test_time_steps"]) == (2, 4, 0)
    assert played["history"] is None and played["review_threshold"] is None and played["temperature"] == 0.0
    r = rig("play", "--checkpoint", tiny_checkpoint, "--max-steps", 1, "--max-think", 4, "--history", 0, "--json")
    assert json.loads(r.stdout)["history"] == 0
    gif = tmp_path / "p.gif"
    r = rig("play", "--checkpoint", tiny_checkpoint, "--max-steps", 2, "--max-think", 4, "--live", "--record", gif, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout[r.stdout.index("{"):])["steps"] == 2
    assert len(iio.imread(gif)) == 2
    beside = json.loads((tmp_path / "p.gif.json").read_text())  # what made the recording
    assert beside["command"].startswith("rig") and beside["seed"] == 1_000_000 and beside["steps"] == 2
    assert beside["player"] == str(tiny_checkpoint) and "torch" in beside["versions"]
    assert shown == [True, True]  # a recording decodes the imagination (play skips it when nothing shows it)
    r = rig("play", "--agent", "expert", "--task", "collect_wood", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["success"]
    r = rig("play", "--agent", "random", "--max-steps", 5, "--json", "--quiet")
    assert r.exit_code == 0 and json.loads(r.stdout)["steps"] == 5


def test_imagine_from_dataset_and_frame(tiny_checkpoint, random_dataset, tmp_path):
    out = tmp_path / "im.gif"
    r = rig("imagine", "--checkpoint", tiny_checkpoint, "--from", f"{random_dataset}:1:3", "--steps", 2, "--out", out,
            "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert len(res["psnr"]) == 2 and len(res["psnr_copy_last_frame"]) == 2
    assert res["context_steps"] == 3  # the episode's steps 0..2 walked first
    assert len(iio.imread(out)) == 3
    beside = json.loads((tmp_path / "im.gif.json").read_text())
    assert beside["start"] == f"{random_dataset}:1:3" and beside["psnr"] == res["psnr"] and "versions" in beside
    r = rig("imagine", "--checkpoint", tiny_checkpoint, "--from", f"{random_dataset}:1:3", "--steps", 2, "--out", out,
            "--json", "--cold")
    assert r.exit_code == 0 and json.loads(r.stdout)["context_steps"] == 0, r.output
    assert "episode 99 is outside" in _err(rig("imagine", "--checkpoint", tiny_checkpoint, "--from",
                                               f"{random_dataset}:99:0", "--steps", 1, "--out", out))
    png = tmp_path / "f.png"
    iio.imwrite(png, make_env().reset(3).frame)
    r = rig("imagine", "--checkpoint", tiny_checkpoint, "--frame", png, "--actions", "move_left,do", "--out",
            tmp_path / "im.png", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["actions"] == ["move_left", "do"]


def test_evaluate_policy_baseline_and_compare(tiny_checkpoint, tmp_path):
    ev = tmp_path / "ev"
    r = rig("evaluate", "--checkpoint", tiny_checkpoint, "--suite", "collect_wood", "--episodes", 2, "--max-steps", 4,
            "--out", ev, "--quiet", "--gifs", 1, "--imagination-steps", 2)
    assert r.exit_code == 0, r.output
    res = json.loads((ev / "eval.json").read_text())
    assert res["seeds"] == [1_000_000, 1_000_001]
    e = res["sweep"][0]
    assert e["tasks"]["collect_wood"]["episodes"] == 2 and len(e["tasks"]["collect_wood"]["ci95"]) == 2
    assert e["expert_agreement"] is not None and 0 <= e["invalid_rate"] <= 1
    assert all(0 <= x["on_task"] + x["off_task"] <= x["steps"] for x in e["episodes"])
    assert e["on_task_rate"] == sum(x["on_task"] for x in e["episodes"]) / e["steps"] and "off_task_rate" in e
    assert "thoughts on / off task" in (ev / "report.md").read_text()
    repeats = expert_repeats = later = 0  # copying the last action, counted again from the step log
    for shard in sorted((ev / "steps").glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            for g in f["episodes"].values():
                a, x = g["actions"][()], g["expert"][()]
                repeats += int((a[1:] == a[:-1]).sum())
                expert_repeats += int((x[1:] == a[:-1]).sum())
                later += len(a) - 1
    assert later > 0 and e["repeat_rate"] == pytest.approx(repeats / later)
    assert e["expert_repeat_rate"] == pytest.approx(expert_repeats / later)
    assert e["overall"]["episodes"] == 2 and e["overall"]["ci95"][0] <= e["overall"]["rate"] <= e["overall"]["ci95"][1]
    assert "| N | episodes | success (all tasks) | 95% CI |" in (ev / "report.md").read_text()
    assert res["temperature"] == 0 and "greedy decoding" in (ev / "report.md").read_text()
    assert [h["horizon"] for h in res["imagination"]["horizons"]] == [1, 2]
    h1 = res["imagination"]["horizons"][0]
    assert 0 <= h1["unchanged_share"] <= 1 and 0 < h1["psnr_pooled_model"] <= 60 and 0 < h1["psnr_pooled_copy_last"] <= 60
    assert "pooled PSNR model / copy-last" in (ev / "report.md").read_text()
    by = res["imagination"]["by_outcome"]  # every 1-step window in one outcome class
    assert set(by) <= {"moved", "blocked", "unclear", "other"} and sum(v["samples"] for v in by.values()) == h1["samples"]
    for k, v in by.items():  # the share of imagined views that held: for moves only
        assert v["imagined_held"] is None if k == "other" else 0 <= v["imagined_held"] <= 1
    assert "by what the real step did" in (ev / "report.md").read_text()
    for name in ("report.md", "success.png", "scaling.png", "imagination.png"):
        assert (ev / name).exists(), name
    assert list(ev.glob("episode-*.gif"))
    hot = tmp_path / "hot"
    r = rig("evaluate", "--checkpoint", tiny_checkpoint, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--out", hot, "--quiet", "--gifs", 0, "--imagination-episodes", 0, "--temperature", 1.5, "--seed", 7,
            "--history", 0)
    assert r.exit_code == 0, r.output
    res = json.loads((hot / "eval.json").read_text())
    assert (res["temperature"], res["sampling_seed"], res["history"]) == (1.5, 7, 0)
    settings = res["config"]  # every setting, whole, as the evaluation's one settings object holds it
    assert (settings["temperature"], settings["seed"], settings["history"], settings["episodes"]) == (1.5, 7, 0, 1)
    assert settings["suite"] == "collect_wood" and settings["gifs"] == 0 and settings["command"]
    assert "sampled at temperature 1.5 (seed 7), 0 past steps in context" in (hot / "report.md").read_text()
    base = tmp_path / "random"
    r = rig("evaluate", "--agent", "random", "--suite", "open", "--episodes", 2, "--max-steps", 30, "--out", base,
            "--quiet", "--workers", 2)
    assert r.exit_code == 0, r.output
    o = json.loads((base / "eval.json").read_text())["sweep"][0]
    assert "on_task_rate" not in o  # a baseline writes no thoughts; open play has no single goal
    assert 50 < o["peak_memory_mb"] < 4000  # of the two worker processes
    assert f"Played in {o['seconds'] / 60:.1f} min" in (base / "report.md").read_text()
    o = o["open"]
    assert o["crafter_score_ci95"][0] <= o["crafter_score"] <= o["crafter_score_ci95"][1]
    r = rig("evaluate", "--compare", ev, "--compare", base, "--json")
    doc = json.loads(r.stdout)
    rows = doc["rows"]
    assert [row["player"] for row in rows] == [str(tiny_checkpoint), "random"]
    assert all(len(row["success_ci95"]) == 2 for row in rows) and rows[1]["crafter_score_ci95"] is not None
    (unpaired,) = doc["paired"]["rows"]  # different tasks and seeds: compared as independent samples
    assert unpaired["paired"] is False and unpaired["mcnemar_p"] is None and unpaired["episodes"] == [2, 2]
    assert "unpaired: seeds differ" in rig("evaluate", "--compare", ev, "--compare", base).stdout
    assert rig("evaluate", "--compare", ev, "--compare", base, "--quiet").stdout == ""


def test_bad_inputs(tiny_checkpoint, tmp_path):
    assert "unknown suite" in _err(rig("evaluate", "--agent", "random", "--suite", "nope", "--out", tmp_path / "e"))
    assert "unknown task" in _err(rig("play", "--agent", "random", "--task", "nope"))
    assert "negative" in _err(rig("play", "--agent", "random", "--test-time-steps", -1))
    assert "0 or more" in _err(rig("evaluate", "--agent", "random", "--test-time-steps", "0,-2", "--out", tmp_path / "e"))
    assert "--temperature -1.0 is negative" in _err(rig("evaluate", "--agent", "random", "--temperature", -1,
                                                        "--out", tmp_path / "e"))
    assert "--imagination-steps must be at least 1" in _err(rig("evaluate", "--checkpoint", tiny_checkpoint,
                                                                "--imagination-steps", 0, "--out", tmp_path / "e"))
    assert not (tmp_path / "e").exists()
    line = _err(rig("evaluate", "--checkpoint", tiny_checkpoint, "--test-time-steps", "0,1", "--out", tmp_path / "e"))
    assert "without review data" in line and "--test-time-steps 0" in line
    assert "without review data" in _err(rig("play", "--checkpoint", tiny_checkpoint, "--test-time-steps", 2))
    assert "--history -1 is negative" in _err(rig("play", "--checkpoint", tiny_checkpoint, "--history", -1))
    assert "unknown --device 'tpu'" in _err(rig("play", "--checkpoint", tiny_checkpoint, "--device", "tpu"))
    if not torch.cuda.is_available():
        assert "no CUDA GPU is visible" in _err(rig("evaluate", "--checkpoint", tiny_checkpoint, "--device", "cuda",
                                                    "--out", tmp_path / "e"))
    assert "--history -2 is negative" in _err(rig("evaluate", "--checkpoint", tiny_checkpoint, "--history", -2,
                                                  "--out", tmp_path / "e"))
    png = tmp_path / "small.png"
    iio.imwrite(png, np.zeros((32, 32, 3), np.uint8))
    assert "expects 64x64" in _err(rig("imagine", "--checkpoint", tiny_checkpoint, "--frame", png, "--steps", 1,
                                       "--out", tmp_path / "x.gif"))
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other, symlinks=True)
    meta_path = other / "checkpoints" / "last" / "tokenizer" / "rig.json"
    meta = json.loads(meta_path.read_text())
    meta["sequence_format"] = 99
    meta_path.write_text(json.dumps(meta))
    assert "sequence format 99" in _err(rig("play", "--checkpoint", other, "--max-steps", 1))
    assert "no evaluation" in _err(rig("evaluate", "--compare", tmp_path))
    assert "--seed-start -5 is negative" in _err(rig("evaluate", "--agent", "random", "--seed-start", -5,
                                                     "--out", tmp_path / "e"))


def test_lookahead_decoding_mechanics(tiny_checkpoint):
    """N imagined steps, then a review and the final action (mechanics only: the tiny basic model is not
    trained for it). The history keeps the step in the basic layout with the action actually taken."""
    p = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4)
    env = make_env(length=None)
    p.reset(["Collect wood."])
    out = p.act(env.reset(9).frame[None], lookahead=2)[0]
    s = p.tok.special
    step = p.history[0][-1]
    assert step.count(s["<imagine>"]) == 1 and step.count(s["<review>"]) == 0 and step.count(s["<act>"]) == 1
    assert step[-1] == s["</imagine>"] and p.tok.action_index(step[step.index(s["<act>"]) + 1]) == out.action
    assert len(out.lookahead) == 2 and out.proposed is not None and isinstance(out.review, str)
    assert all(0 <= a < 17 for _, a, _ in out.lookahead)
    chain = p.act(env.reset(9).frame[None], lookahead=2, review=False)[0]
    assert chain.review == "" and chain.action == chain.proposed and len(chain.lookahead) == 2
    p.rewrite_last_action(0, 5)
    assert p.tok.action_index(p.history[0][-1][p.history[0][-1].index(s["<act>"]) + 1]) == 5


@pytest.mark.parametrize("stride,draft", [(0, False), (16, False), (16, True)])
def test_decoding_feeds_the_position_ids_training_uses(tiny_checkpoint, stride, draft):
    """With a think budget (aligned positions) and an image row stride, every token the policy feeds gets
    the position id the training layout gives it, through thoughts, actions, images, lookahead steps
    and the review. With drafts, a rejected draft token is fed and then replaced at its position: the tokens
    kept are those the next position ids continue."""
    from rig_core.model.build import quiet_transformers
    from rig_core.model.checkpoint import find_checkpoint
    from rig_core.model.run_config import load_run_config
    from rig_core.model.load import load_trained
    from rig_core.model.load import load_tokenizers

    quiet_transformers()
    ckpt = find_checkpoint(tiny_checkpoint)
    cfg = load_run_config(tiny_checkpoint)
    tok, image_tok, _ = load_tokenizers(ckpt / "tokenizer")
    p = RigPolicy(load_trained(cfg, ckpt / "model", trainable=False), tok, image_tok, cfg.context, max_think=5,
                  stage="lookahead", think_positions=7, image_row_stride=stride, draft=draft)
    fed: list[tuple[list[int], list[int]]] = [([], []), ([], [])]
    replaced = []
    forward = p.model.forward

    def recording(input_ids=None, attention_mask=None, position_ids=None, **kw):
        n = input_ids.shape[1]
        real = attention_mask[:, -n:].bool()
        for i, b in enumerate(p.live_rows or range(input_ids.shape[0])):  # (rows decoded apart: their batch rows)
            ids, pos = fed[b]
            for t, q in zip(input_ids[i][real[i]].tolist(), position_ids[i][real[i]].tolist()):
                while pos and pos[-1] >= q:  # drafts fed and rejected: replaced from this position on
                    ids.pop(), pos.pop(), replaced.append(q)
                ids.append(t), pos.append(q)
        return forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kw)

    p.model.forward = recording
    envs = [make_env(length=None) for _ in range(2)]
    p.reset(["Collect wood.", "Drink water."])
    p.act(np.stack([e.reset(1_000_030 + i).frame for i, e in enumerate(envs)]), lookahead=2)
    s = tok.special
    for ids, pos in fed:
        assert ids.count(s["<review>"]) == 1 and ids.count(s["<think>"]) == 3
        assert pos == p.builder.layout.positions(ids).tolist()
        assert pos != list(range(len(ids))), "the budget moved the positions"
    assert bool(replaced) == draft


def test_static_cache_decodes_like_the_dynamic_cache(policy, monkeypatch):
    """The preallocated KV cache (written in place) gives the same thoughts, actions and imagined frames
    as transformers' dynamic cache, lookahead included."""
    import rig_core.inference.policy as policy_module

    envs = [make_env(length=None) for _ in range(2)]
    frames = np.stack([e.reset(1_000_040 + i).frame for i, e in enumerate(envs)])
    runs = []
    for static in (True, False):
        if not static:
            monkeypatch.setattr(policy_module, "static_cache", lambda *a, **k: None)
        used = []
        forward = policy.model.forward
        policy.model.forward = lambda **kw: used.append(type(kw.get("cache", kw.get("past_key_values"))).__name__) \
            or forward(**kw)
        policy.stage = "lookahead"
        policy.reset(["Collect wood.", "Drink water."])
        outs = policy.act(frames) + policy.act(frames, lookahead=1)
        del policy.model.forward
        policy.stage = "basic"
        runs.append([(o.thought, o.action, o.imagined_codes.tolist(), o.review) for o in outs])
        assert ("StaticCache" in used) == static
    assert runs[0] == runs[1]


def test_thoughts_on_and_off_task():
    from rig_core.annotate.adherence import goals_named

    assert goals_named("I see a tree 2 cells down. I want to collect wood. So I move down.", "collect_wood") == (True, False)
    assert goals_named("The goal is to collect a sapling. So I hit the grass.", "collect_wood") == (False, True)
    assert goals_named("Getting wood is the next step to place a table.", "place_table") == (True, False)
    assert goals_named("I see a tree 1 cell down. So I turn down.", "collect_wood") == (False, False)  # no goal named
    assert goals_named("I want to plant a sapling.", "collect_sapling") == (False, True)  # another task's words
    assert goals_named("I want to collect wood.", "open") == (False, False)  # open play has no single goal
    from rig_core.evaluate.runner import summarize_results

    ep = {"task": "collect_wood", "steps": 4, "success": False, "reward": 0.0, "unlocked": [], "invalid": 0,
          "compared": 0, "agree": 0}
    assert "on_task_rate" not in summarize_results([ep], [])  # a baseline agent writes no thoughts
    s = summarize_results([ep | {"on_task": 1, "off_task": 2}], [])
    assert (s["on_task_rate"], s["off_task_rate"]) == (0.25, 0.5)


def test_a_corrupt_checkpoint_is_one_clear_line_for_every_command(tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken, symlinks=True)
    weights = broken / "checkpoints" / "last" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated mid-write
    for args in (("play", "--checkpoint", broken, "--task", "collect_wood", "--max-steps", 2),
                 ("evaluate", "--checkpoint", broken, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
                  "--out", tmp_path / "eval"),
                 ("imagine", "--checkpoint", broken, "--frame", tmp_path / "none.png", "--actions", "noop",
                  "--out", tmp_path / "strip.png")):
        line = _err(rig(*args))
        assert "cannot load the model" in line and "corrupt" in line, args
    assert not (tmp_path / "eval" / "eval.json").exists()


def test_paired_comparison_on_shared_seeds(tmp_path):
    """Players evaluated on the same seeds are compared episode by episode; another seed range is unpaired;
    bad input is one clear line."""
    runs = {}
    for name, agent, start in (("expert", "expert", 70), ("random", "random", 70), ("elsewhere", "random", 90)):
        runs[name] = tmp_path / name
        r = rig("evaluate", "--agent", agent, "--suite", "collect_sapling", "--episodes", 6, "--max-steps", 40,
                "--seed-start", start, "--out", runs[name], "--quiet", "--gifs", 0)
        assert r.exit_code == 0, r.output
    res = json.loads((runs["expert"] / "eval.json").read_text())
    assert res["seeds"] == list(range(70, 76)) and (res["format"], res["version"]) == ("rig-evaluation", 1)
    assert {e["seed"] for e in res["sweep"][0]["episodes"]} == set(range(70, 76))
    out = tmp_path / "cmp"
    r = rig("evaluate", "--compare", runs["random"], "--compare", runs["expert"], "--compare", runs["elsewhere"],
            "--baseline", runs["random"], "--out", out, "--json")
    assert r.exit_code == 0, r.output
    paired, unpaired = json.loads(r.stdout)["paired"]["rows"]
    ex = json.loads((runs["expert"] / "eval.json").read_text())["sweep"][0]["episodes"]
    ra = json.loads((runs["random"] / "eval.json").read_text())["sweep"][0]["episodes"]
    by_seed = {e["seed"]: e["success"] for e in ra}
    a_only = sum(by_seed[e["seed"]] and not e["success"] for e in ex)
    b_only = sum(e["success"] and not by_seed[e["seed"]] for e in ex)
    assert paired["paired"] and paired["discordant"] == [a_only, b_only] and paired["episodes"] == [6, 6]
    from rig_core.stats.paired import mcnemar_exact

    assert paired["mcnemar_p"] == mcnemar_exact(a_only, b_only)
    lo, hi = paired["success_diff_ci95"]
    assert lo <= paired["success_diff"] == (b_only - a_only) / 6 <= hi
    assert not unpaired["paired"] and unpaired["mcnemar_p"] is None
    assert (out / "compare.json").exists() and "unpaired: seeds differ" in (out / "compare.md").read_text()
    line = _err(rig("evaluate", "--compare", runs["expert"]))
    assert "at least two evaluations" in line
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"format": "rig-evaluation", "version": 99, "sweep": []}))
    assert "version 99" in _err(rig("evaluate", "--compare", runs["expert"], "--compare", foreign))
    assert "is not one of the compared" in _err(rig("evaluate", "--compare", runs["expert"], "--compare",
                                                    runs["random"], "--baseline", tmp_path))


def test_several_players_in_one_evaluation(tiny_checkpoint, lookahead_run, tmp_path):
    """Every (player, N) on the same seeds, each in its own folder; one paired report and plot against the first.
    A basic checkpoint and a baseline play N = 0 only."""
    out = tmp_path / "players"
    r = rig("evaluate", "--checkpoint", tiny_checkpoint, "--checkpoint", lookahead_run, "--agent", "random",
            "--suite", "collect_wood", "--episodes", 2, "--max-steps", 3, "--test-time-steps", "0,1", "--gifs", 0,
            "--imagination-episodes", 0, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["baseline"] == str(tiny_checkpoint)
    players = [row["player"] for row in doc["rows"]]
    assert players == [f"{lookahead_run} N=0", f"{lookahead_run} N=1", "random"]
    assert all(row["paired"] and row["episodes"] == [2, 2] for row in doc["rows"])  # the same seeds for all
    for folder in (tiny_checkpoint.name, lookahead_run.name, "random"):
        assert (out / folder / "eval.json").exists(), folder
    steps = [[e["test_time_steps"] for e in json.loads((out / f / "eval.json").read_text())["sweep"]]
             for f in (tiny_checkpoint.name, lookahead_run.name)]
    assert steps == [[0], [0, 1]]
    report = (out / "report.md").read_text()
    assert "played at N = 0 only" in report and "players.png" in report
    assert (out / "players.png").stat().st_size > 0 and (out / "compare.json").exists()


def test_whole_games_are_reported_as_crafter_defines_them(tmp_path):
    """Players on whole games: each game's end (a cause of death or time), length and every achievement with its
    interval; paired, the Crafter score difference over the shared seeds, each achievement's McNemar p-value and
    one plot of success per achievement."""
    out = tmp_path / "games"
    r = rig("evaluate", "--agent", "expert", "--agent", "random", "--suite", "open", "--episodes", 2, "--max-steps", 150,
            "--gifs", 0, "--quiet", "--out", out)
    assert r.exit_code == 0, r.output
    o = json.loads((out / "random" / "eval.json").read_text())["sweep"][0]["open"]
    assert sum(o["ended"].values()) == 2 and set(o["ended"]) <= {"zombie", "skeleton", "lava", "starved", "thirst",
                                                                   "tiredness", "time"}
    assert o["length_ci95"][0] <= o["length_mean"] <= o["length_ci95"][1] <= 150
    assert all(lo <= o["achievement_rates"][a] <= hi for a, (lo, hi) in o["achievement_ci95"].items())
    row = json.loads((out / "compare.json").read_text())["rows"][0]
    lo, hi = row["crafter_score_diff_ci95"]
    assert lo <= row["crafter_score_diff"] <= hi and len(row["achievement_pairs"]) == 22
    assert "Whole games (paired on the same seeds)" in (out / "report.md").read_text()
    assert (out / "achievements.png").stat().st_size > 0 and "achievements.png" in (out / "report.md").read_text()
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, str(root / "benchmarks" / "paired.py"), str(out), "--section", "games",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Crafter score" in p.stdout
    s = json.loads((tmp_path / "o" / "paired.json").read_text())["sections"]["games"]
    players = {pl["player"]: pl for pl in s["players"]}
    assert players["random"]["open"]["crafter_score"] == o["crafter_score"]  # the benchmark keeps the figures
    assert players["expert"]["open"]["ended"] and "crafter_score_diff" in s["paired"][0]
