"""Atomic shard writer: whole episodes into an HDF5 file under a temp name, renamed on close."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from rig_core.data.episode import EpisodeRecord
from rig_core.data.schema import FRAME_CHUNK, FRAME_GZIP_LEVEL, SCHEMA_VERSION, episode_key, shard_name

TMP_SUFFIX = ".tmp"
_STR = h5py.string_dtype(encoding="utf-8")


def tmp_shard_path(root: Path, first_episode: int) -> Path:
    return Path(root) / f".{shard_name(first_episode)}{TMP_SUFFIX}"


class ShardWriter:
    """Writes whole episodes to ``.shard-XXXXX.h5.tmp``; ``close()`` renames it to ``shard-XXXXX.h5``.

    A process killed while a shard is open leaves only the temp file, which readers
    ignore and ``rig collect --resume`` deletes: closed shards are always complete.
    """

    def __init__(self, root: Path, first_episode: int):
        self.root = Path(root)
        self.first_episode = first_episode
        self.path = self.root / shard_name(first_episode)
        self.tmp = tmp_shard_path(self.root, first_episode)
        self._file = h5py.File(self.tmp, "w")
        self._file.attrs["schema_version"] = SCHEMA_VERSION
        self._file.create_group("episodes")
        self.episodes: list[int] = []
        self.steps = 0
        self.frame_bytes = 0
        self.frames = 0

    def write_episode(self, index: int, record: EpisodeRecord) -> None:
        group = self._file["episodes"].create_group(episode_key(index))
        for name, data in record.arrays().items():
            if name == "frames":
                chunk = (min(FRAME_CHUNK, len(data)),) + data.shape[1:]
                ds = group.create_dataset(name, data=data, chunks=chunk, compression="gzip",
                                          compression_opts=FRAME_GZIP_LEVEL)
                self.frame_bytes += ds.id.get_storage_size()
                self.frames += len(data)
            elif data.dtype == object:
                group.create_dataset(name, data=data.astype(_STR), dtype=_STR)
            elif data.ndim >= 1 and data.size > 64:
                group.create_dataset(name, data=data, compression="gzip", compression_opts=4)
            else:
                group.create_dataset(name, data=data)
        group["inventory"].attrs["names"] = np.asarray(record.item_names, dtype=_STR)
        if record.vital_names and "privileged/vitals" in group:
            group["privileged/vitals"].attrs["names"] = np.asarray(record.vital_names, dtype=_STR)
        for key, value in record.attrs.items():
            group.attrs[key] = value
        group.attrs["length"] = record.length
        group.attrs["index"] = index
        self.episodes.append(index)
        self.steps += record.length

    def close(self) -> Path:
        """Flush, fsync and rename to the final name; returns the final path."""
        self._file.attrs["episodes"] = np.asarray(self.episodes, np.int64)
        self._file.flush()
        self._file.close()
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def info(self) -> dict:
        return {"file": self.path.name, "episodes": list(self.episodes), "steps": self.steps,
                "bytes": self.path.stat().st_size if self.path.exists() else None,
                "frame_bytes": self.frame_bytes, "frames": self.frames}
