"""Image tokenizers: frames to discrete codes and back.

The Crafter default is grid-aligned: the 64x64 frame is a 9x9 grid of 7x7-pixel cells
(the game draws one texture per cell; the last row and column are always black). Each
cell maps to the nearest entry of a learned codebook (k-means on dataset patches), so a
frame is 81 tokens and decoding is a lookup. Any tokenizer with ``encode``/``decode``/
``save``/``load`` (a conv VQ-VAE, a local pretrained VQ) can stand in for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rig_core.errors import RigError

FILE = "image_tokenizer.safetensors"


@runtime_checkable
class ImageTokenizer(Protocol):
    kind: str
    tokens_per_frame: int
    codebook_size: int
    frame_shape: tuple[int, int, int]

    def encode(self, frames: np.ndarray) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 image stacks (over all their pixels)."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr_of_mse(err: float) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error of uint8 pixels (inf when 0)."""
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 image stacks (over all their pixels)."""
    return psnr_of_mse(mse(a, b))


class GridImageTokenizer:
    """Nearest-codebook-entry tokenizer on a grid of square cells."""

    kind = "grid"

    def __init__(self, codebook: np.ndarray, grid: int = 9, cell: int = 7, frame_shape=(64, 64, 3),
                 canonical: np.ndarray | None = None):
        self.codebook = np.asarray(codebook, dtype=np.uint8)  # [K, cell, cell, 3]
        # canonical[k]: the code that stands for k (near-duplicate entries merged; see ``merged``); None: itself
        self.canonical = None if canonical is None else np.asarray(canonical, dtype=np.int64)
        if self.canonical is not None and (self.canonical.shape != (len(self.codebook),)
                                           or self.canonical.min() < 0 or self.canonical.max() >= len(self.codebook)):
            raise RigError("the image tokenizer's code map does not fit its codebook", "re-create it with rig train")
        self.grid, self.cell = int(grid), int(cell)
        self.frame_shape = tuple(int(x) for x in frame_shape)
        if self.grid * self.cell > min(self.frame_shape[:2]):
            raise ValueError("the grid does not fit in the frame")
        self._cb = torch.from_numpy(self.codebook.reshape(len(self.codebook), -1).astype(np.float32))
        self._cb_sq = (self._cb**2).sum(1)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid * self.grid

    @property
    def codebook_size(self) -> int:
        return len(self.codebook)

    # -- patches ----------------------------------------------------------------------
    def patches(self, frames: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] uint8 -> [N, grid*grid, cell*cell*3] in row-major cell order."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.shape[1:] != self.frame_shape:
            raise RigError(f"frames of shape {frames.shape[1:]} do not match the tokenizer's {self.frame_shape}",
                           f"pass {self.frame_shape[0]}x{self.frame_shape[1]} RGB frames")
        g, c = self.grid, self.cell
        x = frames[:, : g * c, : g * c].reshape(len(frames), g, c, g, c, 3)
        return x.transpose(0, 1, 3, 2, 4, 5).reshape(len(frames), g * g, c * c * 3)

    def encode(self, frames: np.ndarray, batch: int = 256) -> np.ndarray:
        """Codes [N, grid*grid] (int64) of the nearest codebook entry per cell."""
        p = self.patches(frames)
        flat = torch.from_numpy(p.reshape(-1, p.shape[-1]).astype(np.float32))
        out = torch.empty(len(flat), dtype=torch.int64)
        step = batch * self.tokens_per_frame
        for i in range(0, len(flat), step):
            x = flat[i : i + step]
            d = self._cb_sq[None, :] - 2.0 * x @ self._cb.T  # |x|^2 is constant per row
            out[i : i + step] = d.argmin(1)
        return self.canonicalize(out.view(len(p), -1).numpy())

    def canonicalize(self, codes: np.ndarray) -> np.ndarray:
        """Codes with each merged entry replaced by the code that stands for it (unchanged without a map)."""
        return codes if self.canonical is None else self.canonical[np.asarray(codes, dtype=np.int64)]

    def merged(self, threshold: float) -> "GridImageTokenizer":
        """This tokenizer with entries whose cells differ by less than ``threshold`` (mean absolute difference,
        0-255) merged into one code, the lowest of each group (groups are the connected components of that
        relation). The codebook and vocabulary are unchanged; encoding only emits the merged codes.

        Why: k-means splits a common texture into entries a shade apart, and a cell that did not change
        re-encodes to another of them (on Crafter's basic tasks a fifth of the view cells of a blocked move
        flip to such a twin), so an unchanged view would not be a copy of its codes for a world model.
        A threshold of 0 merges nothing: this tokenizer itself."""
        if threshold <= 0:
            return self
        k = len(self.codebook)
        cells = self.codebook.reshape(k, -1).astype(np.float32)
        parent = np.arange(k)

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return int(i)

        for i in range(k):
            near = np.flatnonzero(np.abs(cells[i + 1:] - cells[i]).mean(1) < threshold) + i + 1
            for j in near:
                a, b = root(i), root(int(j))
                if a != b:
                    parent[max(a, b)] = min(a, b)
        canonical = np.array([root(i) for i in range(k)], dtype=np.int64)
        if self.canonical is not None:  # merging twice keeps the earlier merges
            canonical = canonical[self.canonical]
        return GridImageTokenizer(self.codebook, self.grid, self.cell, self.frame_shape, canonical)

    @property
    def distinct_codes(self) -> int:
        """Codes encoding can emit (the codebook size without a map)."""
        return len(self.codebook) if self.canonical is None else len(np.unique(self.canonical))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.shape[1] != self.tokens_per_frame or codes.min(initial=0) < 0 or codes.max(initial=0) >= len(self.codebook):
            raise RigError("image codes do not fit this tokenizer", "decode codes made by the same tokenizer")
        g, c = self.grid, self.cell
        cells = self.codebook[codes]  # [N, g*g, c, c, 3]
        img = cells.reshape(len(codes), g, g, c, c, 3).transpose(0, 1, 3, 2, 4, 5).reshape(len(codes), g * c, g * c, 3)
        out = np.zeros((len(codes),) + self.frame_shape, np.uint8)
        out[:, : g * c, : g * c] = img
        return out

    # -- fitting ----------------------------------------------------------------------
    @classmethod
    def fit(cls, frames: Iterable[np.ndarray], codebook_size: int = 1024, *, grid: int = 9, cell: int = 7,
            frame_shape=(64, 64, 3), iters: int = 15, max_patches: int = 200_000, seed: int = 0,
            log=None) -> "GridImageTokenizer":
        """k-means (k-means++ init, Lloyd steps, counts-weighted over unique patches) on dataset patches."""
        probe = cls(np.zeros((1, cell, cell, 3), np.uint8), grid, cell, frame_shape)
        chunks = [probe.patches(f).reshape(-1, cell * cell * 3) for f in frames]
        if not chunks:
            raise RigError("no frames to fit the image tokenizer on", "pass a dataset with episodes")
        allp = np.concatenate(chunks)
        uniq, counts = np.unique(allp, axis=0, return_counts=True)
        rng = np.random.default_rng(seed)
        uniq, weights = _subsample(uniq, counts, max_patches, rng)
        x = torch.from_numpy(uniq.astype(np.float32))
        w = torch.from_numpy(weights)
        k = min(codebook_size, len(x))
        centroids = _kmeans_pp(x, w, k, rng)
        for it in range(iters):
            assign = _nearest(x, centroids)
            sums = torch.zeros_like(centroids).index_add_(0, assign, x * w[:, None])
            mass = torch.zeros(k).index_add_(0, assign, w)
            empty = mass == 0
            centroids = torch.where(empty[:, None], centroids, sums / mass.clamp(min=1e-9)[:, None])
            if empty.any():  # re-seed dead codes on the worst-served patches
                err = ((x - centroids[assign]) ** 2).sum(1) * w
                centroids[empty] = x[err.topk(int(empty.sum())).indices]
            if log:
                log(it + 1, iters)
        codebook = centroids.round().clamp(0, 255).to(torch.uint8).numpy().reshape(k, cell, cell, 3)
        return cls(codebook, grid, cell, frame_shape)

    # -- files ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "grid": str(self.grid), "cell": str(self.cell),
                "frame_shape": json.dumps(list(self.frame_shape))}
        tensors = {"codebook": torch.from_numpy(self.codebook.copy())}
        if self.canonical is not None:
            tensors["canonical"] = torch.from_numpy(self.canonical.copy())
        save_file(tensors, str(directory / FILE), metadata=meta)

    @classmethod
    def load(cls, directory: Path) -> "GridImageTokenizer":
        path = Path(directory) / FILE
        if not path.exists():
            raise RigError(f"no image tokenizer at {path}", "train one with rig train (it fits the tokenizer if absent)")
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise RigError(f"{path} is corrupt ({exc.__class__.__name__})", "re-create it with rig train") from exc
        if meta.get("kind") != cls.kind:
            raise RigError(f"{path} holds a '{meta.get('kind')}' tokenizer, not a grid one", "use the matching loader")
        canonical = tensors["canonical"].numpy() if "canonical" in tensors else None
        return cls(tensors["codebook"].numpy(), int(meta["grid"]), int(meta["cell"]), tuple(json.loads(meta["frame_shape"])),
                   canonical)


def _subsample(uniq: np.ndarray, counts: np.ndarray, limit: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` unique patches with weights that keep the counts-weighted k-means objective.

    The most frequent half of the budget is kept with its counts; the rest is a uniform sample of
    the remaining patches, each weighted by its count over the sampling rate (an unbiased estimate).
    Frames carry noise (Crafter's night tint), so most unique patches occur once: dropping the counts
    would let that tail take over the codebook."""
    if len(uniq) <= limit:
        return uniq, counts.astype(np.float32)
    order = np.argsort(-counts, kind="stable")
    head, rest = order[: limit // 2], order[limit // 2 :]
    picked = rng.choice(rest, limit - len(head), replace=False)
    rate = len(picked) / len(rest)
    keep = np.concatenate([head, picked])
    weights = np.concatenate([counts[head], counts[picked] / rate]).astype(np.float32)
    return uniq[keep], weights


def _nearest(x: torch.Tensor, c: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    c_sq = (c**2).sum(1)
    out = torch.empty(len(x), dtype=torch.int64)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = (c_sq[None] - 2.0 * x[i : i + chunk] @ c.T).argmin(1)
    return out


def _kmeans_pp(x: torch.Tensor, w: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding, weighted by patch counts."""
    first = int(rng.choice(len(x), p=(w / w.sum()).numpy()))
    centroids = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        p = (d2 * w).numpy().astype(np.float64)
        if p.sum() <= 0:
            break
        idx = int(rng.choice(len(x), p=p / p.sum()))
        centroids.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = torch.stack(centroids)
    if len(c) < k:  # fewer distinct patches than codes: pad with copies (never used twice)
        c = torch.cat([c, c[: k - len(c)]])
    return c
