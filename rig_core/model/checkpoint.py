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


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def find_pickles(directory: Path) -> list[Path]:
    """Files under ``directory`` whose suffix suggests a pickle (a rig checkpoint must have none)."""
    return sorted(f for f in Path(directory).rglob("*") if f.is_file() and f.suffix.lower() in PICKLE_SUFFIXES)


def _point_link(root: Path, link: str, name: str) -> None:
    """Make ``checkpoints/<link>`` (``last``, ``best``) name ``name`` atomically: a symlink, or a text file where
    symlinks fail."""
    tmp = root / f".{link}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(name, tmp)
    except (OSError, NotImplementedError):
        tmp.write_text(name + "\n")
    path = root / link
    if path.is_dir() and not path.is_symlink():  # never clobber a real directory of that name
        raise RigError(f"{path} is a directory, not a link", f"move it away; rig keeps checkpoints/{link} as a link")
    os.replace(tmp, path)


def _link_name(root: Path, link: str = "last") -> str | None:
    """The checkpoint ``checkpoints/<link>`` names, or None where there is no such link."""
    path = root / link
    if path.is_symlink():
        return os.readlink(path).rstrip("/").split("/")[-1]
    if path.is_file():
        return path.read_text().strip() or None
    return None


def last_step(run_dir: Path) -> int | None:
    """The step of a run's newest checkpoint (``checkpoints/last``), or None before the first one."""
    name = _link_name(Path(run_dir) / "checkpoints")
    return int(name) if name and name.isdigit() else None


def save_checkpoint(run_dir: Path, step: int, model, write_tokenizer: Callable[[Path], None] | None,
                    state: dict[str, Any], keep_last: int = 3, best: bool = False) -> Path:
    """Write checkpoints/<step:06d> atomically (temp dir, then rename) and point ``last`` at it.

    ``model/`` is the Hugging Face layout (``save_pretrained``, safetensors; a peft model writes its
    adapter), ``tokenizer/`` is whatever ``write_tokenizer(dir)`` writes, ``state/`` holds ``state``
    (optimizer/scheduler state dicts, data position, ...) plus the RNG states, as safetensors + JSON.
    Only the newest ``keep_last`` checkpoints are kept (0 or less keeps all), and the one ``best`` names:
    ``best=True`` points ``checkpoints/best`` at this one."""
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
    if final.exists():  # re-saving a step: move the old one aside first, so a crash leaves one or the other
        old = root / f".{name}.old.{os.getpid()}.tmp"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _point_link(root, "last", name)
    if best:
        _point_link(root, "best", name)
    if keep_last > 0:
        steps = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit())
        kept = {name, _link_name(root, "best")}
        for old in steps[:-keep_last]:
            if old.name not in kept:
                shutil.rmtree(old)
    return final


def find_checkpoint(path: Path) -> Path:
    """A checkpoint directory from a run directory (its ``last``), a checkpoint directory itself, or a
    shipped model's name (a stand-alone checkpoint: ``model/`` and ``tokenizer/`` without training state)."""
    from rig_core.model.shipped import resolve_model

    path = resolve_model(path)
    if not path.exists():
        raise RigError(f"{path} does not exist",
                       "pass a run directory (runs/<name>), one of its checkpoints, or a shipped model (rig models)")
    if (path / "model").is_dir() and ((path / "state").is_dir() or (path / "tokenizer").is_dir()):
        return path
    root = path / "checkpoints"
    name = _link_name(root)
    if name is not None:
        ckpt = root / name
        if not ckpt.is_dir():
            raise RigError(f"{root / 'last'} points at {name}, which is missing",
                           f"point it at an existing checkpoint (ln -sfn <step> {root / 'last'}) or retrain")
        return ckpt
    raise RigError(f"no checkpoint in {path}", "train first (rig train), or pass a run with checkpoints/last")


def run_of_checkpoint(ckpt: Path) -> Path:
    """The run directory a checkpoint (from ``find_checkpoint``) belongs to: ``RUN/checkpoints/<step>``
    -> ``RUN``; a checkpoint directory kept elsewhere stands for its own run."""
    ckpt = Path(ckpt)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt


def clean_partial(run_dir: Path) -> None:
    """Remove what a killed save left behind (temp checkpoint dirs, temp links, temp files)."""
    run_dir = Path(run_dir)
    for root in (run_dir, run_dir / "checkpoints"):
        for tmp in root.glob(".*.tmp") if root.is_dir() else []:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _check_safetensors(path: Path, ckpt: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
        if path.stat().st_size < 8:
            raise ValueError("too short")
    except Exception as exc:  # safetensors' own error type for a damaged header
        raise RigError(f"the weights file {path} is corrupt ({exc.__class__.__name__})",
                       f"resume from an earlier checkpoint than {ckpt.name}, or retrain") from exc


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint of a run (its ``last``) or a checkpoint directory: paths and the restored state.

    Returns ``{"dir", "model_dir", "tokenizer_dir", "state"}``; ``state`` is the dict given to
    ``save_checkpoint`` plus ``"rng"``. Raises one RigError for a foreign or damaged checkpoint."""
    ckpt = find_checkpoint(path)
    model_dir, tok_dir = ckpt / "model", ckpt / "tokenizer"
    fix = "this is not a rig checkpoint: pass a run directory written by rig train, or retrain"
    if (model_dir / "adapter_config.json").exists():
        weights = [model_dir / "adapter_model.safetensors"]
    elif (model_dir / "config.json").exists():
        index = model_dir / "model.safetensors.index.json"
        weights = [model_dir / "model.safetensors"] if not index.exists() else \
            [model_dir / f for f in sorted(set(_read_json(index, ckpt).get("weight_map", {}).values()))]
    else:
        raise RigError(f"{ckpt} has no model in the Hugging Face layout", fix)
    for w in weights:
        if not w.exists():
            raise RigError(f"{ckpt} has no weights file {w.name} (a pickle-only or partial checkpoint?)", fix)
        _check_safetensors(w, ckpt)
    return {"dir": ckpt, "model_dir": model_dir, "tokenizer_dir": tok_dir, "state": load_state(ckpt / "state")}


def _read_json(path: Path, ckpt: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RigError(f"{path} is corrupt ({exc.__class__.__name__})",
                       f"resume from an earlier checkpoint than {ckpt.name}, or retrain") from exc


def _part(state: dict[str, Any], key: str) -> Any:
    if key not in state:
        raise RigError(f"the checkpoint's training state has no {key}",
                       "it was not written by rig train: resume from another checkpoint, or retrain")
    return state[key]


def restore_optimizer(optimizer, state: dict[str, Any]) -> None:
    try:
        optimizer.load_state_dict(_part(state, "optimizer"))
    except (ValueError, KeyError) as exc:
        raise RigError(f"the saved optimizer state does not fit this model ({exc})",
                       "resume with the same model settings the run was trained with") from exc


def restore_scheduler(scheduler, state: dict[str, Any]) -> None:
    scheduler.load_state_dict(_part(state, "scheduler"))


def restore_rng(state: dict[str, Any]) -> None:
    """Put Python's, NumPy's and torch's (CPU, and CUDA when present) random generators back."""
    rng = _part(state, "rng")
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(tuple(rng["numpy"]))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
