"""The KV cache of batched decoding, across transformers versions.

A preallocated (static) cache is written in place at ``cache_position``. The default dynamic
cache concatenates every layer's keys and values at each new token, which copies the whole
cache: with 50 rows of ~1,000 tokens that copy was 80 % of a decoding step on the CPU (a
2M-parameter model: 250 ms per token with the dynamic cache, 56 ms with the static one, the
same logits). Where a StaticCache cannot be made, decoding falls back to the dynamic cache.
"""

from __future__ import annotations

import inspect

import torch


def _forward_params() -> dict:
    from transformers import LlamaForCausalLM

    return inspect.signature(LlamaForCausalLM.forward).parameters


_PARAMS = _forward_params()
# transformers 5.x names the KV cache `cache`; 4.x names it `past_key_values`
CACHE_ARG = "cache" if "cache" in _PARAMS else "past_key_values"
# only the last position's logits are needed (a prefill would otherwise project every position)
KEEP_LAST = next(({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in _PARAMS), {})


def cache_of(out):
    """The cache a forward pass returned."""
    return getattr(out, "cache", None) if CACHE_ARG == "cache" else out.past_key_values


def static_cache(model, batch: int, length: int):
    """A preallocated cache of ``length`` positions for ``batch`` rows, or None where this transformers
    version (or model) has none."""
    try:
        from transformers import StaticCache
    except ImportError:  # pragma: no cover - every supported version has it
        return None
    config = model.config
    params = inspect.signature(StaticCache.__init__).parameters
    try:
        if "max_batch_size" in params or "batch_size" in params:  # transformers 4.x
            key = "max_batch_size" if "max_batch_size" in params else "batch_size"
            p = next(model.parameters())
            return StaticCache(config=config, **{key: batch}, max_cache_len=length, device=p.device, dtype=p.dtype)
        return StaticCache(config=config, max_cache_len=length)
    except (TypeError, ValueError):  # pragma: no cover - an unusual config: decode with the dynamic cache
        return None


def positions_kwarg(cache, start: int, n: int, device) -> dict:
    """Where a static cache writes the next ``n`` columns; nothing for a dynamic cache."""
    if cache is None:
        return {}
    return {"cache_position": torch.arange(start, start + n, device=device)}


def rewind(cache, n: int) -> bool:
    """Drop the last ``n`` columns of a cache (the next forward pass writes from there); False where this
    transformers version cannot, so the caller re-encodes instead."""
    if n == 0:
        return True
    try:
        before = int(cache.get_seq_length())  # (a static cache returns its own counter, changed in place)
        cache.crop(-n)
        return int(cache.get_seq_length()) == before - n
    except (AttributeError, TypeError, ValueError, RuntimeError):  # pragma: no cover - older cache APIs
        return False


def select_rows(cache, keep: list[int]) -> bool:
    """Keep only the batch rows ``keep`` of a cache, in that order; False where it cannot."""
    index = torch.tensor(keep)
    layers = getattr(cache, "layers", None)
    if not layers:
        return False
    try:
        for layer in layers:
            if not getattr(layer, "is_initialized", True):
                return False
            layer.keys = layer.keys.index_select(0, index.to(layer.keys.device))
            layer.values = layer.values.index_select(0, index.to(layer.values.device))
            if hasattr(layer, "batch_size"):
                layer.batch_size = len(keep)
    except (AttributeError, RuntimeError):  # pragma: no cover - older cache APIs
        return False
    return True


def grow(cache, model, batch: int, length: int, keep: int):
    """A static cache of ``length`` columns holding the first ``keep`` columns of ``cache`` (copied, not
    recomputed), or None where this transformers version's cache cannot be copied so."""
    bigger = static_cache(model, batch, length)
    old, new = getattr(cache, "layers", None), getattr(bigger, "layers", None)
    if bigger is None or not old or not new or len(old) != len(new):
        return None
    try:
        for a, b in zip(old, new):
            b.lazy_initialization(a.keys[:, :, :keep], a.values[:, :, :keep])
            b.keys[:, :, :keep] = a.keys[:, :, :keep]
            b.values[:, :, :keep] = a.values[:, :, :keep]
            b.cumulative_length.fill_(keep)
    except (AttributeError, RuntimeError, TypeError):  # pragma: no cover - older cache APIs
        return None
    return bigger


def write_rows(cache, rows: list[int], source, start: int, n: int) -> bool:
    """Copy columns ``[0, n)`` of ``source``'s rows into ``rows`` of ``cache`` at columns ``[start, start + n)``;
    False where this transformers version's cache cannot be written so."""
    old, new = getattr(source, "layers", None), getattr(cache, "layers", None)
    if not old or not new or len(old) != len(new):
        return False
    index = torch.tensor(rows)
    try:
        for a, b in zip(old, new):
            b.keys[index, :, start:start + n] = a.keys[:, :, :n].to(b.keys.dtype)
            b.values[index, :, start:start + n] = a.values[:, :, :n].to(b.values.dtype)
    except (AttributeError, RuntimeError, IndexError):  # pragma: no cover - older cache APIs
        return False
    return True
