"""Training data: image codes cached once, episode windows, a lazy torch Dataset, padded batches."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from rig_core.data.reader import Dataset
from rig_core.data.schema import episode_key
from rig_core.errors import RigError
from rig_core.tokenize.sequence import IGNORE, SequenceBuilder

CODES_FILE = "image_codes.h5"


def check_training_data(ds: Dataset, action_names: list[str] | None = None) -> None:
    """The dataset must be complete and carry reasoning; its actions must match the tokenizer's."""
    if not ds.complete:
        raise RigError(f"dataset {ds.root} is incomplete", f"finish it: rig collect --out {ds.root} --resume")
    if "reason" not in ds.manifest.get("stages", []):
        raise RigError(f"dataset {ds.root} has no reasoning text",
                       f"add it with: rig augment --stage reason --data {ds.root} --out {ds.root}-reason")
    if len(ds) == 0:
        raise RigError(f"dataset {ds.root} has no episodes", "collect some with rig collect")
    if action_names is not None and list(ds.action_names) != list(action_names):
        raise RigError(f"the tokenizer's actions do not match dataset {ds.root}",
                       "train a new run on this dataset (the tokenizer is made per dataset)")


def encode_dataset(ds: Dataset, image_tok, path: Path, progress=None, name: str = "frames") -> Path:
    """Image codes of every episode's ``name`` frames (uint8 [..., H, W, 3]), one int16 [..., tokens] array
    per episode, written atomically; an existing cache that covers every episode is reused."""
    path = Path(path)
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                if set(f.keys()) == {episode_key(i) for i in ds.indices()}:
                    return path
        except OSError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as f:
        for ep in ds:
            frames = ep[name][()]
            lead = frames.shape[:-3]
            codes = image_tok.encode(frames.reshape((-1,) + frames.shape[-3:])).reshape(lead + (-1,))
            f.create_dataset(episode_key(ep.index), data=codes.astype(np.int16), compression="gzip")
            if progress:
                progress(int(np.prod(lead)))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Window:
    episode: int
    start: int
    stop: int  # exclusive: steps start..stop-1 are trained


def make_windows(lengths: dict[int, int], steps_per_sample: int) -> list[Window]:
    """Non-overlapping windows of up to ``steps_per_sample`` consecutive steps: every step is trained once per epoch."""
    out = []
    for ep, n in lengths.items():
        for s in range(0, n, steps_per_sample):
            out.append(Window(ep, s, min(s + steps_per_sample, n)))
    return out


def split_episodes(indices: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A held-out episode split, reproducible from the seed (at least one of each when possible)."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(indices))
    n_val = int(round(len(order) * val_fraction))
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


def nested_subset(episodes: list[int], fraction: float, seed: int) -> list[int]:
    """The first ceil(fraction * n) episodes of one seeded order: for the same episodes and seed, a smaller
    fraction is always inside a larger one (``data_fraction``: data-efficiency curves on nested subsets)."""
    if fraction >= 1:
        return list(episodes)
    order = np.random.default_rng([int(seed), 20]).permutation(sorted(int(e) for e in episodes))
    return sorted(int(e) for e in order[: max(1, int(np.ceil(fraction * len(order))))])


class SequenceDataset(torch.utils.data.Dataset):
    """Samples built on demand; HDF5 files are opened lazily in each DataLoader worker."""

    def __init__(self, data_dir: Path, codes_path: Path, builder: SequenceBuilder, windows: list[Window],
                 max_len: int):
        self.data_dir, self.codes_path = Path(data_dir), Path(codes_path)
        self.builder, self.windows, self.max_len = builder, windows, max_len
        self._ds: Dataset | None = None
        self._codes: h5py.File | None = None
        self._pid = None
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    CACHE_EPISODES = 256  # per process: recently used episodes' codes, texts and actions stay in memory

    def _open(self) -> None:
        if self._pid != os.getpid():
            self._ds, self._codes, self._pid = Dataset(self.data_dir), h5py.File(self.codes_path, "r"), os.getpid()

    def __len__(self) -> int:
        return len(self.windows)

    def _episode(self, index: int) -> tuple:
        """(instruction, codes [T+1, tokens], texts, actions) of an episode, read once and kept a while."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        ep = self._ds.episode(index)
        item = (str(ep.attrs.get("instruction", "")), self._codes[episode_key(index)][()].astype(np.int64),
                ep.texts("reasoning"), ep.read("actions").astype(np.int64))
        self._cache[index] = item
        if len(self._cache) > self.CACHE_EPISODES:
            self._cache.popitem(last=False)
        return item

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        self._open()
        w = self.windows[i]
        instruction, codes, texts, actions = self._episode(w.episode)
        steps = [(codes[k], texts[k], int(actions[k]), codes[k + 1]) for k in range(w.start, w.stop)]
        return self.builder.sample(instruction, steps, self.max_len)


def collate(samples: list[dict[str, np.ndarray]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sample; padding is masked out of attention and loss (position ids: the sample's)."""
    n = max(len(s["input_ids"]) for s in samples)
    ids = torch.full((len(samples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), n), IGNORE, dtype=torch.long)
    spans = torch.zeros((len(samples), n), dtype=torch.int8)
    mask = torch.zeros((len(samples), n), dtype=torch.long)
    pos = torch.zeros((len(samples), n), dtype=torch.long)
    for i, s in enumerate(samples):
        k = len(s["input_ids"])
        ids[i, :k] = torch.from_numpy(s["input_ids"])
        pos[i, :k] = torch.from_numpy(s["position_ids"])
        labels[i, :k] = torch.from_numpy(s["labels"])
        spans[i, :k] = torch.from_numpy(s["spans"])
        mask[i, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels, "spans": spans}


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch, a pure function of (seed, epoch): resuming needs only the position."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batches_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batches(n: int, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1):
    """Index lists of an epoch's batches from batch ``start`` on; each process takes its share of a batch."""
    order = epoch_order(n, seed, epoch)
    for b in range(start, batches_per_epoch(n, batch_size)):
        chunk = order[b * batch_size : (b + 1) * batch_size]
        yield b, chunk[rank::world]
