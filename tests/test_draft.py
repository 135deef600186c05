"""Imagined frames decoded speculatively, with the last frame as the draft: the same frames as token by token
(greedy), the model's own distribution (sampling), however good or bad the draft."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rig_core.envs import make_env
from rig_core.envs.view import PLAYER_CELL, content_shifts, shifted_cells
from rig_core.inference.draft import FrameDrafts
from rig_core.inference.image_decoding import accept_drafts
from rig_core.inference.policy import RigPolicy

NAMES = ["noop", "move_left", "move_right", "move_up", "move_down", "do"]


def test_a_shifted_view_keeps_the_player_and_the_inventory():
    cells = np.arange(81).reshape(9, 9)
    moved, known = shifted_cells(cells, content_shifts(NAMES)[1])  # walking left: the view moves right
    assert moved[0, 2] == cells[0, 1] and known[0, 2]
    assert moved[0, 0] == cells[0, 0] and not known[0, 0]  # came into view: the nearest old cell, a guess
    assert moved[PLAYER_CELL] == cells[PLAYER_CELL] and not known[PLAYER_CELL]
    assert not known[PLAYER_CELL[0], PLAYER_CELL[1] + 1]  # the cell the player left
    assert (moved[7:] == cells[7:]).all() and known[7:].all()  # the inventory rows are held
    held, known = shifted_cells(cells, (0, 0))
    assert (held == cells).all() and known.sum() == 80


def test_drafts_learn_the_codes_the_model_writes_and_pick_the_reading():
    grass = np.full((9, 9), 7)
    grass[2, 5] = 3  # a tree
    twin = np.where(grass == 7, 8, grass)  # the same picture, the grass on a near-copy of its code
    drafts = FrameDrafts(np.stack([grass.reshape(-1)] * 2), [0, 1], content_shifts(NAMES), grid=9)
    drafts.observe(0, [8])  # the first cell came out as the twin
    assert drafts.tokens(0, 1, 9) == [8] * 8 and drafts.tokens(0, 23, 24) == [3]  # the tree is kept
    # row 1 walked left: the tree shows one cell right; the decided cells say the view moved
    frame = np.roll(twin, 1, axis=1).reshape(-1)
    drafts.observe(1, frame[:24].tolist())
    assert drafts.chosen(1) == 0 and drafts.tokens(1, 24, 25) == [3]
    held = twin.reshape(-1)
    drafts2 = FrameDrafts(np.stack([grass.reshape(-1)]), [1], content_shifts(NAMES), grid=9)
    drafts2.observe(0, held[:24].tolist())  # a blocked move: the tree stayed
    assert drafts2.chosen(0) == 1 and drafts2.tokens(0, 23, 24) == [3]


def _chi2_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson's chi-square test of ``counts`` against ``probs``: its p-value."""
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a token of probability 0 was drawn"
    expected = counts[keep].sum() * probs[keep] / probs[keep].sum()
    x = float(((counts[keep] - expected) ** 2 / expected).sum())
    return float(torch.special.gammaincc(torch.tensor((keep.sum() - 1) / 2), torch.tensor(x / 2)))


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_the_sampling_rule_gives_the_model_distribution(temperature):
    """A fixed draft on a 6-token vocabulary (the last token not allowed): the first token of each row has the
    model's distribution, and after an accepted draft token so has the second."""
    torch.manual_seed(0)
    scores = torch.tensor([[1.0, 0.2, -0.5, 0.7, 0.0, float("-inf")], [0.1, 1.5, 0.3, -1.0, 0.4, float("-inf")]])
    p = torch.softmax(scores / temperature, -1).numpy()
    R = 40_000
    for d in ([0, 1], [2, 4], [3, 3]):  # a likely draft token, an unlikely one, a middling one
        g = torch.Generator().manual_seed(1)
        kept, tokens = accept_drafts(scores[None].expand(R, 2, 6).contiguous(), torch.tensor([d] * R), [2] * R,
                                     temperature, g)
        kept = np.asarray(kept)
        first = np.where(kept >= 1, d[0], [tokens.get(i, -1) for i in range(R)])
        assert _chi2_p(np.bincount(first, minlength=6), p[0]) > 1e-3
        on = np.nonzero(kept >= 1)[0]
        second = np.where(kept[on] == 2, d[1], [tokens.get(i, -1) for i in on])
        assert _chi2_p(np.bincount(second, minlength=6), p[1]) > 1e-3


def test_the_greedy_rule_keeps_the_argmax_prefix():
    scores = torch.tensor([[[0.0, 2.0, 1.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]]] * 3)
    kept, tokens = accept_drafts(scores, torch.tensor([[1, 0, 2], [1, 2, 2], [0, 0, 0]]), [3, 3, 2], 0.0)
    assert kept == [3, 1, 0] and tokens == {1: 0, 2: 1}


def _walk(seed: int, action: str, names: list[str]):
    """A Crafter world after walking ``action`` until it is blocked (the next such move is blocked too)."""
    env = make_env()
    env.reset(seed)
    a = names.index(action)
    for _ in range(40):
        before = tuple(env._crafter._player.pos)
        obs = env.step(a)[0]
        if tuple(env._crafter._player.pos) == before:
            return env, obs
    raise AssertionError("the walk never hit anything")


def _play(checkpoint, draft: bool, steps: int = 2, lookahead: int = 0, temperature: float = 0.0, window: int = 12):
    """Four rows of crafter-basic: a move that goes through, a blocked move, a non-move, and a move up."""
    policy = RigPolicy.from_checkpoint(checkpoint, temperature=temperature, device="cpu", draft=draft, max_think=16)
    policy.draft_window = window
    names = policy.tok.action_names
    if lookahead:
        policy.stage = "lookahead"  # decoding mechanics only
    fresh = [make_env() for _ in range(3)]
    walked, there = _walk(1, "move_right", names)
    envs = [fresh[0], walked, fresh[1], fresh[2]]
    obs = [fresh[0].reset(5).frame, there.frame, fresh[1].reset(6).frame, fresh[2].reset(7).frame]
    forced = [names.index(a) for a in ("move_left", "move_right", "do", "move_up")]
    policy.reset(["Collect wood."] * 4)
    policy.frame_log = []
    out, moved = [], []
    for _ in range(steps):
        outs = policy.act(np.stack(obs), forced_actions=forced, lookahead=lookahead)
        for i, (e, o) in enumerate(zip(envs, outs)):
            before = tuple(e._crafter._player.pos)
            obs[i] = e.step(o.action)[0].frame
            moved.append(tuple(e._crafter._player.pos) != before)
            out.append((o.thought, o.action, o.imagined_codes.tolist(), [(a, b, c.tolist()) for a, b, c in
                                                                          o.lookahead or []]))
    return out, moved, policy.frame_log


@pytest.mark.parametrize("lookahead", [0, 2])
def test_greedy_frames_are_those_of_token_by_token_decoding(lookahead):
    plain, moved, log = _play("crafter-basic", False, lookahead=lookahead)
    drafted, moved2, dlog = _play("crafter-basic", True, lookahead=lookahead)
    assert moved[:4] == [True, False, False, True] and moved2 == moved  # through, blocked, not a move, through
    assert not any(e["drafted"] for e in log) and all(e["drafted"] for e in dlog)
    assert drafted == plain
    passes = [e["passes"] for e in dlog]
    assert max(passes) < 40  # against 81 token by token
    rejected = {r["rejected"] for e in dlog for r in e["rows"]}
    assert len(rejected) > 1  # rows kept drafts of different lengths


def test_sampled_frames_are_valid_images():
    out, _, log = _play("crafter-basic", True, steps=1, temperature=0.5)
    assert all(e["drafted"] for e in log)
    for _, _, codes, _ in out:
        assert len(codes) == 81 and min(codes) >= 0


def _oracle(monkeypatch, reference: dict, errors: dict[int, set[int]], image_ids: list[int]):
    """Drafts that are the token-by-token frames (``reference``: frame number -> [B, 81] token ids) except at
    ``errors`` (row -> cells), where they are some other image token: every pass keeps exactly up to the next
    planted error."""
    calls = []
    real = FrameDrafts.__init__

    def init(self, *a, **k):
        real(self, *a, **k)
        self.frame = len(calls)
        calls.append(self)

    def tokens(self, row, start, stop):
        ref = reference[self.frame][row]
        return [next(t for t in image_ids if t != ref[i]) if i in errors.get(row, ()) else int(ref[i])
                for i in range(start, stop)]

    monkeypatch.setattr(FrameDrafts, "__init__", init)
    monkeypatch.setattr(FrameDrafts, "tokens", tokens)


@pytest.mark.parametrize("narrow", [0.0, 0.5])
def test_rows_keeping_drafts_of_different_lengths_and_an_all_wrong_draft(tiny_checkpoint, monkeypatch, narrow):
    """Planted errors: row 0's draft is wrong at every cell (each pass keeps nothing: 80 passes, the frame still
    the model's), row 1's at three cells, row 2's nowhere; the frames are those of token-by-token decoding,
    with the cross-step cache and a row leaving the batch."""
    def play(draft):
        policy = RigPolicy.from_checkpoint(tiny_checkpoint, device="cpu", draft=draft, max_think=8)
        policy.draft_narrow_below = narrow
        policy.frame_log = []
        envs = [make_env() for _ in range(3)]
        obs = [e.reset(s).frame for e, s in zip(envs, (11, 12, 13))]
        policy.reset(["Collect wood.", "Collect a sapling.", "Drink water."])
        frames, active, caches = [], [0, 1, 2], []
        for t in range(3):
            if t == 2:
                active = [0, 2]  # row 1's episode ended
            outs = policy.act(np.stack([obs[i] for i in active]), rows=active)
            frames.append(np.stack([policy.tok.images(o.imagined_codes) for o in outs]))
            n = policy._attn.shape[1]  # what the cache holds after the frame: its columns and their keys
            caches.append((policy._attn.clone(), [x.keys[:, :, :n].clone() for x in policy._static.layers]))
            for i, o in zip(active, outs):
                obs[i] = envs[i].step(o.action)[0].frame
        return frames, policy, caches

    reference, policy, cached = play(False)
    ids = policy.tok.image_ids.tolist()
    _oracle(monkeypatch, dict(enumerate(reference)), {0: set(range(81)), 1: {5, 40, 80}}, ids)
    # (after row 1 leaves, the third frame's rows are 0 and 2: row index 1 there is the old row 2)
    frames, policy, caches = play(True)
    for a, b in zip(frames, reference):
        assert (a == b).all()
    for (attn, keys), (attn0, keys0) in zip(caches, cached):  # the cache holds the frame as token by token
        assert torch.equal(attn, attn0)
        assert all(torch.allclose(k, k0, atol=1e-5) for k, k0 in zip(keys, keys0))
    first = policy.frame_log[0]["rows"]
    assert first[0]["rejected"] == 80 and first[0]["accepted"] == 0 and first[0]["passes"] == 80
    assert first[1]["rejected"] == 3 and first[2]["rejected"] == 0
    assert policy.frame_log[0]["passes"] == 80


def test_imagining_from_contexts_drafts_from_their_last_frame_and_action(tiny_checkpoint):
    """``imagine_from`` (offline measures) drafts from the frame and action before each context's ``<imagine>``,
    and gives the frames of token-by-token decoding."""
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, device="cpu", max_think=8)
    envs = [make_env() for _ in range(2)]
    policy.reset(["Collect wood.", "Drink water."])
    policy.act(np.stack([e.reset(s).frame for e, s in zip(envs, (21, 22))]), forced_actions=[1, 5])
    s = policy.tok.special
    rows = [policy.prefixes[b] + policy.history[b][0][: policy.history[b][0].index(s["<imagine>"]) + 1]
            for b in range(2)]
    drafts = policy._drafts_from_contexts(rows)
    obs = policy.history[0][0][1:82]
    assert len(drafts.candidates[0]) == 2 and len(drafts.candidates[1]) == 1  # a move: shifted and held; "do": held
    assert drafts.candidates[0][1][0] == obs
    policy.draft = False
    plain = policy.imagine_from(rows)
    policy.draft, policy.frame_log = True, []
    assert (policy.imagine_from(rows) == plain).all() and policy.frame_log[0]["drafted"]


def test_the_draft_speed_measure_pairs_both_decoders_on_the_same_worlds():
    """benchmarks/play_speed.py --drafts: both copies step the same worlds; greedy, their outputs agree, and the
    drafted one needs fewer passes a frame (at the window asked for)."""
    from rig_core.diagnostics.draft_speed import paired_run

    r = paired_run("crafter-basic", batch=2, n=1, temperature=0.0, steps=1, max_think=8, window=27)
    assert r["window"] == 27 and r["row_steps"] == 2 and r["row_steps_differing"] == 0
    assert r["token by token"]["passes_per_frame"] == 81 and r["drafts"]["passes_per_frame"] < 81
    assert sum(k["frames"] for k in r["by_kind"].values()) == 4  # two rows × (the outcome + one further frame)
