"""The model a run trains: from scratch, or a local base model with LoRA / QLoRA; and reloading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.tokenize.vocab import RigTokenizer, added_tokens
from rig_core.train.config import TrainConfig


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


def load_trained(cfg: TrainConfig, model_dir: Path, trainable: bool = True):
    """The model saved in a checkpoint's model/ directory (full weights, or a LoRA adapter on the base)."""
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    try:
        if cfg.stage == "lookahead" and (model_dir / "adapter_config.json").exists():
            from peft import PeftModel

            from rig_core.train.lookahead import load_init_model

            return PeftModel.from_pretrained(load_init_model(cfg), str(model_dir), is_trainable=trainable)
        if (model_dir / "adapter_config.json").exists():
            from peft import PeftModel

            from rig_core.model import build

            if cfg.qlora:
                base, _ = build.load_qlora(cfg.base, [], lora=False, tokenizer_dir=model_dir.parent / "tokenizer")
            else:
                base, _ = build.load_base(cfg.base, [], tokenizer_path=str(model_dir.parent / "tokenizer"))
            return PeftModel.from_pretrained(base, str(model_dir), is_trainable=trainable)
        return AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    except RigError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise RigError(f"cannot load the model in {model_dir} ({exc.__class__.__name__}: {exc})",
                       "the checkpoint is corrupt or foreign: resume from another one, or retrain") from exc


def memory_report(model, cfg: TrainConfig, dtype: str) -> dict[str, Any]:
    from rig_core.model import build

    total, trainable = build.count_parameters(model)
    est = build.estimate_memory(model, cfg.batch_size, cfg.context, dtype)
    return {"parameters": total, "trainable": trainable, **est}
