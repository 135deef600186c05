"""Paired comparisons of players on shared seeds, against hand-computed cases and simulation."""

from __future__ import annotations

import numpy as np
import pytest

from rig_core.stats.paired import (mcnemar_exact, paired_difference_interval, paired_episodes_to_separate,
                                   paired_mean_difference, unpaired_difference_interval, unpaired_mean_difference)


def test_mcnemar_exact_on_small_tables():
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 2 ** 7)  # 0.125
    assert mcnemar_exact(6, 1) == mcnemar_exact(1, 6)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 10) < 0.01 < mcnemar_exact(2, 8)


def test_paired_interval_holds_the_estimate_and_turns_with_the_players():
    d, lo, hi = paired_difference_interval(both=30, a_only=4, b_only=12, neither=54)
    assert d == pytest.approx(0.08) and lo < d < hi and -1 <= lo and hi <= 1
    d2, lo2, hi2 = paired_difference_interval(both=30, a_only=12, b_only=4, neither=54)
    assert (d2, lo2, hi2) == pytest.approx((-d, -hi, -lo))
    assert paired_difference_interval(10, 0, 0, 10)[1:] == pytest.approx((-0.0, 0.0), abs=0.2)  # identical players
    # pairing narrows the interval against treating the same episodes as independent
    _, ulo, uhi = unpaired_difference_interval(34, 100, 42, 100)
    assert hi - lo < uhi - ulo


def test_paired_interval_covers_a_known_difference():
    """Simulated players with correlated successes (B succeeds 8 points more often): the 95 % interval holds
    the true difference in about 95 % of 2,000 evaluations of 100 paired episodes."""
    rng = np.random.default_rng(0)
    probs = np.array([0.30, 0.04, 0.12, 0.54])  # both, A only, B only, neither: B - A = 0.08
    held = 0
    for _ in range(2000):
        counts = rng.multinomial(100, probs)
        _, lo, hi = paired_difference_interval(*counts)
        held += lo <= 0.08 <= hi
    assert 0.93 <= held / 2000 <= 0.98


def test_mean_differences():
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 3.0, 4.0, 5.0]  # exactly one more per episode
    assert paired_mean_difference(a, b) == pytest.approx((1.0, 1.0, 1.0))
    d, lo, hi = unpaired_mean_difference(a, b)
    assert d == pytest.approx(1.0) and lo < 1.0 < hi  # the same data unpaired cannot tell


def test_paired_planner_agrees_with_the_interval():
    both, a_only, b_only = 0.30, 0.06, 0.18  # a pilot's shares: 36 % against 48 %
    n = paired_episodes_to_separate(both, a_only, b_only)
    assert n is not None and n < 260  # fewer than the unpaired plan at these rates
    neither = 1 - both - a_only - b_only
    assert paired_difference_interval(both * n, a_only * n, b_only * n, neither * n)[1] > 0
    m = n - 1
    assert paired_difference_interval(both * m, a_only * m, b_only * m, neither * m)[1] <= 0
    assert paired_episodes_to_separate(0.3, 0.1, 0.1) is None
    more_discord = paired_episodes_to_separate(0.18, 0.18, 0.30)  # same 12-point gap, more discordant pairs
    assert more_discord > n


def test_paired_crafter_score_difference_and_achievements_on_the_same_seeds():
    from rig_core.stats.metrics import crafter_score
    from rig_core.stats.paired import achievement_mcnemar, paired_score_difference

    names = ["collect_wood", "place_table", "eat_cow"]
    a = [["collect_wood"], ["collect_wood", "place_table"], [], ["collect_wood"]] * 5
    b = [["collect_wood", "eat_cow"], ["collect_wood", "place_table", "eat_cow"], ["eat_cow"], []] * 5
    d, lo, hi = paired_score_difference(a, b, names)
    rate = lambda us, x: 100 * sum(x in u for u in us) / len(us)  # noqa: E731
    expected = crafter_score([rate(b, x) for x in names]) - crafter_score([rate(a, x) for x in names])
    assert abs(d - expected) < 1e-9 and lo <= d <= hi and lo > 0  # b always eats the cow a never eats
    assert paired_score_difference(a, a, names) == (0.0, 0.0, 0.0)
    pairs = achievement_mcnemar(a, b, names)
    assert pairs["eat_cow"]["discordant"] == [0, 15] and pairs["eat_cow"]["mcnemar_p"] < 1e-3
    assert pairs["collect_wood"]["discordant"] == [5, 0] and pairs["place_table"]["mcnemar_p"] == 1.0
