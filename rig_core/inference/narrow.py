"""Decoding on the rows still writing: when most rows of a batch have closed their text span, the rest go on
in a smaller batch.

A batch decodes a thought for as long as its longest row writes; rows that closed theirs are fed masked
padding, and each decoded token still reads their whole cache. When half or more of the rows still
decoding have closed their span (``narrow_below``), those that go on are copied into a cache of their own
(``take_rows``) and decode alone; when the span ends, what they wrote is copied back into the batch's
cache (``_widen``) and the batch goes on together. Only whole columns move: every row's logits are those of
the whole batch.
"""

from __future__ import annotations

import torch

from rig_core.inference.kv_cache import set_filled, take_rows, write_rows


class NarrowMixin:
    """Row narrowing for ``RigPolicy``'s text spans (needs the static cache)."""

    narrow_below = 0.5  # narrow once at most this share of the rows decoding still writes (0: never)

    _home: dict | None = None  # while narrowed: the batch's cache, its mask, and where the narrowing began

    @property
    def live_rows(self) -> list[int] | None:
        """Batch rows of the current (narrowed) cache, in order; None while the whole batch decodes."""
        return None if self._home is None else self._home["rows"]

    def _narrow(self, keep: list[int], length: int | None = None) -> bool:
        """Continue decoding with batch rows ``keep`` only, in a cache of ``length`` columns (default: room for the
        rest of a text span); False (nothing changed) where the cache cannot."""
        if self._static is None:
            return False
        self._widen()
        home_static, home_attn = self._static, self._attn
        columns = home_attn.shape[1]
        if length is None:  # a text span: at most max_think tokens and the closing one
            length = columns + self.max_think + 2
        sub = take_rows(home_static, self.model, keep, columns, length)
        if sub is None:
            return False
        self._home = {"static": home_static, "attn": home_attn, "rows": list(keep), "start": columns}
        self._static = self._past = sub
        self._attn = home_attn[torch.tensor(keep, device=home_attn.device)]
        return True

    def _widen(self) -> None:
        """Copy what the narrowed rows wrote back into the batch's cache, and decode the whole batch again."""
        home = self._home
        if home is None:
            return
        start, stop = home["start"], self._attn.shape[1]
        if stop > start and not write_rows(home["static"], home["rows"], self._static, start, stop - start, start):
            raise RuntimeError("the batch's cache could not take back the rows decoded apart")  # pragma: no cover
        attn = torch.zeros((home["attn"].shape[0], stop - start), dtype=home["attn"].dtype, device=home["attn"].device)
        attn[torch.tensor(home["rows"], device=attn.device)] = self._attn[:, start:]
        set_filled(home["static"], stop)
        self._static = self._past = home["static"]
        self._attn = torch.cat([home["attn"], attn], dim=1)
        self._home = None
