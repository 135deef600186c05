"""Episodes as plain arrays and JSON, for formats other than rig's own: read every dataset of an episode
group exactly as stored, encode attributes losslessly as JSON, and build a rig dataset from such episodes."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rig_core.data.reader import Dataset, Episode, plain
from rig_core.data.schema import FORMAT, MANIFEST, SCHEMA_VERSION
from rig_core.data.writer import ShardWriter
from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json
from rig_core.versions import versions

# The datasets every rig episode has; the formats map these to their own fields, the rest travel as extras.
CORE = ("frames", "actions", "rewards", "terminated", "truncated", "inventory")


@dataclass
class EpisodeArrays:
    """One episode: every dataset by its path in the group (texts as numpy ``str`` arrays), the datasets'
    own attributes and the group's attributes, exactly as stored."""

    index: int
    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any]
    dataset_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(len(self.arrays["actions"]))

    @property
    def task(self) -> str:
        return str(plain(self.attrs.get("task", "")))


def is_text(array: np.ndarray) -> bool:
    return array.dtype.kind in "OSU"


def _texts(array: np.ndarray) -> np.ndarray:
    flat = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in array.ravel()]
    return np.asarray(flat, dtype=str).reshape(array.shape) if flat else np.zeros(array.shape, dtype=str)


def read_episode(ep: Episode) -> EpisodeArrays:
    """Every dataset of ``ep`` (frames behind external links included) with its attributes."""
    arrays, dattrs = {}, {}
    for name in ep.linked_keys():
        data = ep.read(name)
        arrays[name] = _texts(data) if is_text(data) else data
        if ep[name].attrs:
            dattrs[name] = dict(ep[name].attrs)
    return EpisodeArrays(ep.index, arrays, ep.raw_attrs(), dattrs)


# -- lossless JSON for attributes -------------------------------------------------------------------------
def encode_value(value: Any) -> Any:
    """A JSON form of an HDF5 attribute value that :func:`decode_value` turns back into the same value and type."""
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        if is_text(value):
            return {"texts": _texts(value).tolist(), "shape": list(value.shape)}
        return {"array": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"scalar": value.item(), "dtype": value.dtype.str}
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    raise TypeError(f"cannot encode an attribute of type {type(value).__name__}")


def decode_value(doc: Any) -> Any:
    if isinstance(doc, dict):
        if "bytes" in doc:
            return base64.b64decode(doc["bytes"])
        if "texts" in doc:
            return np.asarray(doc["texts"], dtype=str).reshape(doc["shape"])
        if "array" in doc:
            return np.asarray(doc["array"], dtype=np.dtype(doc["dtype"])).reshape(doc["shape"])
        if "scalar" in doc:
            return np.dtype(doc["dtype"]).type(doc["scalar"])
    return doc


def encode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in attrs.items()}


def decode_attrs(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in doc.items()}


def episode_extras(ep: EpisodeArrays) -> dict[str, Any]:
    """What a format without a place for them keeps of an episode: the group's and datasets' attributes,
    and each dataset's dtype and shape (texts may be stored flat)."""
    return {
        "index": ep.index,
        "attrs": encode_attrs(ep.attrs),
        "dataset_attrs": {k: encode_attrs(v) for k, v in ep.dataset_attrs.items()},
        "schema": {k: {"dtype": "str" if is_text(v) else v.dtype.str, "shape": list(v.shape)}
                   for k, v in ep.arrays.items()},
    }


def restore_array(values: Any, spec: dict[str, Any]) -> np.ndarray:
    """An array read back from another format, in the dtype and shape the rig dataset stored."""
    if spec["dtype"] == "str":
        return _texts(np.asarray(values, dtype=object)).reshape(spec["shape"])
    return np.asarray(values).astype(np.dtype(spec["dtype"]), copy=False).reshape(spec["shape"])


def json_text(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def producer(command: str) -> dict[str, Any]:
    return {"command": command, "versions": versions(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


# -- building a rig dataset ------------------------------------------------------------------------------
def check_new_output(out: Path, what: str = "imports") -> None:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RigError(f"output {out} already exists and is not empty", f"choose another OUT ({what} never overwrite)")


def complete_dataset(data: Path) -> Dataset:
    """The rig dataset at ``data``, open, once it is known to be complete (exports read finished data only)."""
    ds = Dataset(Path(data))
    if not ds.complete:
        ds.close()
        raise RigError(f"dataset {data} is incomplete", f"finish it first: rig collect --out {data} --resume")
    return ds


def write_dataset(out: Path, manifest: dict[str, Any], episodes: Iterable[EpisodeArrays], *, command: str,
                  source: dict[str, Any], per_shard: int = 64, on_episode=None) -> dict[str, Any]:
    """Write ``episodes`` as a rig dataset at ``out``: closed shards renamed into place one by one and the
    manifest rewritten after each, ``complete`` only at the end. ``manifest`` gives the env fields
    (env, action_names, item_names, achievement_names, frame_shape, stages, ...)."""
    out = Path(out)
    check_new_output(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {k: v for k, v in manifest.items() if k not in ("producer", "shards", "complete", "episodes_planned")}
    doc.update({"format": FORMAT, "schema_version": SCHEMA_VERSION, "source": source,
                "producer": producer(command),
                "complete": False, "shards": []})
    atomic_write_json(out / MANIFEST, doc)
    writer: ShardWriter | None = None
    count = steps = 0

    def close() -> None:
        if writer is not None:
            writer.close()
            info = writer.info()
            doc["shards"].append({k: info[k] for k in ("file", "episodes", "steps")})
            atomic_write_json(out / MANIFEST, doc)

    try:
        for ep in episodes:
            if writer is None:
                writer = ShardWriter(out, ep.index)
            writer.write_arrays(ep.index, ep.arrays, ep.attrs, ep.dataset_attrs)
            count += 1
            steps += ep.length
            if on_episode is not None:
                on_episode(ep)
            if len(writer.episodes) >= per_shard:
                close()
                writer = None
        close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    doc["episodes_planned"] = count
    doc["complete"] = True
    atomic_write_json(out / MANIFEST, doc)
    return {"out": str(out), "episodes": count, "steps": steps}
