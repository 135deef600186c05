"""Review data (fork, judge, texts, samples), the lookahead stage, export and test-time steps, at tiny size."""

import copy
import json

import numpy as np
import pytest

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.agents import make_agent
from rig_core.data.reader import Dataset
from rig_core.envs import make_env
from rig_core.review.judge import FINE, SAME, WORSE, Branch, Snapshot, expert_branch, judge, play_branch
from rig_core.review.texts import ReviewWriter
from rig_core.tasks import load_suite
from rig_core.tokenize.sequence import IGNORE, SPAN_ACT, SPAN_IMAGINE, SPAN_REVIEW





def _state(env):
    w = env._crafter._world
    p = env._crafter._player
    return (tuple(p.pos), dict(p.inventory), w._mat_map.copy(), env._crafter._step,
            [(type(o).__name__, tuple(o.pos)) for o in w.objects])


def test_forking_leaves_the_original_env_untouched():
    env = make_env(length=None)
    obs = env.reset(7)
    expert = make_agent("expert", env)
    expert.reset(load_suite().get("collect_wood"), 7)
    for _ in range(10):
        obs, *_ = env.step(expert.act(obs))
    before = _state(env)
    twin = copy.deepcopy(env)
    mine = play_branch(env, [1, 1, 5, 2])
    theirs = expert_branch(env, obs, expert, expert.act(obs), 4)
    assert len(mine.frames) == 4 and len(theirs.frames) == 4
    after = _state(env)
    assert before[0] == after[0] and before[1] == after[1] and before[3] == after[3] and before[4] == after[4]
    assert np.array_equal(before[2], after[2])
    a, b = env.step(3)[0], twin.step(3)[0]  # the original goes on exactly as an untouched copy does
    assert np.array_equal(a.frame, b.frame) and a.privileged["position"] == b.privileged["position"]


def test_the_first_action_is_judged_with_the_expert_playing_on():
    from rig_core.config import ReviewConfig

    env = make_env(length=None)
    obs = env.reset(7)
    expert = make_agent("expert", env)
    expert.reset(load_suite().get("collect_wood"), 7)
    for _ in range(6):
        obs, *_ = env.step(expert.act(obs))
    proposal = 0 if expert.act(obs) != 0 else 1  # an action the expert would not take here
    weighed = expert_branch(env, obs, expert, proposal, 3)  # what --judge first compares with the expert's branch
    fork, twin = copy.deepcopy(env), copy.deepcopy(expert)
    o = fork.step(proposal)[0]
    assert weighed.actions[0] == proposal and weighed.actions[1] == twin.act(o)  # then the expert plays on
    assert ReviewConfig(checkpoint="x").judge == "first"
    assert ReviewConfig.from_dict({"checkpoint": "x", "follow": "corrected"}).judge == "chain"  # stored before


def _snap(pos=(5, 5), health=9, items=(("wood", 0),), unlocked=(), view=b"v", alive=True, facing=(0, 1)):
    return Snapshot(pos, facing, health, tuple(items), frozenset(unlocked), view, alive)


def test_judge_verdicts():
    start = _snap()
    moved = _snap(pos=(6, 5), view=b"w")
    b = Branch([moved], [None], [2])
    assert judge(start, Branch([moved], [None], [2]), b, 1, None, same_first=True).kind == SAME
    hurt = judge(start, Branch([_snap(pos=(4, 5), health=7)], [None], [1]), b, 1, None, False)
    assert (hurt.kind, hurt.reason, hurt.health) == (WORSE, "damage", 2)
    got = Branch([_snap(items=(("wood", 1),), unlocked=("collect_wood",))], [None], [5])
    miss = judge(start, Branch([moved], [None], [2]), got, 1, None, False)
    assert (miss.kind, miss.reason, miss.item) == (WORSE, "progress", "wood")
    far = judge(start, Branch([_snap(pos=(4, 5), view=b"x")], [None], [1]), b, 1, (9, 5), False)
    assert (far.kind, far.reason) == (WORSE, "farther")
    idle = judge(start, Branch([start], [None], [0]), b, 1, None, False)
    assert (idle.kind, idle.reason) == (WORSE, "wasted")
    blocked = judge(start, Branch([start], [None], [1]), b, 1, (9, 5), False)
    assert (blocked.kind, blocked.reason) == (WORSE, "wasted")  # not "farther": the frame shows nothing moved
    other = judge(start, Branch([_snap(pos=(5, 6), view=b"y")], [None], [4]), b, 1, (5, 9), False)
    assert other.kind == FINE  # as close to the target as the expert's move: an equally good alternative
    unseen = judge(start, Branch([_snap(pos=(4, 5), view=b"x")], [None], [1]), b, 1, (15, 5), False)
    assert unseen.kind == FINE  # the target is out of view: the frame cannot tell which way is better
    from rig_core.review.judge import target_in_sight

    assert target_in_sight((9, 5), "tree", {"grass", "tree"}) == (9, 5)
    assert target_in_sight((9, 5), "tree", {"grass", "water"}) is None  # exploring for a tree
    assert target_in_sight((9, 5), None, {"grass", "tree"}) is None  # wandering


def test_review_texts_name_the_reason_and_the_action():
    names = make_env().action_names
    w = ReviewWriter(names, seed=1)
    from rig_core.review.judge import Verdict

    intent = {"subgoal": "collect wood", "target": "grass 2 right"}
    t = w.write(Verdict(WORSE, "farther"), names.index("move_left"), names.index("move_right"), intent, (0, 3, 1))
    assert t.startswith("Wait") and "tree" in t and "move right" in t and "move left" in t
    t = w.write(Verdict(WORSE, "damage", health=2), 1, 2, intent, (0, 3, 1))
    assert "2 health" in t
    c = w.write(Verdict(FINE), names.index("do"), names.index("do"), intent, (0, 3, 2))
    assert not c.startswith("Wait") and "interact" in c
    assert c == w.write(Verdict(FINE), names.index("do"), names.index("do"), intent, (0, 3, 2))  # reproducible


@pytest.fixture(scope="module")
def review_dataset(tiny_checkpoint, reasoned_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "rev"
    r = rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset, "--out", out,
            "--episodes", 3, "--batch", 2, "--max-steps", 5, "--horizon", 2, "--confirm-share", 0.5, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["episodes"] == 3 and summary["states"] == summary["steps"] and summary["horizon"] == 2
    return out


def test_review_dataset_layout(review_dataset, reasoned_dataset):
    with Dataset(review_dataset) as ds:
        assert ds.manifest["stages"] == ["review"] and ds.complete
        assert len(ds.shard_files) == 2  # 3 episodes at --batch 2: a shard is one lock-step batch
        assert ds.manifest["source"]["data"] == str(reasoned_dataset.resolve())
        assert ds.manifest["review"]["judge"] == "first"
        for ep in ds:
            T, S = ep.length, len(ep.read("review/step"))
            assert S == T and ep.read("review/proposed").shape == (S, 2)
            assert ep.read("review/imagined").shape == (S, 2, 64, 64, 3) == ep.read("review/real").shape
            assert ep.read("review/imagined_codes").shape == (S, 2, 81)
            assert len(ep.texts("reasoning")) == T
            v, sel, corr = ep.read("review/verdict"), ep.read("review/selected"), ep.read("review/corrected")
            expert, prop = ep.read("review/expert"), ep.read("review/proposed")
            assert sel[v == WORSE].all()  # every correction is kept
            assert (corr[v == WORSE] == np.repeat(expert[:, None], 2, 1)[v == WORSE]).all()
            assert (corr[v != WORSE] == np.repeat(prop[:, :1], 2, 1)[v != WORSE]).all()
            texts = np.asarray([t.decode() for t in ep.read("review/text").ravel()]).reshape(v.shape)
            assert all(t.startswith("Wait") for t in texts[v == WORSE])
            assert not any(t.startswith("Wait") for t in texts[v != WORSE])
            reached = ep.read("review/real_steps")
            real = ep.read("review/real")
            assert all(real[s, reached[s]:].max(initial=0) == 0 for s in range(S))


def test_review_and_alignment_samples_layout_and_masks(tiny_checkpoint):
    from rig_core.inference.policy import RigPolicy

    p = RigPolicy.from_checkpoint(tiny_checkpoint)
    b, s = p.builder, p.tok.special
    codes = np.arange(81) % p.image_tok.codebook_size
    hist = [(codes, "I see a tree.", 1, codes)]
    chain = [("I move left.", 1, codes), ("Then I chop.", 5, codes)]
    rev = b.lookahead_sample("Collect wood.", hist, codes, chain, review=("Wait, nothing there. I move right.", 2))
    ids, labels, spans = rev["input_ids"].tolist(), rev["labels"], rev["spans"]
    assert ids.count(s["<imagine>"]) == 3 and ids.count(s["<review>"]) == 1 and ids.count(s["<act>"]) == 4
    r0 = ids.index(s["<review>"])
    assert r0 > max(i for i, t in enumerate(ids) if t == s["</imagine>"])
    trained = np.flatnonzero(labels != IGNORE)
    assert trained.min() == r0 + 1  # history, observation and the proposal are context only
    assert set(spans[trained].tolist()) == {SPAN_REVIEW, SPAN_ACT}
    assert p.tok.action_index(ids[-2]) == 2 and labels[-2] == ids[-2] and ids[-1] == s["</act>"]
    ali = b.lookahead_sample("Collect wood.", hist, codes, chain)
    assert s["<review>"] not in ali["input_ids"].tolist()
    trained = np.flatnonzero(ali["labels"] != IGNORE)
    assert set(ali["spans"][trained].tolist()) == {SPAN_IMAGINE} and len(trained) == 2 * 82
    short = b.lookahead_sample("Collect wood.", hist * 5, codes, chain, review=("ok. I move left.", 1), max_len=600)
    assert len(short["input_ids"]) <= 600 and short["input_ids"][-1] == s["</act>"]


def test_review_cue_and_chain_thought_loss(tiny_checkpoint):
    from rig_core.inference.policy import RigPolicy
    from rig_core.tokenize.sequence import SPAN_THINK, SequenceBuilder

    p = RigPolicy.from_checkpoint(tiny_checkpoint)
    s = p.tok.special
    b = SequenceBuilder(p.tok, p.image_tok.tokens_per_frame, review_cue=True)
    codes = np.arange(81) % p.image_tok.codebook_size
    chain = [("I move left.", 1, codes), ("Then I chop.", 5, codes), ("Wood.", 0, codes)]
    rev = b.lookahead_sample("Collect wood.", [], codes, chain, review=("Wait. I move right.", 2), chain_thoughts=True)
    ids, labels, spans = rev["input_ids"].tolist(), rev["labels"], rev["spans"]
    r0 = ids.index(s["<review>"])
    assert ids[r0 + 1] == p.tok.action(1)  # the first proposal, written by the system after <review>
    assert labels[r0 + 1] == IGNORE and labels[r0 + 2] == ids[r0 + 2]
    assert b.review_opening(1) == ids[r0:r0 + 2]
    thinks = [i for i, t in enumerate(ids) if t == s["<think>"]]
    assert labels[thinks[0] + 1] == IGNORE  # the proposal's own thought: context
    for i in thinks[1:]:  # thoughts after an imagined frame: loss up to and with </think>
        end = ids.index(s["</think>"], i)
        assert (labels[i + 1:end + 1] == ids[i + 1:end + 1]).all() and set(spans[i + 1:end + 1]) == {SPAN_THINK}
    acts = [i for i, t in enumerate(ids) if t == s["<act>"]]
    assert all(labels[i + 1] == IGNORE for i in acts[:-1])  # no proposed action is a target
    ali = b.lookahead_sample("Collect wood.", [], codes, chain, chain_thoughts=True)
    assert set(ali["spans"][ali["labels"] != IGNORE].tolist()) == {SPAN_IMAGINE}  # alignment: frames only
    off = b.lookahead_sample("Collect wood.", [], codes, chain, review=("Wait. I move right.", 2))
    assert (off["labels"][:r0] == IGNORE).all()


@pytest.fixture(scope="module")
def lookahead_run(review_dataset, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "look"
    r = rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--out", out,
            "--max-steps", 4, "--eval-every", 4, "--save-every", 2, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["stage"] == "lookahead" and s["steps"] == 4 and s["mix"]["review"] > 0
    return out


def test_lookahead_run_is_an_adapter_on_the_basic_model(lookahead_run, tiny_checkpoint, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model_dir = lookahead_run / "checkpoints" / "last" / "model"
    assert (model_dir / "adapter_config.json").exists() and not (model_dir / "model.safetensors").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint / "checkpoints" / "last" / "model")
    peft = PeftModel.from_pretrained(base, str(model_dir))  # loads with transformers + peft alone
    merged = tmp_path / "merged"
    r = rig("export", "--merge", lookahead_run, "--out", merged, "--json")
    assert r.exit_code == 0, r.output
    full = AutoModelForCausalLM.from_pretrained(merged / "checkpoints" / "last" / "model")
    x = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(full(x).logits, peft(x).logits, atol=1e-4)
    assert "nothing to merge" in _err(rig("export", "--merge", merged, "--out", tmp_path / "again"))
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run)  # decodes with the adapter folded in
    assert not isinstance(policy.model, PeftModel)
    with torch.no_grad():
        assert torch.allclose(policy.model(x).logits, peft(x).logits, atol=1e-4)
    r = rig("play", "--checkpoint", merged, "--max-steps", 1, "--max-think", 3, "--test-time-steps", 1, "--json")
    assert r.exit_code == 0, r.output


def test_lookahead_plays_and_evaluates_with_test_time_steps(lookahead_run, tmp_path):
    r = rig("play", "--checkpoint", lookahead_run, "--task", "collect_wood", "--max-steps", 2, "--max-think", 4,
            "--test-time-steps", 2, "--json")
    assert r.exit_code == 0, r.output
    played = json.loads(r.stdout[r.stdout.index("{"):])
    assert played["steps"] == 2 and 0 <= played["review_changed"] + played["review_fallbacks"] <= 2
    ev = tmp_path / "ev"
    r = rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--test-time-steps", "0,2", "--out", ev, "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads((ev / "eval.json").read_text())
    assert [e["test_time_steps"] for e in res["sweep"]] == [0, 2]
    n0, n2 = res["sweep"]
    assert n0["changed_rate"] == 0 and n0["fallback_rate"] == 0  # no review without lookahead
    assert 0 <= n2["changed_rate"] <= 1 and 0 <= n2["fallback_rate"] <= 1
    assert "review changed" in (ev / "report.md").read_text()
    assert len(n2["episodes"][0]["p_worse"]) == n2["steps"] and 0 <= n2["p_worse_mean"] <= 1
    assert set(n2["p_worse_share_above"]) >= {"0.5", "0.9"} and "p_worse_mean" not in n0
    r = rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--test-time-steps", "1", "--review-threshold", 1.0, "--out", tmp_path / "ev1", "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev1" / "eval.json").read_text())
    assert res["review_threshold"] == 1.0 and res["sweep"][0]["changed_rate"] == 0  # every proposal confirmed
    assert "P(correction) >= 1" in (tmp_path / "ev1" / "report.md").read_text()
    line = _err(rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1,
                    "--test-time-steps", "1", "--review-threshold", 2, "--out", tmp_path / "ev2"))
    assert "--review-threshold 2" in line and not (tmp_path / "ev2").exists()
    r = rig("play", "--checkpoint", lookahead_run, "--max-steps", 1, "--max-think", 4, "--test-time-steps", 1,
            "--review-threshold", 1.0, "--json")
    assert r.exit_code == 0, r.output
    played = json.loads(r.stdout[r.stdout.index("{"):])
    assert played["review_changed"] == 0 and 0 <= played["review_p_worse_mean"] <= 1


def test_lookahead_policy_cues_the_review_and_guards_cut_off_texts(lookahead_run):
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run, max_think=3)
    assert policy.builder.review_cue  # recorded in the run's rig.json
    s = policy.tok.special
    fed = []
    feed = policy._feed
    policy._feed = lambda rows: fed.append([list(r) for r in rows]) or feed(rows)
    obs = make_env("crafter").reset(seed=3)
    policy.reset(["Collect wood."] * 2)
    outs = policy.act(np.stack([obs.frame] * 2), lookahead=1)
    opened = [r for rows in fed for r in rows if s["<review>"] in r]
    assert len(opened) == 2
    for row, o in zip(opened, outs):  # </imagine> <review> PROPOSAL, fed by the system
        k = row.index(s["<review>"])
        assert row[k - 1] == s["</imagine>"] and row[k + 1] == policy.tok.action(o.proposed)
    policy.max_think = 0  # every further thought and review is cut off: the proposal is taken
    outs = policy.act(np.stack([obs.frame] * 2), lookahead=1)
    assert all(o.fallback and o.action == o.proposed and not o.think_closed for o in outs)


def test_review_threshold_decides_the_verdict(lookahead_run):
    from rig_core.errors import RigError
    from rig_core.inference.policy import RigPolicy
    from rig_core.review.texts import opening_tokens

    obs = make_env("crafter").reset(seed=3)
    frames = np.stack([obs.frame] * 3)
    runs = {}
    for tau in (None, 0.0, 1.0):
        policy = RigPolicy.from_checkpoint(lookahead_run, max_think=6, review_threshold=tau)
        policy.reset(["Collect wood.", "Collect wood.", "Place a table."])
        runs[tau] = policy.act(frames, lookahead=1)
    worse, fine = opening_tokens(policy.tok)
    opens = lambda o, ids: any(o.review.startswith(policy.tok.decode_text([t])) for t in ids)
    p = [o.p_worse for o in runs[None]]
    assert all(0.0 <= x <= 1.0 for x in p)
    for tau in (0.0, 1.0):  # the verdict reads the same distribution, whatever the threshold
        assert np.allclose([o.p_worse for o in runs[tau]], p, atol=1e-5)
        assert [o.proposed for o in runs[tau]] == [o.proposed for o in runs[None]]
    assert all(opens(o, worse) for o in runs[0.0])  # tau = 0: every review corrects
    for o in runs[1.0]:  # tau = 1: every proposal is confirmed and taken as it is
        assert (o.fallback or opens(o, fine)) and o.action == o.proposed
    with pytest.raises(RigError, match="review-threshold"):
        RigPolicy.from_checkpoint(lookahead_run, review_threshold=1.5)


def test_review_quality_benchmark_scores_held_out_reviews(lookahead_run, tmp_path):
    import subprocess
    import sys

    from rig_core.evaluate.review_quality import review_samples
    from rig_core.review.texts import opening_tokens
    from rig_core.inference.policy import RigPolicy

    samples = review_samples(RigPolicy.from_checkpoint(lookahead_run), limit=50)
    assert samples and all(isinstance(worse, bool) for _, worse in samples)
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "review.py"), "--run", str(lookahead_run),
                        "--samples", "50", "--out", str(tmp_path)], capture_output=True, text=True, cwd=root, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "AUC" in r.stdout
    row = json.loads((tmp_path / "review.json").read_text())["rows"][0]
    assert row["samples"] == len(samples)
    for key in ("worse_share", "says_worse_share", "agreement", "p_worse_when_worse"):
        assert row[key] is None or 0 <= row[key] <= 1
    if row["auc"] is not None:
        assert 0 <= row["auc_ci95"][0] <= row["auc"] <= row["auc_ci95"][1] <= 1
    shares = [v["says_worse"] for v in row["thresholds"].values()]
    assert shares == sorted(shares, reverse=True) and "tau 0.9" in r.stdout  # a higher threshold corrects less
    worse, fine = opening_tokens(RigPolicy.from_checkpoint(lookahead_run).tok)
    assert worse and fine and not set(worse) & set(fine)


def test_lookahead_benchmark_prints_the_sweep_and_the_targets(lookahead_run, tiny_checkpoint, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(root / "benchmarks" / "lookahead.py"), "--basic", str(tiny_checkpoint),
           "--lookahead", str(lookahead_run), "--suite", "collect_wood", "--episodes", "2", "--steps", "0,2",
           "--max-steps", "3", "--imagination-episodes", "2", "--rollouts", "2", "--horizon", "1",
           "--out", str(tmp_path / "b")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "b" / "lookahead.json").read_text())
    assert [e["test_time_steps"] for e in res["lookahead"]["sweep"]] == [0, 2]
    assert res["basic"]["sweep"][0]["overall"]["episodes"] == 2
    assert res["imagination"]["basic"]["rollouts"] == res["imagination"]["lookahead"]["rollouts"] >= 1
    assert len(res["targets"]) == 3 and all(isinstance(t["met"], bool) for t in res["targets"])
    assert "targets (issue 8)" in p.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert again.returncode == 0 and again.stdout.count("reusing") == 3  # basic N=0, lookahead N=0 and N=2 are not redone
    cmd[cmd.index("--imagination-episodes") + 1] = "0"  # no imagination; a review threshold at N > 0 only
    tau = subprocess.run(cmd + ["--review-threshold", "0.9"], capture_output=True, text=True, cwd=root, timeout=600)
    assert tau.returncode == 0 and tau.stdout.count("reusing") == 2, tau.stderr
    res = json.loads((tmp_path / "b" / "lookahead.json").read_text())
    assert (tmp_path / "b" / "lookahead-n2-t0.9" / "eval.json").exists() and res["review_threshold"] == 0.9
    assert res["imagination"] == {} and len(res["targets"]) == 2


def test_lookahead_resume_is_exact(lookahead_run, review_dataset, tiny_checkpoint, tmp_path):
    import shutil

    other = tmp_path / "look"
    shutil.copytree(lookahead_run, other, symlinks=True)
    shutil.rmtree(other / "checkpoints" / "000004")
    (other / "checkpoints" / "last").unlink()
    (other / "checkpoints" / "last").symlink_to("000002")
    r = rig("train", "--resume", other, "--json")
    assert r.exit_code == 0, r.output
    a = [json.loads(x) for x in (lookahead_run / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (other / "metrics.jsonl").read_text().splitlines()]
    la = [m["loss"] for m in a if m["split"] == "train"]
    lb = [m["loss"] for m in b if m["split"] == "train"]
    assert np.allclose(la, lb, rtol=1e-4)


def test_review_and_lookahead_bad_inputs(tiny_checkpoint, reasoned_dataset, review_dataset, tmp_path):
    line = _err(rig("augment", "--stage", "review", "--data", reasoned_dataset, "--out", tmp_path / "r"))
    assert "--checkpoint" in line
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset,
                    "--out", tmp_path / "r", "--follow", "nobody"))
    assert "--follow" in line
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset,
                    "--out", tmp_path / "r", "--judge", "nobody"))
    assert "--judge" in line and not (tmp_path / "r").exists()
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tmp_path / "none", "--data", reasoned_dataset,
                    "--out", tmp_path / "r"))
    assert "does not exist" in line and not (tmp_path / "r").exists()
    assert "--init" in _err(rig("train", "--stage", "lookahead", "--data", review_dataset, "--out", tmp_path / "l"))
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", reasoned_dataset,
                    "--out", tmp_path / "l"))
    assert "no review samples" in line and not (tmp_path / "l").exists()
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset,
                    "--out", tmp_path / "l", "--mix-review", 0, "--mix-align", 0))
    assert "impossible mix" in line


def test_lookahead_benchmark_says_how_two_intervals_relate():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lookahead.py"
    spec = importlib.util.spec_from_file_location("lookahead_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    low, mid, high = ({"ci95": c} for c in ((0.002, 0.054), (0.237, 0.417), (0.5, 0.7)))
    assert bench._apart(mid, low) == "lower, intervals apart"
    assert bench._apart(mid, high) == "higher, intervals apart"
    assert bench._apart(mid, {"ci95": (0.3, 0.5)}) == "intervals overlap"
