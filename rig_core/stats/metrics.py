"""Metric maths: Crafter score (with a bootstrap interval), success rates, Wilson intervals, ROC AUC, shares over
clustered units."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def crafter_score(success_rates_percent: Sequence[float]) -> float:
    """Crafter score (Hafner 2021): exp(mean(ln(1 + s_i))) - 1, s_i in percent, 0..100."""
    s = np.asarray(list(success_rates_percent), dtype=np.float64)
    if s.size == 0:
        raise ValueError("crafter_score needs at least one success rate")
    if (s < 0).any() or (s > 100).any():
        raise ValueError("success rates must be percentages in [0, 100]")
    return float(np.exp(np.mean(np.log(1.0 + s))) - 1.0)


def achievement_success_rates(
    unlocked_per_episode: Iterable[Iterable[str]], achievements: Sequence[str]
) -> dict[str, float]:
    """Per-achievement success rate in percent: the share of episodes that unlocked it at least once."""
    episodes = [set(u) for u in unlocked_per_episode]
    if not episodes:
        raise ValueError("no episodes")
    return {a: 100.0 * sum(a in u for u in episodes) / len(episodes) for a in achievements}


Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile: two-sided 95 % intervals


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion, as fractions in [0, 1]."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always holds the observed rate (at 0 or n successes a rounding error could leave it out)
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def episodes_to_separate(low: float, high: float, most: int = 1_000_000) -> int | None:
    """The fewest episodes per player at which success rates ``low`` < ``high``, measured on that many
    episodes each, have 95 % Wilson intervals that no longer overlap (None: ``high`` is not above ``low``,
    or it takes more than ``most``). For planning an evaluation: how large a measured gap needs to be."""
    if not high > low:
        return None

    def apart(n: int) -> bool:
        return wilson_interval(low * n, n)[1] < wilson_interval(high * n, n)[0]

    hi = 1
    while not apart(hi):
        hi *= 2
        if hi > most:
            return None
    lo = hi // 2  # not apart at lo (or lo = 0); apart at hi; the gap only widens with n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if apart(mid) else (mid, hi)
    return hi


def mean_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a mean (e.g. per-window PSNR gains; fixed seed)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values")
    means = v[np.random.default_rng(seed).integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(min(lo, v.mean())), float(max(hi, v.mean())))


def clustered_share_interval(hits: Sequence[float], counts: Sequence[float], resamples: int = 2000,
                             seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a share sum(hits) / sum(counts) whose units come in clusters (e.g.
    the states of one episode, which are not independent): whole clusters are resampled (fixed seed)."""
    h, c = np.asarray(list(hits), np.float64), np.asarray(list(counts), np.float64)
    if h.shape != c.shape or c.size == 0 or c.sum() <= 0:
        raise ValueError("need as many hit counts as cluster sizes, and at least one unit")
    pick = np.random.default_rng(seed).integers(0, c.size, size=(resamples, c.size))
    n = c[pick].sum(axis=1)
    shares = h[pick].sum(axis=1)[n > 0] / n[n > 0]
    share = h.sum() / c.sum()
    lo, hi = np.percentile(shares, [2.5, 97.5])
    return (float(min(lo, share)), float(max(hi, share)))


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half); 0.5 is no discrimination."""
    x = np.asarray(list(scores), dtype=np.float64)
    y = np.asarray(list(positive), dtype=bool)
    if y.all() or not y.any():
        raise ValueError("roc_auc needs positives and negatives")
    pos, neg = x[y], x[~y]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def roc_auc_interval(scores: Sequence[float], positive: Sequence[bool], resamples: int = 1000,
                     seed: int = 0, groups: Sequence | None = None) -> tuple[float, float]:
    """95% percentile-bootstrap interval of ``roc_auc`` (fixed seed). Samples are resampled, or with ``groups``
    (e.g. the episode of each sample) whole groups: samples of one episode are not independent draws."""
    x = np.asarray(list(scores), dtype=np.float64)
    y = np.asarray(list(positive), dtype=bool)
    rng = np.random.default_rng(seed)
    members = None
    if groups is not None:
        index: dict = {}
        for i, g in enumerate(groups):
            index.setdefault(g, []).append(i)
        members = [np.asarray(v) for v in index.values()]
    values = []
    for _ in range(resamples):
        if members is None:
            i = rng.integers(0, x.size, x.size)
        else:
            i = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        if y[i].any() and not y[i].all():
            values.append(roc_auc(x[i], y[i]))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def crafter_score_interval(unlocked_per_episode: Sequence[Iterable[str]], achievements: Sequence[str],
                           resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the Crafter score, resampling whole episodes (fixed seed)."""
    episodes = [set(u) for u in unlocked_per_episode]
    if not episodes:
        raise ValueError("no episodes")
    hits = np.array([[a in u for a in achievements] for u in episodes], dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(episodes), size=(resamples, len(episodes)))
    rates = 100.0 * hits[idx].mean(axis=1)  # [resamples, achievements]
    scores = np.exp(np.log1p(rates).mean(axis=1)) - 1.0
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return (float(lo), float(hi))
