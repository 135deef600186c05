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

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.evaluate.metrics import roc_auc, roc_auc_interval
from rig_core.evaluate.runner import THRESHOLDS
from rig_core.review.judge import WORSE


def review_samples(policy, limit: int = 300, seed: int = 0) -> list[tuple[dict, bool]]:
    """Up to ``limit`` held-out review samples of the lookahead run ``policy`` was loaded from
    (``RigPolicy.from_checkpoint``): (sample arrays, proposal judged worse)."""
    from rig_core.model.checkpoint import run_of_checkpoint
    from rig_core.train.config import load_run_config
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import REVIEW

    run = run_of_checkpoint(policy.checkpoint)
    cfg = load_run_config(run)
    if cfg.stage != "lookahead":
        raise RigError(f"{run} is a {cfg.stage} run", "pass a lookahead run (rig train --stage lookahead)")
    val = prepare_lookahead(cfg, run, policy.tok, policy.image_tok, policy.meta).val_set
    items = [k for k, it in enumerate(val.items) if it[0] == REVIEW]
    if not items:
        raise RigError(f"run {run} has no held-out review samples", "train with --val-fraction above 0")
    picked = sorted(np.random.default_rng(seed).permutation(len(items))[:limit].tolist())
    out = []
    with Dataset(Path(cfg.data)) as ds:
        verdicts: dict[int, np.ndarray] = {}
        for k in picked:
            _, index, s, j = val.items[items[k]]
            if index not in verdicts:
                verdicts[index] = ds.episode(index).read("review/verdict")
            out.append((val[items[k]], bool(verdicts[index][s, j - 1] == WORSE)))
    return out


@torch.no_grad()
def review_discrimination(policy, samples: list[tuple[dict, bool]]) -> dict[str, Any]:
    """P(worse) at the review's first token for each sample, against the expert's verdict."""
    s = policy.tok.special
    lead = len(policy.builder.review_opening(0))  # <review> [PROPOSAL]: what the system writes
    scores, labels = [], []
    for arrays, worse in samples:
        ids = arrays["input_ids"].tolist()
        start = ids.index(s["<review>"]) + lead
        x = torch.tensor(np.asarray(ids[:start])[None], device=policy.device)
        pos = torch.tensor(np.asarray(arrays["position_ids"][:start])[None], device=policy.device)
        scores.append(float(policy.p_correction(policy.model(input_ids=x, position_ids=pos).logits[:, -1])[0]))
        labels.append(worse)
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
        out["auc_ci95"] = list(roc_auc_interval(x, y))
    return out
