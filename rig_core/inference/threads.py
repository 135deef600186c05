"""Torch's CPU thread count for decoding."""

from __future__ import annotations

import torch

SMALL_MODEL = 5_000_000  # parameters: below this, one CPU thread decodes faster than several


def set_cpu_threads(model, threads: int | str = "auto") -> int:
    """Torch's CPU threads for decoding. Token-by-token decoding of a small model is dominated by thread
    synchronisation: one thread is several times faster than two on a busy 2-core machine."""
    if threads == "auto":
        n = sum(p.numel() for p in model.parameters())
        if n >= SMALL_MODEL:
            return torch.get_num_threads()
        threads = 1
    torch.set_num_threads(int(threads))
    return int(threads)
