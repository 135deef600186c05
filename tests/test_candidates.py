"""The candidate player: the policy's action probabilities, its top-K in order, a scorer's choice among them, the
expert as the oracle scorer, the headroom summary, and the candidates benchmark end to end at tiny size."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rig_core.agents import make_agent
from rig_core.envs import make_env
from rig_core.inference.episodes import play
from rig_core.inference.policy import RigPolicy
from rig_core.inference.step import StepOutput
from rig_core.model.constrain import constrained_next, constrained_probs
from rig_core.review.candidates import (CandidatePlayer, JudgedState, Judgement, first_fine, headroom,
                                        top_actions)
from rig_core.review.oracle import OracleScorer
from rig_core.tasks import load_suite

ROOT = Path(__file__).resolve().parents[1]


class _Scorer:
    """Judges every candidate with ``fine(action)``; counts its calls per row."""

    def __init__(self, fine):
        self.fine, self.calls, self.seen = fine, {}, []

    def begin(self, tasks, seeds, envs):
        self.calls = {i: 0 for i in range(len(tasks))}

    def score(self, row, env, obs, actions):
        self.calls[row] += 1
        self.seen.append(list(actions))
        return [Judgement(self.fine(a), "fine" if self.fine(a) else "wasted") for a in actions]


def _played(policy, picker, episodes=2, steps=4):
    tasks = [load_suite().get("collect_wood")] * episodes
    taken = []
    results = list(play(tasks, list(range(5, 5 + episodes)), policy=policy, max_steps=steps, imagine=False,
                        picker=picker, on_step=lambda r: taken.append((r.env, r.action, r.proposed_name))))
    return results, taken


def test_constrained_probs_are_what_the_action_is_drawn_from():
    logits = torch.tensor([[0.0, 2.0, 1.0, 5.0, -1.0], [3.0, 0.0, 0.5, 0.0, 9.0]])
    ids = torch.tensor([1, 2, 4])  # the allowed tokens, in action order
    p = constrained_probs(logits, ids, 0.5)
    assert p.shape == (2, 3) and torch.allclose(p.sum(-1), torch.ones(2))
    assert torch.allclose(p[0], torch.softmax(torch.tensor([2.0, 1.0, -1.0]) / 0.5, -1))
    mask = torch.zeros(5, dtype=torch.bool)
    mask[ids] = True
    assert ids[p.argmax(-1)].tolist() == constrained_next(logits, mask).tolist()  # greedy takes the top one
    assert torch.allclose(constrained_probs(logits, ids, 0.0), constrained_probs(logits, ids, 1.0))
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([constrained_next(logits[:1], mask, 1.0, g) for _ in range(3000)]).flatten()
    freq = torch.tensor([(draws == i).float().mean() for i in ids.tolist()])
    assert torch.allclose(freq, constrained_probs(logits[:1], ids, 1.0)[0], atol=0.03)


def test_top_actions_and_the_first_fine_candidate():
    assert top_actions(np.array([0.1, 0.5, 0.1, 0.3]), 3) == [1, 3, 0]  # a tie keeps the action order
    assert top_actions(np.array([0.2, 0.8]), 4) == [1, 0]
    worse, fine = Judgement(False, "wasted"), Judgement(True, "fine")
    assert first_fine([4, 2, 7], [worse, fine, fine]) == 2
    assert first_fine([4, 2, 7], [worse, worse, worse]) == 4  # none fine: the top one
    with pytest.raises(ValueError):
        CandidatePlayer(2)  # several candidates need a scorer
    with pytest.raises(ValueError):
        CandidatePlayer(0)


def test_the_policy_exposes_its_action_probabilities(tiny_checkpoint):
    """One probability per action, summing to 1; greedy plays the most probable, and reading them changes no
    sampled play."""
    env = make_env(length=None)
    frame = env.reset(3).frame[None]
    greedy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=0.0)
    greedy.reset(["Collect wood."])
    out = greedy.act(frame, imagine=False)[0]
    assert out.action_probs.shape == (17,) and abs(out.action_probs.sum() - 1) < 1e-5
    assert out.action == int(np.argmax(out.action_probs))
    a, b = (RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=1.0, seed=4) for _ in range(2))
    a.reset(["Collect wood."])
    b.reset(["Collect wood."])
    first = [a.act(frame)[0] for _ in range(3)]
    again = [b.act(frame)[0] for _ in range(3)]
    assert [o.action for o in first] == [o.action for o in again]
    assert all(np.allclose(x.action_probs, y.action_probs) for x, y in zip(first, again))


def test_the_player_takes_the_top_candidate_and_the_history_records_it(tiny_checkpoint):
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=1.0, seed=1)
    states, tops = [], []

    class Watched(CandidatePlayer):
        def pick(self, rows, envs, obs, outputs):
            tops.extend(int(np.argmax(o.action_probs)) for o in outputs)
            return super().pick(rows, envs, obs, outputs)

    _, taken = _played(policy, Watched(1, on_state=states.append))
    assert states and [s.played for s in states] == [s.candidates[0] for s in states] == tops
    assert any(s.own != s.played for s in states)  # sampled at temperature 1: the drawn action differs at times
    assert [a for _, a, _ in taken] == [s.played for s in states]
    act = policy.tok.special["<act>"]
    for row in range(2):  # the history holds the action played, not the one drawn
        played = [s.played for s in states if s.env == row]
        assert [policy.tok.action_index(st[st.index(act) + 1]) for st in policy.history[row]] == played
    assert [p for _, _, p in taken] == [policy.tok.action_names[s.own] for s in states]  # the drawn one proposed

    none = _Scorer(lambda a: False)  # every candidate worse: the top one
    states = []
    _played(RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=1.0, seed=1),
            CandidatePlayer(3, none, on_state=states.append))
    assert all(s.played == s.candidates[0] and len(s.candidates) == 3 for s in states)
    assert all(s.probs == sorted(s.probs, reverse=True) for s in states)
    assert sum(none.calls.values()) == len(states)  # the scorer sees every row at every step

    states = []
    _played(RigPolicy.from_checkpoint(tiny_checkpoint, max_think=4, temperature=1.0, seed=1),
            CandidatePlayer(3, _Scorer(lambda a: True), on_state=states.append))
    assert all(s.played == s.candidates[0] for s in states)  # all fine: the policy's order decides


def test_a_worse_top_candidate_gives_way_to_a_fine_one(tiny_checkpoint):
    """The policy ranks noop first; the scorer calls noop worse: the next fine candidate is played. Following the
    policy instead plays its own action and judges it too."""
    class Ranked:
        def __init__(self, order):
            self.order = order

        def out(self, drawn):
            p = np.full(17, 0.01)
            for rank, a in enumerate(self.order):
                p[a] = 1.0 - 0.1 * rank
            return StepOutput("", drawn, np.zeros(1), 0, True, action_probs=p / p.sum())

    scorer = _Scorer(lambda a: a != 0)
    player = CandidatePlayer(3, scorer)
    player.begin([None], [0], [None])
    assert player.pick([0], [None], [None], [Ranked([0, 5, 3]).out(0)]) == [5]
    assert scorer.seen[-1] == [0, 5, 3]
    states = []
    own = CandidatePlayer(2, scorer, follow="policy", on_state=states.append)
    own.begin([None], [0], [None])
    assert own.pick([0], [None], [None], [Ranked([0, 5, 3]).out(9)]) == [9]  # its own, drawn outside the top-2
    assert scorer.seen[-1] == [0, 5, 9] and states[0].own_judgement == Judgement(True, "fine")
    assert [j.fine for j in states[0].judgements] == [False, True]


def test_the_oracle_judges_candidates_against_the_expert_kept_in_step():
    """The oracle's expert acts on every real observation (as a separate expert following the same episode
    does); where noop is worse than the expert's move, the player plays the expert's action though the policy
    ranks noop first; where noop is fine, noop."""
    env = make_env(length=None)
    obs = env.reset(8)  # a world where an expert that stopped following the episode acts otherwise at step 2
    task = load_suite().get("collect_wood")
    oracle, states = OracleScorer(3), []
    player = CandidatePlayer(2, oracle, on_state=states.append)
    player.begin([task], [8], [env])
    twin = make_agent("expert", env)
    twin.reset(task, 8)
    replaced = 0
    for _ in range(30):
        action = int(twin.act(obs))
        p = np.full(17, 0.01)
        p[0], p[action if action else 1] = 0.9, 0.5
        played = player.pick([0], [env], [obs], [StepOutput("", 0, np.zeros(1), 0, True, action_probs=p)])[0]
        assert oracle.plans[0].action == action  # in step with the episode
        first, second = states[-1].judgements
        if action:
            assert second == Judgement(True, "same") and first.reason != "same"
        assert played == (0 if first.fine else states[-1].candidates[1])
        replaced += int(not first.fine)
        obs, *_ = env.step(action)
    assert replaced  # noop was worse somewhere, and the expert's move played there
    with pytest.raises(ValueError):
        OracleScorer(0)


def test_headroom_counts_what_another_candidate_could_fix():
    W, F, S = Judgement(False, "wasted"), Judgement(True, "fine"), Judgement(True, "same")
    P = Judgement(False, "progress")

    def st(js, own=None):
        return JudgedState(0, 0, [1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1], js, 1, own or js[0], 1)

    states = [st([W, W, F, W]), st([W, S, W, W]), st([P, W, W, W]), st([F, W, W, W])]
    h = headroom(states, ["a", "a", "b", "c"], ks=(2, 4))
    assert h["states"] == 4 and h["episodes"] == 3
    assert h["top1_worse"]["share"] == 0.75
    assert h["top2"]["rescued"]["share"] == 0.25 and h["top4"]["rescued"]["share"] == 0.5
    assert h["top4"]["stuck"]["share"] == 0.25 and abs(h["top4"]["rescued_when_top1_worse"]["share"] - 2 / 3) < 1e-9
    assert h["top2"]["expert_among"]["share"] == 0.25
    assert np.allclose(h["prob_by_rank"], [0.4, 0.3, 0.2, 0.1])
    assert h["by_reason"]["wasted"]["rescued_top4"]["share"] == 1.0
    assert h["by_reason"]["progress"]["rescued_top4"]["share"] == 0.0
    lo, hi = h["top1_worse"]["ci95"]
    assert 0 <= lo <= 0.75 <= hi <= 1


def test_candidates_benchmark_plays_the_players_and_pairs_them(tiny_checkpoint, tmp_path):
    """The benchmark at tiny size: the oracle players and the policy's own play judged, in rig evaluate's format;
    its own play is the N = 0 evaluation episode by episode, and every player is paired against it."""
    from rig_core.config import EvalConfig
    from rig_core.evaluate.runner import run_evaluate

    cfg = EvalConfig(suite="collect_wood", episodes=3, max_steps=4, seed_start=40, batch=2, imagination_episodes=0,
                     gifs=0)
    run_evaluate(cfg, checkpoint=tiny_checkpoint, out=tmp_path / "base", quiet=True)
    args = ["--checkpoint", str(tiny_checkpoint), "--suite", "collect_wood", "--episodes", "3", "--max-steps", "4",
            "--seed-start", "40", "--batch", "2", "--candidates", "1,2", "--offline", "3", "--horizon", "2",
            "--baseline", str(tmp_path / "base"), "--out", str(tmp_path / "bench")]
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "candidates.py"), *args], capture_output=True,
                       text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "top2-oracle" in r.stdout and "top-1 worse" in r.stdout
    doc = json.loads((tmp_path / "bench" / "candidates.json").read_text())["sections"]["main"]
    assert set(doc["players"]) == {"top1", "top2-oracle", "own-top3-judged"}
    base = json.loads((tmp_path / "base" / "eval.json").read_text())["sweep"][0]["episodes"]
    own = json.loads((tmp_path / "bench" / "own-top3-judged" / "eval.json").read_text())["sweep"][0]["episodes"]
    key = lambda e: (e["task"], e["seed"])  # noqa: E731
    assert sorted(base, key=key) == sorted(own, key=key)  # the same episodes as rig evaluate's N = 0
    names = sorted(row["player"] for row in doc["paired"])  # the checkpoint named by its folder (no private path)
    assert names == [f"{tiny_checkpoint.name} {how}" for how in ("(own action, top-3 judged)", "top-1", "top-2 oracle")]
    assert all(row["paired"] for row in doc["paired"])
    off = doc["offline"]
    assert off["states"] == sum(e["steps"] for e in own) and set(off) >= {"top2", "top3", "by_reason"}
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "candidates.py"), *args, "--resume"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and again.stdout.count("kept from") == 3
    assert json.loads((tmp_path / "bench" / "candidates.json").read_text())["sections"]["main"]["offline"] == off
    assert doc["baseline"]["overall"]["episodes"] == 3 and doc["command"].startswith("python benchmarks/candidates.py")


@pytest.mark.parametrize("bad, says", [(["--candidates", "0,2"], "--candidates 0,2"), (["--horizon", "0"], "--horizon 0"),
                                       (["--baseline", "nowhere"], "no evaluation at nowhere")])
def test_candidates_benchmark_bad_input_is_one_line(bad, says, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "candidates.py"), *bad, "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
