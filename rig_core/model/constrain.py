"""Constrained decoding: inside <act> only action tokens, inside image spans only image tokens,
inside text spans only text tokens (plus the span's closing tag). The policy can never emit
an invalid action or a malformed frame."""

from __future__ import annotations

from typing import Iterable

import torch
from transformers import LogitsProcessor

from rig_core.tokenize.vocab import RigTokenizer


def mask_of(vocab_size: int, allowed: Iterable[int], device=None) -> torch.Tensor:
    """A boolean [vocab] mask, True where a token is allowed."""
    m = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    m[torch.as_tensor(list(allowed), dtype=torch.long, device=device)] = True
    return m


class SpanMasks:
    """The allowed-token masks of each span kind for one tokenizer (built once, reused every step)."""

    def __init__(self, tok: RigTokenizer, vocab_size: int | None = None, device=None):
        n = vocab_size or tok.vocab_size
        self.action = mask_of(n, tok.action_ids.tolist(), device)
        self.image = mask_of(n, tok.image_ids.tolist(), device)
        text = torch.ones(n, dtype=torch.bool, device=device)
        text[torch.as_tensor(sorted(i for i in tok.rig_ids if i < n), dtype=torch.long, device=device)] = False
        if n > tok.vocab_size:  # padding rows of a resized embedding are never text
            text[tok.vocab_size :] = False
        self.text = text

    def text_until(self, closing_id: int) -> torch.Tensor:
        m = self.text.clone()
        m[closing_id] = True
        return m


def constrained_next(logits: torch.Tensor, mask: torch.Tensor, temperature: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token of each row of ``logits`` [B, V] among the allowed ones: argmax, or a sample."""
    logits = logits.float().masked_fill(~mask, float("-inf"))
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class AllowedTokens(LogitsProcessor):
    """A ``transformers`` logits processor for ``model.generate``: everything outside ``mask`` is -inf."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.masked_fill(~self.mask.to(scores.device)[: scores.shape[-1]], float("-inf"))
