"""Loading what a run trained: its tokenizers and its model (full weights, or a LoRA adapter on its base).

Every command that reads a checkpoint (play, imagine, evaluate, review rollouts, training resume and
export) loads it here, so a corrupt or foreign checkpoint gives the same one-line error everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.model.run_config import TrainConfig, load_run_config
from rig_core.tokenize.image import GridImageTokenizer
from rig_core.tokenize.sequence import SequenceBuilder
from rig_core.tokenize.vocab import RigTokenizer


def load_tokenizers(directory: Path) -> tuple[RigTokenizer, GridImageTokenizer, dict]:
    """(text tokenizer, image tokenizer, the sequence format the run recorded in rig.json)."""
    tok, meta = RigTokenizer.load(directory)
    return tok, GridImageTokenizer.load(directory), meta


def sequence_options(meta: dict) -> dict[str, Any]:
    """SequenceBuilder's format options as a run's rig.json records them (a key a run lacks takes its
    default: positions count tokens, no review cue, every span)."""
    return {"think_positions": int(meta.get("think_positions", 0)),
            "image_row_stride": int(meta.get("image_row_stride", 0)),
            "review_cue": bool(meta.get("review_cue", False)),
            "spans": str(meta.get("spans", "think,act,imagine"))}


def sequence_builder(tok: RigTokenizer, image_tok: GridImageTokenizer, meta: dict) -> SequenceBuilder:
    """The sequence format a run was trained with."""
    return SequenceBuilder(tok, image_tok.tokens_per_frame, **sequence_options(meta))


def recommended_temperature(model_dir: Path) -> float:
    """The sampling temperature a model's ``generation_config.json`` recommends (``do_sample`` with a
    ``temperature``), else 0 (greedy)."""
    import json

    path = Path(model_dir) / "generation_config.json"
    try:
        doc = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise RigError(f"{path} is corrupt ({exc.__class__.__name__})", "fix or remove it (greedy decoding)") from exc
    return float(doc.get("temperature") or 0.0) if doc.get("do_sample") else 0.0


def init_run(cfg: TrainConfig) -> tuple[TrainConfig, Path]:
    """(configuration of the basic run, the checkpoint directory) a lookahead run starts from."""
    from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint

    ckpt = Path(cfg.init_checkpoint) if cfg.init_checkpoint else find_checkpoint(Path(cfg.init))
    if not ckpt.is_dir():
        raise RigError(f"the basic checkpoint {ckpt} of this run is gone", "restore it: the adapter is trained on it")
    return load_run_config(run_of_checkpoint(ckpt)), ckpt


def load_init_model(cfg: TrainConfig, device=None):
    """The basic model a lookahead run fine-tunes, as full weights (a basic LoRA adapter is merged in)."""
    init_cfg, ckpt = init_run(cfg)
    model = load_trained(init_cfg, ckpt / "model", trainable=False, device=device)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


def load_trained(cfg: TrainConfig, model_dir: Path, trainable: bool = True, device=None):
    """The model saved in a checkpoint's model/ directory (full weights, or a LoRA adapter on the base).

    ``device`` places a 4-bit (QLoRA) base while it loads (default: the first GPU, else the CPU); other
    models load on the CPU and the caller moves them."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    try:
        if cfg.stage == "lookahead" and (model_dir / "adapter_config.json").exists():
            from peft import PeftModel

            return PeftModel.from_pretrained(load_init_model(cfg, device), str(model_dir), is_trainable=trainable)
        if (model_dir / "adapter_config.json").exists():
            from peft import PeftModel

            from rig_core.model import build

            if cfg.qlora:
                base, _ = build.load_qlora(cfg.base, [], lora=False, tokenizer_dir=model_dir.parent / "tokenizer",
                                           device=device)
            else:
                base, _ = build.load_base(cfg.base, [], tokenizer_path=str(model_dir.parent / "tokenizer"))
            return PeftModel.from_pretrained(base, str(model_dir), is_trainable=trainable)
        return AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    except RigError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise RigError(f"cannot load the model in {model_dir} ({exc.__class__.__name__}: {exc})",
                       "the checkpoint is corrupt or foreign: resume from another one, or retrain") from exc
