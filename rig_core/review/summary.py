"""What a review dataset holds: verdicts, reasons, selected samples, imagination against reality."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.data.reader import Dataset, opened
from rig_core.data.summary import summarize
from rig_core.envs.view import content_shifts
from rig_core.review.moves import hold_score, move_outcome, move_reading, view_cells
from rig_core.review.judge import VERDICTS, WORSE
from rig_core.tokenize.image import psnr


def _move_pairs(ep, frames, real, at, reached, shifts) -> list[tuple[str | None, float]]:
    """(real outcome, imagined hold score) of each state whose proposal's first action is a move."""
    proposed = ep.read("review/proposed")
    states = [s for s in range(len(at)) if reached[s] >= 1 and int(proposed[s, 0]) in shifts]
    if not states:
        return []
    imagined = ep.read("review/imagined")
    out = []
    for s in states:
        shift = shifts[int(proposed[s, 0])]
        before, after, dreamt = view_cells(frames[at[s]]), view_cells(real[s, 0]), view_cells(imagined[s, 0])
        out.append((move_outcome(before, after, shift), hold_score(before, dreamt, shift)))
    return out


def candidate_summary(ds) -> dict[str, Any] | None:
    """What the candidate samples of a review dataset hold (``--candidates K``; None without): per policy rank the
    share of candidates judged worse, how often the top one is worse and another of the top K fine, and how often
    the expert's action was outside the top K (an added candidate)."""
    k = (ds.manifest.get("review") or {}).get("candidates")
    if not k:
        return None
    worse = [[0, 0] for _ in range(k)]
    states = rescued = added = samples = 0
    for ep in ds:
        if "review/candidates/verdict" not in ep:
            continue
        v, rank = ep.read("review/candidates/verdict"), ep.read("review/candidates/rank")
        samples += int((v >= 0).sum())
        for vs, rs in zip(v, rank):
            states += 1
            top = [int(x) for x, r in zip(vs, rs) if 0 <= r < k and x >= 0]
            added += int(vs[k] >= 0) if len(vs) > k else 0
            for r, x in zip(rs, vs):
                if 0 <= r < k and x >= 0:
                    worse[r][0] += int(x == WORSE)
                    worse[r][1] += 1
            rescued += int(bool(top) and top[0] == WORSE and any(x != WORSE for x in top[1:]))
    share = lambda a, b: round(a / b, 3) if b else None  # noqa: E731
    return {"k": k, "states": states, "samples": samples, "worse_by_rank": [share(a, b) for a, b in worse],
            "top1_worse_another_fine": share(rescued, states), "expert_outside_top_k": share(added, states)}


def review_summary(root: Dataset | Path) -> dict[str, Any]:
    with opened(root) as ds:
        horizon = int(ds.manifest.get("review", {}).get("horizon", 1))
        crafter = (ds.manifest.get("env") or {}).get("id") == "crafter"
        shifts = content_shifts(list(ds.manifest.get("action_names", []))) if crafter else {}
        moves: list[tuple[str | None, float]] = []
        move_episodes: list[int] = []
        verdicts = Counter()
        reasons = Counter()
        states = selected = correct_sel = steps = successes = agree = episodes = 0
        imagined_db, copy_db = [[] for _ in range(horizon)], [[] for _ in range(horizon)]
        for ep in ds:
            episodes += 1
            steps += ep.length
            successes += int(bool(ep.attrs.get("success", False)))
            if "review/verdict" not in ep:
                continue
            v, sel = ep.read("review/verdict"), ep.read("review/selected")
            rs = ep.texts("review/reason")
            states += len(v)
            agree += int((v[:, 0] == 0).sum()) if len(v) else 0
            for j in range(v.shape[1] if v.ndim == 2 else 0):
                verdicts.update(f"{VERDICTS[int(k)]}@{j + 1}" for k in v[:, j])
            reasons.update(r for r in rs if r)
            selected += int(sel.sum())
            correct_sel += int((sel & (v == WORSE)).sum())
            frames, real, scores = ep.read("frames"), ep.read("review/real"), ep.read("review/psnr")
            reached, at = ep.read("review/real_steps"), ep.read("review/step")
            for s in range(len(at)):
                for j in range(min(int(reached[s]), horizon)):
                    imagined_db[j].append(float(scores[s, j]))  # imagined vs real, computed when recorded
                    copy_db[j].append(psnr(frames[at[s]], real[s, j]))
            if shifts:
                pairs = _move_pairs(ep, frames, real, at, reached, shifts)
                moves += pairs
                move_episodes += [episodes] * len(pairs)

    def mean(x):
        x = [v for v in x if np.isfinite(v)]
        return round(float(np.mean(x)), 2) if x else None

    return {
        "dataset": str(ds.root), "episodes": episodes, "steps": steps,
        "success_rate": round(successes / episodes, 3) if episodes else None, "states": states, "samples": states * horizon, "horizon": horizon,
        "expert_agreement": round(agree / states, 3) if states else None,
        "verdicts": dict(sorted(verdicts.items())), "reasons": dict(reasons.most_common()),
        "selected": selected, "selected_corrections": correct_sel, "selected_confirmations": selected - correct_sel,
        "imagination_psnr_db": [mean(x) for x in imagined_db], "copy_last_psnr_db": [mean(x) for x in copy_db],
        "imagined_moves": move_reading(moves, move_episodes) if shifts else None,
        "candidates": candidate_summary(ds),
    }


def dataset_info(root: str | Path) -> dict[str, Any]:
    """What `rig dataset info` prints: ``summarize``, and for review data (stage ``review``) its review
    summary under ``review`` (verdicts, reasons, imagination against reality, imagined moves)."""
    with Dataset(Path(root)) as ds:  # opened once for both summaries
        out = summarize(ds)
        if "review" in out["stages"]:
            out["review"] = review_summary(ds)
    return out
