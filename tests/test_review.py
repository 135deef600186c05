"""Review data at tiny size: forking, the judge, review texts, review and alignment samples, bad input."""

import copy

import numpy as np

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


def _expert_midway(steps: int):
    """(env, observation, expert) after the expert played ``steps`` steps of collect_wood on seed 7."""
    env = make_env(length=None)
    obs = env.reset(7)
    expert = make_agent("expert", env)
    expert.reset(load_suite().get("collect_wood"), 7)
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs))
    return env, obs, expert


def test_forking_leaves_the_original_env_untouched():
    env, obs, expert = _expert_midway(10)
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
    env, obs, expert = _expert_midway(6)
    proposal = 0 if expert.act(obs) != 0 else 1  # an action the expert would not take here
    weighed = expert_branch(env, obs, expert, proposal, 3)  # what the proposal is judged by
    fork, twin = copy.deepcopy(env), copy.deepcopy(expert)
    o = fork.step(proposal)[0]
    assert weighed.actions[0] == proposal and weighed.actions[1] == twin.act(o)  # then the expert plays on


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
    assert (miss.kind, miss.reason, miss.item, miss.deed) == (WORSE, "progress", "wood", None)
    won = Branch([_snap(unlocked=("defeat_zombie",))], [None], [5])  # a deed that gains no item
    fight = judge(start, Branch([moved], [None], [2]), won, 1, None, False)
    assert (fight.reason, fight.item, fight.deed) == ("progress", None, "defeat_zombie")
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

    # with no target in sight, only the expert's first action's gain counts
    later = Branch([moved, _snap(pos=(7, 5), items=(("wood", 1),), unlocked=("collect_wood",))], [None, None], [2, 5])
    walk = Branch([_snap(pos=(4, 5), view=b"x"), _snap(pos=(3, 5), view=b"z")], [None, None], [1, 1])
    assert judge(start, walk, later, 2, None, False).kind == FINE  # found on its own route
    assert judge(start, walk, later, 2, (8, 5), False).reason == "progress"  # goal in view
    now = judge(start, Branch([moved], [None], [2]), got, 1, None, False)
    assert (now.kind, now.reason) == (WORSE, "progress")  # the expert's first action gains at once
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
    t = w.write(Verdict(WORSE, "progress", item="wood pickaxe"), 1, 2, intent, (0, 3, 1))
    assert "the wood pickaxe" in t
    for key in range(6):  # a missed deed is named as one, never as an item to get
        t = w.write(Verdict(WORSE, "progress", deed="defeat_zombie"), 1, names.index("do"), intent, (0, key, 1))
        assert "defeat the zombie" in t and "get the" not in t and "misses the" not in t
    assert "eat the cow" in w.write(Verdict(WORSE, "progress", deed="eat_cow"), 1, 2, intent, (0, 3, 1))
    c = w.write(Verdict(FINE), names.index("do"), names.index("do"), intent, (0, 3, 2))
    assert not c.startswith("Wait") and "interact" in c
    assert c == w.write(Verdict(FINE), names.index("do"), names.index("do"), intent, (0, 3, 2))  # reproducible


def test_view_names_reads_the_semantic_view():
    from rig_core.annotate.context import view_names

    sem = np.zeros((7, 9), np.int64)
    sem[2, 2] = 6
    assert view_names(sem, {"0": "grass", "6": "tree"})[2][2] == "tree" == view_names(sem, {6: "tree"})[2][2]


def test_review_dataset_layout(review_dataset, reasoned_dataset):
    with Dataset(review_dataset) as ds:
        assert ds.manifest["stages"] == ["review"] and ds.complete
        assert len(ds.shard_files) == 2  # 3 episodes at --batch 2: a shard is one lock-step batch
        assert ds.manifest["source"]["data"] == str(reasoned_dataset.resolve())
        assert set(ds.manifest["review"]) == {"horizon", "confirm_share", "confirm_floor", "follow", "candidates"}
        assert ds.manifest["review"]["candidates"] is None
        assert ds.manifest["review"]["confirm_floor"] == 0.0
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


def test_selection_keeps_corrections_and_a_floor_of_confirmations():
    from rig_core.review.rollout import ReviewLog

    log = ReviewLog(horizon=2, frame_shape=(64, 64, 3))
    log.verdict = [[SAME, SAME]] * 20  # the policy right all episode: no correction
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    assert log.select(0.6, rng()).sum() == 0  # the share alone keeps nothing of such an episode
    assert log.select(0.6, rng(), confirm_floor=0.1).sum() == 4  # 10 % of its 40 confirmations
    log.verdict = [[WORSE, WORSE]] + [[FINE, SAME]] * 19
    plain, floored = log.select(0.6, rng()), log.select(0.6, rng(), confirm_floor=0.1)
    assert plain[0].all() and floored[0].all() and plain.sum() == 2 + 3 and floored.sum() == 2 + 4
    assert (log.select(0.6, rng(), confirm_floor=0.0) == plain).all()  # no floor: the selection as before
    line = _err(rig("augment", "--stage", "review", "--checkpoint", "x", "--data", "x", "--out", "y",
                    "--confirm-floor", 2))
    assert "--confirm-floor 2" in line


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


def test_review_and_lookahead_bad_inputs(tiny_checkpoint, reasoned_dataset, review_dataset, tmp_path):
    line = _err(rig("augment", "--stage", "review", "--data", reasoned_dataset, "--out", tmp_path / "r"))
    assert "--checkpoint" in line
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset,
                    "--out", tmp_path / "r", "--follow", "nobody"))
    assert "--follow" in line
    line = _err(rig("augment", "--stage", "review", "--checkpoint", tmp_path / "none", "--data", reasoned_dataset,
                    "--out", tmp_path / "r"))
    assert "does not exist" in line and not (tmp_path / "r").exists()
    assert "--init" in _err(rig("train", "--stage", "lookahead", "--data", review_dataset, "--out", tmp_path / "l"))
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", reasoned_dataset,
                    "--out", tmp_path / "l"))
    assert "no review samples" in line and not (tmp_path / "l").exists()
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset,
                    "--out", tmp_path / "l", "--set", "mix_review=0", "--set", "mix_align=0"))
    assert "impossible mix" in line
    line = _err(rig("augment", "--stage", "reason", "--data", review_dataset, "--out", tmp_path / "rr"))
    assert "already has reasoning texts (stages: review)" in line and "rig collect" in line  # not a traceback
    assert not (tmp_path / "rr").exists()
