"""Data-parallel training across processes (Accelerate: gloo on CPUs, NCCL on GPUs): sums across
processes, and what each process must see so that N processes train exactly like one with the same
global batch."""

from __future__ import annotations

import atexit
from typing import Any

import torch


class Sync:
    """The few collective operations the loop needs; free when there is one process."""

    def __init__(self, accelerator):
        self.acc = accelerator
        self.world = accelerator.num_processes
        self.rank = accelerator.process_index
        if self.world > 1:  # however the process ends, an error included
            atexit.register(leave_group)

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    def barrier(self) -> None:
        if self.world > 1:
            self.acc.wait_for_everyone()

    def close(self) -> None:
        """The end of a run: every process waits for the others (the first may still be writing its last
        checkpoint), then leaves the process group."""
        if self.world > 1:
            self.acc.wait_for_everyone()
            leave_group()

    def sum(self, *values: float) -> list[float]:
        """Each value summed over all processes (float64 on the device)."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.acc.device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def sum_with_parts(self, values: list[float], parts: dict[str, list[float]], names: list[str]
                       ) -> tuple[list[float], dict[str, list[float]]]:
        """``values`` and the per-span (loss sum, token count) pairs summed over processes in one reduction;
        spans no process saw are left out."""
        if self.world == 1:
            return [float(v) for v in values], parts
        flat = self.sum(*values, *[x for n in names for x in parts.get(n, [0.0, 0])])
        k = len(values)
        summed = {n: [flat[k + 2 * i], int(flat[k + 2 * i + 1])] for i, n in enumerate(names)}
        return flat[:k], {n: v for n, v in summed.items() if v[1]}

    def loss_scale(self, local_tokens: int) -> float:
        """The factor that turns this process's mean token loss into its share of the global mean: DDP
        averages gradients over processes, so scaling by n_local * world / n_global gives the gradient
        of the mean over every trained token of the global batch, as one process would compute it."""
        if self.world == 1:
            return 1.0
        (total,) = self.sum(local_tokens)
        return local_tokens * self.world / max(total, 1.0)


def leave_group() -> None:
    """Destroy the process group while the interpreter is still whole: a process that exits with it open can
    abort (SIGABRT, "terminate called without an active exception") when gloo's worker threads are torn down
    during interpreter shutdown."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def share(items: list[Any], sync: Sync) -> list[Any]:
    """This process's part of a list (every world-th item from its rank on)."""
    return items[sync.rank::sync.world]
