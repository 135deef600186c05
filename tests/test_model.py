"""The model layer: sizes, local base + LoRA / QLoRA, constrained decoding, checkpoints and exact resume.

Every model here is built in the test (tiny sizes); nothing is downloaded."""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest
import torch

from rig_core.errors import RigError
from rig_core.model import build, checkpoint, constrain

NEW_TOKENS = ["<pad>", "<obs>", "</obs>", "<act>", "</act>", "NOOP", "MOVE_LEFT", "<img_0>", "<img_1>", "<img_2>"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread; on a shared 2-core machine more threads only contend."""
    build.quiet_transformers()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(vocab: int = 64):
    torch.manual_seed(0)
    return build.build_scratch("tiny", vocab_size=vocab, max_positions=64, pad_token_id=0, bos_token_id=1,
                               eos_token_id=2)


@pytest.fixture(scope="module")
def base_dir(base_model_dir):
    """The tiny local base model of conftest.py."""
    return base_model_dir


def _assert_no_pickles(directory):
    assert checkpoint.find_pickles(directory) == [], "a checkpoint must hold no pickle files"


# -- sizes --------------------------------------------------------------------------------------------

def test_sizes_have_the_intended_parameter_counts():
    counts = {}
    for size, (lo, hi) in {"tiny": (0.4e6, 1e6), "small": (13e6, 17e6), "base": (48e6, 60e6)}.items():
        m = build.build_scratch(size, vocab_size=6000, max_positions=1024, pad_token_id=0, bos_token_id=1,
                                eos_token_id=2)
        total, trainable = build.count_parameters(m)
        counts[size] = total
        assert lo <= total <= hi and trainable == total, (size, total)
        assert m.config._attn_implementation == "sdpa"
        assert m.config.tie_word_embeddings == (size != "base")
        embed = m.get_input_embeddings().weight.numel()
        if size != "tiny":  # at 64 wide, a 6k vocabulary is most of the tiny CI model, by design
            assert embed < total / 2, f"{size}: the embeddings must not be most of the model"
        del m
    print("parameters at vocab 6000:", counts)
    with pytest.raises(RigError, match="unknown model size"):
        build.build_scratch("huge", 100, 64, 0, 1, 2)
    with pytest.raises(RigError, match="outside the vocabulary"):
        build.build_scratch("tiny", 100, 64, 0, 1, 100)


def test_memory_estimate_adds_up():
    m = _tiny()
    est = build.estimate_memory(m, batch_size=4, seq_len=32, dtype="no")
    parts = ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
    assert est["total_bytes"] == sum(est[k] for k in parts)
    total, _ = build.count_parameters(m)
    assert est["optimizer_bytes"] == 8 * total and est["grads_bytes"] == 4 * total
    assert build.estimate_memory(m, 4, 32, "bf16")["activations_bytes"] < est["activations_bytes"]
    assert build.estimate_memory(m, 4, 32, optimizer="sgd")["optimizer_bytes"] == 4 * total
    with pytest.raises(RigError, match="unknown optimizer"):
        build.estimate_memory(m, 4, 32, optimizer="lion9000")


def test_lora_activations_enter_the_estimate():
    m = _tiny()
    plain = build.estimate_memory(m, 4, 32, "bf16")["activations_bytes"]
    lora = build.wrap_lora(_tiny(), r=4, alpha=8, save_embeddings=False)
    per_token = build.lora_bytes_per_token(lora, 2)
    # every adapted linear layer keeps its input (bf16 + a dropout mask byte) and lora_A's output (r values)
    adapted = [mod for mod in lora.modules() if isinstance(getattr(mod, "lora_A", None), torch.nn.ModuleDict)]
    assert adapted and per_token == sum(a.lora_A["default"].in_features * 3 + 4 * 2 for a in adapted)
    assert build.estimate_memory(lora, 4, 32, "bf16")["activations_bytes"] == plain + 4 * 32 * per_token
    assert build.lora_bytes_per_token(m, 2) == 0


def test_training_dtypes_keep_fp32_masters_of_a_half_precision_base():
    m = build.wrap_lora(_tiny().to(torch.bfloat16), r=4, alpha=8)  # rig's tokens: embeddings train fully
    build.training_dtypes(m, autocast=True)
    assert {p.dtype for p in m.parameters() if p.requires_grad} == {torch.float32}
    assert torch.bfloat16 in {p.dtype for p in m.parameters() if not p.requires_grad}  # frozen base stays bf16
    build.training_dtypes(m, autocast=False)  # no mixed precision: everything fp32
    assert {p.dtype for p in m.parameters()} == {torch.float32}


def test_device_resolution():
    from rig_core.model.device import device_map, inference_dtype, resolve_device

    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda" and resolve_device("cuda").index is not None
    else:
        assert resolve_device("auto") == torch.device("cpu") == resolve_device(None)
        with pytest.raises(RigError, match="no CUDA GPU is visible"):
            resolve_device("cuda:0")
    assert resolve_device(" CPU ") == torch.device("cpu") and inference_dtype(torch.device("cpu")) is None
    assert device_map(torch.device("cpu")) == {"": "cpu"}
    with pytest.raises(RigError, match="unknown --device 'tpu'"):
        resolve_device("tpu")


# -- scratch checkpoint: plain transformers loads it --------------------------------------------------

def test_scratch_checkpoint_loads_with_transformers_alone(tmp_path):
    from transformers import AutoModelForCausalLM

    model = _tiny().eval()
    ckpt = checkpoint.save_checkpoint(tmp_path, 7, model, None, {"position": {"epoch": 0, "index": 5}})
    assert ckpt.name == "000007" and (ckpt / "model" / "config.json").exists()
    assert (ckpt / "model" / "model.safetensors").exists()
    assert (tmp_path / "checkpoints" / "last").resolve() == ckpt.resolve()
    _assert_no_pickles(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(ckpt / "model", local_files_only=True).eval()
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    got = checkpoint.load_checkpoint(tmp_path)
    assert got["dir"].name == "000007" and got["state"]["position"] == {"epoch": 0, "index": 5}


# -- local base + LoRA ---------------------------------------------------------------------------------

def test_load_base_adds_tokens_and_resizes(base_dir):
    from transformers import AutoTokenizer

    old = len(AutoTokenizer.from_pretrained(base_dir))
    model, tok = build.load_base(str(base_dir), NEW_TOKENS)
    assert len(tok) == old + len(NEW_TOKENS) == model.get_input_embeddings().weight.shape[0]
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    assert tok.pad_token == "<pad>"
    ids = tok("<act>MOVE_LEFT</act>", add_special_tokens=False).input_ids
    assert ids == [tok.convert_tokens_to_ids(t) for t in ("<act>", "MOVE_LEFT", "</act>")]
    emb = model.get_input_embeddings().weight.detach()
    new_rows = emb[old:]
    assert torch.isfinite(new_rows).all()
    # mean-initialised: the new rows sit at (a sample around) the mean of the old ones, not at zero
    assert (new_rows.mean(0) - emb[:old].mean(0)).abs().max() < 0.05
    again, tok2 = build.load_base(str(base_dir), NEW_TOKENS, tokenizer_path=None)
    assert len(tok2) == len(tok)


def test_load_base_rejects_what_is_not_a_local_model(tmp_path):
    with pytest.raises(RigError, match="does not exist"):
        build.load_base(str(tmp_path / "nowhere"), NEW_TOKENS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RigError, match="not a local Hugging Face model"):
        build.load_base(str(tmp_path / "empty"), NEW_TOKENS)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(RigError):
        build.load_base(str(tmp_path / "bad"), NEW_TOKENS)


def _one_step(model, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, 10), generator=g)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    return loss


def test_lora_adapter_saves_and_loads_with_peft_alone(base_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = build.load_base(str(base_dir), NEW_TOKENS)
    model = build.wrap_lora(model, r=4, alpha=8, dropout=0.0)
    total, trainable = build.count_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("embed_tokens" in n for n in names)
    assert any("lm_head" in n for n in names) and 0 < trainable < total
    _one_step(model, len(tok))
    ckpt = checkpoint.save_checkpoint(tmp_path, 1, model, tok.save_pretrained, {"position": 0})
    assert (ckpt / "model" / "adapter_config.json").exists()
    assert (ckpt / "model" / "adapter_model.safetensors").exists()
    assert not (ckpt / "model" / "model.safetensors").exists()
    _assert_no_pickles(tmp_path)

    # no rig code: the base from its directory, resized to the saved tokenizer, plus the adapter
    tok2 = AutoTokenizer.from_pretrained(ckpt / "tokenizer")
    base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True)
    base.resize_token_embeddings(len(tok2))
    loaded = PeftModel.from_pretrained(base, ckpt / "model").eval()
    model.eval()
    ids = torch.tensor([tok2("<obs><img_1></obs><act>NOOP</act> a tree").input_ids])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)
    # and rig's own reload path (load_base with the checkpoint's tokenizer, nothing new to add)
    base2, _ = build.load_base(str(base_dir), [], tokenizer_path=str(ckpt / "tokenizer"))
    again = PeftModel.from_pretrained(base2, ckpt / "model").eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, again(input_ids=ids).logits, atol=1e-6)


def test_qlora_loads_in_4bit_and_backpropagates_on_the_cpu(base_dir):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (pip install 'rig[dev]')")
    import bitsandbytes as bnb

    model, tok = build.load_qlora(str(base_dir), NEW_TOKENS, r=4, alpha=8, compute_dtype=torch.float32,
                                  device=torch.device("cpu"))  # on the CPU also where a GPU is visible
    four_bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit and all(m.weight.dtype == torch.uint8 for m in four_bit)
    assert four_bit[0].weight.quant_state.quant_type == "nf4"
    ids = torch.randint(0, len(tok), (2, 10), generator=torch.Generator().manual_seed(0))
    loss = model(input_ids=ids, labels=ids).loss
    assert torch.isfinite(loss)
    loss.backward()
    lora_b = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(g is not None and g.abs().sum() > 0 for g in lora_b), "LoRA B gets gradients"
    emb = [p.grad for n, p in model.named_parameters() if "embed_tokens" in n and p.requires_grad]
    assert emb and emb[0].abs().sum() > 0, "the resized embeddings train too"
    est = build.estimate_memory(model, 2, 10)
    assert est["weights_bytes"] > 0


def test_qlora_without_a_working_bitsandbytes_is_one_clear_error(base_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what a missing or broken install looks like
    with pytest.raises(RigError, match="QLoRA needs a working bitsandbytes") as err:
        build.load_qlora(str(base_dir), NEW_TOKENS)
    assert "\n" not in err.value.line() and "--lora" in err.value.line()


# -- constrained decoding ------------------------------------------------------------------------------

def test_masks_and_constrained_choice():
    v = 50
    act = constrain.action_mask(v, [3, 4, 5])
    img = constrain.image_mask(v, range(10, 20))
    assert torch.equal(img, constrain.image_mask(v, (10, 20)))
    txt = constrain.text_mask(v, list(range(0, 20)))
    assert act.sum() == 3 and img.sum() == 10 and txt.sum() == 30 and not (txt & img).any()
    with pytest.raises(ValueError):
        constrain.action_mask(v, [v])
    logits = torch.randn(256, v, generator=torch.Generator().manual_seed(0))
    assert set(constrain.constrained_argmax(logits, act).tolist()) <= {3, 4, 5}
    g = torch.Generator().manual_seed(0)
    sampled = constrain.constrained_sample(logits, img, temperature=1.5, generator=g)
    assert set(sampled.tolist()) <= set(range(10, 20)) and len(set(sampled.tolist())) > 3
    again = constrain.constrained_sample(logits, img, temperature=1.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, again), "a seeded generator makes sampling reproducible"
    rows = torch.stack([act, img])  # one mask per row
    two = constrain.constrained_argmax(logits[:2], rows)
    assert two[0].item() in {3, 4, 5} and 10 <= two[1].item() < 20


def test_allowed_tokens_processor_constrains_generate():
    from transformers import LogitsProcessorList

    model = _tiny(vocab=40).eval()
    allowed = [7, 8, 9]
    prompt = torch.randint(0, 40, (3, 5), generator=torch.Generator().manual_seed(2))
    for proc in (constrain.AllowedTokens(allowed), constrain.AllowedTokens(constrain.action_mask(40, allowed))):
        scores = proc(prompt, torch.randn(3, 40))
        assert torch.isinf(scores[:, [i for i in range(40) if i not in allowed]]).all()
        torch.manual_seed(0)
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6, do_sample=True,
                             logits_processor=LogitsProcessorList([proc]), pad_token_id=0)
        assert set(out[:, 5:].flatten().tolist()) <= set(allowed)
    # scores wider than the mask (an embedding padded past the tokenizer): the extra rows are masked
    wide = constrain.AllowedTokens(constrain.action_mask(40, allowed))(prompt, torch.randn(3, 48))
    assert torch.isinf(wide[:, 40:]).all()


# -- checkpoints: exact resume ----------------------------------------------------------------------

def _schedule(warmup=2, total=6):
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return f


def _fresh(model):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _schedule())


def _train(model, opt, sched, steps, losses):
    """Batches come from the global RNGs (torch, numpy, python), so resuming must restore them too."""
    model.train()
    for _ in range(steps):
        ids = torch.randint(0, 64, (4, 16))
        shift = int(np.random.randint(0, 3)) + random.randint(0, 2)
        ids = (ids + shift) % 64
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())


def _seed(s):
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    from transformers import AutoModelForCausalLM

    _seed(5)
    model = _tiny()
    opt, sched = _fresh(model)
    straight: list[float] = []
    _train(model, opt, sched, 6, straight)

    _seed(5)
    model = _tiny()
    opt, sched = _fresh(model)
    first: list[float] = []
    _train(model, opt, sched, 3, first)
    checkpoint.save_checkpoint(tmp_path, 3, model, None,
                               {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "position": 3})
    del model, opt, sched
    _seed(999)  # the interruption: everything random is disturbed
    torch.randn(100)

    ck = checkpoint.load_checkpoint(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(ck["model_dir"], local_files_only=True)
    opt, sched = _fresh(model)
    checkpoint.restore_optimizer(opt, ck["state"])
    checkpoint.restore_scheduler(sched, ck["state"])
    checkpoint.restore_rng(ck["state"])
    assert ck["state"]["position"] == 3 and sched.last_epoch == 3
    second: list[float] = []
    _train(model, opt, sched, 3, second)
    resumed = first + second
    print("straight", straight, "\nresumed ", resumed)
    assert np.allclose(straight, resumed, atol=1e-6, rtol=0), (straight, resumed)
    _assert_no_pickles(tmp_path)
    state_dir = ck["dir"] / "state"
    assert sorted(p.name for p in state_dir.iterdir()) == ["state.json", "tensors.safetensors"]


def test_keep_last_and_last_pointer(tmp_path):
    model = _tiny()
    for step in (1, 2, 3, 4):
        checkpoint.save_checkpoint(tmp_path, step, model, None, {"position": step}, keep_last=2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["000003", "000004"]
    assert checkpoint.load_checkpoint(tmp_path)["state"]["position"] == 4
    checkpoint.save_checkpoint(tmp_path, 4, model, None, {"position": 44}, keep_last=2)  # re-save a step
    assert checkpoint.load_checkpoint(tmp_path)["state"]["position"] == 44
    # a 'last' text file (where symlinks are not possible) works the same
    (root / "last").unlink()
    (root / "last").write_text("000003\n")
    assert checkpoint.load_checkpoint(tmp_path)["state"]["position"] == 3
    assert checkpoint.load_checkpoint(root / "000004")["state"]["position"] == 44
    assert not list(root.glob(".*.tmp"))


def test_corrupt_or_foreign_checkpoints_raise_rig_errors(tmp_path):
    model = _tiny()
    ckpt = checkpoint.save_checkpoint(tmp_path / "run", 2, model, None, {"position": 2})

    with pytest.raises(RigError, match="no checkpoint"):
        checkpoint.load_checkpoint(tmp_path)  # a directory with no checkpoints
    with pytest.raises(RigError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "missing")

    weights = ckpt / "model" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:40])
    with pytest.raises(RigError, match="corrupt"):
        checkpoint.load_checkpoint(tmp_path / "run")
    weights.write_bytes(good)

    state_json = ckpt / "state" / "state.json"
    state_json.write_text("{not json")
    with pytest.raises(RigError, match="corrupt"):
        checkpoint.load_checkpoint(tmp_path / "run")
    state_json.write_text(json.dumps({"position": 1}))
    st = checkpoint.load_checkpoint(tmp_path / "run")["state"]
    with pytest.raises(RigError, match="no rng"):
        checkpoint.restore_rng(st)

    weights.unlink()
    (ckpt / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(RigError, match="no weights file"):
        checkpoint.load_checkpoint(tmp_path / "run")

    foreign = tmp_path / "foreign"
    (foreign / "model").mkdir(parents=True)
    (foreign / "state").mkdir()
    with pytest.raises(RigError, match="Hugging Face layout"):
        checkpoint.load_checkpoint(foreign)

    os.replace(tmp_path / "run" / "checkpoints" / "000002", tmp_path / "moved")
    with pytest.raises(RigError, match="missing"):
        checkpoint.load_checkpoint(tmp_path / "run")
