import math

import numpy as np
import pytest

from rig_core.stats.metrics import (achievement_success_rates, crafter_score, crafter_score_interval,
                                      wilson_interval)


def test_crafter_score_by_hand():
    assert crafter_score([0.0] * 22) == pytest.approx(0.0)
    assert crafter_score([100.0] * 22) == pytest.approx(100.0)
    # two achievements at 3% and 15%: exp((ln 4 + ln 16) / 2) - 1 = 8 - 1 = 7
    assert crafter_score([3.0, 15.0]) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        crafter_score([120.0])


def test_success_rates():
    rates = achievement_success_rates([{"a"}, {"a", "b"}, set(), {"a"}], ["a", "b", "c"])
    assert rates == {"a": 75.0, "b": 25.0, "c": 0.0}


def test_episodes_to_separate_two_success_rates():
    from rig_core.stats.metrics import episodes_to_separate

    n = episodes_to_separate(0.36, 0.48)
    assert n == 260  # RIG-basic against the best lookahead model (36 against 48 %)
    assert wilson_interval(0.36 * n, n)[1] < wilson_interval(0.48 * n, n)[0]
    assert not wilson_interval(0.36 * (n - 1), n - 1)[1] < wilson_interval(0.48 * (n - 1), n - 1)[0]
    assert episodes_to_separate(0.36, 0.44) > n > episodes_to_separate(0.2, 0.6)  # a smaller gap needs more
    assert episodes_to_separate(0.5, 0.5) is None and episodes_to_separate(0.5, 0.4) is None
    assert episodes_to_separate(0.5, 0.5001, most=1000) is None


def test_wilson_by_hand():
    lo, hi = wilson_interval(5, 10)
    z = 1.959963984540054
    centre = (0.5 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.25 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_crafter_score_interval_brackets_the_score_and_narrows_with_more_episodes():
    names = ["a", "b", "c"]
    few = [{"a"}, {"a", "b"}, set(), {"a", "c"}] * 3
    lo, hi = crafter_score_interval(few, names)
    point = crafter_score(list(achievement_success_rates(few, names).values()))
    assert lo < point < hi
    lo_many, hi_many = crafter_score_interval(few * 10, names)
    assert hi_many - lo_many < hi - lo
    assert crafter_score_interval(few, names) == (lo, hi)  # fixed seed: reproducible
    assert crafter_score_interval([set()] * 5, names) == (0.0, 0.0)


def test_wilson_interval_holds_the_rate_at_the_edges_and_plots_draw():
    from rig_core.evaluate.report import _bars

    for n in range(1, 60):
        for k in (0, n):
            lo, hi = wilson_interval(k, n)
            assert lo <= k / n <= hi, (k, n)
    assert wilson_interval(10, 10)[1] == 1.0  # was 0.9999999999999999: a negative error bar
    assert _bars([100.0, 0.0], [[72.2, 99.99999999999999], [1e-14, 27.7]]) == [[27.799999999999997, 0.0],
                                                                            [0.0, 27.7]]


def test_mean_interval_brackets_the_mean_and_narrows_with_more_values():
    from rig_core.stats.metrics import mean_interval

    rng = np.random.default_rng(1)
    few, many = rng.normal(3.0, 2.0, 20), rng.normal(3.0, 2.0, 2000)
    lo, hi = mean_interval(few)
    assert lo <= few.mean() <= hi
    lo2, hi2 = mean_interval(many)
    assert lo2 < 3.0 < hi2 and hi2 - lo2 < (hi - lo) / 4
    assert mean_interval([5.0, 5.0]) == (5.0, 5.0)
    with pytest.raises(ValueError):
        mean_interval([])


def test_roc_auc_ranks_positives_over_negatives():
    from rig_core.stats.metrics import roc_auc, roc_auc_interval

    assert roc_auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5], [True, False, False]) == 0.5  # ties count half
    assert roc_auc([0.9, 0.3, 0.5, 0.1], [True, True, False, False]) == 0.75
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.4
    x = y + rng.normal(0, 1.0, 400)  # separable in part: AUC about 0.76
    lo, hi = roc_auc_interval(x, y)
    assert lo < roc_auc(x, y) < hi and 0.6 < lo and hi < 0.9
    assert roc_auc_interval(x, y, groups=range(400)) == (lo, hi)  # one sample per group: the same draws
    # 20 episodes of 20 near-copies of one state: 20 draws' worth of evidence, not 400
    ep_y, ep_x = rng.random(20) < 0.4, rng.normal(0, 1.0, 20)
    xs, ys = np.repeat(ep_y + ep_x, 20) + rng.normal(0, 0.01, 400), np.repeat(ep_y, 20)
    narrow, wide = roc_auc_interval(xs, ys), roc_auc_interval(xs, ys, groups=np.repeat(np.arange(20), 20))
    assert wide[1] - wide[0] > 2 * (narrow[1] - narrow[0])
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [True, True])


def test_clustered_share_interval_resamples_whole_clusters():
    from rig_core.stats.metrics import clustered_share_interval

    # 40 clusters of 10 units, each all hits or all misses: the units are not independent, so the interval is
    # as wide as for 40 units, much wider than Wilson's for 400
    hits, counts = [10] * 20 + [0] * 20, [10] * 40
    lo, hi = clustered_share_interval(hits, counts)
    assert lo < 0.5 < hi and hi - lo > 0.2
    w_lo, w_hi = wilson_interval(200, 400)
    assert hi - lo > 2 * (w_hi - w_lo)
    mixed = clustered_share_interval([5] * 40, counts)  # every cluster at the share: no spread at all
    assert mixed == (0.5, 0.5)
    with pytest.raises(ValueError):
        clustered_share_interval([1], [0])
