"""One episode into the site, chunk by chunk, whatever it was read from: the shared step fields and helpers.

A source gives ``length`` and ``chunk(start, stop, sprite)``: the steps ``start..stop-1`` as plain data whose
frames are cells of ``sprite``. Every step holds ``t``, ``f`` (the real frame before the step), ``action`` and
``reward``, and where the data has them ``thought``, ``unlocked``, ``inventory``, ``expert``, ``imagined``
(frames with their PSNR against what really came), ``proposal`` (a proposal, its imagined chain, the review
and the correction) and ``candidates`` (actions with their scores). The last chunk holds ``final``, the frame
after the last step.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

import numpy as np

from rig_core.tokenize.image import psnr
from rig_core.view.site import Site, Sprite

VITALS = ("health", "food", "drink", "energy")


class EpisodeSource(Protocol):
    length: int

    def chunk(self, start: int, stop: int, sprite: Sprite) -> dict[str, Any]: ...


def write_episode(site: Site, number: int, source: EpisodeSource) -> int:
    """Every chunk of one episode; returns the number of chunks."""
    length = int(source.length)
    starts = list(range(0, length, site.chunk)) or [0]
    for c, start in enumerate(starts):
        sprite = Sprite()
        stop = min(length, start + site.chunk)
        data = source.chunk(start, stop, sprite)
        site.write_chunk(number, c, {"start": start, **data}, sprite, stop - start)
    return len(starts)


def unlocked_at(masks: np.ndarray, names: list[str]) -> list[list[str]]:
    """Per step, the achievements first unlocked there (bit i of the mask: achievement i)."""
    return [[n for i, n in enumerate(names) if int(m) >> i & 1] for m in np.asarray(masks).tolist()]


def inventory(row: Iterable[int], names: list[str]) -> dict[str, int]:
    """Vitals always, items only when held."""
    return {n: int(v) for n, v in zip(names, row) if n in VITALS or int(v) > 0}


def frame_psnr(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return min(99.0, psnr(a, b))  # identical frames: 99 dB, not infinity


def outcome(success: bool, died: bool) -> str:
    """How the episode ended: ``success``, ``died`` or ``timeout`` (the step budget ran out)."""
    return "success" if success else "died" if died else "timeout"
