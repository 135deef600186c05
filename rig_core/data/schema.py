"""The dataset contract (docs/data-format.md): schema version, names and the manifest check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rig_core.errors import RigError

SCHEMA_VERSION = 1
FORMAT = "rig-dataset"
MANIFEST = "dataset.json"
# Frames (uint8 [T+1, 64, 64, 3]) are stored in chunks of FRAME_CHUNK frames under the HDF5 filter
# pipeline [deflate, bzip2]; each chunk goes through exactly one of the two (the chunk's filter mask
# records which), so readers get plain numpy from h5py once hdf5plugin has registered bzip2.
# Deflate suits day frames (repeated 7x7 textures, long matches); Crafter's night frames carry
# per-pixel noise that LZ cannot match, where bzip2's context sorting saves 15-25%. A chunk counts as
# noisy when fewer than FRAME_NOISY_BELOW of its horizontally adjacent bytes are equal (day chunks
# measure 0.30-0.48, noisy night chunks 0.18-0.26); only those pay bzip2's CPU cost.
FRAME_CHUNK = 16  # frames per HDF5 chunk: consecutive frames compress together
FRAME_GZIP_LEVEL = 6
FRAME_NOISY_BELOW = 0.27


def shard_name(first_episode: int) -> str:
    """A shard is named after the first episode it holds, so names never clash across workers."""
    return f"shard-{first_episode:05d}.h5"


def episode_key(index: int) -> str:
    return f"{index:06d}"


def read_manifest(root: Path) -> dict[str, Any]:
    """Load and validate ``dataset.json``; every problem becomes one clear RigError."""
    root = Path(root)
    if not root.exists():
        raise RigError(f"dataset {root} does not exist", "check the path, or create one with: rig collect --out DIR")
    if not root.is_dir():
        raise RigError(f"{root} is a file, not a dataset directory", "pass the directory that holds dataset.json")
    path = root / MANIFEST
    if not path.exists():
        raise RigError(
            f"{root} is not a rig dataset (no {MANIFEST})",
            "pass a directory written by rig collect or rig augment",
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RigError(
            f"{path} is corrupt ({exc.__class__.__name__})",
            "restore it from a backup, or re-run rig collect --resume on the directory",
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RigError(f"{path} is not a rig dataset manifest", "pass a directory written by rig collect")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        if isinstance(version, int) and version > SCHEMA_VERSION:
            fix = "upgrade rig (pip install -U rig) to read it"
        else:
            fix = "re-collect it with this rig version (rig collect)"
        raise RigError(
            f"dataset {root} has schema version {version}, this rig reads version {SCHEMA_VERSION}", fix
        )
    for key in ("env", "action_names", "frame_shape", "shards"):
        if key not in doc:
            raise RigError(f"{path} lacks the field '{key}'", "the manifest is damaged; re-collect the dataset")
    return doc
