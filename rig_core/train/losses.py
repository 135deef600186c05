"""Next-token cross-entropy with a loss mask, broken down by span (think / act / imagine / review)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rig_core.tokenize.sequence import IGNORE, SPAN_NAMES


def token_losses(logits: torch.Tensor, labels: torch.Tensor, spans: torch.Tensor):
    """Mean loss over trained tokens, plus per-span (sum, count) for reporting.

    ``logits`` [B, T, V] predict token t+1 at position t; ``labels`` [B, T] hold -100 where untrained.
    """
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    span = spans[:, 1:].long()
    per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                ignore_index=IGNORE, reduction="none").view_as(target)
    mask = target != IGNORE
    count = mask.sum()
    loss = per_token[mask].sum() / count.clamp(min=1)
    parts = {}
    for sid, name in SPAN_NAMES.items():
        m = mask & (span == sid)
        n = int(m.sum())
        if n:
            parts[name] = (float(per_token[m].sum().detach()), n)
    return loss, int(count), parts


@torch.no_grad()
def action_accuracy(logits: torch.Tensor, labels: torch.Tensor, action_ids: torch.Tensor) -> tuple[int, int]:
    """(correct, total) of the action token, decoded under the action constraint (argmax over action tokens)."""
    logits = logits[:, :-1]
    target = labels[:, 1:]
    is_act = torch.isin(target, action_ids)
    if not is_act.any():
        return 0, 0
    chosen = logits[is_act][:, action_ids].argmax(-1)
    return int((action_ids[chosen] == target[is_act]).sum()), int(is_act.sum())
