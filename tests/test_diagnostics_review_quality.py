"""Review-quality diagnostics on a tiny lookahead run: offline reviews follow the threshold as play does,
the review benchmark's figures, discrimination by reason, the imagined moves."""

import json

import numpy as np


def test_offline_reviews_follow_the_threshold_as_play_does(lookahead_run):
    from rig_core.diagnostics.review_quality import (review_discrimination, review_outcomes, review_samples,
                                                  review_text_start)
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run, max_think=6)
    samples = review_samples(policy, limit=10)
    rows = [s.arrays["input_ids"][: review_text_start(policy, s.arrays)].tolist() for s in samples]
    free = policy.review_from(rows, [s.proposed for s in samples])
    assert len(free) == len(samples) and all(0 <= p <= 1 and 0 <= a < 17 for p, _, a in free)
    scored = review_discrimination(policy, samples)  # the same P(worse) from a plain forward pass
    assert scored["samples"] == len(samples)
    worse = policy.meta["review_openings"]["correct"]
    for tau in (0.0, 1.0):
        policy.review_threshold = tau
        out = policy.review_from(rows, [s.proposed for s in samples])
        assert np.allclose([p for p, _, _ in out], [p for p, _, _ in free], atol=1e-5)
        if tau == 0.0:  # every review corrects
            assert all(any(t.startswith(policy.tok.decode_text([w])) for w in worse) for _, t, _ in out)
        else:  # every proposal confirmed and kept
            assert [a for _, _, a in out] == [s.proposed for s in samples]
            o = review_outcomes(policy, samples, batch=4)
            assert o["fine"]["kept"] in (None, 1.0) and o["worse"]["kept"] in (None, 1.0)


def test_review_quality_benchmark_scores_held_out_reviews(lookahead_run, tmp_path):
    import subprocess
    import sys

    from rig_core.diagnostics.review_quality import review_samples
    from rig_core.review.texts import opening_tokens
    from rig_core.inference.policy import RigPolicy

    samples = review_samples(RigPolicy.from_checkpoint(lookahead_run), limit=50)
    assert samples and all(isinstance(s.worse, bool) for s in samples)
    assert all(s.target != s.proposed for s in samples if s.worse)  # a correction names another action
    assert all(s.target == s.proposed for s in samples if not s.worse)
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "review.py"), "--run", str(lookahead_run),
                        "--samples", "50", "--out", str(tmp_path)], capture_output=True, text=True, cwd=root, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "AUC" in r.stdout
    row = json.loads((tmp_path / "review.json").read_text())["sections"]["main"]["rows"][0]
    assert row["samples"] == len(samples)
    for key in ("worse_share", "says_worse_share", "agreement", "p_worse_when_worse"):
        assert row[key] is None or 0 <= row[key] <= 1
    if row["auc"] is not None:
        assert 0 <= row["auc_ci95"][0] <= row["auc"] <= row["auc_ci95"][1] <= 1
    outcomes = row["outcomes"]
    assert outcomes["worse"]["samples"] + outcomes["fine"]["samples"] == len(samples)
    if outcomes["worse"]["samples"]:
        assert abs(sum(outcomes["worse"][k] for k in ("fixed", "kept", "other")) - 1) < 1e-9
    if outcomes["fine"]["samples"]:
        assert abs(outcomes["fine"]["kept"] + outcomes["fine"]["changed"] - 1) < 1e-9
    assert "fixed" in r.stdout
    assert set(outcomes["landed"]) == set(outcomes["worse_by_reason"]) and "2nd choice" in r.stdout
    for reason, d in outcomes["landed"].items():  # each worse sample counts once among the expert's actions,
        # and once among the review's when the review changed it
        o = outcomes["worse_by_reason"][reason]
        assert sum(d["expert"].values()) == o["samples"]
        assert d["corrected"] == sum(d["review"].values()) == round(o["samples"] * (1 - o["kept"]))
    assert row["second_choice"]["worse"] == outcomes["worse"]["samples"]
    reasons = {"damage", "progress", "wasted", "farther"}
    assert {s.reason for s in samples if s.worse} <= reasons and not any(s.reason for s in samples if not s.worse)
    by = row["by_reason"]  # each reason's samples add up to the worse ones, and its outcomes to its samples
    assert set(by) == set(row["outcomes"]["worse_by_reason"]) == {s.reason for s in samples if s.worse}
    assert sum(d["samples"] for d in by.values()) == outcomes["worse"]["samples"]
    for reason, d in by.items():
        o = row["outcomes"]["worse_by_reason"][reason]
        assert o["samples"] == d["samples"] and abs(sum(o[k] for k in ("fixed", "kept", "other")) - 1) < 1e-9
        assert d["auc"] is None or 0 <= d["auc_ci95"][0] <= d["auc"] <= d["auc_ci95"][1] <= 1
        assert reason in r.stdout
    with_real = [s for s in samples if s.real_next is not None]  # binned by their first imagined frame's PSNR
    bins = row["by_imagination"]
    assert len(bins) == len(row["outcomes"]["by_imagination"]) == 3 and "spoiled fine" in r.stdout
    assert sum(b["samples"] for b in bins) == len(with_real)
    assert all(a["psnr_db"][1] <= b["psnr_db"][0] for a, b in zip(bins, bins[1:]))  # lowest first, not overlapping
    for b, o in zip(bins, row["outcomes"]["by_imagination"]):
        assert o["worse"]["samples"] + o["fine"]["samples"] == b["samples"] and 0 <= b["cell_match"] <= 1
    assert all(0 <= s.imagined_cells <= 1 and s.imagined_psnr > 0 for s in with_real)
    shares = [v["says_worse"] for v in row["thresholds"].values()]
    assert shares == sorted(shares, reverse=True) and "tau 0.9" in r.stdout  # a higher threshold corrects less
    worse, fine = opening_tokens(RigPolicy.from_checkpoint(lookahead_run).tok)
    assert worse and fine and not set(worse) & set(fine)


def test_review_discrimination_by_reason_scores_each_mistake_against_the_fine_proposals():
    from rig_core.diagnostics.review_quality import _by_reason

    x = np.asarray([0.9, 0.8, 0.1, 0.2, 0.15, 0.3])
    y = np.asarray([True, True, False, False, True, False])
    by = _by_reason(x, y, ["wasted", "wasted", "", "", "farther", ""])
    assert set(by) == {"wasted", "farther"}
    assert by["wasted"]["samples"] == 2 and by["wasted"]["auc"] == 1.0  # above every fine proposal
    assert by["farther"]["samples"] == 1 and abs(by["farther"]["auc"] - 1 / 3) < 1e-9  # above one of three
    assert abs(by["wasted"]["p_worse"] - 0.85) < 1e-9


def test_imagined_moves_read_the_checkpoints_own_imagination(lookahead_run):
    from rig_core.review.moves import imagined_moves
    from rig_core.diagnostics.review_quality import review_samples
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run)
    samples = review_samples(policy, limit=50)
    assert all(s.observed.shape == (64, 64, 3) for s in samples)
    assert imagined_moves(policy, samples)["moves"] == sum(s.proposed in (1, 2, 3, 4) for s in samples) == 0
    for s in samples:  # the tiny policy proposes no moves: read its imagination as if each were move_left
        s.proposed = 1
    m = imagined_moves(policy, samples, batch=4)  # one per state (a state's samples j = 1, 2 share it)
    assert 0 < m["moves"] < sum(s.real_next is not None for s in samples)
    assert m["blocked"] + m["through"] + m["unclear"] == m["moves"]
    s = policy.tok.special
    ids = samples[0].arrays["input_ids"].tolist()
    codes = policy.imagine_from([ids[: ids.index(s["<imagine>"]) + 1]])
    assert codes.shape == (1, policy.image_tok.tokens_per_frame) and codes.min() >= 0


def test_imagination_quality_counts_view_cells_that_look_like_the_real_ones():
    from rig_core.diagnostics.review_quality import ReviewSample, imagination_bins, imagination_quality

    real = np.zeros((64, 64, 3), np.uint8)
    wrong = real.copy()
    wrong[:7, :7] = 200  # one view cell of 63 drawn wrong; the inventory rows do not count
    wrong[60:, :] = 200
    assert imagination_quality(real, real) == 1.0 and abs(imagination_quality(wrong, real) - 62 / 63) < 1e-9
    samples = [ReviewSample({}, False, 0, 0, imagined_psnr=db, imagined_cells=0.5) for db in (30, 10, None, 20, 40, 25)]
    bins = imagination_bins(samples, bins=2)
    assert [list(m) for _, m in bins] == [[1, 3, 5], [0, 4]]  # by PSNR 10, 20, 25 | 30, 40; no real frame: left out
    assert bins[0][0]["psnr_db"] == [10.0, 25.0] and bins[1][0]["samples"] == 2


def test_second_choice_is_one_action_besides_the_proposal_and_landed_counts_names(lookahead_run):
    import copy

    from rig_core.diagnostics.review_quality import landed, review_samples, second_choices
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run)
    sample = review_samples(policy, limit=1)[0]
    copies = []
    for a in range(len(policy.tok.action_names)):  # the expert's action set to each other action in turn
        if a != sample.proposed:
            c = copy.copy(sample)
            c.worse, c.reason, c.target = True, "wasted", a
            copies.append(c)
    out = second_choices(policy, copies)
    assert out["worse"] == len(copies) == 16 and abs(out["expert"] - 1 / 16) < 1e-9  # exactly one is the second
    assert out["by_reason"]["wasted"]["samples"] == 16
    names = policy.tok.action_names
    pairs = [(copies[0], copies[0].proposed), (copies[1], 3), (copies[2], 3)]  # kept, then twice to action 3
    d = landed(pairs, names)
    assert d["corrected"] == 2 and d["review"] == {names[3]: 2} and sum(d["expert"].values()) == 3
