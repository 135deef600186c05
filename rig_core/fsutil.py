"""Atomic file writes: a temp file in the same directory, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rig_core.errors import RigError


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_result(obj: Any, path: Path, also: Path | None = None) -> None:
    """A benchmark's result: ``path`` (its folder made if needed) and, with ``--update``, ``also``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for target in (path, also):
        if target is not None:
            atomic_write_json(Path(target), obj)


def ensure_writable_dir(path: Path, what: str = "output") -> Path:
    """Create ``path`` (and parents) and prove it is writable, or raise a clear RigError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RigError(
            f"cannot write the {what} directory {path} ({exc.strerror or exc})",
            "choose a path you can write to with --out",
        ) from exc
    return path


def read_json(path: Path, fix: str) -> Any:
    """A JSON file, or one clear RigError naming the file and the fix when it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise RigError(f"{path} does not exist", fix)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RigError(f"{path} is corrupt ({exc.__class__.__name__})", fix) from exc
