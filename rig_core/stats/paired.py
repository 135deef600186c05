"""Comparing two players: paired statistics when they played the same seeds, unpaired ones otherwise.

Success of player A against player B on the same n episodes is a 2×2 table: ``both`` succeeded, only A
(``a_only``), only B (``b_only``), neither. Only the discordant episodes carry information about the
difference, which is why pairing needs far fewer episodes than two independent intervals.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from rig_core.stats.metrics import Z95, wilson_interval


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(a_only + b_only, 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_difference_interval(both: float, a_only: float, b_only: float, neither: float,
                               z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of success rate B minus A on paired episodes: Newcombe's (1998) method 10,
    the Wilson score intervals of both rates combined with the correlation of the pairs. Counts may be
    expected (fractional) counts, for planning."""
    n = both + a_only + b_only + neither
    if n <= 0:
        raise ValueError("no episodes")
    pa, pb = (both + a_only) / n, (both + b_only) / n
    la, ua = wilson_interval(both + a_only, n, z)
    lb, ub = wilson_interval(both + b_only, n, z)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins > 0 else 0.0
    diff = pb - pa
    below = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    above = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return diff, max(-1.0, diff - below), min(1.0, diff + above)


def unpaired_difference_interval(successes_a: float, n_a: int, successes_b: float, n_b: int,
                                 z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of success rate B minus A on independent episodes (Newcombe's method 10 for
    two independent proportions, from their Wilson intervals)."""
    pa, pb = successes_a / n_a, successes_b / n_b
    la, ua = wilson_interval(successes_a, n_a, z)
    lb, ub = wilson_interval(successes_b, n_b, z)
    diff = pb - pa
    return diff, diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)


def paired_mean_difference(a: Sequence[float], b: Sequence[float], resamples: int = 2000,
                           seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, 95 % bootstrap interval) over paired episodes, resampling episodes (fixed seed)."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    if d.size == 0:
        raise ValueError("no episodes")
    idx = np.random.default_rng(seed).integers(0, d.size, size=(resamples, d.size))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def unpaired_mean_difference(a: Sequence[float], b: Sequence[float], resamples: int = 2000,
                             seed: int = 0) -> tuple[float, float, float]:
    """(mean of b minus mean of a, 95 % bootstrap interval), each sample resampled on its own (fixed seed)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("no episodes")
    rng = np.random.default_rng(seed)
    diffs = (y[rng.integers(0, y.size, size=(resamples, y.size))].mean(axis=1)
             - x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(y.mean() - x.mean()), float(lo), float(hi)


def paired_episodes_to_separate(both: float, a_only: float, b_only: float, most: int = 1_000_000) -> int | None:
    """The fewest paired episodes at which the paired 95 % interval of B minus A excludes 0, at the rates a
    pilot measured (shares of episodes: both succeeded, only A, only B). None when the rates are equal, or
    when it takes more than ``most``."""
    if a_only == b_only:
        return None
    neither = 1.0 - both - a_only - b_only
    if min(both, a_only, b_only, neither) < 0:
        raise ValueError("rates must be shares of episodes that sum to at most 1")

    def apart(n: int) -> bool:
        _, lo, hi = paired_difference_interval(both * n, a_only * n, b_only * n, neither * n)
        return lo > 0 or hi < 0

    hi = 1
    while not apart(hi):
        hi *= 2
        if hi > most:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if apart(mid) else (mid, hi)
    return hi


def paired_score_difference(unlocked_a: Sequence[Iterable[str]], unlocked_b: Sequence[Iterable[str]],
                            achievements: Sequence[str], resamples: int = 2000,
                            seed: int = 0) -> tuple[float, float, float]:
    """Crafter score of b minus a on the same world seeds (episode i of each), with a 95 % percentile-bootstrap
    interval that resamples the shared seeds (both players' episode i together, fixed seed)."""
    if len(unlocked_a) != len(unlocked_b) or not unlocked_a:
        raise ValueError("paired score differences need the same, non-empty list of seeds for both")
    hits = [np.array([[x in set(u) for x in achievements] for u in us], dtype=np.float64)
            for us in (unlocked_a, unlocked_b)]
    score = lambda h: np.exp(np.log1p(100.0 * h.mean(axis=-2)).mean(axis=-1)) - 1.0  # noqa: E731
    idx = np.random.default_rng(seed).integers(0, len(unlocked_a), size=(resamples, len(unlocked_a)))
    boot = score(hits[1][idx]) - score(hits[0][idx])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(score(hits[1]) - score(hits[0])), float(lo), float(hi)


def achievement_mcnemar(unlocked_a: Sequence[Iterable[str]], unlocked_b: Sequence[Iterable[str]],
                        achievements: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per achievement on the same seeds: each player's success rate, the seeds only a or only b unlocked it on,
    and the exact McNemar p-value of the difference."""
    out = {}
    for x in achievements:
        a = [x in set(u) for u in unlocked_a]
        b = [x in set(u) for u in unlocked_b]
        a_only = sum(p and not q for p, q in zip(a, b))
        b_only = sum(q and not p for p, q in zip(a, b))
        out[x] = {"a": sum(a) / len(a), "b": sum(b) / len(b), "discordant": [a_only, b_only],
                  "mcnemar_p": mcnemar_exact(a_only, b_only)}
    return out
