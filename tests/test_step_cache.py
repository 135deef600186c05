"""The cross-step KV cache gives the full-prefill path's greedy outputs until a context slides, and slides by
whole steps."""

from __future__ import annotations

import numpy as np
import pytest

from rig_core.envs import make_env
from rig_core.inference.policy import RigPolicy


def _play(checkpoint, cache: bool, steps: int, lookahead: int = 0, imagine: bool = True, finish_row: int | None = None,
          rows: int = 3, max_think: int = 8, instructions: list[str] | None = None):
    # exact equality of two decoding paths is a CPU (fp32) property; on a GPU in bf16 kernels round differently
    policy = RigPolicy.from_checkpoint(checkpoint, max_think=max_think, step_cache=cache, device="cpu")
    envs = [make_env("crafter") for _ in range(rows)]
    obs = [e.reset(s) for e, s in zip(envs, range(11, 11 + rows))]
    policy.reset(instructions or ["Collect wood.", "Collect a sapling.", "Drink water."][:rows])
    out, active = [], list(range(rows))
    for t in range(steps):
        if finish_row is not None and t == 1:  # one row's episode ends early
            active = [r for r in active if r != finish_row]
        outs = policy.act(np.stack([obs[i].frame for i in active]), rows=active, lookahead=lookahead,
                          imagine=imagine)
        for i, o in zip(active, outs):
            out.append((t, i, o.thought, o.action, o.proposed, o.imagined_codes.tolist(), o.review,
                        [(a, b, c.tolist()) for a, b, c in o.lookahead or []]))
            obs[i] = envs[i].step(o.action)[0]
    return out, policy


@pytest.mark.parametrize("imagine", [True, False])
def test_identical_greedy_outputs_before_any_slide(tiny_checkpoint, imagine):
    full, _ = _play(tiny_checkpoint, False, steps=3, imagine=imagine, finish_row=1)
    cached, policy = _play(tiny_checkpoint, True, steps=3, imagine=imagine, finish_row=1)
    assert policy._first_kept == [0, 0, 0]  # no context slid: every step so far is in every context
    assert policy._cache_rows == [0, 2] and policy._act_col > 0  # the cache followed the rows that go on
    assert cached == full


def test_packing_the_cache_keeps_the_outputs(tiny_checkpoint, monkeypatch):
    """Rows with thoughts of different lengths leave masked holes; packing each row's columns together
    (here at every step) changes no greedy output."""
    import rig_core.inference.step_cache as step_cache

    packed = []
    real = step_cache.compact
    monkeypatch.setattr(step_cache, "compact", lambda *a: packed.append(a[2]) or real(*a))
    monkeypatch.setattr(step_cache.StepCacheMixin, "compact_share", 0.0)
    full, _ = _play(tiny_checkpoint, False, steps=3, finish_row=1)
    cached, policy = _play(tiny_checkpoint, True, steps=3, finish_row=1)
    assert packed, "no step had holes to pack"
    assert policy._first_kept == [0, 0, 0]
    assert cached == full


@pytest.mark.parametrize("cache", [True, False])
def test_rows_that_closed_their_thought_leave_the_batch(tiny_checkpoint, monkeypatch, cache):
    """Rows still writing a thought decode apart from those that closed theirs (here as soon as one row
    closes), and what they write is copied back: the outputs are those of decoding the whole batch."""
    import rig_core.inference.narrow as narrow
    from rig_core.inference.image_decoding import ImageMixin

    taken = []
    real = narrow.take_rows
    monkeypatch.setattr(narrow, "take_rows", lambda *a: taken.append(a[2]) or real(*a))
    monkeypatch.setattr(narrow.NarrowMixin, "narrow_below", 0.0)
    monkeypatch.setattr(ImageMixin, "draft_narrow_below", 0.0)  # (imagined frames narrow too: tests/test_draft.py)
    whole, _ = _play(tiny_checkpoint, cache, steps=3, rows=4, finish_row=1, max_think=12,
                     instructions=["Collect wood.", "Collect a sapling.", "Drink water.", "Eat a cow."])
    assert not taken
    monkeypatch.setattr(narrow.NarrowMixin, "narrow_below", 1.0)
    narrowed, policy = _play(tiny_checkpoint, cache, steps=3, rows=4, finish_row=1, max_think=12,
                             instructions=["Collect wood.", "Collect a sapling.", "Drink water.", "Eat a cow."])
    assert taken, "no row closed its thought before the others"
    assert policy.live_rows is None  # the whole batch again after every span
    assert narrowed == whole


def test_lookahead_steps_with_the_cache(tiny_checkpoint):
    full, _ = _play(tiny_checkpoint, False, steps=2, lookahead=2)
    cached, policy = _play(tiny_checkpoint, True, steps=2, lookahead=2)
    assert policy._cache_rows is None  # N > 0 re-encodes every step: no cache is kept
    assert [x[:5] + x[6:] for x in cached] == [x[:5] + x[6:] for x in full]  # thoughts, actions, further steps
    assert all(len(x[7]) == 2 for x in cached)  # two further imagined steps each


def test_a_slide_drops_whole_steps(tiny_checkpoint):
    """Past the context, the oldest steps go by whole steps (down to about half the room), and every context
    is still the task, whole past steps and the new frame."""
    _, policy = _play(tiny_checkpoint, True, steps=6, rows=1)
    s = policy.tok.special
    first = policy._first_kept[0]
    assert 0 < first < len(policy.history[0])  # it slid, and kept some steps
    ctx = policy._contexts[0]
    prefix = policy.prefixes[0]
    assert ctx[: len(prefix)] == prefix
    body = ctx[len(prefix):]
    expected = [t for step in policy.history[0][first:-1] for t in step]
    assert body[: len(expected)] == expected and body[len(expected)] == s["<obs>"]
    assert all(step[0] == s["<obs>"] and step[-1] == s["</imagine>"] for step in policy.history[0])
    room = policy.context - len(prefix) - policy.budget.reserve(0)
    assert len(expected) <= room


def test_a_full_cache_grows_by_copy_with_the_same_outputs(tiny_checkpoint, monkeypatch):
    """With no spare columns every act outgrows the cache: it is copied into a larger one, not re-encoded."""
    import rig_core.inference.step_cache as step_cache

    grown = []
    real_grow = step_cache.grow
    monkeypatch.setattr(step_cache, "grow", lambda *a, **k: grown.append(1) or real_grow(*a, **k))
    monkeypatch.setattr(RigPolicy, "spare_columns", property(lambda self: 0))
    full, _ = _play(tiny_checkpoint, False, steps=3, finish_row=1)
    cached, policy = _play(tiny_checkpoint, True, steps=3, finish_row=1)
    assert grown and policy._first_kept == [0, 0, 0]
    assert cached == full


def test_every_resumed_step_sees_what_a_full_prefill_sees(tiny_checkpoint, monkeypatch):
    """At every resumed step the next-token logits equal those of encoding every row's whole context afresh,
    also when one row's context no longer extends what the cache holds (a slide of its own): that row is
    re-encoded alone into its cache row."""
    import torch

    import rig_core.inference.step_cache as step_cache

    seen = {"resumed": 0, "alone": 0}
    real, real_alone = step_cache.StepCacheMixin._resume, step_cache.StepCacheMixin._reencode_rows

    def checked(self, rows, contexts, lookahead, tail):
        out = real(self, rows, contexts, lookahead, tail)
        if out is not None:
            seen["resumed"] += 1
            _, _, full = self._prefill(contexts, [self.positions.layout.positions(c) for c in contexts],
                                       max(map(len, contexts)))
            assert torch.allclose(out, full.logits[:, -1], atol=1e-4)
        return out

    def alone(self, slid, bases):
        ok = real_alone(self, slid, bases)
        seen["alone"] += ok * len(slid)
        return ok

    monkeypatch.setattr(step_cache.StepCacheMixin, "_resume", checked)
    monkeypatch.setattr(step_cache.StepCacheMixin, "_reencode_rows", alone)
    policy = RigPolicy.from_checkpoint(tiny_checkpoint, max_think=8, device="cpu")
    envs = [make_env("crafter") for _ in range(3)]
    obs = [e.reset(s) for e, s in zip(envs, (21, 22, 23))]
    policy.reset(["Collect wood.", "Collect a sapling.", "Drink water."])
    for t in range(4):
        if t == 2:  # row 1 forgets its oldest step: its context no longer extends its cache row
            policy.history[1] = policy.history[1][1:]
        outs = policy.act(np.stack([o.frame for o in obs]))
        obs = [e.step(o.action)[0] for e, o in zip(envs, outs)]
    assert seen["resumed"] == 3 and seen["alone"] >= 1


@pytest.mark.parametrize("cache", [True, False])
def test_a_long_game_keeps_a_history_of_constant_size_and_the_same_outputs(tiny_checkpoint, monkeypatch, cache):
    """Steps no context can hold any more are forgotten, so a game of thousands of steps does not grow the
    policy's memory; the outputs are those of a policy that keeps every step."""
    trimmed, policy = _play(tiny_checkpoint, cache, steps=24, rows=2)
    most = policy.context // policy.budget.shortest_step + 1
    assert all(len(h) == most for h in policy.history) and most < 24  # forgotten: the game is longer
    monkeypatch.setattr(RigPolicy, "_forget_old_steps", lambda self, b: None)
    kept, everything = _play(tiny_checkpoint, cache, steps=24, rows=2)
    assert all(len(h) == 24 for h in everything.history) and kept == trimmed
