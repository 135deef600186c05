"""Tokenizers and the step sequence: round trips, layout, masks, windows, batch order."""

import numpy as np
import pytest
import torch

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.tokenize.image import GridImageTokenizer, psnr
from rig_core.tokenize.sequence import IGNORE, SPAN_ACT, SPAN_CONTEXT, SPAN_IMAGINE, SPAN_THINK, SequenceBuilder
from rig_core.tokenize.vocab import RigTokenizer, action_token, image_token, train_text_tokenizer
from rig_core.train.data import batches, collate, epoch_order, make_windows, split_episodes

ACTIONS = ["noop", "move_left", "move_right", "do"]


@pytest.fixture(scope="module")
def frames(random_dataset):
    with Dataset(random_dataset) as ds:
        return np.concatenate([ep["frames"][()] for ep in ds])


@pytest.fixture(scope="module")
def image_tok(frames):
    return GridImageTokenizer.fit([frames[::2]], 128, iters=4)


@pytest.fixture(scope="module")
def tok():
    texts = ["I see a tree 2 cells to the left. So I move left.", "So I chop the tree.", "No water is in view."] * 20
    return train_text_tokenizer(texts, ACTIONS, 128, vocab_size=300)


def test_grid_geometry_and_exact_round_trip():
    rng = np.random.default_rng(0)
    codebook = rng.integers(0, 255, (16, 7, 7, 3), dtype=np.uint8)
    tok = GridImageTokenizer(codebook)
    codes = rng.integers(0, 16, (3, 81))
    frames = tok.decode(codes)
    assert frames.shape == (3, 64, 64, 3) and (frames[:, 63] == 0).all() and (frames[:, :, 63] == 0).all()
    assert (tok.encode(frames) == codes).all(), "decode then encode is the identity on codebook frames"
    assert tok.tokens_per_frame == 81


def test_fitted_tokenizer_reconstructs_well(image_tok, frames):
    held = frames[1::2]
    rec = image_tok.decode(image_tok.encode(held))
    assert psnr(held, rec) > 25.0
    assert psnr(held, np.zeros_like(held)) < 15.0  # the check can fail


def test_tokenizer_fit_on_a_subsample_keeps_the_patch_counts():
    """Many unique noisy patches (dark, like Crafter's night tint) beside few frequent clean ones: fitted
    on a subsample of the unique patches, the codebook must still serve the frequent ones as the full fit does."""
    rng = np.random.default_rng(0)
    clean = GridImageTokenizer(rng.integers(0, 255, (6, 7, 7, 3), dtype=np.uint8)).decode(rng.integers(0, 6, (300, 81)))
    dark = np.clip(clean[:60].astype(np.float32) * 0.5 + rng.normal(0, 8, clean[:60].shape), 0, 255).astype(np.uint8)
    train = np.concatenate([clean[60:], dark])
    full = GridImageTokenizer.fit([train], 12, iters=10)
    part = GridImageTokenizer.fit([train], 12, iters=10, max_patches=400)  # ~5,000 unique patches
    assert psnr(clean[:50], full.decode(full.encode(clean[:50]))) > 50
    assert psnr(clean[:50], part.decode(part.encode(clean[:50]))) > 50


def test_image_tokenizer_save_load(image_tok, frames, tmp_path):
    image_tok.save(tmp_path)
    again = GridImageTokenizer.load(tmp_path)
    assert (again.encode(frames[:5]) == image_tok.encode(frames[:5])).all()
    (tmp_path / "image_tokenizer.safetensors").write_bytes(b"junk")
    with pytest.raises(RigError, match="corrupt"):
        GridImageTokenizer.load(tmp_path)
    with pytest.raises(RigError, match="do not match"):
        image_tok.encode(np.zeros((1, 32, 32, 3), np.uint8))


def test_merged_codes_stand_for_their_near_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(20, 230, (3, 7, 7, 3), dtype=np.uint8)
    twin = base[0].astype(int)
    twin[0, 0, 0] += 9  # one value 9 apart: a mean absolute difference of 9 / 147 from entry 0
    book = np.concatenate([base, twin.astype(np.uint8)[None]])  # codes 0 and 3 are twins; 1, 2 distinct
    tok = GridImageTokenizer(book)
    frames = tok.decode(rng.integers(0, 4, (5, 81)))
    assert set(np.unique(tok.encode(frames))) == {0, 1, 2, 3}
    merged = tok.merged(1.0)
    assert merged.distinct_codes == 3 and list(merged.canonical) == [0, 1, 2, 0]
    codes = merged.encode(frames)
    assert set(np.unique(codes)) == {0, 1, 2} and (codes == np.where(tok.encode(frames) == 3, 0, tok.encode(frames))).all()
    assert tok.merged(0.01).distinct_codes == 4 and merged.merged(0.01).distinct_codes == 3  # merges compose
    assert tok.merged(0) is tok  # 0: no merging
    merged.save(tmp_path)
    again = GridImageTokenizer.load(tmp_path)
    assert (again.encode(frames) == codes).all() and again.codebook_size == 4  # the vocabulary is unchanged
    with pytest.raises(RigError, match="code map does not fit"):
        GridImageTokenizer(book, canonical=np.array([0, 1, 2]))


def test_action_codec_is_the_identity(tok):
    for i, name in enumerate(ACTIONS):
        tid = tok.action(i)
        assert tok.hf.convert_ids_to_tokens(tid) == action_token(name)
        assert tok.action_index(tid) == i
    assert tok.action_index(tok.special["<obs>"]) is None


def test_image_ids_round_trip(tok):
    codes = np.arange(128)
    ids = tok.images(codes)
    assert tok.hf.convert_ids_to_tokens(int(ids[5])) == image_token(5)
    assert (tok.codes(ids) == codes).all()


def test_text_round_trip_and_save_load(tok, tmp_path):
    s = "I see a tree 2 cells to the left. So I move left."
    assert tok.decode_text(tok.text(s)) == s
    tok.save(tmp_path, extra={"env": "crafter"})
    again, meta = RigTokenizer.load(tmp_path)
    assert again.text(s) == tok.text(s) and meta["env"] == "crafter" and again.vocab_size == tok.vocab_size
    with pytest.raises(RigError, match="not a rig tokenizer"):
        RigTokenizer.load(tmp_path / "nowhere")


def test_step_layout_and_masks(tok):
    b = SequenceBuilder(tok, 81)
    obs, nxt = np.arange(81) % 128, (np.arange(81) + 1) % 128
    sample = b.sample("Collect wood.", [(obs, "So I chop the tree.", 3, nxt)])
    ids, labels, spans = sample["input_ids"], sample["labels"], sample["spans"]
    s = tok.special
    order = [t for t in ids if t in {s["<task>"], s["<obs>"], s["</obs>"], s["<think>"], s["</think>"],
                                     s["<act>"], s["</act>"], s["<imagine>"], s["</imagine>"]}]
    assert order == [s["<task>"], s["<obs>"], s["</obs>"], s["<think>"], s["</think>"], s["<act>"], s["</act>"],
                     s["<imagine>"], s["</imagine>"]]
    o = list(ids).index(s["<obs>"])
    assert (tok.codes(ids[o + 1 : o + 82]) == obs).all()
    assert (labels[: list(ids).index(s["<think>"]) + 1] == IGNORE).all(), "no loss on task or observation"
    a = list(ids).index(s["<act>"])
    assert labels[a] == IGNORE and labels[a + 1] == tok.action(3) and spans[a + 1] == SPAN_ACT
    im = list(ids).index(s["<imagine>"])
    assert (tok.codes(labels[im + 1 : im + 82]) == nxt).all() and (spans[im + 1 : im + 82] == SPAN_IMAGINE).all()
    think = spans == SPAN_THINK
    assert tok.decode_text(ids[think][:-1]) == "So I chop the tree."
    assert (spans[labels == IGNORE] == SPAN_CONTEXT).all()
    assert len(ids) == len(b.prefix("Collect wood.")) + b.step_length(len(tok.text("So I chop the tree.")))


def test_sample_keeps_the_most_recent_steps(tok):
    b = SequenceBuilder(tok, 81)
    steps = [(np.zeros(81, int), text, 1, np.ones(81, int)) for text in ("So I wait.", "So I move left.", "So I chop.")]
    one = len(b.sample("x", steps[-1:])["input_ids"])
    cut = b.sample("x", steps, max_len=one + 50)
    assert (cut["input_ids"] == tok.special["<obs>"]).sum() == 1
    assert tok.decode_text(cut["input_ids"][cut["spans"] == SPAN_THINK][:-1]) == "So I chop."
    assert (b.sample("x", steps, max_len=10_000)["input_ids"] == tok.special["<obs>"]).sum() == 3


def test_windows_split_and_batches():
    w = make_windows({0: 5, 1: 3}, 2)
    assert [(x.episode, x.start, x.stop) for x in w] == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 2), (1, 2, 3)]
    tr, va = split_episodes(list(range(10)), 0.2, 0)
    assert len(va) == 2 and not set(tr) & set(va) and split_episodes(list(range(10)), 0.2, 0) == (tr, va)
    assert epoch_order(10, 1, 0) == epoch_order(10, 1, 0) != epoch_order(10, 1, 1)
    full = list(batches(10, 3, 1, 0))
    assert [b for b, _ in full] == [0, 1, 2, 3] and sorted(sum((i for _, i in full), [])) == list(range(10))
    assert list(batches(10, 3, 1, 0, start=2)) == full[2:], "resuming skips to the saved batch"
    assert list(batches(10, 4, 1, 0, rank=1, world=2))[0][1] == epoch_order(10, 1, 0)[1:4:2]


def test_collate_pads_and_masks(tok):
    b = SequenceBuilder(tok, 81)
    s1 = b.sample("x", [(np.zeros(81, int), "So I wait.", 0, np.zeros(81, int))])
    s2 = b.sample("longer instruction here", [(np.zeros(81, int), "So I move left toward it.", 1, np.zeros(81, int))])
    out = collate([s1, s2], tok.pad_id)
    n1 = len(s1["input_ids"])
    assert out["input_ids"].shape[1] == max(n1, len(s2["input_ids"]))
    if out["input_ids"].shape[1] > n1:
        assert (out["labels"][0, n1:] == IGNORE).all() and (out["attention_mask"][0, n1:] == 0).all()
    assert out["input_ids"].dtype == torch.long


def test_constrained_decoding_only_emits_allowed_tokens(tok):
    from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

    from rig_core.model.constrain import AllowedTokens, SpanMasks, constrained_next

    masks = SpanMasks(tok)
    logits = torch.randn(64, tok.vocab_size)
    actions = constrained_next(logits, masks.action)
    assert set(actions.tolist()) <= set(tok.action_ids.tolist())
    g = torch.Generator().manual_seed(0)
    images = constrained_next(logits, masks.image, temperature=1.0, generator=g)
    assert set(images.tolist()) <= set(tok.image_ids.tolist())
    close = tok.special["</think>"]
    text = constrained_next(logits, masks.text_until(close), temperature=2.0, generator=g)
    assert not (set(text.tolist()) & (tok.rig_ids - {close}))
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64))
    out = model.generate(torch.tensor([[tok.special["<act>"]]]), max_new_tokens=5, do_sample=True,
                         logits_processor=LogitsProcessorList([AllowedTokens(masks.action)]), pad_token_id=0)
    assert set(out[0, 1:].tolist()) <= set(tok.action_ids.tolist())


def test_aligned_positions_put_each_imagined_frame_at_a_fixed_offset(tok):
    """With a think budget, the offset from an observed cell to the same cell in the step's imagine span
    is one constant whatever the thought's length; without, positions count tokens."""
    s = tok.special
    texts = ("So I wait.", "So I move left toward the tree to chop it.", "")
    offsets = []
    for budget in (0, 24):
        b = SequenceBuilder(tok, 81, think_positions=budget)
        steps = [(np.zeros(81, int), t, 1, np.ones(81, int)) for t in texts]
        sample = b.sample("Collect wood.", steps)
        ids, pos = list(sample["input_ids"]), sample["position_ids"]
        if budget == 0:
            assert (pos == np.arange(len(ids))).all()
        assert (np.diff(pos) >= 1).all() and pos[0] == 0
        obs = [i for i, t in enumerate(ids) if t == s["<obs>"]]
        img = [i for i, t in enumerate(ids) if t == s["<imagine>"]]
        offsets.append({int(pos[j] - pos[i]) for i, j in zip(obs, img)})
        think = [i for i, t in enumerate(ids) if t == s["<think>"]]
        close = [i for i, t in enumerate(ids) if t == s["</think>"]]
        if budget:
            assert {int(pos[c] - pos[o]) for o, c in zip(think, close)} == {budget + 1}
    assert len(offsets[0]) == 3 and len(offsets[1]) == 1
    long = SequenceBuilder(tok, 81, think_positions=2).sample("x", [(np.zeros(81, int), texts[1], 1, np.ones(81, int))])
    assert (long["position_ids"] == np.arange(len(long["input_ids"]))).all(), "texts over the budget count on"
    assert (collate([sample], tok.pad_id)["position_ids"][0].numpy() == pos).all()


def test_image_row_stride_tells_rows_from_columns(tok):
    s = tok.special
    b = SequenceBuilder(tok, 81, think_positions=24, image_row_stride=16)
    steps = [(np.arange(81) % 7, t, 1, np.arange(81) % 5) for t in ("So I wait.", "So I move left toward the tree.")]
    sample = b.sample("Collect wood.", steps)
    ids, pos = list(sample["input_ids"]), sample["position_ids"]
    assert (np.diff(pos) >= 1).all()
    for opener in ("<obs>", "<imagine>"):
        for o in [i for i, t in enumerate(ids) if t == s[opener]]:
            cells = pos[o + 1 : o + 82].reshape(9, 9)
            assert (np.diff(cells, axis=1) == 1).all() and (np.diff(cells, axis=0) == 16).all()
            assert pos[o + 82] == cells[-1, -1] + 1  # the closing tag follows the last cell
    obs = [i for i, t in enumerate(ids) if t == s["<obs>"]]
    img = [i for i, t in enumerate(ids) if t == s["<imagine>"]]
    assert len({int(pos[j] - pos[i]) for i, j in zip(obs, img)}) == 1  # still one obs -> imagine offset
    with pytest.raises(RigError, match="row stride"):
        SequenceBuilder(tok, 81, image_row_stride=4)


@pytest.mark.parametrize("stride", [0, 16])
def test_position_tracker_matches_the_layout_token_by_token(tok, stride):
    from rig_core.tokenize.positions import PositionTracker

    s = tok.special
    b = SequenceBuilder(tok, 81, think_positions=16, image_row_stride=stride)
    review = b.lookahead_sample("Collect wood.", [(np.zeros(81, int), "So I wait.", 0, np.ones(81, int))],
                                np.zeros(81, int), [("So I move left.", 1, np.ones(81, int))],
                                review=("Wait, that leads away from the tree. Better to move up.", 3))
    ids = [int(t) for t in review["input_ids"]]
    rng = np.random.default_rng(0)
    for cut in (1, ids.index(s["<think>"]) + 1, ids.index(s["<review>"]) + 2, len(ids) - 1):
        tr = PositionTracker(b.layout)
        got = list(tr.start([ids[:cut]])[0])
        k = cut
        while k < len(ids):  # the rest in chunks of random size
            n = int(rng.integers(1, 6))
            got += tr.feed(0, ids[k : k + n])
            k += n
        assert got == review["position_ids"].tolist(), cut
    # image spans decoded a token at a time for every row at once (advance)
    at = ids.index(s["<imagine>"]) + 1
    tr = PositionTracker(b.layout)
    tr.start([ids[:at]])
    for k in range(81):
        tr.advance()
        assert tr.last[0] == review["position_ids"][at + k], k
    assert tr.feed(0, [ids[at + 81]]) == [review["position_ids"][at + 81]]
