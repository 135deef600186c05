"""Building the model: a Llama-style model from scratch, or a local base with LoRA / QLoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rig_core.errors import RigError

# Llama-style presets for models trained from scratch. Parameter counts for a 6,000-token vocabulary:
# tiny 0.49M (CI), mini 2.0M (lookahead experiments on CPU), small 14.7M (embeddings 2.3M of it, tied), base 52.0M (untied embeddings and head).
SIZES: dict[str, dict[str, int | bool]] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                 intermediate_size=192, tie_word_embeddings=True),
    "mini": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=6,
                 intermediate_size=512, tie_word_embeddings=True),
    "small": dict(hidden_size=384, num_hidden_layers=7, num_attention_heads=6, num_key_value_heads=6,
                  intermediate_size=1024, tie_word_embeddings=True),
    "base": dict(hidden_size=576, num_hidden_layers=12, num_attention_heads=9, num_key_value_heads=3,
                 intermediate_size=1664, tie_word_embeddings=False),
}


def quiet_transformers() -> None:
    """No download/loading progress bars or advisory warnings from transformers in rig's output."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # bitsandbytes warns on import that its optional CPU kernel (fetched from the Hub) is missing
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")


def build_scratch(size: str, vocab_size: int, max_positions: int, pad_token_id: int, bos_token_id: int,
                  eos_token_id: int):
    """A freshly initialised Llama-style causal LM of one of the ``SIZES`` (SDPA attention)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if size not in SIZES:
        raise RigError(f"unknown model size '{size}'", f"choose one of: {', '.join(SIZES)}")
    if vocab_size < 2 or max_positions < 1:
        raise RigError(f"a model needs a vocabulary and a context (got vocab {vocab_size}, context {max_positions})",
                       "train the tokenizer first and give --context a positive length")
    for name, tid in (("pad", pad_token_id), ("bos", bos_token_id), ("eos", eos_token_id)):
        if tid is not None and not 0 <= tid < vocab_size:
            raise RigError(f"the {name} token id {tid} is outside the vocabulary (size {vocab_size})",
                           "rebuild the tokenizer so its special tokens are part of the vocabulary")
    cfg = LlamaConfig(vocab_size=vocab_size, max_position_embeddings=max_positions, pad_token_id=pad_token_id,
                      bos_token_id=bos_token_id, eos_token_id=eos_token_id, rms_norm_eps=1e-5,
                      attention_dropout=0.0, rope_theta=10000.0, **SIZES[size])
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def _check_base(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise RigError(f"the base model {path} does not exist",
                       "pass a local directory saved with save_pretrained (rig never downloads weights)")
    if not p.is_dir() or not (p / "config.json").exists():
        raise RigError(f"{path} is not a local Hugging Face model directory (no config.json)",
                       "pass the directory of a model saved with save_pretrained; rig never downloads weights")
    return p


def _tokenizer(path: Path, tokenizer_path: str | None):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(tokenizer_path or path), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise RigError(f"cannot load a fast tokenizer from {tokenizer_path or path} ({exc.__class__.__name__})",
                       "the base model directory needs its tokenizer files (tokenizer.json)") from exc


def _add_tokens(model, hf, new_tokens: list[str]) -> None:
    """Add rig's tokens to the tokenizer and resize the embeddings, new rows at the mean embedding."""
    missing = [t for t in new_tokens if t not in hf.get_vocab()]
    if missing:
        if "<pad>" in missing:
            hf.add_special_tokens({"pad_token": "<pad>"})
            missing.remove("<pad>")
        hf.add_tokens(missing, special_tokens=True)
    old = model.get_input_embeddings().weight.shape[0]
    if len(hf) != old:
        model.resize_token_embeddings(len(hf), mean_resizing=True)


def load_base(path: str, new_tokens: list[str], tokenizer_path: str | None = None, **load_kwargs):
    """A local causal LM and its tokenizer with rig's tokens added (never downloads)."""
    from transformers import AutoModelForCausalLM

    p = _check_base(path)
    hf = _tokenizer(p, tokenizer_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, **load_kwargs)
    except (OSError, ValueError) as exc:
        raise RigError(f"cannot load the base model in {path} ({exc.__class__.__name__}: {exc})",
                       "check the directory holds a causal LM saved with save_pretrained") from exc
    _add_tokens(model, hf, new_tokens)
    return model, hf


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules=None,
                save_embeddings: bool = True):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, task_type="CAUSAL_LM",
                      target_modules=target_modules or "all-linear",
                      modules_to_save=["embed_tokens", "lm_head"] if save_embeddings else None)


def wrap_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules=None,
              save_embeddings: bool = True):
    """LoRA adapters on every linear layer. With ``save_embeddings`` (rig added tokens to a base) the
    resized embeddings and head train fully; a model that already knows rig's tokens keeps them frozen."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(r, alpha, dropout, target_modules, save_embeddings))


def _compute_dtype() -> torch.dtype:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _bnb_config(compute_dtype: torch.dtype | None = None):
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except Exception as exc:  # ImportError, or a build that fails while loading its native library
        raise RigError(f"QLoRA needs a working bitsandbytes ({exc.__class__.__name__}: {_first_line(exc)})",
                       "pip install -U bitsandbytes (current releases run on the CPU too), or train with --lora") from exc
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=compute_dtype or _compute_dtype(),
                              bnb_4bit_use_double_quant=True)


def load_qlora(path: str, new_tokens: list[str], r: int = 16, alpha: int = 32, lora: bool = True,
               tokenizer_dir: str | Path | None = None, dropout: float = 0.05, target_modules=None,
               compute_dtype: torch.dtype | None = None, device: torch.device | None = None):
    """The base in 4-bit NF4 (bitsandbytes), prepared for k-bit training, plus LoRA (unless ``lora=False``),
    loaded onto ``device`` (default: the first GPU, else the CPU).

    Works on a CUDA GPU and, with bitsandbytes >= 0.45, on the CPU (slowly: for tests and small bases)."""
    from peft import prepare_model_for_kbit_training

    from rig_core.model.device import device_map, resolve_device

    try:
        model, hf = load_base(path, new_tokens, str(tokenizer_dir) if tokenizer_dir else None,
                              quantization_config=_bnb_config(compute_dtype),
                              device_map=device_map(device or resolve_device("auto")))
    except RigError:
        raise
    except Exception as exc:  # bitsandbytes raises plain errors when it cannot run on the device
        raise RigError(f"4-bit loading failed on this device ({exc.__class__.__name__}: {_first_line(exc)})",
                       "install a bitsandbytes build for this device (pip install -U bitsandbytes), "
                       "or train with --lora instead") from exc
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return (wrap_lora(model, r, alpha, dropout, target_modules) if lora else model), hf


def training_dtypes(model, autocast: bool) -> None:
    """Dtypes for training a model that may have loaded in half precision (a bf16 base): under autocast
    (bf16/fp16 mixed precision) the frozen weights stay as loaded and every trainable one becomes fp32, so
    the optimizer updates fp32 masters; without autocast the whole model trains in fp32. 4-bit weights
    are left alone."""
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != torch.float32 and (p.requires_grad or not autocast):
            p.data = p.data.float()


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) parameters. A 4-bit layer counts its packed storage (two weights a byte)."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel() * (2 if p.dtype == torch.uint8 else 1)
        total += n
        trainable += n if p.requires_grad else 0
    return total, trainable


# Optimizer state per trainable parameter, in bytes (fp32 moments).
OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "adamw8bit": 2, "sgd": 4, "adafactor": 4}


def lora_bytes_per_token(model, act_bytes: int) -> int:
    """Activations LoRA adapters keep for the backward pass, per token: each adapted linear layer saves its
    input for ``lora_A`` (plus the dropout mask, a byte an element) and ``lora_A``'s output for ``lora_B``.
    On a 1.3B Llama with r = 64 on every linear layer this is about 70 % of the base layers' own."""
    total = 0
    for module in model.modules():
        lora_a = getattr(module, "lora_A", None)
        if not isinstance(lora_a, torch.nn.ModuleDict):
            continue
        for name, a in lora_a.items():
            if not isinstance(a, torch.nn.Linear):
                continue
            drops = getattr(module, "lora_dropout", None)
            drop = drops[name] if isinstance(drops, torch.nn.ModuleDict) and name in drops else None
            mask = 1 if isinstance(drop, torch.nn.Dropout) and drop.p > 0 else 0
            total += a.in_features * (act_bytes + mask) + a.out_features * act_bytes
    return total


def estimate_memory(model, batch_size: int, seq_len: int, dtype: str = "no", optimizer: str = "adamw",
                    ) -> dict[str, Any]:
    """A rough training-memory estimate in bytes: weights, gradients, optimizer state and activations.

    ``dtype`` is the mixed-precision mode ("no", "bf16", "fp16") or a torch dtype name; activations are
    kept per layer (no gradient checkpointing), the logits twice in fp32 (softmax + its gradient), and
    with LoRA the adapters' saved inputs (``lora_bytes_per_token``). Checked against a measured peak: a
    1.3B Llama-class base under ``gpu-lora`` (2048 x 8, bf16) estimates 57.2 GiB where an H200 reached
    55.5 GiB (torch.cuda.max_memory_allocated; benchmarks/gpu_recipes.py)."""
    if optimizer not in OPTIMIZER_BYTES:
        raise RigError(f"unknown optimizer '{optimizer}'", f"choose one of: {', '.join(OPTIMIZER_BYTES)}")
    act_bytes = 2 if str(dtype).replace("torch.", "") in ("bf16", "fp16", "bfloat16", "float16") else 4
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optim = trainable * OPTIMIZER_BYTES[optimizer]
    cfg = model.config
    hidden = getattr(cfg, "hidden_size", 512)
    layers = getattr(cfg, "num_hidden_layers", 8)
    inter = getattr(cfg, "intermediate_size", 4 * hidden)
    vocab = getattr(cfg, "vocab_size", 32000)
    tokens = batch_size * seq_len
    activations = (tokens * layers * (10 * hidden + 3 * inter) * act_bytes + tokens * vocab * 4 * 2
                   + tokens * lora_bytes_per_token(model, act_bytes))
    return {"weights_bytes": weights, "grads_bytes": grads, "optimizer_bytes": optim,
            "activations_bytes": activations, "total_bytes": weights + grads + optim + activations}
