"""Shared fixtures: tiny datasets made by the project itself (nothing downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COLUMNS", "160")


@pytest.fixture(scope="session")
def random_dataset(tmp_path_factory) -> Path:
    """Four short random-agent episodes over the basic tasks, in two shards."""
    from rig_core.collect.runner import run_collect
    from rig_core.config import CollectConfig

    out = tmp_path_factory.mktemp("data") / "random"
    run_collect(CollectConfig(out=str(out), agent="random", task="basic", episodes=4, seed=3,
                              max_steps=40, episodes_per_shard=2), quiet=True)
    return out


@pytest.fixture(scope="session")
def reasoned_dataset(random_dataset, tmp_path_factory) -> Path:
    """The random dataset with rule reasoning added."""
    from rig_core.annotate.augment import ReasonConfig, run_reason

    out = tmp_path_factory.mktemp("data") / "random-reason"
    run_reason(ReasonConfig(data=str(random_dataset), out=str(out)), quiet=True)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(reasoned_dataset, tmp_path_factory) -> Path:
    """A tiny RIG-basic run trained here for a few steps (enough to exercise every code path)."""
    from rig_core.train.config import train_config
    from rig_core.train.run import run_train

    out = tmp_path_factory.mktemp("runs") / "basic"
    cfg = train_config("tiny", {"data": str(reasoned_dataset), "out": str(out), "max_steps": 12, "save_every": 12,
                                "eval_every": 12, "codebook_size": 64, "text_vocab": 300})
    run_train(cfg, quiet=True)
    return out


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory):
    """A tiny local 'base model' with its own tokenizer, made here (nothing is downloaded)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("base") / "tiny-llm"
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(["a tree is to the left so I move left"] * 50,
                          trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                              special_tokens=["<s>", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=128, max_position_embeddings=1024))
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def review_dataset(tiny_checkpoint, reasoned_dataset, tmp_path_factory) -> Path:
    """Review samples of the tiny basic run: 3 short episodes, horizon 2."""
    import json

    from cli_helpers import rig

    out = tmp_path_factory.mktemp("review") / "rev"
    r = rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset, "--out", out,
            "--episodes", 3, "--batch", 2, "--max-steps", 5, "--horizon", 2, "--confirm-share", 0.5, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["episodes"] == 3 and summary["states"] == summary["steps"] and summary["horizon"] == 2
    return out


@pytest.fixture(scope="session")
def lookahead_run(review_dataset, tiny_checkpoint, tmp_path_factory) -> Path:
    """A tiny RIG-lookahead run (LoRA on the tiny basic run, 4 steps)."""
    import json

    from cli_helpers import rig

    out = tmp_path_factory.mktemp("runs") / "look"
    r = rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--out", out,
            "--max-steps", 4, "--eval-every", 4, "--save-every", 2, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["stage"] == "lookahead" and s["steps"] == 4 and s["mix"]["review"] > 0
    return out


# -- small evaluations for `rig view` (tests/test_view.py, tests/test_view_browser.py) -----------------------------
def _view_eval(out: Path, *player, steps: str = "0", suite: str = "collect_wood", episodes: int = 2, max_steps: int = 6):
    from cli_helpers import rig

    r = rig("evaluate", *player, "--suite", suite, "--episodes", episodes, "--max-steps", max_steps, "--gifs", 0,
            "--imagination-episodes", 1, "--test-time-steps", steps, "--batch", 2, "--out", out)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="session")
def view_players_eval(tmp_path_factory) -> Path:
    """The expert and the random agent on the same seeds (two players, a paired comparison)."""
    out = tmp_path_factory.mktemp("view") / "players"
    r = _view_eval(out, "--agent", "expert", "--agent", "random", max_steps=12)
    assert r.output.strip().splitlines()[-1] == f"see every episode step by step: rig view {out}"
    return out


@pytest.fixture(scope="session")
def view_policy_eval(tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("view") / "policy"
    r = _view_eval(out, "--checkpoint", tiny_checkpoint, max_steps=4)
    assert r.output.strip().splitlines()[-1] == f"see every episode step by step: rig view {out}"
    return out


@pytest.fixture(scope="session")
def view_lookahead_eval(lookahead_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("view") / "lookahead"
    _view_eval(out, "--checkpoint", lookahead_run, steps="0,1", episodes=1, max_steps=3)
    return out


@pytest.fixture(scope="session")
def candidate_dataset(tiny_checkpoint, reasoned_dataset, tmp_path_factory) -> Path:
    """Review samples with candidate samples (--candidates 2): 2 short episodes, horizon 2."""
    import json

    from cli_helpers import rig

    out = tmp_path_factory.mktemp("review") / "cand"
    r = rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset, "--out", out,
            "--episodes", 2, "--batch", 2, "--max-steps", 4, "--horizon", 2, "--candidates", 2, "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["candidates"]
    assert c["k"] == 2 and c["states"] == json.loads(r.stdout)["states"] and c["samples"] >= 2 * c["states"]
    return out


@pytest.fixture(scope="session")
def verifier_run(candidate_dataset, tiny_checkpoint, tmp_path_factory) -> Path:
    """A tiny RIG-lookahead run whose mix holds candidate samples (mix_verify), 4 steps."""
    import json

    from cli_helpers import rig

    out = tmp_path_factory.mktemp("runs") / "verifier"
    r = rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", candidate_dataset, "--out", out,
            "--max-steps", 4, "--eval-every", 4, "--save-every", 4, "--set", "mix_verify=0.4", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["stage"] == "lookahead" and s["mix"]["verify"] > 0
    return out
