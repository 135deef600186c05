"""LeRobot datasets (codebase v3.0 layout) written and read with pyarrow and av, the libraries LeRobot itself
stores them with; ``lerobot`` is not needed on either side.

An episode of T steps is T + 1 rows (one per observation; ``frame_index`` 0..T). Row t holds the frame
(``observation.image``, PNG bytes: lossless), the inventory (``observation.state``), and the step taken there:
``action`` (the discrete action index), ``next.reward``, ``next.terminated``, ``next.truncated``, ``next.done``.
The last row is the final observation: its ``action`` is -1 and ``action.valid`` False. Per-step texts and
arrays of the episode (``reasoning``, privileged state) are columns named ``rig.<path with dots>``; the
rest (review samples), each episode's attributes and the datasets' dtypes sit in the episodes table's
``rig.episode`` column as JSON, and the rig manifest in ``meta/rig.json``, so a round trip is exact.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError
from rig_core.exchange.episodes import (CORE, EpisodeArrays, check_new_output, complete_dataset, encode_value,
                                        episode_extras, is_text, json_text, producer, read_episode)

CODEBASE_VERSION = "v3.0"
FORMAT_VERSION = 1
CHUNKS_SIZE = 1000
FILE_MB = 100
IMAGE = "observation.image"
STATE = "observation.state"
DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                    "task_index": "int64"}
_STEP_COLUMNS = {"action": "int64", "action.valid": "bool", "next.reward": "float32", "next.terminated": "bool",
                 "next.truncated": "bool", "next.done": "bool"}


def arrow_libs():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise RigError("the LeRobot format needs pyarrow", "install it with: pip install 'rig[lerobot]'") from exc
    return pa, pq


def _column(path: str) -> str:
    return "rig." + path.replace("/", ".")


def chunk_file(chunk: int, file: int) -> str:
    return f"chunk-{chunk:03d}/file-{file:03d}"


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _hf_feature(ft: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face ``datasets`` description of a LeRobot feature (what LeRobot writes in parquet metadata)."""
    if ft["dtype"] == "image":
        return {"_type": "Image"}
    shape = list(ft["shape"])
    if shape == [1]:
        return {"dtype": ft["dtype"], "_type": "Value"}
    return {"feature": {"dtype": ft["dtype"], "_type": "Value"}, "length": shape[0], "_type": "List"}


class _Layout:
    """Which episode datasets become per-row columns (first axis T or T + 1) and which travel as JSON."""

    def __init__(self, first: EpisodeArrays, item_names: list[str], frame_shape: list[int]):
        self.features: dict[str, dict[str, Any]] = {
            IMAGE: {"dtype": "image", "shape": list(frame_shape), "names": ["height", "width", "channels"]},
            STATE: {"dtype": first.arrays["inventory"].dtype.name, "shape": [len(item_names)], "names": item_names},
        }
        for name, dtype in _STEP_COLUMNS.items():
            self.features[name] = {"dtype": dtype, "shape": [1], "names": None}
        self.columns: dict[str, str] = {}
        t = first.length
        for path, arr in first.arrays.items():
            if path in CORE or arr.ndim == 0 or arr.shape[0] not in (t, t + 1):
                continue
            if is_text(arr) and arr.ndim == 1:
                dtype, shape = "string", [1]
            elif not is_text(arr) and arr.ndim <= 2:
                dtype, shape = ("bool" if arr.dtype == bool else arr.dtype.name), list(arr.shape[1:]) or [1]
            else:
                continue
            self.columns[path] = _column(path)
            self.features[_column(path)] = {"dtype": dtype, "shape": shape, "names": None}
        for name, dtype in DEFAULT_FEATURES.items():
            self.features[name] = {"dtype": dtype, "shape": [1], "names": None}

    def fits(self, ep: EpisodeArrays, path: str) -> bool:
        arr = ep.arrays.get(path)
        ft = self.features[self.columns[path]]
        return arr is not None and arr.shape[0] in (ep.length, ep.length + 1) and (
            is_text(arr) if ft["dtype"] == "string" else list(arr.shape[1:] or (1,)) == ft["shape"])


def _rows(ep: EpisodeArrays, layout: _Layout, episode_index: int, task_index: int, first_row: int, fps: int):
    a = ep.arrays
    t = ep.length
    n = t + 1
    pad = lambda x, fill: np.concatenate([np.asarray(x), np.full(1, fill, dtype=np.asarray(x).dtype)])  # noqa: E731
    cols: dict[str, Any] = {
        IMAGE: [{"bytes": _png(f), "path": None} for f in a["frames"]],
        STATE: [row.tolist() for row in a["inventory"]],
        "action": pad(a["actions"].astype(np.int64), -1),
        "action.valid": np.arange(n) < t,
        "next.reward": pad(a["rewards"].astype(np.float32), 0.0),
        "next.terminated": pad(a["terminated"], False),
        "next.truncated": pad(a["truncated"], False),
    }
    cols["next.done"] = cols["next.terminated"] | cols["next.truncated"] | (np.arange(n) == t)
    moved: list[str] = []
    for path, name in layout.columns.items():
        if not layout.fits(ep, path):
            moved.append(path)
            cols[name] = [None] * n
            continue
        arr = a[path]
        if arr.shape[0] == t:  # a per-step dataset: nothing at the final observation
            arr = np.concatenate([arr, np.zeros((1,) + arr.shape[1:], dtype=arr.dtype)])
        cols[name] = arr.tolist() if arr.ndim > 1 or is_text(arr) else arr
    cols["timestamp"] = (np.arange(n) / fps).astype(np.float32)
    cols["frame_index"] = np.arange(n, dtype=np.int64)
    cols["episode_index"] = np.full(n, episode_index, np.int64)
    cols["index"] = np.arange(first_row, first_row + n, dtype=np.int64)
    cols["task_index"] = np.full(n, task_index, np.int64)
    return cols, moved


def _arrow_type(pa, ft: dict[str, Any]):
    if ft["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    base = pa.string() if ft["dtype"] == "string" else pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    shape = list(ft["shape"])
    return base if shape == [1] else pa.list_(base, shape[0])


def check_export(out: Path) -> None:
    arrow_libs()
    check_new_output(out, "exports")


def export_lerobot(data: Path, out: Path, *, fps: int = 10, repo_id: str | None = None, on_episode=None) -> dict[str, Any]:
    """Write the rig dataset at ``data`` as a LeRobot v3.0 dataset folder ``out`` (built beside, renamed whole)."""
    pa, pq = arrow_libs()
    out = Path(out)
    check_export(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with complete_dataset(data) as ds:
            man = ds.manifest
            if len(ds) == 0:
                raise RigError(f"dataset {data} has no episodes", "collect some first: rig collect")
            layout = _Layout(read_episode(ds.episode(ds.indices()[0])), list(man.get("item_names", [])),
                             man["frame_shape"])
            schema = pa.schema([(k, _arrow_type(pa, ft)) for k, ft in layout.features.items()],
                               metadata={"huggingface": json.dumps({"info": {"features": {
                                   k: _hf_feature(ft) for k, ft in layout.features.items()}}})})
            tasks: dict[str, int] = {}
            episodes: list[dict[str, Any]] = []
            stats = _Stats(layout)
            writer, chunk, file, rows, file_bytes = None, 0, 0, 0, 0
            for k, ep in enumerate(ds):
                e = read_episode(ep)
                task = tasks.setdefault(e.task, len(tasks))
                cols, moved = _rows(e, layout, k, task, rows, fps)
                if writer is not None and file_bytes > FILE_MB * 2**20:
                    writer.close()
                    writer, file_bytes = None, 0
                    file, chunk = (0, chunk + 1) if file == CHUNKS_SIZE - 1 else (file + 1, chunk)
                if writer is None:
                    path = tmp / "data" / f"{chunk_file(chunk, file)}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(path, schema)
                table = pa.table({name: pa.array(cols[name], type=schema.field(name).type) for name in schema.names},
                                 schema=schema)
                writer.write_table(table)
                file_bytes += table.nbytes
                stats.add(cols, e.arrays["frames"])
                extras = episode_extras(e)
                extras["other"] = {p: encode_value(e.arrays[p]) for p in e.arrays
                                   if p not in CORE and (p not in layout.columns or p in moved)}
                n = e.length + 1
                episodes.append({"episode_index": k, "tasks": [e.task], "length": n, "data/chunk_index": chunk,
                                 "data/file_index": file, "dataset_from_index": rows, "dataset_to_index": rows + n,
                                 "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                                 "rig.episode": json_text(extras)})
                rows += n
                if on_episode is not None:
                    on_episode(e)
            if writer is not None:
                writer.close()
        meta = tmp / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(episodes), meta / "episodes" / "chunk-000" / "file-000.parquet")
        names = sorted(tasks, key=tasks.get)
        pq.write_table(pa.table({"task_index": pa.array([tasks[t] for t in names], pa.int64()),
                                 "__index_level_0__": pa.array(names, pa.large_string())},
                                metadata={"pandas": json.dumps({
                                    "index_columns": ["__index_level_0__"], "column_indexes": [],
                                    "columns": [{"name": "task_index", "field_name": "task_index",
                                                 "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                                                {"name": None, "field_name": "__index_level_0__",
                                                 "pandas_type": "unicode", "numpy_type": "object",
                                                 "metadata": None}]})}),
                       meta / "tasks.parquet")
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": man["env"]["id"], "total_episodes": len(episodes),
                "total_frames": rows, "total_tasks": len(tasks), "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": FILE_MB, "video_files_size_in_mb": 200, "fps": fps,
                "splits": {"train": f"0:{len(episodes)}"}, "data_path": "data/" + "chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                "video_path": None, "features": layout.features}
        (meta / "info.json").write_text(json.dumps(info, indent=4))
        (meta / "stats.json").write_text(json.dumps(stats.result(), indent=4))
        (meta / "rig.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "manifest": man,
                                                   "columns": layout.columns, "repo_id": repo_id,
                                                   "producer": producer("rig dataset export --format lerobot")},
                                                  indent=2))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "episodes": len(episodes), "frames": rows, "tasks": len(tasks),
            "images": "PNG (lossless)"}


class _Stats:
    """Dataset statistics in LeRobot's stats.json form (min, max, mean, std, count per feature; images per
    channel on a 0..1 scale) for the numeric columns."""

    def __init__(self, layout: _Layout):
        self.keys = [k for k, ft in layout.features.items() if ft["dtype"] not in ("string",)]
        self.sums: dict[str, list] = {}

    def add(self, cols: dict[str, Any], frames: np.ndarray) -> None:
        """Add one episode's rows (``frames``: its uint8 frames, the image column's pixels)."""
        for k in self.keys:
            if k == IMAGE:
                x = frames.reshape(-1, frames.shape[-1]).astype(np.float64) / 255
            elif any(v is None for v in cols[k]):
                continue
            else:
                x = np.asarray(cols[k], dtype=np.float64).reshape(len(cols[k]), -1)
            if k not in self.sums:
                self.sums[k] = [x.min(0), x.max(0), np.zeros(x.shape[1]), np.zeros(x.shape[1]), 0]
            s = self.sums[k]
            s[0], s[1] = np.minimum(s[0], x.min(0)), np.maximum(s[1], x.max(0))
            s[2], s[3], s[4] = s[2] + x.sum(0), s[3] + (x ** 2).sum(0), s[4] + len(x)

    def result(self) -> dict[str, Any]:
        out = {}
        for k, (lo, hi, total, sq, n) in self.sums.items():
            mean = total / n
            std = np.sqrt(np.maximum(sq / n - mean ** 2, 0))
            shape = (-1, 1, 1) if k == IMAGE else (-1,)
            out[k] = {"min": lo.reshape(shape).tolist(), "max": hi.reshape(shape).tolist(),
                      "mean": mean.reshape(shape).tolist(), "std": std.reshape(shape).tolist(), "count": [int(n)]}
        return out
