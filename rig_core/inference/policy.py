"""The RIG step loop: reason -> act -> imagine, batched over B environments with a KV cache.

For each real step: encode the frame, build each environment's context (task prefix and the
most recent steps that fit), then decode in one batch: the thought (text tokens until
</think>), the action (action tokens only) and the 81 imagined image tokens (image tokens
only). Rows of different lengths are left-padded; rows that finish a span early are fed
masked padding, so one forward pass serves every environment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rig_core.errors import RigError
from rig_core.inference.branches import BranchMixin, candidate_lists, choose
from rig_core.inference.step import RowStep, StepOutput, TokenBudget
from rig_core.envs.view import content_shifts
from rig_core.inference.draft import FrameDrafts, crafter_grid
from rig_core.inference.history import StepHistoryMixin
from rig_core.inference.image_decoding import ImageMixin
from rig_core.inference.narrow import NarrowMixin
from rig_core.inference.review_decoding import ReviewMixin
from rig_core.inference.step_cache import StepCacheMixin, newest_fitting
from rig_core.inference.threads import set_cpu_threads
from rig_core.inference.kv_cache import CACHE_ARG, KEEP_LAST, cache_of, positions_kwarg, static_cache
from rig_core.model.constrain import SpanMasks, constrained_next, constrained_probs
from rig_core.tokenize.positions import PositionTracker
from rig_core.tokenize.sequence import SequenceBuilder


class RigPolicy(StepHistoryMixin, StepCacheMixin, NarrowMixin, ReviewMixin, ImageMixin, BranchMixin):
    def __init__(self, model, tok, image_tok, context: int, *, max_think: int = 64, temperature: float = 0.0,
                 seed: int = 0, device: str | torch.device = "cpu", stage: str = "basic", think_positions: int = 0,
                 image_row_stride: int = 0, review_cue: bool = False, review_threshold: float | None = None,
                 history: int | None = None, step_cache: bool = True, spans: str = "think,act,imagine",
                 draft: bool = True, candidate_margin: float = 0.0):
        device = torch.device(device)
        if any(p.device != device for p in model.parameters()):  # a 4-bit model was placed while loading
            model = model.to(device)
        self.model = model.eval()
        self.tok, self.image_tok = tok, image_tok
        self.builder = SequenceBuilder(tok, image_tok.tokens_per_frame, think_positions, image_row_stride, review_cue,
                                       spans=spans)
        self.thinks, self.imagines = self.builder.thinks, self.builder.imagines  # the spans it was trained on
        self.positions = PositionTracker(self.builder.layout)  # the run's position ids, token by token
        self.context, self.max_think, self.temperature = context, max_think, temperature
        self.device = device
        self.stage = stage
        self.guard = True  # with lookahead: take the proposal when a further thought or the review hits the limit
        if review_threshold is not None and not 0.0 <= review_threshold <= 1.0:
            raise RigError(f"--review-threshold {review_threshold} is not a probability",
                           "pass a number from 0 to 1, e.g. --review-threshold 0.8")
        self.review_threshold = review_threshold  # None: the review writes its verdict freely
        if not 0.0 <= candidate_margin < 1.0:
            raise RigError(f"--candidate-margin {candidate_margin} is not a probability below 1",
                           "pass a number from 0 (the candidate least likely worse) to below 1, e.g. 0.1")
        self.candidate_margin = candidate_margin
        if history is not None and history < 0:
            raise RigError(f"--history {history} is negative", "pass 0 (the current frame only) or more past steps")
        self.history_steps = history  # None: as many past steps as the context holds
        self._openings: tuple[list[int], list[int]] | None = None
        vocab = self.model.get_output_embeddings().weight.shape[0]
        self.masks = SpanMasks(tok, vocab, self.device)
        self._action_ids = torch.as_tensor(tok.action_ids, device=self.device)  # by action index
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.prefixes: list[list[int]] = []
        self._static = None  # the preallocated KV cache of the current act (None: transformers' dynamic cache)
        self.history: list[list[list[int]]] = []
        self.budget = TokenBudget(image_tok.tokens_per_frame, max_think, self.thinks, self.imagines)
        self.step_cache = step_cache  # keep each row's KV cache across real steps (False: re-encode every step)
        self.slide_keep = 0.5  # share of the context a slide keeps (newest whole steps)
        self.draft = draft  # imagined frames decoded with the last frame as the draft (False: token by token)
        self.shifts = content_shifts(list(tok.action_names))  # the view's move table (Crafter's actions)
        grid = getattr(image_tok, "grid", None)
        self.grid = grid if self.shifts and crafter_grid(image_tok.tokens_per_frame, grid) else None
        self._reset_step_cache(0)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: Path, **kwargs) -> "RigPolicy":
        from rig_core.model.build import quiet_transformers
        from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint
        from rig_core.model.device import inference_dtype, resolve_device
        from rig_core.model.load import load_tokenizers, load_trained, recommended_temperature, sequence_options
        from rig_core.model.run_config import load_run_config

        quiet_transformers()
        path = Path(path)
        ckpt = find_checkpoint(path)
        threads = kwargs.pop("threads", "auto")
        device = resolve_device(kwargs.pop("device", "auto"))
        if kwargs.get("temperature") is None:  # the model's own decoding (its generation_config.json)
            kwargs["temperature"] = recommended_temperature(ckpt / "model")
        run = run_of_checkpoint(ckpt)
        cfg = load_run_config(run)
        tok, image_tok, meta = load_tokenizers(ckpt / "tokenizer")
        model = load_trained(cfg, ckpt / "model", trainable=False, device=device)
        if hasattr(model, "merge_and_unload") and not cfg.qlora:  # a LoRA adapter: fold it in for decoding
            model = model.merge_and_unload()  # (the same function, without the adapter's extra matmuls)
        if not cfg.qlora and (dtype := inference_dtype(device)) is not None:
            model = model.to(device=device, dtype=dtype)
        policy = cls(model, tok, image_tok, cfg.context, stage=cfg.stage, device=device, **sequence_options(meta),
                     **kwargs)
        if policy.device.type == "cpu":
            set_cpu_threads(model, threads)
        policy.meta, policy.checkpoint = meta, ckpt
        return policy

    # -- episode state ------------------------------------------------------------------
    def reset(self, instructions: list[str]) -> None:
        self.prefixes = [self.builder.prefix(i).ids for i in instructions]
        self.history = [[] for _ in instructions]
        self._reset_step_cache(len(instructions))

    def _forget_old_steps(self, b: int) -> None:
        """Drop the steps no context can hold any more (more than fit in it even at their shortest), so a game of
        thousands of steps keeps a history of constant size."""
        extra = len(self.history[b]) - (self.context // self.budget.shortest_step + 1)
        if extra > 0:
            del self.history[b][:extra]
            self._first_kept[b] = max(0, self._first_kept[b] - extra)

    def _context(self, b: int, obs_ids: list[int], lookahead: int = 0, verify: int | None = None) -> list[int]:
        room = self.context - len(self.prefixes[b]) - self.budget.reserve(lookahead) - self.budget.verify(verify)
        past = self.history[b]
        if self.history_steps is not None:  # --history K: at most the last K steps
            past = past[max(0, len(past) - self.history_steps):]
            first = newest_fitting(past, room)
        elif lookahead:  # N > 0 re-encodes every step (see act): as many steps as fit
            first = newest_fitting(past, room)
        else:
            first = self._first_step(b, past, room)
        ids = list(self.prefixes[b])
        for step in past[first:]:
            ids += step
        return ids + obs_ids

    # -- batched decoding ---------------------------------------------------------------
    def _start(self, rows: list[list[int]], lookahead: int = 0) -> torch.Tensor:
        """Prefill the rows (left-padded) into a fresh cache sized for one ``act``; the last logits."""
        n = max(len(r) for r in rows)
        self._static_columns = n + self.budget.columns(lookahead)  # the step cache grows it when the next act needs
        self._static, self._attn, out = self._prefill(rows, self.positions.start(rows), self._static_columns)
        self._keep_cache(out)
        return out.logits[:, -1]

    def _prefill(self, rows: list[list[int]], positions: list, columns: int):
        """Encode left-padded rows into a new static cache of ``columns`` (None where there is none): (cache,
        attention mask, the model's output)."""
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.tok.pad_id, dtype=torch.long)
        attn = torch.zeros((len(rows), n), dtype=torch.long)
        pos = torch.zeros((len(rows), n), dtype=torch.long)
        for i, (r, p) in enumerate(zip(rows, positions)):
            ids[i, n - len(r):] = torch.tensor(r)
            attn[i, n - len(r):] = 1
            pos[i, n - len(r):] = torch.as_tensor(p)
        ids, attn, pos = ids.to(self.device), attn.to(self.device), pos.to(self.device)
        static = static_cache(self.model, len(rows), columns)
        cache = {} if static is None else {CACHE_ARG: static, **positions_kwarg(static, 0, n, self.device)}
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, **cache, **KEEP_LAST)
        return static, attn, out

    def _keep_cache(self, out) -> None:
        """The cache the next forward pass continues: the static one (written in place) or the returned one."""
        self._past = self._static if self._static is not None else cache_of(out)

    def _feed(self, rows: list[list[int]], positions: list[list[int]] | None = None) -> torch.Tensor:
        """Feed each row its tokens (rows left-padded with masked padding); returns the last logits. Their
        position ids continue each row's (``positions``: given, the tracker already past them)."""
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.tok.pad_id, dtype=torch.long)
        new = torch.zeros((len(rows), n), dtype=torch.long)
        pos = torch.zeros((len(rows), n), dtype=torch.long)  # masked padding: any position
        batch_row = self.live_rows or range(len(rows))  # the position tracker counts rows of the whole batch
        for i, r in enumerate(rows):
            if r:
                ids[i, n - len(r):] = torch.tensor(r)
                new[i, n - len(r):] = 1
                pos[i, n - len(r):] = torch.tensor(self.positions.feed(batch_row[i], r) if positions is None
                                                   else positions[i])
        ids, new, pos = ids.to(self.device), new.to(self.device), pos.to(self.device)
        at = positions_kwarg(self._static, self._attn.shape[1], n, self.device)
        self._attn = torch.cat([self._attn, new], dim=1)
        out = self.model(input_ids=ids, attention_mask=self._attn, position_ids=pos, use_cache=True,
                         **{CACHE_ARG: self._past}, **at, **KEEP_LAST)
        self._keep_cache(out)
        return out.logits[:, -1]

    # -- spans --------------------------------------------------------------------------
    def _text(self, logits, close: int, then: list[int]):
        """Decode a text span per row until ``close`` (at most max_think tokens), then feed ``then``. Rows
        still writing go on in a smaller batch once most have closed (``NarrowMixin``)."""
        B = logits.shape[0]
        mask = self.masks.text_until(close)
        texts: list[list[int]] = [[] for _ in range(B)]
        done = [False] * B
        writing = list(range(B))  # batch rows of the current cache (and of ``logits``)
        for _ in range(self.max_think):
            nxt = constrained_next(logits, mask, self.temperature, self.generator).tolist()
            feed = []
            for i, t in zip(writing, nxt):
                if done[i]:
                    feed.append([])
                    continue
                feed.append([t])
                if t == close:
                    done[i] = True
                else:
                    texts[i].append(t)
            if all(done):
                self._widen()
                last = dict(zip(writing, feed))
                return texts, done, self._feed([last.get(i, []) + then for i in range(B)])
            logits = self._feed(feed)
            going = [k for k, i in enumerate(writing) if not done[i]]
            if len(going) <= self.narrow_below * len(writing) and self._narrow([writing[k] for k in going]):
                writing, logits = [writing[k] for k in going], logits[going]
        self._widen()
        closed = list(done)
        return texts, closed, self._feed([([] if done[i] else [close]) + then for i in range(len(done))])

    def _action(self, logits, forced: list[int | None] | None, then: list[int]):
        ids = constrained_next(logits, self.masks.action, self.temperature, self.generator).tolist()
        if forced is not None:
            ids = [self.tok.action(a) if a is not None else t for a, t in zip(forced, ids)]
        return ids, self._feed([[a, *then] for a in ids])

    def _feed_one(self, ids: torch.Tensor) -> torch.Tensor:
        """Fast path: every row takes exactly one token (image spans)."""
        ids = ids.to(self.device)[:, None]
        self.positions.advance()
        pos = torch.tensor(self.positions.last, dtype=torch.long, device=self.device)[:, None]
        at = positions_kwarg(self._static, self._attn.shape[1], 1, self.device)
        self._attn = torch.cat([self._attn, torch.ones_like(ids)], dim=1)
        out = self.model(input_ids=ids, attention_mask=self._attn, position_ids=pos, use_cache=True,
                         **{CACHE_ARG: self._past}, **at)
        self._keep_cache(out)
        return out.logits[:, -1]

    @torch.no_grad()
    def imagine_from(self, rows: list[list[int]]) -> np.ndarray:
        """Given contexts that end with ``<imagine>`` (after a step's action), the codes [B, tokens_per_frame]
        of the frame the model imagines next. For offline measures (``rig_core/review/moves.py``)."""
        self._drop_step_cache()
        images, _ = self._image(self._start(rows), None, self._drafts_from_contexts(rows))
        self._drop_step_cache()
        return np.stack([self.tok.codes(im) for im in images])

    def _drafts(self, frames: list, actions: list[int]) -> FrameDrafts:
        """Drafts of the next frames from ``frames`` (image token ids of the frame before each) and the action
        tokens taken in between."""
        return FrameDrafts(np.stack([np.asarray(f) for f in frames]), [self.tok.action_index(a) for a in actions],
                           self.shifts, self.grid)

    def _drafts_from_contexts(self, rows: list[list[int]]) -> FrameDrafts:
        """Drafts for contexts that end with ``<imagine>``: from each one's last frame and last action."""
        s, F = self.tok.special, self.image_tok.tokens_per_frame
        frames, actions = [], []
        for r in rows:
            opened = [i for i, t in enumerate(r) if t in (s["<obs>"], s["<imagine>"])][:-1]
            at = opened[-1] + 1 if opened else 0  # the frame before the one to imagine
            frame = r[at:at + F]
            frames.append(frame if len(frame) == F else [r[-1]] * F)
            acts = [i for i, t in enumerate(r) if t == s["<act>"]]
            actions.append(r[acts[-1] + 1] if acts else r[-1])
        return self._drafts(frames, actions)

    @torch.no_grad()
    def act(self, frames: np.ndarray, forced_actions: list[int | None] | None = None,
            rows: list[int] | None = None, lookahead: int = 0, review: bool = True,
            imagine: bool = True, candidates: int | None = None, candidate_steps: int = 0,
            also: list[int | None] | None = None) -> list[StepOutput]:
        """One real step for environments ``rows`` (default: all) whose current frames are ``frames``.

        With ``lookahead`` N > 0 (a lookahead checkpoint): after the first imagined frame the model
        continues N imagined steps on its own frames, writes a review and then the action to take. With
        the review cue (rig.json ``review_cue``) the system writes the proposed action after ``<review>``.
        Guard (``self.guard``, on by default): when a further thought or the review runs into the text
        limit, the proposal is taken (``StepOutput.fallback``), not an action read off a cut-off text.
        ``review=False`` stops after the imagined steps (the proposal is the action): how
        ``rig augment --stage review`` gets a basic policy's proposals. The history keeps every step in
        the basic layout (observe, think, act, imagine) with the action taken and, once the next frame
        arrives, that real frame in the imagine span, as the training data has it.
        ``review_threshold`` tau (``self.review_threshold``): the review corrects only when its probability
        of a correction at the first token is at least tau; a confirmed proposal is the action taken.
        ``imagine=False`` (N = 0 only) skips decoding the imagined frame (``imagined_codes`` are then
        zeros): for walking a real episode, where the next real frame replaces it anyway.
        ``candidates`` K (``branches.py``): after the thought, the policy's K most probable actions (and each
        row's ``also`` action) are decoded as rows of one batch, each imagining ``candidate_steps`` steps
        (``StepOutput.candidates``). With ``review`` each is scored by the review's P(worse) at its first token
        and the action taken is chosen among them (``branches.choose``, ``candidate_margin``; K = 1: the top
        action, nothing decoded); without, they are only recorded and the drawn action is taken.
        """
        if not imagine and lookahead:
            raise ValueError("lookahead needs the imagined frame")
        if candidates is not None and (candidates < 1 or (review and (lookahead or forced_actions is not None))):
            raise ValueError("candidates: at least one, and chosen by the review only without lookahead or forcing")
        if lookahead and not (self.thinks and self.imagines):
            raise RigError(f"this model was trained with --spans {','.join(self.builder.spans)}: it cannot imagine "
                           f"and review {lookahead} steps ahead", "play it with --test-time-steps 0")
        rows = list(range(len(self.prefixes))) if rows is None else list(rows)
        verify = candidate_steps if candidates and candidates > 1 and review else None
        recs, logits = self._observe(frames, rows, lookahead, verify)
        branch = (candidates, candidate_steps, also, review) if candidates else None
        logits = self._propose(recs, logits, forced_actions, imagine, more=lookahead > 0, rows=rows, branch=branch)
        for k in range(lookahead):
            logits = self._imagine_further(recs, logits, last=k + 1 == lookahead, review=review)
        if lookahead and review:
            self._decide(recs, logits, forced_actions)
        if not self.step_cache or lookahead:
            self._drop_step_cache()
        s = self.tok.special
        close = s["</imagine>"] if self.imagines else s["</act>"]
        for b, r in zip(rows, recs):  # the history keeps a basic step with the action taken, as training data has
            self.history[b].append(r.basic_step(close, s["<act>"]))
            self._forget_old_steps(b)
        return [StepOutput(thought=self.tok.decode_text(r.thought), action=self.tok.action_index(r.taken),
                           imagined_codes=self.tok.codes(r.image), think_tokens=len(r.thought),
                           think_closed=r.thought_closed and r.ahead_closed, review=self.tok.decode_text(r.review),
                           proposed=self.tok.action_index(r.proposed), lookahead=r.further, fallback=r.fallback,
                           p_worse=r.p_worse, action_probs=r.action_probs, candidates=r.branches) for r in recs]

    # -- the named steps of act ---------------------------------------------------------
    def _observe(self, frames: np.ndarray, rows: list[int], lookahead: int,
                 verify: int | None = None) -> tuple[list[RowStep], torch.Tensor]:
        """Encode the frames, put each into the last step's imagine span (what really came next), and prefill
        every row's context up to ``<think>`` (``<act>`` for a model trained without thoughts)."""
        s = self.tok.special
        codes = self.image_tok.encode(np.asarray(frames))
        for b, c in zip(rows, codes):
            self._observe_outcome(b, c)
        recs = [RowStep(obs=[s["<obs>"], *self.tok.images(c).tolist(), s["</obs>"]]) for c in codes]
        opening = s["<think>"] if self.thinks else s["<act>"]
        self._contexts = [self._context(b, r.obs + [opening], lookahead, verify) for b, r in zip(rows, recs)]
        logits = None if lookahead else self._resume(rows, self._contexts, lookahead, len(recs[0].obs) + 1)
        if logits is None:
            logits = self._start(self._contexts, lookahead)
        return recs, logits

    def _propose(self, recs: list[RowStep], logits, forced, imagine: bool, more: bool, rows: list[int],
                 branch: tuple | None = None):
        """Think, act, and imagine the next frame (``imagine=False``: placeholders the real frame replaces);
        with ``more`` further imagined steps to come, open the next thought. ``branch`` (K, steps, also,
        review): the candidates are decoded after the thought, and with ``review`` the action is chosen."""
        s = self.tok.special
        imagine = imagine and self.imagines
        if self.thinks:
            thoughts, closed, logits = self._text(logits, s["</think>"], [s["<act>"]])
            self._remember_act_column(rows, self._contexts, thoughts, lookahead=int(more))
        else:  # the context already ends with <act>
            thoughts, closed = [[] for _ in recs], [True] * len(recs)
            self._remember_act_column(rows, self._contexts, thoughts, lookahead=int(more), closing=[])
        probs = constrained_probs(logits, self._action_ids, self.temperature).cpu().numpy()  # before the draw
        then = [s["</act>"], s["<imagine>"]] if imagine else []
        chosen = self._candidates(recs, thoughts, probs, *branch) if branch else None
        if chosen is None:
            acts, logits = self._action(logits, forced, then)
            drawn = acts
        else:  # the candidate chosen is taken; the policy's own draw is the proposal
            drawn = constrained_next(logits, self.masks.action, self.temperature, self.generator).tolist()
            acts = [self.tok.action(a) for a in chosen]
            logits = self._feed([[a, *then] for a in acts])
        if imagine:
            images, logits = self._image(logits, [[s["</imagine>"], s["<think>"]]] * len(recs) if more else None,
                                         self._drafts([r.obs[1:-1] for r in recs], acts))
        else:
            images = np.full((len(recs), self.image_tok.tokens_per_frame), self.tok.images(np.zeros(1, np.int64))[0])
        for r, t, c, d, a, im, p in zip(recs, thoughts, closed, drawn, acts, images, probs):
            r.thought, r.thought_closed, r.proposed, r.taken, r.image, r.action_probs = t, c, d, a, im, p
            r.tokens = r.obs + self._step_tail(t, a, im)
        return logits

    def _candidates(self, recs: list[RowStep], thoughts: list[list[int]], probs: np.ndarray, k: int, steps: int,
                    also: list[int | None] | None, review: bool) -> list[int] | None:
        """Each row's candidates after its thought (``branches.py``), kept in ``RowStep.branches``; the actions
        chosen with ``review`` (K = 1: the top one, nothing decoded), else None."""
        s = self.tok.special
        cands = candidate_lists(probs, k, also)
        if review and k == 1:
            return [c[0] for c in cands]
        closing = [s["</think>"], s["<act>"]] if self.thinks else []
        prefixes = [c + t + closing for c, t in zip(self._contexts, thoughts)]
        branches = self._branch(prefixes, cands, probs, steps, review, [r.obs[1:-1] for r in recs])
        for r, b in zip(recs, branches):
            r.branches = b
        return [b[choose([x.p_worse for x in b], self.candidate_margin)].action for b in branches] if review else None

    def _imagine_further(self, recs: list[RowStep], logits, last: bool, review: bool) -> torch.Tensor:
        """One further imagined step on the model's own frame; after the last, open the review (with the cue:
        the proposal) when ``review``."""
        s = self.tok.special
        more, ok, logits = self._text(logits, s["</think>"], [s["<act>"]])
        ids, logits = self._action(logits, None, [s["</act>"], s["<imagine>"]])
        nxt = ([[s["</imagine>"], s["<think>"]]] * len(recs) if not last
               else [[s["</imagine>"], *self.builder.review_opening(self.tok.action_index(r.proposed))] for r in recs]
               if review else None)
        before = [self.tok.images(r.further[-1][2]) if r.further else r.image for r in recs]
        images, logits = self._image(logits, nxt, self._drafts(before, ids))
        for r, t, c, a, im in zip(recs, more, ok, ids, images):
            r.ahead_closed = r.ahead_closed and c
            r.tokens += self._step_tail(t, a, im)
            r.further.append((self.tok.decode_text(t), self.tok.action_index(a), self.tok.codes(im)))
        return logits

    def _decide(self, recs: list[RowStep], logits, forced) -> None:
        """The review and the action after it. Guard (``self.guard``): a thought or review cut off at the limit
        is no basis for a correction, so the proposal is taken."""
        texts, ok, p_worse, taken, _ = self._review(logits, [r.proposed for r in recs], forced,
                                                    [self.tok.special["</act>"]])
        forced = forced or [None] * len(recs)
        for r, t, c, p, a, f in zip(recs, texts, ok, p_worse, taken, forced):
            r.review, r.p_worse, r.ahead_closed = t, p, r.ahead_closed and c
            r.fallback = self.guard and not r.ahead_closed and f is None
            r.taken = r.proposed if r.fallback else a

    def decode_frames(self, codes: np.ndarray) -> np.ndarray:
        return self.image_tok.decode(codes)
