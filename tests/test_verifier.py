"""The verifier over the policy's own candidates: candidate rows decoded in one batch (the cache copied, the
batch's left as it was), the choice among them, and --candidates through rig play and rig evaluate."""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.envs import make_env
from rig_core.inference.branches import check_candidates, choose, top_actions
from rig_core.inference.policy import RigPolicy


TASKS = ["Collect wood.", "Collect a sapling from the grass, then place it on the grass near the water."]


def _frames(rows: int = 2, seed: int = 11):
    envs = [make_env(length=None) for _ in range(rows)]
    return envs, [e.reset(seed + i) for i, e in enumerate(envs)]


def _fresh_p_worse(policy, prefix: list[int], branch) -> float:
    """P(worse) of one candidate by re-encoding its whole row from scratch: the context, the thought, the
    candidate, its imagined steps as decoded, the review's opening."""
    s = policy.tok.special
    ids = list(prefix) + [policy.tok.action(branch.action), s["</act>"]]
    for m, codes in enumerate(branch.codes):
        if m:
            ids += [s["</imagine>"], s["<think>"], *policy.tok.text(branch.thoughts[m - 1]), s["</think>"], s["<act>"],
                    policy.tok.action(branch.actions[m - 1]), s["</act>"]]
        ids += [s["<imagine>"], *policy.tok.images(codes).tolist()]
    if len(branch.codes):
        ids.append(s["</imagine>"])
    ids += policy.builder.review_opening(branch.action)
    policy._drop_step_cache()
    with torch.no_grad():
        return float(policy.p_correction(policy._start([ids]))[0])


def test_choice_rule_and_top_actions():
    assert choose([0.9, 0.2, 0.5]) == 1  # the least likely worse
    assert choose([0.3, 0.3, 0.3]) == 0  # ties keep the policy's order
    assert choose([0.5, 0.45, 0.2], margin=0.25) == 2 and choose([0.5, 0.45, 0.3], margin=0.25) == 0
    assert top_actions(np.array([0.1, 0.5, 0.1, 0.3]), 3) == [1, 3, 0]


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_candidate_rows_score_as_a_fresh_encoding_and_leave_the_batch_as_it_was(tiny_checkpoint, steps):
    """Greedy: each candidate's P(worse) from the copied cache rows equals re-encoding its row from scratch; the
    step's own thought, action and next steps are those of plain play (the branch rows leave no trace)."""
    envs, obs = _frames()
    plain = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, temperature=0.0, device="cpu")
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, temperature=0.0, device="cpu")
    for p in (plain, policy):
        p.reset(TASKS)
    frames = np.stack([o.frame for o in obs])
    own = plain.act(frames)
    outs = policy.act(frames, candidates=3, candidate_steps=steps, review=False)
    for o, mine in zip(outs, own):
        assert (o.thought, o.action, o.imagined_codes.tolist()) == (mine.thought, mine.action,
                                                                    mine.imagined_codes.tolist())
        assert [b.action for b in o.candidates] == top_actions(o.action_probs, 3)
        assert [b.rank for b in o.candidates] == [0, 1, 2] and all(b.p_worse is None for b in o.candidates)
        assert all(b.codes.shape == (steps, 81) and len(b.thoughts) == max(0, steps - 1) for b in o.candidates)
    nxt = [e.step(o.action)[0].frame for e, o in zip(envs, outs)]
    assert [(o.thought, o.action) for o in policy.act(np.stack(nxt))] == \
        [(o.thought, o.action) for o in plain.act(np.stack(nxt))]  # the cache the next step resumes is intact

    policy.reset(TASKS)
    outs = policy.act(frames, candidates=3, candidate_steps=steps)
    assert len(set(map(len, policy._contexts))) == 2  # rows of different lengths: their own positions
    s = policy.tok.special
    for k, o in enumerate(outs):
        prefix = policy._contexts[k] + policy.tok.text(o.thought) + [s["</think>"], s["<act>"]]
        scores = [b.p_worse for b in o.candidates]
        assert all(0 <= p <= 1 for p in scores)
        assert o.action == o.candidates[choose(scores)].action and o.proposed == own[k].action
        for b in o.candidates:
            assert abs(_fresh_p_worse(policy, prefix, b) - b.p_worse) < 1e-5  # (fp32 on the CPU)


def test_candidate_rows_reencode_where_the_cache_cannot_be_copied(tiny_checkpoint, monkeypatch):
    import rig_core.inference.branches as branches

    envs, obs = _frames()
    frames = np.stack([o.frame for o in obs])
    scores = []
    for copy in (True, False):
        if not copy:
            monkeypatch.setattr(branches, "take_rows", lambda *a, **k: None)
        p = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, temperature=0.0, device="cpu")
        p.reset(TASKS)
        outs = p.act(frames, candidates=2, candidate_steps=1)
        scores.append([[b.p_worse for b in o.candidates] for o in outs])
    assert np.allclose(scores[0], scores[1], atol=1e-4)


def test_the_verifier_plays_the_one_candidate_not_called_worse(tiny_checkpoint, monkeypatch):
    """A review that calls every candidate worse but the policy's third: that one is played, the history holds it,
    and the policy's own draw is the proposal."""
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=0.0, device="cpu")
    envs, obs = _frames(1)
    policy.reset(["Collect wood."])
    probe = policy.act(obs[0].frame[None], imagine=False)[0]
    third = top_actions(probe.action_probs, 3)[2]
    real = RigPolicy._branch

    def verdicts(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        for row in out:
            for b in row:
                b.p_worse = 0.1 if b.action == third else 0.9
        return out

    monkeypatch.setattr(RigPolicy, "_branch", verdicts)
    policy.reset(["Collect wood."])
    out = policy.act(obs[0].frame[None], candidates=3, candidate_steps=0)[0]
    assert out.action == third and out.proposed == probe.action != third
    assert [b.p_worse for b in out.candidates] == [0.9, 0.9, 0.1]
    act = policy.tok.special["<act>"]
    step = policy.history[0][-1]
    assert policy.tok.action_index(step[step.index(act) + 1]) == third


def test_check_candidates_says_what_is_wrong():
    from rig_core.errors import RigError

    check_candidates(None, 2, "basic")
    check_candidates(1, 0, "basic")  # the top action needs no review
    check_candidates(4, 2, "lookahead")
    for k, n, stage, says in [(0, 0, "lookahead", "--candidates 0"), (2, 0, "basic", "without review data"),
                              (1, 1, "lookahead", "--test-time-steps 1 has no effect")]:
        with pytest.raises(RigError, match=says):
            check_candidates(k, n, stage)


def test_candidate_review_data_layout_and_labels(candidate_dataset):
    """Every state holds the policy's top-2 and the expert's action (where not among them), each imagined 2 steps;
    the expert's own action is judged same, a fine or same candidate's review confirms, a worse one's says Wait."""
    from rig_core.data.reader import Dataset
    from rig_core.review.judge import SAME, WORSE

    with Dataset(candidate_dataset) as ds:
        assert ds.manifest["review"]["candidates"] == 2
        kinds = []
        for ep in ds:
            S = len(ep.read("review/step"))
            prop = ep.read("review/candidates/proposed")
            assert prop.shape == (S, 3, 2) and ep.read("review/candidates/imagined_codes").shape == (S, 3, 2, 81)
            rank, verdict = ep.read("review/candidates/rank"), ep.read("review/candidates/verdict")
            prob = ep.read("review/candidates/prob")
            expert = ep.read("review/expert")
            thoughts = np.asarray(ep.texts("review/candidates/thoughts"), dtype=object).reshape(S, 3, 2)
            texts = np.asarray(ep.texts("review/candidates/text"), dtype=object).reshape(S, 3)
            own = np.asarray(ep.texts("reasoning"), dtype=object)
            for s in range(S):
                used = verdict[s] >= 0
                assert list(rank[s, :2]) == [0, 1] and prob[s, 0] >= prob[s, 1]  # the policy's order
                assert expert[s] in prop[s, used, 0]  # the expert's action is a candidate ...
                c = list(prop[s, :, 0]).index(expert[s])
                assert verdict[s, c] == SAME  # ... always the same as the expert's move
                assert used[:2].all() and (used[2] == (expert[s] not in prop[s, :2, 0]))
                assert (prop[s, ~used] == -1).all() and (verdict[s, ~used] == -1).all()
                assert all(thoughts[s, k, 0] == own[s] for k in np.flatnonzero(used))  # the state's thought, shared
                for k in np.flatnonzero(used):
                    assert texts[s, k].startswith("Wait") == (verdict[s, k] == WORSE)
            kinds += list(verdict[verdict >= 0])
    assert SAME in kinds


def test_a_candidate_worse_than_the_experts_move_is_labelled_worse(tiny_checkpoint):
    """A world where noop wastes the step the expert would use (the expert moves toward its goal): noop as an
    added candidate is judged worse; the expert's own action same."""
    from rig_core.agents import make_agent
    from rig_core.review.candidate_log import CandidateLog
    from rig_core.review.judge import SAME, WORSE
    from rig_core.review.oracle import expert_plan
    from rig_core.tasks import load_suite

    env = make_env(length=None)
    obs = env.reset(5)
    expert = make_agent("expert", env)
    expert.reset(load_suite().get("collect_wood"), 5)
    plan = expert_plan(env, obs, expert, 2)
    assert plan.action != 0
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=0.0, device="cpu")
    policy.reset(["Collect wood."])
    out = policy.act(obs.frame[None], candidates=1, candidate_steps=2, also=[0], review=False)[0]
    log = CandidateLog(2, 2)
    log.add(out, lambda a: plan.verdicts(env, obs, expert, a, 2)[-1],
            lambda v, a, c: "Wait" if v.kind == WORSE else "Good")
    arrays = log.arrays(81)
    actions = list(arrays["review/candidates/proposed"][0, :, 0])
    assert 0 in actions
    assert arrays["review/candidates/verdict"][0, actions.index(0)] == WORSE
    out = policy.act(obs.frame[None], candidates=1, candidate_steps=2, also=[plan.action], review=False)[0]
    log = CandidateLog(1, 2)
    log.add(out, lambda a: plan.verdicts(env, obs, expert, a, 2)[-1], lambda v, a, c: "")
    cands = list(log.arrays(81)["review/candidates/proposed"][0, :, 0])
    assert log.arrays(81)["review/candidates/verdict"][0, cands.index(plan.action)] == SAME


def test_candidate_samples_layout_and_the_training_mix(verifier_run, candidate_dataset, tiny_checkpoint):
    """A candidate sample: the candidate after the shared thought, 0..H imagined frames, then the review with the loss
    on its text (its first token the verdict) and no action after; the lookahead mix reads them (mix_verify)."""
    from rig_core.data.reader import Dataset
    from rig_core.tokenize.sequence import IGNORE, SPAN_REVIEW
    from rig_core.train.lookahead_data import VERIFY, LookaheadDataset, ReviewSource, candidate_items

    policy = RigPolicy.from_checkpoint(verifier_run)
    b, s = policy.builder, policy.tok.special
    assert b.review_cue
    codes = np.arange(81) % policy.image_tok.codebook_size
    for chain, frames in (([("I see a tree.", 3, None)], 0), ([("I see a tree.", 3, codes)], 1),
                          ([("I see a tree.", 3, codes), ("Closer.", 5, codes)], 2)):
        x = b.candidate_sample("Collect wood.", [(codes, "Before.", 1, codes)], codes, chain, "Wait, not that.")
        ids, labels = x["input_ids"].tolist(), x["labels"]
        r0 = ids.index(s["<review>"])
        assert ids[r0 - 1] == (s["</act>"] if frames == 0 else s["</imagine>"])
        assert ids.count(s["<imagine>"]) == 1 + frames  # the history step's, then the candidate's
        assert ids[r0 + 1] == policy.tok.action(3) and ids[-1] == s["</review>"]  # the cue; no action after
        trained = np.flatnonzero(labels != IGNORE)
        assert trained.min() == r0 + 2 and trained.max() == len(ids) - 1
        assert set(x["spans"][trained].tolist()) == {SPAN_REVIEW}
    with Dataset(candidate_dataset) as ds:
        items = candidate_items(ds, ds.indices())
        assert items and {it[4] for it in items} == {0, 1, 2} and {it[0] for it in items} == {VERIFY}
        ep = ds.episode(items[0][2])
        texts = np.asarray(ep.texts("review/candidates/text"), dtype=object).reshape(-1, 3)
        first = ep.read("review/candidates/proposed")[:, :, 0]
    cache = verifier_run / "cache"
    data = LookaheadDataset([ReviewSource(candidate_dataset, cache / "image_codes.h5", cache / "real_codes.h5")],
                            None, b, [], 640)
    for it in items[:3]:  # one candidate of one state, with 0, 1 and 2 imagined steps
        x = data.build(it)
        ids = x["input_ids"].tolist()
        r0 = ids.index(s["<review>"])
        assert ids[r0 - 1] == (s["</act>"] if it[4] == 0 else s["</imagine>"])
        assert ids[r0 + 1] == policy.tok.action(int(first[it[3], it[5]]))
        assert policy.tok.decode_text(ids[r0 + 2:-1]) == texts[it[3], it[5]]
    cfg = json.loads((verifier_run / "config.json").read_text())
    assert cfg["mix_verify"] == 0.4



@pytest.mark.parametrize("steps", [0, 1])
def test_the_verifier_plays_through_rig_play_and_rig_evaluate(verifier_run, tmp_path, steps):
    r = rig("play", "--checkpoint", verifier_run, "--max-steps", 2, "--max-think", 4, "--candidates", 3,
            "--test-time-steps", steps, "--json")
    assert r.exit_code == 0, r.output
    played = json.loads(r.stdout[r.stdout.index("{"):])
    assert played["candidates"] == 3 and sum(played["rank_played"]) == played["steps"] == 2
    r = rig("play", "--checkpoint", verifier_run, "--max-steps", 2, "--max-think", 4, "--candidates", 2,
            "--test-time-steps", steps)
    assert r.exit_code == 0, r.output
    assert r.output.count("P(worse) ") == 2 and "*" in r.output  # each step's candidates, the one played starred
    ev = tmp_path / "ev"
    r = rig("evaluate", "--checkpoint", verifier_run, "--suite", "collect_wood", "--episodes", 2, "--max-steps", 3,
            "--candidates", 3, "--candidate-margin", 0.05, "--test-time-steps", steps, "--batch", 2,
            "--imagination-episodes", 0, "--gifs", 0, "--out", ev, "--quiet")
    assert r.exit_code == 0, r.output
    doc = json.loads((ev / "eval.json").read_text())
    assert doc["config"]["candidates"] == 3 and doc["config"]["candidate_margin"] == 0.05
    assert doc["player"]["candidates"] == 3 and doc["player"]["scorer"] == "review"
    e = doc["sweep"][0]
    assert e["test_time_steps"] == steps and abs(sum(e["rank_played"].values()) - 1) < 1e-9
    assert all(len(x["ranks"]) == x["steps"] for x in e["episodes"])
    assert "least likely worse" in (ev / "report.md").read_text()
    import h5py

    with h5py.File(next((ev / "steps").glob("shard-*.h5"))) as f:
        g = next(iter(f["episodes"].values()))
        assert g["candidates/actions"].shape == (g.attrs["length"], 3)
        assert np.isfinite(g["candidates/p_worse"][()]).all() and (g["candidates/ranks"][()][:, 0] == 0).all()


def test_one_candidate_is_the_policys_top_action(tiny_checkpoint, tmp_path):
    """--candidates 1 plays the policy's most probable action: greedy, the same episode as plain play; sampled, the
    top action at every step (works with a basic checkpoint: nothing is scored)."""
    from rig_core.inference.episodes import play
    from rig_core.tasks import load_suite

    tasks, seeds = [load_suite().get("collect_wood")] * 2, [7, 8]

    def run(temperature, candidates):
        policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=temperature, seed=3)
        steps = []
        list(play(tasks, seeds, policy=policy, max_steps=4, imagine=False, candidates=candidates,
                  on_step=steps.append))
        return steps

    plain, top = run(0.0, None), run(0.0, 1)
    assert [(s.env, s.action, s.thought) for s in plain] == [(s.env, s.action, s.thought) for s in top]
    sampled = run(1.0, 1)
    assert all(s.candidates == [(s.action, s.action_name, 0, None)] for s in sampled)
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=1.0, seed=3)
    policy.reset(["Collect wood."])
    env = make_env(length=None)
    out = policy.act(env.reset(7).frame[None], candidates=1, imagine=False)[0]
    assert out.action == int(np.argmax(out.action_probs))
    r = rig("evaluate", "--checkpoint", tiny_checkpoint, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--candidates", 1, "--imagination-episodes", 0, "--gifs", 0, "--out", tmp_path / "ev", "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["sweep"][0]["rank_played"] == {"0": 1.0}


def test_bad_candidate_settings_are_one_line(tiny_checkpoint, verifier_run, review_dataset, tmp_path):
    ev = ["evaluate", "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2, "--out", tmp_path / "ev"]
    assert "--candidates 0" in _err(rig(*ev, "--checkpoint", verifier_run, "--candidates", 0))
    line = _err(rig(*ev, "--checkpoint", tiny_checkpoint, "--candidates", 2))
    assert "without review data" in line and "--candidates 2" in line
    assert "has no effect" in _err(rig(*ev, "--checkpoint", verifier_run, "--candidates", 1, "--test-time-steps", 1))
    assert "--candidate-margin 1.5" in _err(rig(*ev, "--checkpoint", verifier_run, "--candidates", 2,
                                                "--candidate-margin", 1.5))
    assert "--review-threshold" in _err(rig(*ev, "--checkpoint", verifier_run, "--candidates", 2,
                                            "--review-threshold", 0.5))
    assert "expert agent" in _err(rig(*ev, "--agent", "expert", "--candidates", 2))
    assert not (tmp_path / "ev").exists()
    play = ["play", "--max-steps", 1]
    assert "--candidates 0" in _err(rig(*play, "--checkpoint", verifier_run, "--candidates", 0))
    assert "without review data" in _err(rig(*play, "--checkpoint", tiny_checkpoint, "--candidates", 4))
    assert "expert agent" in _err(rig(*play, "--agent", "expert", "--candidates", 2))
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", "x", "--out",
                    tmp_path / "r", "--candidates", 0))
    assert "--candidates 0" in line
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset,
                    "--out", tmp_path / "l", "--set", "mix_verify=0.3"))
    assert "no candidate samples" in line


def test_ranking_counts_what_the_verifier_fixed_and_broke():
    from rig_core.review.candidates import JudgedState, Judgement, ranking

    W, F = Judgement(False, "wasted"), Judgement(True, "fine")

    def st(js, played, p_worse):
        return JudgedState(0, 0, [1, 2, 3], [0.6, 0.3, 0.1], js, played, js[[1, 2, 3].index(played)], played, p_worse)

    states = [st([W, F, W], 2, [0.9, 0.2, 0.8]),  # fixed: the top one worse, the one played fine
              st([F, W, W], 2, [0.6, 0.5, 0.9]),  # broken
              st([F, F, W], 1, [0.1, 0.3, 0.9]),  # kept a fine top one
              st([W, W, W], 1, [0.5, 0.5, 0.5])]  # nothing fine
    r = ranking(states, ["a", "a", "b", "c"])
    assert r["played_fine"]["share"] == 0.5 and r["top1_fine"]["share"] == 0.5
    assert r["rescued"]["share"] == r["broken"]["share"] == 0.25 and r["any_fine"]["share"] == 0.75
    assert r["played_minus_top1"]["difference"] == 0.0
    assert r["least_worse_fine"]["share"] == 0.5  # argmin P(worse): fine, worse, fine, worse
    assert 0.5 < r["auc_p_worse"]["auc"] <= 1 and r["auc_p_worse"]["candidates"] == 12
    # replayed margins: 0.2 still replaces the first state's top one (0.9 - 0.2) and no other; 0.8 replaces none
    assert r["fine_by_margin"]["0"]["share"] == 0.5 and r["changed_by_margin"]["0"] == 0.5
    assert r["fine_by_margin"]["0.2"]["share"] == 0.75 and r["changed_by_margin"]["0.2"] == 0.25
    assert r["fine_by_margin"]["0.5"]["share"] == 0.75 and r["changed_by_margin"]["0.5"] == 0.25
    # the top ones: worse at P 0.9 and 0.5, fine at 0.6 and 0.1
    assert r["auc_p_worse_top1"]["auc"] == 0.75 and r["auc_p_worse_top1"]["states"] == 4


def test_ranking_against_each_actions_prior_reads_the_state_not_the_action():
    """A verifier that always rates action 1 worse than action 2 but rates it less worse where it is fine: raw
    P(worse) always replaces it; against each action's prior (other episodes) it keeps it where it is fine."""
    from rig_core.review.candidates import JudgedState, Judgement, ranking

    W, F = Judgement(False, "wasted"), Judgement(True, "fine")

    def st(js, p_worse):
        return JudgedState(0, 0, [1, 2], [0.7, 0.3], js, 1, js[0], 1, p_worse)

    states = [st([F, W], [0.7, 0.3]), st([W, F], [0.9, 0.3])] * 2
    r = ranking(states, ["a", "b", "c", "d"])
    assert r["fine_by_margin"]["0"]["share"] == 0.5 and r["changed_by_margin"]["0"] == 1.0
    assert r["fine_relative"]["share"] == 1.0 and r["changed_relative"] == 0.5
    assert r["auc_p_worse"]["auc"] == 0.625 and r["auc_p_worse_relative"]["auc"] == 0.875


def test_candidates_benchmark_plays_the_verifier_grid(verifier_run, tiny_checkpoint, tmp_path):
    """The verifier players K x N at tiny size, judged by the oracle: eval.json per player (paired against the
    basic policy), ranking quality and actions/s without the oracle's time."""
    import subprocess
    import sys
    from pathlib import Path

    from rig_core.config import EvalConfig
    from rig_core.evaluate.runner import run_evaluate

    root = Path(__file__).resolve().parents[1]
    cfg = EvalConfig(suite="collect_wood", episodes=2, max_steps=3, seed_start=40, batch=2, imagination_episodes=0,
                     gifs=0)
    run_evaluate(cfg, checkpoint=tiny_checkpoint, out=tmp_path / "base", quiet=True)
    args = ["--checkpoint", str(tiny_checkpoint), "--verifier", str(verifier_run), "--candidates", "", "--offline", "0",
            "--verify-k", "1,2", "--verify-n", "0,1", "--judge", "--suite", "collect_wood", "--episodes", "2",
            "--max-steps", "3", "--seed-start", "40", "--batch", "2", "--horizon", "2", "--baseline",
            str(tmp_path / "base"), "--out", str(tmp_path / "bench"), "--section", "grid"]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "candidates.py"), *args], capture_output=True,
                       text=True, cwd=root, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "The verifier's choice within a state" in r.stdout
    doc = json.loads((tmp_path / "bench" / "candidates.json").read_text())["sections"]["grid"]
    assert set(doc["players"]) == {"verifier-top1", "verifier-top2-n0", "verifier-top2-n1"}
    assert set(doc["ranking"]) == set(doc["players"]) and len(doc["paired"]) == 3
    for name, p in doc["players"].items():
        assert p["actions_per_s_policy"] > p["actions_per_s"] > 0 and p["judge_seconds"] > 0
        rk = doc["ranking"][name]
        assert rk["states"] == p["steps"] and set(rk) >= {"played_fine", "top1_fine", "rescued", "broken"}
    top1 = doc["ranking"]["verifier-top1"]
    assert top1["played_fine"] == top1["top1_fine"] and top1["auc_p_worse"] is None  # nothing scored
    n1_row = next(x for x in doc["paired"] if x["player"].endswith("top-2 review N=1"))  # N=1 paired on its own
    line = next(x for x in r.stdout.splitlines() if "verifier-top2-n1" in x and "%" in x)
    assert f"{100 * n1_row['success_diff']:+.1f} [" in line and f"{n1_row['mcnemar_p']:.3g}" in line
    (im,) = doc["imagination"]  # K = 2: N = 1 against N = 0
    assert (im["k"], im["n"], im["against"]) == (2, 1, "verifier-top2-n0") and len(im["success_diff_ci95"]) == 2
    assert "What imagination adds" in r.stdout
    n1 = json.loads((tmp_path / "bench" / "verifier-top2-n1" / "eval.json").read_text())
    assert n1["sweep"][0]["test_time_steps"] == 1 and n1["player"]["candidates"] == 2
    bad = subprocess.run([sys.executable, str(root / "benchmarks" / "candidates.py"), "--checkpoint",
                          str(tiny_checkpoint), "--verifier", str(tiny_checkpoint), "--candidates", "",
                          "--offline", "0",
                          "--verify-k", "2", "--out", str(tmp_path / "b2")], capture_output=True, text=True, cwd=root,
                         timeout=300)
    assert bad.returncode == 2 and "without review data" in bad.stderr


def test_candidate_frames_decoded_with_drafts_are_those_of_token_by_token_decoding(tiny_checkpoint):
    """Greedy: every candidate's imagined frames (the first drafted from the row's own frame, the next from the
    one before) equal token-by-token decoding, and drafts were used."""
    envs, obs = _frames()
    frames = np.stack([o.frame for o in obs])
    out, logs = {}, {}
    for draft in (False, True):
        p = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=6, temperature=0.0, device="cpu", draft=draft)
        p.reset(TASKS)
        p.frame_log = []
        outs = p.act(frames, candidates=3, candidate_steps=2, review=False)
        out[draft] = [[(b.action, b.codes.tolist(), b.thoughts, b.actions) for b in o.candidates] for o in outs]
        logs[draft] = p.frame_log
    assert out[True] == out[False]
    assert not any(e["drafted"] for e in logs[False])
    assert sum(e["drafted"] for e in logs[True]) == 3  # the step's own frame and both candidate frames
