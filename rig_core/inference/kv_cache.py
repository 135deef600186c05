"""The KV cache of batched decoding, across transformers versions.

A preallocated (static) cache is written in place at ``cache_position``. The default dynamic
cache concatenates every layer's keys and values at each new token, which copies the whole
cache: with 50 rows of ~1,000 tokens that copy was 80 % of a decoding step on the CPU (a
2M-parameter model: 250 ms per token with the dynamic cache, 56 ms with the static one, the
same logits). Where a StaticCache cannot be made, decoding falls back to the dynamic cache.

Attention runs over the filled columns only (transformers' static layer attends to every
preallocated column, masked): decoding one token for 50 rows reads the whole cache, so a cache
twice the filled length costs twice the time. ``compact`` packs each row's columns together
when the masked holes of uneven rows (thoughts of different lengths, re-encoded rows) grow.
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


def _filled_layer_class():
    """A static cache layer whose attention covers the filled columns only (None before transformers 5)."""
    try:
        from transformers.cache_utils import StaticLayer
    except ImportError:  # pragma: no cover - transformers 4.x: attention over every column
        return None

    class FilledStaticLayer(StaticLayer):
        is_compileable = False  # its key length changes with every token

        def update(self, key_states, value_states, *args, **kwargs):
            keys, values = super().update(key_states, value_states, *args, **kwargs)
            n = int(self.cumulative_length)
            return keys[:, :, :n], values[:, :, :n]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return int(self.cumulative_length) + query_length, 0

    return FilledStaticLayer


_FILLED = _filled_layer_class()


def static_cache(model, batch: int, length: int):
    """A preallocated cache of ``length`` positions for ``batch`` rows, or None where this transformers
    version (or model) has none."""
    try:
        from transformers import StaticCache
    except ImportError:  # pragma: no cover - every supported version has it
        return None
    cache = _static_cache(StaticCache, model, batch, length)
    for layer in getattr(cache, "layers", None) or []:
        if _FILLED is not None and type(layer) is _FILLED.__base__:  # plain full-attention layers only
            layer.__class__ = _FILLED
    return cache


def _static_cache(StaticCache, model, batch: int, length: int):
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
    return take_rows(cache, model, list(range(batch)), keep, length)


def take_rows(cache, model, rows: list[int], keep: int, length: int):
    """A static cache of ``length`` columns holding the first ``keep`` columns of the batch rows ``rows`` of
    ``cache`` (copied, not recomputed), or None where this transformers version's cache cannot be copied so."""
    bigger = static_cache(model, len(rows), length)
    old, new = getattr(cache, "layers", None), getattr(bigger, "layers", None)
    if bigger is None or not old or not new or len(old) != len(new):
        return None
    index = None if rows == list(range(len(rows))) and len(rows) == old[0].keys.shape[0] else torch.tensor(rows)
    try:
        for a, b in zip(old, new):
            k, v = a.keys[:, :, :keep], a.values[:, :, :keep]
            if index is not None:
                k, v = k[index.to(k.device)], v[index.to(v.device)]
            b.lazy_initialization(k, v)
            b.keys[:, :, :keep] = k
            b.values[:, :, :keep] = v
            b.cumulative_length.fill_(keep)
    except (AttributeError, RuntimeError, TypeError):  # pragma: no cover - older cache APIs
        return None
    return bigger


def write_rows(cache, rows: list[int], source, start: int, n: int, source_start: int = 0) -> bool:
    """Copy columns ``[source_start, source_start + n)`` of ``source``'s rows into ``rows`` of ``cache`` at columns
    ``[start, start + n)``; False where this transformers version's cache cannot be written so."""
    old, new = getattr(source, "layers", None), getattr(cache, "layers", None)
    if not old or not new or len(old) != len(new):
        return False
    index = torch.tensor(rows)
    try:
        for a, b in zip(old, new):
            b.keys[index, :, start:start + n] = a.keys[:, :, source_start:source_start + n].to(b.keys.dtype)
            b.values[index, :, start:start + n] = a.values[:, :, source_start:source_start + n].to(b.values.dtype)
    except (AttributeError, RuntimeError, IndexError):  # pragma: no cover - older cache APIs
        return False
    return True


def set_filled(cache, columns: int) -> None:
    """Mark the first ``columns`` of every layer as filled (the next token is written after them)."""
    for layer in getattr(cache, "layers", None) or []:
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length.fill_(columns)


def compact(cache, attn: torch.Tensor, columns: int) -> torch.Tensor | None:
    """Pack each row's unmasked columns of ``[0, columns)`` together, right-aligned at the longest row's
    length; returns the new attention mask (the cache's fill is set to its width), or None where this
    transformers version's cache cannot be rewritten so. Token order and position ids are unchanged (the
    rotary positions live in the keys), so the logits are those of the uncompacted cache."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(layer, "cumulative_length") for layer in layers):
        return None
    mask = attn[:, :columns].bool()
    lengths = mask.sum(1)
    width = int(lengths.max())
    # per row: masked columns first, then its own in order; the last ``width`` are some masked columns (never
    # attended) and then all of its own
    index = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, columns - width:]
    new = torch.arange(width, device=attn.device)[None, :] >= (width - lengths)[:, None]
    try:
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name)
                g = index.to(t.device)[:, None, :, None].expand(t.shape[0], t.shape[1], width, t.shape[3])
                t[:, :, :width] = t.gather(2, g)
    except (AttributeError, RuntimeError):  # pragma: no cover - older cache APIs
        return None
    set_filled(cache, width)
    return new.to(attn.dtype)


def pack_tail(cache, attn: torch.Tensor, start: int) -> torch.Tensor | None:
    """Move each row's unmasked columns from ``start`` on to the front of that range, in order (the columns
    before ``start`` stay); returns the new attention mask, ``start`` plus the longest row's count wide (the
    cache's fill is set to it), or None where this transformers version's cache cannot be rewritten so.
    Position ids live in the rotary keys, so the logits are those of the unpacked cache."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(layer, "cumulative_length") for layer in layers):
        return None
    tail = attn[:, start:].bool()
    lengths = tail.sum(1)
    width = int(lengths.max()) if tail.shape[1] else 0
    index = torch.argsort((~tail).to(torch.int8), dim=1, stable=True)[:, :width] + start  # a row's own first
    rows = torch.arange(len(attn), device=attn.device)[:, None]
    try:
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name)
                t[:, :, start:start + width] = t[rows.to(t.device), :, index.to(t.device)].transpose(1, 2)
    except (AttributeError, RuntimeError):  # pragma: no cover - older cache APIs
        return None
    set_filled(cache, start + width)
    new = torch.arange(width, device=attn.device)[None, :] < lengths[:, None]
    return torch.cat([attn[:, :start], new.to(attn.dtype)], dim=1)
