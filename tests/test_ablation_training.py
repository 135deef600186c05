"""Ablations in `rig train`: `--spans` (what each step holds and learns) and nested data fractions. Omitted spans
are absent from the sequence, the checkpoint records its layout, and play decodes exactly that layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import one_line_error, rig

VARIANTS = ["act", "think,act", "act,imagine"]


@pytest.fixture(scope="module")
def runs(reasoned_dataset, tmp_path_factory):
    out = {}
    for spans in VARIANTS:
        run = tmp_path_factory.mktemp("spans") / spans.replace(",", "-")
        r = rig("train", "--data", reasoned_dataset, "--recipe", "tiny", "--spans", spans, "--max-steps", 3,
                "--eval-every", 3, "--save-every", 3, "--set", "codebook_size=64", "--set", "text_vocab=300",
                "--out", run, "--json")
        assert r.exit_code == 0, r.output
        out[spans] = run
    return out


def test_an_act_only_sequence_holds_no_thought_or_imagined_frame():
    from rig_core.tokenize.sequence import SPAN_ACT, SPAN_IMAGINE, SPAN_THINK, SequenceBuilder
    from rig_core.tokenize.vocab import train_text_tokenizer

    tok = train_text_tokenizer(["I see a tree so I move left"] * 20, ["noop", "move_left"], 16, vocab_size=280)
    frame = np.zeros(81, np.int64)
    steps = [(frame, "I see a tree so I move left", 1, frame)] * 3
    lengths = {}
    for spans in ("act", "think,act", "act,imagine", "think,act,imagine"):
        b = SequenceBuilder(tok, 81, spans=spans)
        sample = b.sample("collect wood", steps)
        kinds = set(sample["spans"].tolist())
        ids = set(sample["input_ids"].tolist())
        assert SPAN_ACT in kinds
        assert (SPAN_THINK in kinds) == ("think" in spans) and (tok.special["<think>"] in ids) == ("think" in spans)
        assert (SPAN_IMAGINE in kinds) == ("imagine" in spans)
        assert (tok.special["<imagine>"] in ids) == ("imagine" in spans)
        text = len(tok.text("I see a tree so I move left"))
        assert len(sample["input_ids"]) == len(b.prefix("collect wood")) + 3 * b.step_length(text)
        lengths[spans] = len(sample["input_ids"])
    assert lengths["act"] < lengths["think,act"] < lengths["think,act,imagine"]


def test_each_variant_trains_records_its_spans_and_plays(runs):
    for spans, run in runs.items():
        meta = json.loads((run / "checkpoints" / "last" / "tokenizer" / "rig.json").read_text())
        assert meta["spans"] == spans
        assert json.loads((run / "config.json").read_text())["spans"] == spans
        r = rig("play", "--checkpoint", run, "--max-steps", 4, "--temperature", 0, "--json")
        assert r.exit_code == 0, (spans, r.output)
        assert json.loads(r.stdout)["steps"] == 4


def test_the_step_cache_gives_the_same_greedy_play_for_every_layout(runs):
    for spans, run in runs.items():
        outs = []
        for extra in ([], ["--full-prefill"]):
            r = rig("play", "--checkpoint", run, "--max-steps", 6, "--temperature", 0, "--json", *extra)
            assert r.exit_code == 0, r.output
            outs.append({k: v for k, v in json.loads(r.stdout).items() if k not in ("actions_per_s", "step_cache")})
        assert outs[0] == outs[1], spans


def test_an_unchanged_frame_with_no_past_steps_resumes_the_cache(runs):
    """An act-only model whose context holds only the current frame sees the very same context again when the
    frame does not change (a noop, a blocked move): the cache has nothing new to feed and re-encodes instead,
    with the full prefill's outputs."""
    from rig_core.inference.policy import RigPolicy

    frames = np.stack([np.full((64, 64, 3), 40 * i, np.uint8) for i in range(3)])
    outs = {}
    for cache in (True, False):
        policy = RigPolicy.from_checkpoint(runs["act"], history=0, step_cache=cache, device="cpu")
        policy.reset(["collect wood"] * 3)
        moved = frames.copy()
        moved[0] = 255 - moved[0]  # only the first row's frame changes
        steps = [policy.act(frames), policy.act(frames), policy.act(moved), policy.act(moved[1:], rows=[1, 2])]
        outs[cache] = [[(o.action, o.thought) for o in step] for step in steps]
    assert outs[True] == outs[False]


def test_a_model_asked_for_a_span_it_never_learned_says_so(runs, tmp_path):
    from rig_core.errors import RigError
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(runs["act"])
    policy.reset(["collect wood"])
    with pytest.raises(RigError, match="cannot imagine"):
        policy.act(np.zeros((1, 64, 64, 3), np.uint8), lookahead=1)
    line = one_line_error(rig("imagine", "--checkpoint", runs["think,act"], "--frame", _png(tmp_path), "--steps", 2,
                              "--out", tmp_path / "x.gif"))
    assert "does not imagine" in line


def _png(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "f.png"
    iio.imwrite(path, np.zeros((64, 64, 3), np.uint8))
    return path


def test_a_bad_spans_value_is_one_line(reasoned_dataset, tmp_path):
    for bad in ("think", "act,act", "act,dream"):
        line = one_line_error(rig("train", "--data", reasoned_dataset, "--spans", bad, "--out", tmp_path / "r"))
        assert "--spans" in line and "think,act,imagine" in line
    assert not (tmp_path / "r").exists()


def test_the_lookahead_stage_needs_every_span(runs, review_dataset, tmp_path):
    line = one_line_error(rig("train", "--stage", "lookahead", "--init", runs["act"], "--data", review_dataset,
                              "--out", tmp_path / "look"))
    assert "--spans act" in line


def test_data_fractions_nest_and_keep_the_held_out_episodes(reasoned_dataset):
    from rig_core.data.reader import Dataset
    from rig_core.model.run_config import TrainConfig
    from rig_core.train.data import nested_subset
    from rig_core.train.setup import training_split

    episodes = list(range(100))
    subsets = [set(nested_subset(episodes, f, seed=0)) for f in (1 / 8, 1 / 4, 1 / 2, 1.0)]
    assert [len(s) for s in subsets] == [13, 25, 50, 100]
    assert all(small < large for small, large in zip(subsets, subsets[1:]))
    assert set(nested_subset(episodes, 0.25, seed=1)) != subsets[1]  # the seed chooses them
    with Dataset(reasoned_dataset) as ds:
        full = training_split(ds, TrainConfig(val_fraction=0.25))
        half = training_split(ds, TrainConfig(val_fraction=0.25, data_fraction=0.5))
    assert half[1] == full[1] and set(half[0]) < set(full[0]) and len(half[0]) == (len(full[0]) + 1) // 2


def test_a_bad_data_fraction_is_one_line(reasoned_dataset, tmp_path):
    line = one_line_error(rig("train", "--data", reasoned_dataset, "--set", "data_fraction=0", "--out", tmp_path / "r"))
    assert "data_fraction 0" in line
