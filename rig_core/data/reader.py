"""Reading datasets: the manifest, shards and lazily loaded episodes."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import hdf5plugin  # noqa: F401  registers the bzip2 filter that noisy frame chunks are stored with
import numpy as np

from rig_core.data.schema import episode_key, read_manifest
from rig_core.errors import RigError


def open_shard(path: Path) -> h5py.File:
    """Open a closed shard read-only, or raise a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.exists():
        raise RigError(f"shard {path} is missing", "restore it, or re-collect with: rig collect --resume")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise RigError(
            f"{path} is not a readable HDF5 file (corrupt or truncated)",
            "delete it and run: rig collect --out <dataset> --resume",
        ) from exc


@dataclass
class EpisodeRef:
    index: int
    shard: str
    attrs: dict[str, Any]


class Episode:
    """One stored episode; datasets are read on access (``ep["frames"][10]`` reads one chunk)."""

    def __init__(self, group: h5py.Group, ref: EpisodeRef):
        self._group = group
        self.ref = ref
        self.index = ref.index
        self.attrs = ref.attrs

    def __getitem__(self, name: str) -> h5py.Dataset:
        try:
            return self._group[name]
        except KeyError:
            link = self._group.get(name, getlink=True)
            if not isinstance(link, h5py.ExternalLink):
                raise
            target = os.path.normpath(Path(self._group.file.filename).parent / link.filename)
            raise RigError(f"episode {self.index}'s {name} is linked from {target}, which cannot be read",
                           "put the dataset this one was made from back at that path, or remake this one with "
                           "--copy-frames for a self-contained copy") from None

    def __contains__(self, name: str) -> bool:
        return name in self._group

    def keys(self) -> list[str]:
        out: list[str] = []
        self._group.visit(lambda n: out.append(n) if isinstance(self._group[n], h5py.Dataset) else None)
        return out

    def linked_keys(self) -> list[str]:
        """Every dataset path, those behind (external) links included, sorted."""
        out: list[str] = []
        self._group.visit_links(lambda n: out.append(n) if isinstance(self._group.get(n), h5py.Dataset) else None)
        return sorted(out)

    def raw_attrs(self) -> dict[str, Any]:
        """The group's attributes as stored (numpy types kept), for copying."""
        return dict(self._group.attrs)

    def read(self, name: str) -> np.ndarray:
        return self[name][()]

    def texts(self, name: str) -> list[str]:
        """A string dataset as a flat list (row-major for 2-D ones such as ``review/text``)."""
        return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in self[name][()].ravel()]

    @property
    def length(self) -> int:
        return int(self.attrs["length"])


class Dataset:
    """A dataset directory (docs/data-format.md). Use as a context manager to close its shard files."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self._files: dict[str, h5py.File] = {}
        self._refs: dict[int, EpisodeRef] | None = None

    # -- metadata -----------------------------------------------------------
    @property
    def action_names(self) -> list[str]:
        return list(self.manifest["action_names"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete", False))

    @property
    def shard_files(self) -> list[str]:
        return [s["file"] for s in self.manifest["shards"]]

    def _file(self, name: str) -> h5py.File:
        if name not in self._files:
            self._files[name] = open_shard(self.root / name)
        return self._files[name]

    def refs(self) -> dict[int, EpisodeRef]:
        if self._refs is None:
            refs: dict[int, EpisodeRef] = {}
            for name in self.shard_files:
                f = self._file(name)
                if "episodes" not in f:
                    raise RigError(f"{self.root / name} is not a rig shard", "re-collect the dataset")
                for key, group in f["episodes"].items():
                    attrs = {k: plain(v) for k, v in group.attrs.items()}
                    refs[int(key)] = EpisodeRef(int(key), name, attrs)
            self._refs = dict(sorted(refs.items()))
        return self._refs

    def __len__(self) -> int:
        return len(self.refs())

    def indices(self) -> list[int]:
        return list(self.refs())

    def episode(self, index: int) -> Episode:
        refs = self.refs()
        if index not in refs:
            raise RigError(
                f"episode {index} is not in {self.root}",
                f"choose one of {min(refs)}..{max(refs)}" if refs else "the dataset has no episodes yet",
            )
        ref = refs[index]
        return Episode(self._file(ref.shard)["episodes"][episode_key(index)], ref)

    def __iter__(self) -> Iterator[Episode]:
        for index in self.refs():
            yield self.episode(index)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def opened(source: "Dataset | str | Path") -> AbstractContextManager["Dataset"]:
    """``with opened(x) as ds``: a dataset already open is used as it is (and left open), a path is opened
    for the block, so one caller can hand the same open dataset to several readers."""
    return nullcontext(source) if isinstance(source, Dataset) else Dataset(Path(source))


def plain(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value
