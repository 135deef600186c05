"""The imagined frames of ``RigPolicy``'s step loop: token by token, or speculatively with the last frame as the
draft (``draft.py``), verified by the model itself.

Token by token, a frame is 81 forward passes. With drafts, each forward pass feeds every row the token it
decided last and the next draft tokens (at most ``draft_window``), and one pass gives the model's
distribution at each of them. Greedy: the draft is kept up to its first token that is not the model's
argmax, and the model's own token replaces that one. Sampling (any temperature, under the image-token
constraint): a draft token d is kept with the model's probability p(d); at the first rejection the token is
drawn from p with d removed and renormalised. Either way every token has exactly the model's distribution
(greedy: its argmax), whatever the draft; a good draft only makes the frame take fewer passes.

Rows keep different numbers of tokens per pass: each pass is fed right-padded, the columns of rejected
draft tokens are masked, and each row's columns of the frame are then moved together (``pack_tail``), so
the cache holds what token-by-token decoding would have written. Once half the rows still decoding have
finished their frame, the others go on in a cache of their own (``NarrowMixin``); every row's frame is
packed back in place before the tokens after the frame are fed.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from rig_core.inference.draft import FrameDrafts
from rig_core.inference.kv_cache import CACHE_ARG, KEEP_LAST, pack_tail, positions_kwarg
from rig_core.model.constrain import allowed_scores, constrained_next


class ImageMixin:
    """Imagined-frame decoding for ``RigPolicy`` (uses its ``_feed``, ``_feed_one``, ``_narrow`` and ``_widen``)."""

    draft = True  # decode imagined frames speculatively (False: one token per forward pass)
    draft_window = 12  # most draft tokens a row has verified per forward pass
    draft_narrow_below = 0.5  # rows still decoding go on apart once at most this share of the batch is (0: never)
    frame_log: list | None = None  # a list: one entry per decoded batch of frames (passes, rows' acceptance, time)

    def _image(self, logits, then: list[list[int]] | None, drafts: FrameDrafts | None = None):
        """Decode one frame per row; then feed each row its ``then`` tokens (None: feed nothing more). Returns
        (token ids [B, tokens_per_frame], the next logits)."""
        start = time.perf_counter()
        if drafts is not None and self.draft and self._packable():
            images, logits, entry = self._image_drafted(logits, then, drafts)
        else:
            images, logits = self._image_tokenwise(logits, then)
            entry = {"passes": self.image_tok.tokens_per_frame - (then is None), "rows": None}
        if self.frame_log is not None:
            self.frame_log.append({**entry, "batch": len(images), "drafted": entry["rows"] is not None,
                                   "seconds": time.perf_counter() - start})
        return images, logits

    def _packable(self) -> bool:
        layers = getattr(self._static, "layers", None)
        return bool(layers) and all(hasattr(layer, "cumulative_length") for layer in layers)

    def _image_tokenwise(self, logits, then):
        out = []
        for k in range(self.image_tok.tokens_per_frame):
            nxt = constrained_next(logits, self.masks.image, self.temperature, self.generator)
            out.append(nxt)
            last = k + 1 == self.image_tok.tokens_per_frame
            if not last:
                logits = self._feed_one(nxt)
            elif then is not None:
                logits = self._feed([[t, *rest] for t, rest in zip(nxt.tolist(), then)])
        return torch.stack(out, 1).cpu().numpy(), logits

    def _image_drafted(self, logits, then, drafts: FrameDrafts):
        F, B = self.image_tok.tokens_per_frame, logits.shape[0]
        done = [[t] for t in constrained_next(logits, self.masks.image, self.temperature, self.generator).tolist()]
        where = [self.positions.peek(b, done[b] * F) for b in range(B)]  # position ids of the frame's cells
        start = self._attn.shape[1]  # the frame's first column
        rows = [{"passes": 0, "rejected": 0, "drafted": 0, "accepted": 0} for _ in range(B)]
        passes = 0
        for b in range(B):
            drafts.observe(b, done[b])
        while True:
            going = [b for b in range(B) if len(done[b]) < F]
            if not going:
                break
            live = self.live_rows or list(range(B))
            if len(going) < len(live) and len(going) <= self.draft_narrow_below * len(live):
                self._widen()  # (packed first, so the holes of the rows decoded apart never pile up)
                self._pack(start)
                self._narrow(going, length=self._static_columns)
                live = self.live_rows or list(range(B))
            feeds, guesses = [], []
            for b in live:
                n = len(done[b])
                w = min(self.draft_window, F - n)
                d = drafts.tokens(b, n, n + w) if w > 0 else []
                feeds.append([done[b][-1], *d[:-1]] if d else [])
                guesses.append(d)
            tail = start if self._home is None else max(start, self._home["start"])
            if self._attn.shape[1] - tail + max(map(len, feeds)) > 2 * F:  # masked columns of rejected drafts
                self._pack(tail)
            out = self._verify_pass(feeds, [where[b][len(done[b]) - 1:][:len(f)] for b, f in zip(live, feeds)])
            passes += 1
            kept = self._accept(out, guesses)
            for b, d, (k, token) in zip(live, guesses, kept):
                if not d:
                    continue
                done[b] += d[:k] + ([] if token is None else [token])
                drafts.observe(b, done[b])
                r = rows[b]
                r["passes"] += 1
                r["drafted"] += min(k + 1, len(d))
                r["accepted"] += k
                r["rejected"] += token is not None
        self._widen()
        self._pack(start)
        for b in range(B):
            self.positions.feed(b, done[b][:-1])
        if then is not None:
            logits = self._feed([[d[-1], *t] for d, t in zip(done, then)])
        return np.asarray(done), logits, {"passes": passes + (then is not None), "rows": rows}

    def _verify_pass(self, feeds: list[list[int]], positions: list[list[int]]) -> torch.Tensor:
        """Feed each row its tokens (right-padded with masked padding) at the given position ids; the logits
        after every fed token [rows, longest, vocab]. The columns stay in the cache, attended (``_accept`` masks
        those of rejected drafts)."""
        n = max(len(f) for f in feeds)
        if self._attn.shape[1] + n > self._static_columns:  # pragma: no cover - TokenBudget.columns leaves room
            raise RuntimeError("the cache has no room for the draft")
        ids = torch.full((len(feeds), n), self.tok.pad_id, dtype=torch.long)
        new = torch.zeros((len(feeds), n), dtype=torch.long)
        pos = torch.zeros((len(feeds), n), dtype=torch.long)
        for i, (f, p) in enumerate(zip(feeds, positions)):
            if f:
                ids[i, : len(f)] = torch.tensor(f)
                new[i, : len(f)] = 1
                pos[i, : len(f)] = torch.tensor(p)
        ids, new, pos = ids.to(self.device), new.to(self.device), pos.to(self.device)
        at = positions_kwarg(self._static, self._attn.shape[1], n, self.device)
        self._attn = torch.cat([self._attn, new], dim=1)
        keep = {name: n for name in KEEP_LAST}
        out = self.model(input_ids=ids, attention_mask=self._attn, position_ids=pos, use_cache=True,
                         **{CACHE_ARG: self._past}, **at, **keep)
        return out.logits[:, -n:]

    def _accept(self, logits: torch.Tensor, guesses: list[list[int]]) -> list[tuple[int, int | None]]:
        """Per row: how many of its draft tokens are kept, and the model's token after them (None when every
        draft token was kept). Masks the cache columns of rejected drafts (the last pass's)."""
        R, n = logits.shape[:2]
        draft = torch.zeros((R, n), dtype=torch.long)
        for i, d in enumerate(guesses):
            draft[i, : len(d)] = torch.tensor(d, dtype=torch.long)
        lengths = [len(d) for d in guesses]
        kept, tokens = accept_drafts(allowed_scores(logits, self.masks.image), draft.to(logits.device), lengths,
                                     self.temperature, self.generator)
        columns = torch.zeros((R, n), dtype=self._attn.dtype)
        for i, (k, length) in enumerate(zip(kept, lengths)):
            columns[i, : min(k + 1, length)] = 1  # the fed token and the kept drafts
        self._attn[:, -n:] = columns.to(self._attn.device)
        return [(k, tokens.get(i)) for i, k in enumerate(kept)]

    def _pack(self, start: int) -> None:
        attn = pack_tail(self._static, self._attn, start)
        if attn is None:  # pragma: no cover - checked by _packable before drafting
            raise RuntimeError("the cache could not be packed")
        self._attn = attn


def accept_drafts(scores: torch.Tensor, draft: torch.Tensor, lengths: list[int], temperature: float,
                  generator: torch.Generator | None = None) -> tuple[list[int], dict[int, int]]:
    """The speculative rule. ``scores`` [R, n, V]: the model's float logits (-inf where not allowed) at the
    positions of each row's draft tokens ``draft`` [R, n], of which the first ``lengths[i]`` count. Greedy
    (``temperature`` 0): a draft token is kept while it is the argmax, and the argmax replaces the first that is
    not. Sampling: a draft token d is kept with probability p(d) (p: the softmax at ``temperature``); the first
    rejected one is replaced by a draw from p without d, renormalised, so each token has exactly the
    distribution p. Returns per row the number of draft tokens kept, and {row: the replacing token} for the
    rows that rejected one."""
    R, n = draft.shape
    valid = torch.arange(n, device=draft.device)[None, :] < torch.tensor(lengths, device=draft.device)[:, None]
    if temperature <= 0:
        best = scores.argmax(-1)
        ok = best == draft
    else:
        probs = torch.softmax(scores / temperature, dim=-1)
        u = torch.rand((R, n), generator=generator, device=scores.device)
        ok = u < probs.gather(2, draft[..., None]).squeeze(-1)
    bad = valid & ~ok
    count = valid.sum(1)
    first = torch.where(bad.any(1), bad.int().argmax(1), count)  # each row's first rejected draft token
    rejected = torch.nonzero(first < count).squeeze(1)
    tokens: dict[int, int] = {}
    if len(rejected):
        at = first[rejected]
        if temperature <= 0:
            picked = best[rejected, at]
        else:
            rest = probs[rejected, at].clone()
            rest.scatter_(1, draft[rejected, at][:, None], 0.0)
            empty = rest.sum(1) <= 0  # (float underflow: every other allowed token at 0)
            rest[empty] = probs[rejected, at][empty]
            picked = torch.multinomial(rest, 1, generator=generator).squeeze(1)
        tokens = dict(zip(rejected.tolist(), picked.tolist()))
    return first.tolist(), tokens
