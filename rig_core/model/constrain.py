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
    ids = torch.as_tensor(list(allowed), dtype=torch.long, device=device)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got {int(ids.min())}..{int(ids.max())}")
    m[ids] = True
    return m


def action_mask(vocab_size: int, action_ids: Iterable[int], device=None) -> torch.Tensor:
    """Only the action tokens (the content of an <act> span)."""
    return mask_of(vocab_size, action_ids, device)


def image_mask(vocab_size: int, image_id_range: range | tuple[int, int], device=None) -> torch.Tensor:
    """Only the image tokens: ``range(first, stop)`` or ``(first, stop)`` with stop exclusive."""
    lo, hi = (image_id_range.start, image_id_range.stop) if isinstance(image_id_range, range) else image_id_range
    return mask_of(vocab_size, range(lo, hi), device)


def text_mask(vocab_size: int, disallowed_ids: Iterable[int], device=None) -> torch.Tensor:
    """Every token except ``disallowed_ids`` (rig's special, action and image tokens)."""
    return ~mask_of(vocab_size, disallowed_ids, device)


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
    """The next token of each row of ``logits`` [B, V] among the allowed ones: argmax, or a sample.

    ``mask`` is [V] (one constraint for the batch) or [B, V] (one per row)."""
    logits = allowed_scores(logits, mask)
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def allowed_scores(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits`` [..., V] in float, -inf where ``mask`` [V] does not allow the token: what decoding argmaxes, or
    samples from after dividing by the temperature."""
    return logits.float().masked_fill(~_fit(mask, logits.shape[-1], logits.device), float("-inf"))


def constrained_probs(logits: torch.Tensor, ids: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """The probabilities [B, len(ids)] ``constrained_next`` draws from when only ``ids`` are allowed (softmax at
    ``temperature``; at 0, where it takes the argmax, the untempered softmax: the same order)."""
    allowed = logits.float()[:, ids.to(logits.device)]
    return torch.softmax(allowed / (temperature if temperature > 0 else 1.0), dim=-1)


def constrained_argmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The most likely allowed token of each row of ``logits`` [B, V]."""
    return constrained_next(logits, mask)


def constrained_sample(logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """An allowed token per row, sampled at ``temperature`` (0 = argmax) with an optional generator."""
    return constrained_next(logits, mask, temperature, generator)


def _fit(mask: torch.Tensor, width: int, device) -> torch.Tensor:
    """``mask`` on ``device`` with its last dimension cut or padded (with False) to ``width``."""
    mask = mask.to(device=device, dtype=torch.bool)
    n = mask.shape[-1]
    if n > width:
        return mask[..., :width]
    if n < width:  # rows past the tokenizer (an embedding padded to a multiple) are never allowed
        pad = torch.zeros(*mask.shape[:-1], width - n, dtype=torch.bool, device=device)
        return torch.cat([mask, pad], dim=-1)
    return mask


class AllowedTokens(LogitsProcessor):
    """A ``transformers`` logits processor for ``model.generate``: every token not allowed gets -inf.

    ``allowed`` is a boolean [V] mask or a list/tensor of allowed token ids; the mask is built once
    and kept on the scores' device, so each step is one ``masked_fill``."""

    def __init__(self, allowed: torch.Tensor | Iterable[int]):
        if isinstance(allowed, torch.Tensor) and allowed.dtype == torch.bool:
            self.mask = allowed
            self._ids = None
        else:
            self._ids = torch.as_tensor(list(allowed) if not isinstance(allowed, torch.Tensor) else allowed,
                                        dtype=torch.long).flatten()
            if self._ids.numel() == 0:
                raise ValueError("AllowedTokens needs at least one allowed token")
            self.mask = mask_of(int(self._ids.max()) + 1, self._ids.tolist())
        self._cache: tuple[int, torch.device, torch.Tensor] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        width, device = scores.shape[-1], scores.device
        if self._cache is None or self._cache[0] != width or self._cache[1] != device:
            self._cache = (width, device, _fit(self.mask, width, device))
        return scores.masked_fill(~self._cache[2], float("-inf"))
