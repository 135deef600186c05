"""How well a lookahead model's review tells a worse proposal from a good one, on held-out review samples.

Each sample of a lookahead run's validation split (review episodes it never trained on) is given as
at test time up to the review's first text token: earlier real steps, the proposal with its j
imagined steps, ``<review>`` (and the proposal, with the review cue). The review's first token
decides its verdict: every correction phrasing of ``resources/review.yaml`` opens differently from
every confirmation. P(worse) is the probability mass on the corrections' first tokens against the
confirmations'; its ROC AUC against the expert's verdict says whether the review knows (0.5: no
better than chance, whatever the share of "Wait" it writes).
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.stats.metrics import roc_auc, roc_auc_interval
from rig_core.evaluate.imagination import CAP_DB
from rig_core.evaluate.runner import THRESHOLDS
from rig_core.review.judge import WORSE
from rig_core.review.moves import SAME_CELL, reviewed_token, view_cells


@dataclass
class ReviewSample:
    arrays: dict  # the training sample (input_ids, position_ids, ...)
    worse: bool  # the expert judged the proposal worse
    proposed: int  # the proposed action
    target: int  # the action the review should end with: the expert's when worse, else the proposal
    reason: str = ""  # why the expert called it worse (damage / progress / wasted / farther); "" when fine
    observed: np.ndarray | None = None  # the frame of the reviewed state
    real_next: np.ndarray | None = None  # the real frame after the proposed action (None past an episode's end)
    episode: tuple[int, int] = (0, 0)  # (review dataset, episode): intervals resample episodes
    imagined_psnr: float | None = None  # the proposal's first imagined frame against the real one (dB); None: no real frame
    imagined_cells: float | None = None  # share of view cells of that frame that look like the real one's


def imagination_quality(imagined: np.ndarray, real: np.ndarray) -> float:
    """Share of view cells (``review.moves.view_cells``) of an imagined frame that look like the real frame's."""
    a, b = view_cells(imagined), view_cells(real)
    return float((np.abs(a - b).mean(-1) < SAME_CELL).mean())


def review_samples(policy, limit: int = 300, seed: int = 0, frames: str = "imagined") -> list[ReviewSample]:
    """Up to ``limit`` held-out review samples of the lookahead run ``policy`` was loaded from
    (``RigPolicy.from_checkpoint``), the proposal showing its stored imagined frames (``frames="imagined"``,
    what the review reads at test time) or the fork's real ones (``"real"``: samples whose fork ended
    early are left out), whichever frames the run trained its reviews on."""
    from rig_core.model.checkpoint import run_of_checkpoint
    from rig_core.model.run_config import load_run_config
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import REVIEW, REVIEW_REAL, REVIEWS, has_real_frames

    if frames not in ("imagined", "real"):
        raise RigError(f"unknown review frames '{frames}'", "use imagined or real")
    run = run_of_checkpoint(policy.checkpoint)
    cfg = load_run_config(run)
    if cfg.stage != "lookahead":
        raise RigError(f"{run} is a {cfg.stage} run", "pass a lookahead run (rig train --stage lookahead)")
    val = prepare_lookahead(cfg, run, policy.tok, policy.image_tok, policy.meta).val_set
    kind = REVIEW if frames == "imagined" else REVIEW_REAL
    keys = list(dict.fromkeys(it[1:] for it in val.items if it[0] in REVIEWS))  # each held-out sample once
    if frames == "real":
        keys = [key for key in keys if has_real_frames(val.reached(*key[:3]), key[3])]
    if not keys:
        raise RigError(f"run {run} has no held-out review samples", "train with --val-fraction above 0")
    picked = sorted(np.random.default_rng(seed).permutation(len(keys))[:limit].tolist())
    out = []
    review: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    with ExitStack() as stack:
        datasets = [stack.enter_context(Dataset(src.root)) for src in val.sources]
        for k in picked:
            source, index, s, j = keys[k]
            if (source, index) not in review:
                ep = datasets[source].episode(index)
                review[source, index] = {n: ep.read(f"review/{n}")
                                         for n in ("verdict", "proposed", "corrected", "real", "real_steps", "step",
                                           "imagined", "psnr")}
                review[source, index]["frames"] = ep.read("frames")
                review[source, index]["reason"] = np.asarray(ep.texts("review/reason"), dtype=object).reshape(
                    review[source, index]["verdict"].shape)
            r = review[source, index]
            worse = bool(r["verdict"][s, j - 1] == WORSE)
            real = r["real"][s, 0] if r["real_steps"][s] >= 1 else None
            out.append(ReviewSample(val.build((kind, *keys[k])), worse, int(r["proposed"][s, 0]),
                                    int(r["corrected"][s, j - 1]), str(r["reason"][s, j - 1]) if worse else "",
                                    r["frames"][r["step"][s]], real, (source, index),
                                    None if real is None else float(r["psnr"][s, 0]),
                                    None if real is None else imagination_quality(r["imagined"][s, 0], real)))
    return out


def review_text_start(policy, arrays: dict) -> int:
    """Where the review's own text begins in a sample: after ``<review>`` (and the proposal, with the cue)."""
    return arrays["input_ids"].tolist().index(policy.tok.special["<review>"]) + len(policy.builder.review_opening(0))


@torch.no_grad()
def review_discrimination(policy, samples: list[ReviewSample]) -> dict[str, Any]:
    """P(worse) at the review's first token for each sample, against the expert's verdict."""
    scores, labels = [], []
    for sample in samples:
        start = review_text_start(policy, sample.arrays)
        x = torch.tensor(sample.arrays["input_ids"][None, :start], device=policy.device)
        pos = torch.tensor(sample.arrays["position_ids"][None, :start], device=policy.device)
        scores.append(float(policy.p_correction(policy.model(input_ids=x, position_ids=pos).logits[:, -1])[0]))
        labels.append(sample.worse)
    x, y = np.asarray(scores), np.asarray(labels, bool)
    out: dict[str, Any] = {"samples": len(y), "worse_share": float(y.mean()) if len(y) else None,
                           "says_worse_share": float((x > 0.5).mean()) if len(y) else None,
                           "agreement": float(((x > 0.5) == y).mean()) if len(y) else None,
                           "p_worse_when_worse": float(x[y].mean()) if y.any() else None,
                           "p_worse_when_fine": float(x[~y].mean()) if (~y).any() else None,
                           "auc": None, "auc_ci95": None}
    # what ``--review-threshold tau`` would do on these samples: the share it corrects, and how many of those
    # corrections the expert calls for (precision)
    out["thresholds"] = {f"{t:g}": {"says_worse": float((x >= t).mean()) if len(y) else None,
                                    "precision": float(y[x >= t].mean()) if (x >= t).any() else None}
                         for t in THRESHOLDS}
    if y.any() and not y.all():
        out["auc"] = roc_auc(x, y)
        out["auc_ci95"] = list(roc_auc_interval(x, y, groups=[s.episode for s in samples]))
    out["by_reason"] = _by_reason(x, y, [s.reason for s in samples], [s.episode for s in samples])
    out["by_imagination"] = []
    for row, members in imagination_bins(samples):
        xb, yb = x[members], y[members]
        auc = roc_auc(xb, yb) if yb.any() and not yb.all() else None
        out["by_imagination"].append({**row, "worse_share": float(yb.mean()), "p_worse_when_worse":
                                      float(xb[yb].mean()) if yb.any() else None, "p_worse_when_fine":
                                      float(xb[~yb].mean()) if (~yb).any() else None, "auc": auc})
    return out


IMAGINATION_BINS = 3  # equal-count bins of the first imagined frame's PSNR


def imagination_bins(samples: list[ReviewSample], bins: int = IMAGINATION_BINS) -> list[tuple[dict[str, Any], np.ndarray]]:
    """The samples whose fork has a real frame, in ``bins`` equal-count bins of their first imagined frame's
    PSNR against it (lowest first): per bin its PSNR range, mean cell match and how many samples, with the
    indices of its members. Does the review decide better where the imagination is right?"""
    have = np.asarray([i for i, s in enumerate(samples) if s.imagined_psnr is not None], int)
    if len(have) < bins:
        return []
    db = np.asarray([min(samples[i].imagined_psnr, CAP_DB) for i in have])  # identical frames: 60 dB
    order = np.argsort(db, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        members, psnrs = have[part], db[part]
        out.append(({"psnr_db": [float(min(psnrs)), float(max(psnrs))], "samples": len(members),
                     "cell_match": float(np.mean([samples[i].imagined_cells for i in members]))}, members))
    return out


def _by_reason(x: np.ndarray, y: np.ndarray, reasons: list[str],
               groups: list | None = None) -> dict[str, dict[str, Any]]:
    """Per reason the expert gave for a worse verdict: how many samples, their mean P(worse) and the ROC AUC of
    those samples against all the fine ones (which mistakes the review sees; 0.5: it cannot tell them from a
    fine proposal)."""
    out = {}
    fine = ~y
    for reason in sorted({r for r, w in zip(reasons, y) if w}):
        mine = np.asarray([w and r == reason for r, w in zip(reasons, y)], bool)
        row: dict[str, Any] = {"samples": int(mine.sum()), "p_worse": float(x[mine].mean()), "auc": None,
                               "auc_ci95": None}
        if fine.any():
            keep = mine | fine
            row["auc"] = roc_auc(x[keep], mine[keep])
            kept = None if groups is None else [g for g, k in zip(groups, keep) if k]
            row["auc_ci95"] = list(roc_auc_interval(x[keep], mine[keep], groups=kept))
        out[reason] = row
    return out


def review_outcomes(policy, samples: list[ReviewSample], batch: int = 16) -> dict[str, Any]:
    """What the review does with each proposal when it writes its text and the action after it as at test time
    (``RigPolicy.review_from``; with the policy's ``review_threshold``). Of the proposals the expert calls
    worse: the share the review replaces with the expert's action (``fixed``), keeps (``kept``) or replaces
    with a third action (``other``); of the fine ones: the share it keeps (``kept``) and the share it changes
    (``changed``). A review pays off when it fixes more worse proposals than it changes fine ones."""
    actions: list[int] = []
    for i in range(0, len(samples), batch):
        part = samples[i:i + batch]
        rows = [s.arrays["input_ids"][:review_text_start(policy, s.arrays)].tolist() for s in part]
        actions += [a for _, _, a in policy.review_from(rows, [s.proposed for s in part])]
    worse = [(s, a) for s, a in zip(samples, actions) if s.worse]
    fine = [(s, a) for s, a in zip(samples, actions) if not s.worse]

    def share(pairs, keep) -> float | None:
        return sum(bool(keep(s, a)) for s, a in pairs) / len(pairs) if pairs else None

    def outcomes(pairs) -> dict[str, Any]:
        return {"samples": len(pairs), "fixed": share(pairs, lambda s, a: a == s.target),
                "kept": share(pairs, lambda s, a: a == s.proposed),
                "other": share(pairs, lambda s, a: a not in (s.target, s.proposed))}

    def fine_outcomes(pairs) -> dict[str, Any]:
        return {"samples": len(pairs), "kept": share(pairs, lambda s, a: a == s.proposed),
                "changed": share(pairs, lambda s, a: a != s.proposed)}

    by_imagination = []
    for row, members in imagination_bins(samples):
        pairs = [(samples[i], actions[i]) for i in members]
        by_imagination.append({**row, "worse": outcomes([(s, a) for s, a in pairs if s.worse]),
                               "fine": fine_outcomes([(s, a) for s, a in pairs if not s.worse])})
    return {"worse": outcomes(worse),
            "worse_by_reason": {r: outcomes([(s, a) for s, a in worse if s.reason == r])
                                for r in sorted({s.reason for s, _ in worse})},
            "fine": fine_outcomes(fine), "by_imagination": by_imagination,
            "landed": {r: landed([(s, a) for s, a in worse if s.reason == r], policy.tok.action_names)
                       for r in sorted({s.reason for s, _ in worse})}}


def landed(pairs: list[tuple[ReviewSample, int]], names: list[str]) -> dict[str, Any]:
    """Where the corrections of worse proposals land: per action name, how often the review replaced the
    proposal with it (``review``) and how often the expert's action was it (``expert``), most frequent
    first. A review that corrects towards one action whatever the state shows it here."""
    review = Counter(names[a] for s, a in pairs if a != s.proposed)
    expert = Counter(names[s.target] for s, _ in pairs)
    return {"corrected": sum(review.values()), "review": dict(review.most_common()),
            "expert": dict(expert.most_common())}


@torch.no_grad()
def second_choices(policy, samples: list[ReviewSample]) -> dict[str, Any]:
    """The policy's own next choice after the proposal, at the proposal's action token (the act logits
    given its thought): of the worse proposals, the share where that second choice is the expert's action,
    overall and per reason. What a review that only knew "not this" could reach by taking it."""
    s = policy.tok.special
    acts = torch.as_tensor(policy.tok.action_ids, device=policy.device)
    hits: dict[str, list[bool]] = {}
    for sample in samples:
        if not sample.worse:
            continue
        at = reviewed_token(sample.arrays["input_ids"], s, "<act>") + 1  # up to the proposal's action token
        x = torch.tensor(sample.arrays["input_ids"][None, :at], device=policy.device)
        pos = torch.tensor(sample.arrays["position_ids"][None, :at], device=policy.device)
        order = torch.argsort(policy.model(input_ids=x, position_ids=pos).logits[0, -1, acts].float(),
                              descending=True).tolist()
        second = next(a for a in order if a != sample.proposed)
        hits.setdefault(sample.reason, []).append(second == sample.target)
    every = [h for v in hits.values() for h in v]
    return {"worse": len(every), "expert": float(np.mean(every)) if every else None,
            "by_reason": {r: {"samples": len(v), "expert": float(np.mean(v))} for r, v in sorted(hits.items())}}
