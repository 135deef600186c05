"""Every evaluated episode step by step, for `rig view`: the real frames, actions, rewards, achievements,
thoughts, imagined image codes and, with lookahead, the imagined chain and the review.

An evaluation folder keeps them in ``steps/shard-XXXXX.h5`` (one shard per test-time setting, written with the
dataset's shard writer: frames lossless in compressed chunks of 16, texts as UTF-8) and, for a RIG policy, the
image tokenizer that decodes the codes (``steps/image_tokenizer.safetensors``). Episode groups carry ``n``,
``task``, ``seed`` and the outcome as attributes; the layout is in docs/view.md.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.records import EpisodeResult, StepRecord

STEPS_DIR = "steps"


def _pack(frames: list[np.ndarray] | np.ndarray) -> tuple[bytes, tuple[int, ...]]:
    """Frames compressed for the trip from a worker process to the writer (zlib level 1: fast, ~10x)."""
    a = np.ascontiguousarray(np.stack(frames), dtype=np.uint8)
    return zlib.compress(a.tobytes(), 1), a.shape


def _unpack(packed: tuple[bytes, tuple[int, ...]]) -> np.ndarray:
    data, shape = packed
    return np.frombuffer(zlib.decompress(data), np.uint8).reshape(shape)


def _unpack_all(chunks: list[tuple[bytes, tuple[int, ...]]]) -> np.ndarray:
    """An episode's frames from its packed chunks, in order."""
    return np.concatenate([_unpack(c) for c in chunks])


class _FrameChunks:
    """An open episode's real frames, compressed every ``CHUNK`` frames as they arrive, so a game of thousands
    of steps holds about a tenth of its raw frames in memory until it ends."""

    CHUNK = 64

    def __init__(self):
        self.packed: list[tuple[bytes, tuple[int, ...]]] = []
        self.fresh: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        self.fresh.append(frame)
        if len(self.fresh) == self.CHUNK:
            self.packed.append(_pack(self.fresh))
            self.fresh = []

    def pack(self) -> list[tuple[bytes, tuple[int, ...]]]:
        """Every frame, as packed chunks (the last one holds what had not filled a chunk)."""
        return self.packed + ([_pack(self.fresh)] if self.fresh else [])


class StepLog:
    """One share's steps, per environment; ``close`` turns a finished episode into a compact record. The steps
    are kept without their frames (those go compressed into ``_FrameChunks`` as they arrive)."""

    def __init__(self, action_names: list[str], achievement_names: list[str], item_names: list[str]):
        self.actions = {a: i for i, a in enumerate(action_names)}
        self.achievements = {a: i for i, a in enumerate(achievement_names)}
        self.items = list(item_names)
        self.open: dict[int, list[StepRecord]] = {}
        self.frames: dict[int, _FrameChunks] = {}

    def add(self, rec: StepRecord) -> None:
        steps = self.open.setdefault(rec.env, [])
        frames = self.frames.setdefault(rec.env, _FrameChunks())
        if not steps:
            frames.add(rec.frame)
        frames.add(rec.next_frame)
        steps.append(replace(rec, frame=None, next_frame=None, imagined=None))

    def close(self, result: EpisodeResult, instruction: str, n: int) -> dict[str, Any]:
        steps = self.open.pop(result.env, [])
        chunks = self.frames.pop(result.env, None)
        arrays: dict[str, Any] = {
            "actions": np.asarray([s.action for s in steps], np.int16),
            "rewards": np.asarray([s.reward for s in steps], np.float32),
            "reasoning": np.asarray([s.thought for s in steps], dtype=object),
            "valid": np.asarray([s.valid for s in steps], bool),
            "expert": np.asarray([-1 if s.expert_action is None else s.expert_action for s in steps], np.int16),
            "achievements_mask": self._masks(steps),
            "inventory": np.asarray([[s.inventory.get(k, 0) for k in self.items] for s in steps], np.int16)
            .reshape(len(steps), len(self.items)),
        }
        if any(s.imagined_codes is not None for s in steps):
            width = next(len(s.imagined_codes) for s in steps if s.imagined_codes is not None)
            arrays["imagined"] = np.asarray([s.imagined_codes is not None for s in steps], bool)
            arrays["imagined_codes"] = np.stack([np.zeros(width, np.int16) if s.imagined_codes is None
                                                 else np.asarray(s.imagined_codes, np.int16) for s in steps])
        if n > 0 and steps:
            arrays["proposed"] = np.asarray([self.actions.get(s.proposed_name, s.action) for s in steps], np.int16)
            arrays["review"] = np.asarray([s.review for s in steps], dtype=object)
            arrays["p_worse"] = np.asarray([np.nan if s.p_worse is None else s.p_worse for s in steps], np.float32)
            ahead = [s.lookahead or [] for s in steps]
            k = max(len(a) for a in ahead)
            if k:
                width = next(len(a[0][2]) for a in ahead if a)
                arrays["ahead/thoughts"] = np.asarray([[a[j][0] if j < len(a) else "" for j in range(k)] for a in ahead],
                                                      dtype=object)
                arrays["ahead/actions"] = np.asarray([[a[j][1] if j < len(a) else -1 for j in range(k)]
                                                      for a in ahead], np.int16)
                arrays["ahead/codes"] = np.asarray([[a[j][2] if j < len(a) else np.zeros(width) for j in range(k)]
                                                    for a in ahead], np.int16)
        if any(s.candidates for s in steps):  # the candidates: the policy's order, the review's P(worse) of each
            k = max(len(s.candidates or []) for s in steps)
            rows = [(s.candidates or []) + [(-1, "", -1, None)] * (k - len(s.candidates or [])) for s in steps]
            arrays["proposed"] = np.asarray([self.actions.get(s.proposed_name, s.action) for s in steps], np.int16)
            arrays["candidates/actions"] = np.asarray([[c[0] for c in r] for r in rows], np.int16)
            arrays["candidates/ranks"] = np.asarray([[c[2] for c in r] for r in rows], np.int8)
            arrays["candidates/p_worse"] = np.asarray([[np.nan if c[3] is None else c[3] for c in r] for r in rows],
                                                      np.float32)
        attrs = {"n": n, "task": result.task, "seed": result.seed, "instruction": instruction,
                 "success": bool(result.success), "died": bool(result.died), "reward": float(result.reward),
                 "unlocked": json.dumps(list(result.unlocked))}
        return {"arrays": arrays, "frames": chunks.pack() if steps and chunks else None, "attrs": attrs}

    def _masks(self, steps: list[StepRecord]) -> np.ndarray:
        """Bit i set at step t when achievement i was first unlocked there (as datasets store it)."""
        out, seen = np.zeros(len(steps), np.uint32), set()
        for t, s in enumerate(steps):
            for name in set(s.unlocked) - seen:
                if name in self.achievements:
                    out[t] |= np.uint32(1 << self.achievements[name])
            seen |= set(s.unlocked)
        return out


def write_steps(folder: Path, records: list[dict[str, Any]], first: int) -> int:
    """Write one test-time setting's episode records as ``folder/steps/shard-<first>.h5`` (under a temporary name,
    renamed when closed); returns the next free episode index. Frames go through the dataset's lossless chunked
    compression; the small per-step arrays are stored whole (HDF5's newest object layout keeps each small
    dataset to a few hundred bytes)."""
    import os

    import h5py

    from rig_core.data.schema import episode_key, shard_name
    from rig_core.data.writer import text_array, write_frames

    root = Path(folder) / STEPS_DIR
    root.mkdir(parents=True, exist_ok=True)
    path = root / shard_name(first)
    tmp = root / f".{path.name}.tmp"
    text = h5py.string_dtype(encoding="utf-8")
    try:
        with h5py.File(tmp, "w", libver="latest") as f:
            episodes = f.create_group("episodes")
            for k, rec in enumerate(records):
                group = episodes.create_group(episode_key(first + k))
                if rec["frames"]:
                    write_frames(group, "frames", _unpack_all(rec["frames"]))
                for name, data in rec["arrays"].items():
                    if data.dtype.kind == "O":
                        group.create_dataset(name, data=text_array(data), dtype=text)
                    elif data.nbytes > 2048:
                        group.create_dataset(name, data=data, compression="gzip", compression_opts=4)
                    else:
                        group.create_dataset(name, data=data)
                group.attrs.update(rec["attrs"] | {"length": len(rec["arrays"]["actions"]), "index": first + k})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return first + len(records)


def clear_steps(folder: Path) -> None:
    """Remove the steps an earlier evaluation into the same folder recorded."""
    import shutil

    shutil.rmtree(Path(folder) / STEPS_DIR, ignore_errors=True)


def save_image_tokenizer(folder: Path, image_tok) -> None:
    """The tokenizer that decodes the recorded image codes (a few tens of kB), beside them."""
    image_tok.save(Path(folder) / STEPS_DIR)


def steps_index(folder: Path, stack) -> dict[tuple[int, str, int], Any]:
    """Every recorded episode of an evaluation folder as its HDF5 group, by (n, task, seed); the shards stay open
    in ``stack`` (a contextlib.ExitStack). Empty for an evaluation written before steps were recorded."""
    from rig_core.data.reader import open_shard

    index = {}
    for path in sorted((Path(folder) / STEPS_DIR).glob("shard-*.h5")):
        f = stack.enter_context(open_shard(path))
        for group in f["episodes"].values():
            a = group.attrs
            index[(int(a["n"]), str(a["task"]), int(a["seed"]))] = group
    return index
