"""The model a run trains: from scratch, or a local base model with LoRA / QLoRA; and reloading it."""

from __future__ import annotations

from typing import Any

from rig_core.tokenize.vocab import RigTokenizer, added_tokens
from rig_core.model.run_config import TrainConfig


def max_positions(cfg: TrainConfig) -> int:
    """Largest position id + 1 a context can reach: each think/review span may skip up to its budget, and
    a frame row of at least one cell takes at most ``image_row_stride`` positions."""
    return (cfg.context * 2 if cfg.think_positions else cfg.context) * max(1, cfg.image_row_stride)


def build_model(cfg: TrainConfig, tokenizer: RigTokenizer | None, action_names: list[str], codebook_size: int):
    """(model, tokenizer) for a new run. For a base model the tokenizer comes from the base, extended."""
    from rig_core.model import build

    if cfg.model == "scratch":
        s = tokenizer.special
        model = build.build_scratch(cfg.size, vocab_size=tokenizer.vocab_size, max_positions=max_positions(cfg),
                                    pad_token_id=s["<pad>"], bos_token_id=s["<bos>"], eos_token_id=s["<eos>"])
        return model, tokenizer
    tokens = added_tokens(action_names, codebook_size)
    if cfg.qlora:
        model, hf = build.load_qlora(cfg.base, tokens, r=cfg.lora_r, alpha=cfg.lora_alpha)
    else:
        model, hf = build.load_base(cfg.base, tokens)
        if cfg.lora:
            model = build.wrap_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha)
    return model, RigTokenizer(hf, list(action_names), codebook_size)


def memory_report(model, cfg: TrainConfig, dtype: str) -> dict[str, Any]:
    from rig_core.model import build

    total, trainable = build.count_parameters(model)
    est = build.estimate_memory(model, cfg.batch_size, cfg.context, dtype)
    return {"parameters": total, "trainable": trainable, **est}
