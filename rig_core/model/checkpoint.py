"""Checkpoints in the Hugging Face layout, state as safetensors + JSON: nothing is ever pickled.

    checkpoints/<step:06d>/model/      config.json + model.safetensors (or adapter_config.json + adapter_model.safetensors)
                          tokenizer/  tokenizer files + image_tokenizer.safetensors + rig.json
                          state/      tensors.safetensors + state.json (optimizer, scheduler, RNG, data position)
    checkpoints/last -> <step:06d>
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rig_core.errors import RigError

STATE_TENSORS, STATE_JSON = "tensors.safetensors", "state.json"


def _flatten(prefix: str, obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by a reference, collecting tensors by key."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), _flatten(f"{prefix}.{k}", v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint without pickling")


def _key(k: Any) -> Any:
    return {"__int__": k} if isinstance(k, int) else k


def _unkey(k: Any) -> Any:
    return k["__int__"] if isinstance(k, dict) else k


def _restore(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(_restore(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_unkey(k): _restore(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_restore(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_state(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    doc = _flatten("state", {**state, "rng": rng_state()}, tensors)
    save_file(tensors, str(directory / STATE_TENSORS))
    (directory / STATE_JSON).write_text(json.dumps(doc))


def load_state(directory: Path) -> dict[str, Any]:
    try:
        tensors = load_file(str(directory / STATE_TENSORS))
        doc = json.loads((directory / STATE_JSON).read_text())
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise RigError(f"the training state in {directory} is missing or corrupt ({exc.__class__.__name__})",
                       "resume from an earlier checkpoint (point checkpoints/last at it) or retrain") from exc
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise RigError(f"the training state in {directory} is corrupt ({exc.__class__.__name__})",
                       "resume from an earlier checkpoint or retrain") from exc
    return _restore(doc, tensors)


def save_checkpoint(run_dir: Path, step: int, model, write_tokenizer: Callable[[Path], None] | None,
                    state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write checkpoints/<step> atomically (temp dir, then rename) and point ``last`` at it."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"{step:06d}"
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp / "model"), safe_serialization=True)
    if write_tokenizer is not None:
        write_tokenizer(tmp / "tokenizer")
    save_state(tmp / "state", state)
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    link = root / f".last.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    os.symlink(name, link)
    os.replace(link, root / "last")
    steps = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit())
    for old in steps[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old)
    return final


def find_checkpoint(path: Path) -> Path:
    """A checkpoint directory from a run directory (its ``last``) or a checkpoint directory itself."""
    path = Path(path)
    if (path / "model").is_dir() and (path / "state").is_dir():
        return path
    last = path / "checkpoints" / "last"
    if last.exists():
        return last.resolve()
    raise RigError(f"no checkpoint in {path}", "train first (rig train), or pass a run with checkpoints/last")


def clean_partial(run_dir: Path) -> None:
    """Remove what a killed save left behind (temp checkpoint dirs, temp links, temp files)."""
    run_dir = Path(run_dir)
    for root in (run_dir, run_dir / "checkpoints"):
        for tmp in root.glob(".*.tmp") if root.is_dir() else []:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = find_checkpoint(path)
    model_dir, tok_dir = ckpt / "model", ckpt / "tokenizer"
    if not ((model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()):
        raise RigError(f"{ckpt} has no model in the Hugging Face layout", "this is not a rig checkpoint")
    return {"dir": ckpt, "model_dir": model_dir, "tokenizer_dir": tok_dir, "state": load_state(ckpt / "state")}


def restore_optimizer(optimizer, state: dict[str, Any]) -> None:
    optimizer.load_state_dict(state["optimizer"])


def restore_scheduler(scheduler, state: dict[str, Any]) -> None:
    scheduler.load_state_dict(state["scheduler"])


def restore_rng(state: dict[str, Any]) -> None:
    rng = state["rng"]
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = rng["numpy"]
    np.random.set_state(tuple(np_state))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
