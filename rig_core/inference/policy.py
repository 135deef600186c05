"""The RIG step loop: reason -> act -> imagine, batched over B environments with a KV cache.

For each real step: encode the frame, build each environment's context (task prefix and the
most recent steps that fit), then decode in one batch: the thought (text tokens until
</think>), the action (action tokens only) and the 81 imagined image tokens (image tokens
only). Rows of different lengths are left-padded; rows that finish a span early are fed
masked padding, so one forward pass serves every environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rig_core.errors import RigError
from rig_core.model.constrain import SpanMasks, constrained_next
from rig_core.tokenize.sequence import SequenceBuilder


def _cache_kwarg() -> str:
    """transformers 5.x names the KV cache `cache`; 4.x names it `past_key_values`."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


_CACHE_ARG = _cache_kwarg()


def _cache_of(out):
    return getattr(out, "cache", None) if _CACHE_ARG == "cache" else out.past_key_values


@dataclass
class StepOutput:
    thought: str
    action: int
    imagined_codes: np.ndarray
    think_tokens: int
    think_closed: bool  # False: the thought hit the length limit and was closed by force


class RigPolicy:
    def __init__(self, model, tok, image_tok, context: int, *, max_think: int = 64, temperature: float = 0.0,
                 seed: int = 0, device: str | torch.device = "cpu", stage: str = "basic"):
        self.model = model.to(device).eval()
        self.tok, self.image_tok = tok, image_tok
        self.builder = SequenceBuilder(tok, image_tok.tokens_per_frame)
        self.context, self.max_think, self.temperature = context, max_think, temperature
        self.device = torch.device(device)
        self.stage = stage
        vocab = self.model.get_output_embeddings().weight.shape[0]
        self.masks = SpanMasks(tok, vocab, self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.prefixes: list[list[int]] = []
        self.history: list[list[list[int]]] = []
        self.step_budget = (image_tok.tokens_per_frame + 2) * 2 + max_think + 2 + 3

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: Path, **kwargs) -> "RigPolicy":
        from rig_core.model.checkpoint import find_checkpoint
        from rig_core.train.config import TrainConfig
        from rig_core.train.models import load_trained
        from rig_core.train.setup import load_tokenizers

        path = Path(path)
        ckpt = find_checkpoint(path)
        run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else path
        cfg_path = run / "config.json"
        if not cfg_path.exists():
            raise RigError(f"{path} is not a rig run (no config.json beside its checkpoints)",
                           "pass a run directory written by rig train")
        doc = json.loads(cfg_path.read_text())
        doc.pop("command", None)
        cfg = TrainConfig.from_dict(doc)
        tok, image_tok, meta = load_tokenizers(ckpt / "tokenizer")
        model = load_trained(cfg, ckpt / "model", trainable=False)
        policy = cls(model, tok, image_tok, cfg.context, stage=cfg.stage, **kwargs)
        policy.meta, policy.checkpoint = meta, ckpt
        return policy

    # -- episode state ------------------------------------------------------------------
    def reset(self, instructions: list[str]) -> None:
        self.prefixes = [self.builder.prefix(i).ids for i in instructions]
        self.history = [[] for _ in instructions]

    def _context(self, b: int, obs_ids: list[int]) -> list[int]:
        room = self.context - len(self.prefixes[b]) - self.step_budget
        kept: list[list[int]] = []
        used = 0
        for step in reversed(self.history[b]):
            if used + len(step) > room:
                break
            kept.append(step)
            used += len(step)
        ids = list(self.prefixes[b])
        for step in reversed(kept):
            ids += step
        return ids + obs_ids

    # -- batched decoding ---------------------------------------------------------------
    def _start(self, rows: list[list[int]]) -> torch.Tensor:
        n = max(len(r) for r in rows)
        pad = self.tok.pad_id
        ids = torch.full((len(rows), n), pad, dtype=torch.long)
        attn = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, n - len(r):] = torch.tensor(r)
            attn[i, n - len(r):] = 1
        ids, attn = ids.to(self.device), attn.to(self.device)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True)
        self._past, self._attn, self._pos = _cache_of(out), attn, pos[:, -1]
        return out.logits[:, -1]

    def _feed(self, rows: list[list[int]]) -> torch.Tensor:
        """Feed each row its tokens (rows left-padded with masked padding); returns the last logits."""
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.tok.pad_id, dtype=torch.long)
        new = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, n - len(r):] = torch.tensor(r)
                new[i, n - len(r):] = 1
        ids, new = ids.to(self.device), new.to(self.device)
        pos = self._pos[:, None] + new.cumsum(-1)
        self._attn = torch.cat([self._attn, new], dim=1)
        out = self.model(input_ids=ids, attention_mask=self._attn, position_ids=pos, use_cache=True,
                         **{_CACHE_ARG: self._past})
        self._past, self._pos = _cache_of(out), pos[:, -1]
        return out.logits[:, -1]

    @torch.no_grad()
    def act(self, frames: np.ndarray, forced_actions: list[int | None] | None = None,
            rows: list[int] | None = None) -> list[StepOutput]:
        """One real step for environments ``rows`` (default: all) whose current frames are ``frames``."""
        s = self.tok.special
        rows = list(range(len(self.prefixes))) if rows is None else list(rows)
        codes = self.image_tok.encode(np.asarray(frames))
        obs = [[s["<obs>"], *self.tok.images(c).tolist(), s["</obs>"]] for c in codes]
        logits = self._start([self._context(b, o + [s["<think>"]]) for b, o in zip(rows, obs)])
        B = len(rows)
        close = s["</think>"]
        text_mask = self.masks.text_until(close)
        thoughts: list[list[int]] = [[] for _ in range(B)]
        done = [False] * B
        for _ in range(self.max_think):
            nxt = constrained_next(logits, text_mask, self.temperature, self.generator).tolist()
            feed = []
            for i in range(B):
                if done[i]:
                    feed.append([])
                    continue
                feed.append([nxt[i]])
                if nxt[i] == close:
                    done[i] = True
                else:
                    thoughts[i].append(nxt[i])
            if all(done):
                logits = self._feed([f + [s["<act>"]] for f in feed])
                break
            logits = self._feed(feed)
        else:
            logits = self._feed([([] if done[i] else [close]) + [s["<act>"]] for i in range(B)])
        closed = list(done)
        act_ids = constrained_next(logits, self.masks.action, self.temperature, self.generator).tolist()
        if forced_actions is not None:
            act_ids = [self.tok.action(a) if a is not None else t for a, t in zip(forced_actions, act_ids)]
        logits = self._feed([[a, s["</act>"], s["<imagine>"]] for a in act_ids])
        image = []
        for k in range(self.image_tok.tokens_per_frame):
            nxt = constrained_next(logits, self.masks.image, self.temperature, self.generator)
            image.append(nxt)
            if k + 1 < self.image_tok.tokens_per_frame:
                logits = self._feed([[t] for t in nxt.tolist()])
        image_ids = torch.stack(image, 1).cpu().numpy()
        self._past = None
        outs = []
        for i, b in enumerate(rows):
            step = obs[i] + [s["<think>"]] + thoughts[i] + [close, s["<act>"], act_ids[i], s["</act>"],
                                                            s["<imagine>"], *image_ids[i].tolist(), s["</imagine>"]]
            self.history[b].append(step)
            outs.append(StepOutput(thought=self.tok.decode_text(thoughts[i]), action=self.tok.action_index(act_ids[i]),
                                   imagined_codes=self.tok.codes(image_ids[i]), think_tokens=len(thoughts[i]),
                                   think_closed=closed[i]))
        return outs

    def decode_frames(self, codes: np.ndarray) -> np.ndarray:
        return self.image_tok.decode(codes)
