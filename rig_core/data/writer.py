"""Atomic shard writer: whole episodes into an HDF5 file under a temp name, renamed on close."""

from __future__ import annotations

import bz2
import os
import zlib
from pathlib import Path

import h5py
import hdf5plugin  # registers the bzip2 filter of noisy frame chunks
import numpy as np

from rig_core.data.episode import EpisodeRecord
from rig_core.data.schema import (FRAME_CHUNK, FRAME_GZIP_LEVEL, FRAME_NOISY_BELOW, SCHEMA_VERSION, episode_key,
                                  shard_name)

TMP_SUFFIX = ".tmp"
_STR = h5py.string_dtype(encoding="utf-8")

# The frames' filter pipeline is [deflate, bzip2]; a chunk's filter mask has a bit set for each
# filter that was *not* applied to it, which is how HDF5 knows what to undo when reading.
DEFLATE_ONLY = 0b10
BZIP2_ONLY = 0b01
UNFILTERED = 0b11


def bzip2_level(nbytes: int) -> int:
    """The smallest bzip2 block size (in 100 kB) that holds a whole chunk: same output as 9, less to allocate."""
    return min(9, nbytes // 100_000 + 1)


def frames_dcpl(chunk: tuple[int, ...]) -> h5py.h5p.PropDCID:
    """Creation properties of a frames dataset: chunked, filter pipeline [deflate, bzip2]."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunk)
    dcpl.set_deflate(FRAME_GZIP_LEVEL)
    dcpl.set_filter(hdf5plugin.BZIP2_ID, h5py.h5z.FLAG_OPTIONAL, (bzip2_level(int(np.prod(chunk))),))
    return dcpl


def noisy(frames: np.ndarray) -> bool:
    """True when few horizontally adjacent bytes are equal: pixel noise (Crafter's night), bzip2's case."""
    if frames.ndim < 3 or frames.shape[2] < 2:
        return False
    same = np.count_nonzero(frames[:, :, 1:] == frames[:, :, :-1])
    return same < FRAME_NOISY_BELOW * frames[:, :, 1:].size


def encode_frame_chunk(frames: np.ndarray, chunk_len: int) -> tuple[bytes, int]:
    """One stored chunk and its filter mask: bzip2 for noisy frames, deflate otherwise, raw if neither helps.

    ``frames`` may be shorter than ``chunk_len`` (the episode's last chunk); it is padded with zeros,
    which HDF5 never returns (they lie beyond the dataset's extent).
    """
    choose_bzip2 = noisy(frames)
    if len(frames) < chunk_len:
        pad = np.zeros((chunk_len - len(frames),) + frames.shape[1:], frames.dtype)
        frames = np.concatenate([frames, pad])
    raw = np.ascontiguousarray(frames).tobytes()
    if choose_bzip2:
        data, mask = bz2.compress(raw, bzip2_level(len(raw))), BZIP2_ONLY
    else:
        data, mask = zlib.compress(raw, FRAME_GZIP_LEVEL), DEFLATE_ONLY
    if len(data) >= len(raw):
        return raw, UNFILTERED
    return data, mask


def write_frames(group: h5py.Group, name: str, frames: np.ndarray) -> h5py.Dataset:
    """Store uint8 frames [T, ...] losslessly, each chunk of FRAME_CHUNK frames compressed by its content.

    Chunks are compressed here and written with HDF5's direct chunk write; reading needs nothing but
    h5py with hdf5plugin imported (``ds[()]`` is the original array, bit for bit).
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    k = max(1, min(FRAME_CHUNK, len(frames)))
    ds = group.create_dataset(name, shape=frames.shape, dtype=np.uint8, dcpl=frames_dcpl((k,) + frames.shape[1:]))
    tail = (0,) * (frames.ndim - 1)
    for start in range(0, len(frames), k):
        data, mask = encode_frame_chunk(frames[start:start + k], k)
        ds.id.write_direct_chunk((start,) + tail, data, filter_mask=mask)
    return ds


def text_array(values) -> np.ndarray:
    """Texts as HDF5 UTF-8 strings (numpy's fixed-width unicode has no HDF5 type). A NUL, which HDF5 strings
    cannot hold and a model may write, is stored as U+FFFD."""
    flat = [str(v).replace("\x00", "\ufffd") for v in np.asarray(values, dtype=object).ravel()]
    return np.asarray(flat, dtype=object).reshape(np.shape(values)).astype(_STR)


def _attr(value):
    if isinstance(value, np.ndarray) and value.dtype.kind in "OU":
        return text_array(value)
    return value


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
        dataset_attrs: dict[str, dict] = {"inventory": {"names": np.asarray(record.item_names, dtype=_STR)}}
        if record.vital_names:
            dataset_attrs["privileged/vitals"] = {"names": np.asarray(record.vital_names, dtype=_STR)}
        self.write_arrays(index, record.arrays(), record.attrs, dataset_attrs)

    def write_arrays(self, index: int, arrays: dict[str, np.ndarray], attrs: dict, dataset_attrs: dict | None = None,
                     ) -> None:
        """Write one episode group from its datasets by path (text arrays of ``str`` or ``object``), the
        datasets' attributes and the group's; ``length`` and ``index`` are set from the arrays."""
        group = self._file["episodes"].create_group(episode_key(index))
        for name, data in arrays.items():
            if name == "frames":
                ds = write_frames(group, name, data)
                self.frame_bytes += ds.id.get_storage_size()
                self.frames += len(data)
            elif data.dtype.kind in "OU":
                group.create_dataset(name, data=text_array(data), dtype=_STR)
            elif data.ndim >= 1 and data.size > 64:
                group.create_dataset(name, data=data, compression="gzip", compression_opts=4)
            else:
                group.create_dataset(name, data=data)
        for name, values in (dataset_attrs or {}).items():
            if name in group:
                for key, value in values.items():
                    group[name].attrs[key] = _attr(value)
        for key, value in attrs.items():
            group.attrs[key] = _attr(value)
        length = int(len(arrays["actions"]))
        group.attrs["length"] = length
        group.attrs["index"] = index
        self.episodes.append(index)
        self.steps += length

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
