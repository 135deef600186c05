"""Versions of the packages a run depends on, written beside every output."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("rig", "numpy", "h5py", "crafter", "torch", "transformers", "peft", "accelerate", "tokenizers")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_beside(media: Path | str, record: dict[str, Any], command: str) -> Path:
    """What produced a picture or video (the command, its settings and result, the package versions) as
    ``NAME.EXT.json`` beside it; returns that path."""
    from rig_core.fsutil import atomic_write_json

    path = Path(f"{media}.json")
    atomic_write_json(path, {"command": command, **record, "versions": versions()})
    return path
