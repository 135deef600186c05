"""Versions of the packages a run depends on, written beside every output."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = ("rig", "numpy", "h5py", "crafter", "torch", "transformers", "peft", "accelerate", "tokenizers")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out

