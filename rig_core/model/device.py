"""Where a trained model runs when it plays, imagines, evaluates or reviews: ``--device``."""

from __future__ import annotations

import re

import torch

from rig_core.errors import RigError

DEVICE_HELP = ("Where the model runs: auto (a CUDA GPU when one is visible, else the CPU), cpu, cuda or cuda:N. "
               "On a GPU the weights run in bf16 (fp32 where the GPU lacks bf16); a QLoRA model stays 4-bit.")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a torch device (a GPU always with its index, as parameters
    report theirs); a GPU that is not there is one clear error."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not m:
        raise RigError(f"unknown --device '{name}'", "pass auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise RigError(f"--device {name}, but no CUDA GPU is visible to PyTorch",
                       "pass --device cpu (or auto), or install a CUDA build of PyTorch")
    index = int(m.group(1)) if m.group(1) else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise RigError(f"--device {name}, but this machine has {torch.cuda.device_count()} CUDA GPU(s)",
                       f"pass --device cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return torch.device("cuda", index)


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """The weights' dtype for decoding on ``device``: bf16 on a GPU that has it, else unchanged (None)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def device_map(device: torch.device) -> dict[str, int | str]:
    """``device_map`` for ``from_pretrained`` (4-bit weights are placed while loading, never moved after)."""
    if device.type == "cuda":
        return {"": device.index if device.index is not None else torch.cuda.current_device()}
    return {"": "cpu"}
