"""The step sequence of docs/model.md, with the loss mask and a span type per token.

    <bos> <task> instruction </task>
    <obs> img x81 </obs> <think> text </think> <act> ACTION </act> <imagine> img x81 </imagine>   (per step)

Loss is on the think text, the action and the imagined frame (each with its closing tag),
never on the task or the observation. Span types let training report a loss per span.

A lookahead (review) sample ends with the step being decided: the proposal as the policy made it
(think, act, imagine, then further imagined steps), all context, then
``<review> text </review> <act> ACTION </act>`` with the loss. With the review cue (``review_cue``,
recorded in rig.json) the system writes the proposed action right after ``<review>``, as context,
so the review reads the proposal next to it instead of looking it up hundreds of tokens back; and
the further imagined steps' thoughts carry loss (``chain_thoughts``), so the model learns to think
after an imagined frame (without it, nothing teaches it what follows ``</imagine> <think>``).
An alignment sample has the same
proposal with the real frames in its imagine spans, and the loss only there. Earlier steps of
both are context only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rig_core.errors import RigError
from rig_core.tokenize.positions import PositionLayout
from rig_core.tokenize.vocab import RigTokenizer

IGNORE = -100
SPAN_CONTEXT, SPAN_THINK, SPAN_ACT, SPAN_IMAGINE, SPAN_REVIEW = 0, 1, 2, 3, 4
SPAN_NAMES = {SPAN_THINK: "think", SPAN_ACT: "act", SPAN_IMAGINE: "imagine", SPAN_REVIEW: "review"}
# What a step can hold (``--spans``): the action always, the thought and the imagined frame optionally.
ALL_SPANS = ("think", "act", "imagine")
SPAN_VARIANTS = ("act", "think,act", "act,imagine", "think,act,imagine")


def parse_spans(text: str) -> tuple[str, ...]:
    """``think,act,imagine`` and its variants as a tuple in step order; one clear error for anything else."""
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    spans = tuple(s for s in ALL_SPANS if s in names)
    if "act" not in names or len(spans) != len(names) or len(set(names)) != len(names):
        raise RigError(f"--spans {text!r} is not a step layout",
                       f"choose one of: {', '.join(SPAN_VARIANTS)} (every step holds its action)")
    return spans


@dataclass
class Piece:
    """Token ids being assembled, with labels and span types."""

    ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    spans: list[int] = field(default_factory=list)

    def context_only(self) -> "Piece":
        """The same tokens with no loss on any of them."""
        return Piece(list(self.ids), [IGNORE] * len(self.ids), [SPAN_CONTEXT] * len(self.ids))

    def add(self, ids, span: int = SPAN_CONTEXT, train: bool = False) -> "Piece":
        ids = [int(i) for i in ids]
        self.ids += ids
        self.labels += ids if train else [IGNORE] * len(ids)
        self.spans += [span] * len(ids)
        return self

    def extend(self, other: "Piece") -> "Piece":
        self.ids += other.ids
        self.labels += other.labels
        self.spans += other.spans
        return self

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"input_ids": np.asarray(self.ids, np.int64), "labels": np.asarray(self.labels, np.int64),
                "spans": np.asarray(self.spans, np.int8)}


class SequenceBuilder:
    def __init__(self, tok: RigTokenizer, tokens_per_frame: int, think_positions: int = 0, image_row_stride: int = 0,
                 review_cue: bool = False, spans: str = "think,act,imagine"):
        self.tok = tok
        self.spans = parse_spans(spans)
        self.thinks, self.imagines = "think" in self.spans, "imagine" in self.spans
        self.review_cue = bool(review_cue)
        self.tpf = tokens_per_frame
        self.s = tok.special
        row = int(round(tokens_per_frame ** 0.5))  # square grids (the grid tokenizer: 9x9 cells)
        if image_row_stride and (row * row != tokens_per_frame or image_row_stride < row):
            raise RigError(f"an image row stride of {image_row_stride} needs a square frame grid of at most that many "
                           f"cells per row ({tokens_per_frame} tokens per frame)", "pass --image-row-stride 0")
        # position ids (rig_core/tokenize/positions.py)
        self.layout = PositionLayout.of(tok, think_positions, row, image_row_stride)
        self._memo: dict[str, list[int]] = {}  # texts repeat a lot: tokenize each once

    def _text_ids(self, text: str) -> list[int]:
        ids = self._memo.get(text)
        if ids is None:
            ids = self.tok.text(text)
            if len(self._memo) < 100_000:
                self._memo[text] = ids
        return ids

    # -- pieces -----------------------------------------------------------------------
    def prefix(self, instruction: str) -> Piece:
        s = self.s
        return Piece().add([s["<bos>"], s["<task>"]] + self.tok.text(instruction) + [s["</task>"]])

    def observation(self, codes: np.ndarray) -> Piece:
        s = self.s
        return Piece().add([s["<obs>"], *self.tok.images(codes), s["</obs>"]])

    def think(self, text_ids: list[int], span: int = SPAN_THINK, open_tag="<think>", close_tag="</think>",
              train: bool = True) -> Piece:
        s = self.s
        return Piece().add([s[open_tag]]).add(list(text_ids) + [s[close_tag]], span, train=train)

    def act(self, action_index: int, train: bool = True) -> Piece:
        s = self.s
        return Piece().add([s["<act>"]]).add([self.tok.action(action_index), s["</act>"]], SPAN_ACT, train=train)

    def imagine(self, codes: np.ndarray, train: bool = True) -> Piece:
        s = self.s
        return Piece().add([s["<imagine>"]]).add([*self.tok.images(codes), s["</imagine>"]], SPAN_IMAGINE,
                                                 train=train)

    def proposal(self, obs_codes: np.ndarray, chain: list[tuple[str, int, np.ndarray]],
                 train_images: bool = False, train_thoughts: bool = False) -> Piece:
        """The step being decided as proposed: observe, then think / act / imagine for each (text, action,
        frame codes) of the chain. The imagined frames can carry loss (``train_images``), and so can the
        thoughts written after an imagined frame (``train_thoughts``; never the proposal's own thought or
        any action: the proposal is what the review judges, not a target). Codes of None: no imagine span
        (a candidate reviewed straight after its action)."""
        p = self.observation(obs_codes)
        for m, (text, action, codes) in enumerate(chain):
            p.extend(self.think(self._text_ids(text), train=train_thoughts and m > 0))
            p.extend(self.act(action, train=False))
            if codes is not None:
                p.extend(self.imagine(codes, train=train_images))
        return p

    def review(self, text: str, action_index: int, cue: int | None = None) -> Piece:
        """``<review> [PROPOSAL] text </review> <act> ACTION </act>``, with the loss on text and action; the
        ``cue`` (the proposed action, written by the system) is context."""
        s = self.s
        p = Piece().add([s["<review>"]] + ([self.tok.action(cue)] if cue is not None else []))
        p.add(self._text_ids(text) + [s["</review>"]], SPAN_REVIEW, train=True)
        return p.extend(self.act(action_index))

    def verdict(self, text: str, cue: int | None = None) -> Piece:
        """``<review> [CANDIDATE] text </review>`` with the loss on the text (its first token the verdict) and the
        closing tag: a candidate sample's end, which names no action to take."""
        s = self.s
        p = Piece().add([s["<review>"]] + ([self.tok.action(cue)] if cue is not None else []))
        return p.add(self._text_ids(text) + [s["</review>"]], SPAN_REVIEW, train=True)

    def review_opening(self, proposal: int) -> list[int]:
        """The tokens the system writes to open a review of ``proposal`` (what ``review`` puts before the text)."""
        return [self.s["<review>"]] + ([self.tok.action(proposal)] if self.review_cue else [])

    def step(self, obs_codes: np.ndarray, text: str, action_index: int, next_codes: np.ndarray | None) -> Piece:
        """One real step: observe, think, act, imagine the next frame (``next_codes`` None: end after the
        action, for a step whose next frame is not the outcome of that action). Spans the builder's layout
        leaves out (``spans``) are absent, not masked."""
        p = self.observation(obs_codes)
        if self.thinks:
            p.extend(self.think(self._text_ids(text)))
        p.extend(self.act(action_index))
        return p if next_codes is None or not self.imagines else p.extend(self.imagine(next_codes))

    # -- sizes ------------------------------------------------------------------------
    def step_length(self, text_tokens: int) -> int:
        """Tokens of one step whose think text has ``text_tokens`` tokens."""
        return (self.tpf + 2) + (text_tokens + 2) * self.thinks + 3 + (self.tpf + 2) * self.imagines

    def sample(self, instruction: str, steps: list[tuple[np.ndarray, str, int, np.ndarray]],
               max_len: int | None = None) -> dict[str, np.ndarray]:
        """A training sample: the task prefix and consecutive steps, cut to ``max_len`` from the left
        at a step boundary (the most recent steps are kept)."""
        return self.assemble(instruction, [self.step(*st) for st in steps], max_len=max_len)

    def assemble(self, instruction: str, pieces: list[Piece], tail: Piece | None = None,
                 max_len: int | None = None) -> dict[str, np.ndarray]:
        """Task prefix + ``pieces`` (the oldest dropped first to fit ``max_len``) + ``tail`` (always kept)."""
        prefix = self.prefix(instruction)
        pieces = list(pieces)
        fixed = len(prefix) + (len(tail) if tail is not None else 0)
        if max_len is not None:
            while pieces and fixed + sum(len(p) for p in pieces) > max_len:
                pieces.pop(0)
        out = Piece().extend(prefix)
        for p in pieces:
            out.extend(p)
        if tail is not None:
            out.extend(tail)
        arrays = out.arrays()
        arrays["position_ids"] = self.layout.positions(arrays["input_ids"])
        return arrays

    def candidate_sample(self, instruction: str, history: list[tuple[np.ndarray, str, int, np.ndarray]],
                         obs_codes: np.ndarray, chain: list[tuple[str, int, np.ndarray | None]], text: str,
                         max_len: int | None = None) -> dict[str, np.ndarray]:
        """A candidate sample: the state's context, then ``chain`` as ``proposal`` takes it: (the policy's
        thought, the candidate, its imagined frame or None for no frame: the review comes straight after the
        action), then (thought, action, frame) of each further imagined step; all context. Then the review
        ``text`` with the loss: its first token is the verdict."""
        past = [self.step(*st).context_only() for st in history]
        if not chain:
            raise ValueError("a candidate sample needs the candidate: chain[0] = (thought, action, codes or None)")
        tail = self.proposal(obs_codes, chain)
        tail.extend(self.verdict(text, cue=int(chain[0][1]) if self.review_cue else None))
        return self.assemble(instruction, past, tail, max_len)

    def lookahead_sample(self, instruction: str, history: list[tuple[np.ndarray, str, int, np.ndarray]],
                         obs_codes: np.ndarray, chain: list[tuple[str, int, np.ndarray]], *,
                         review: tuple[str, int] | None = None, max_len: int | None = None,
                         chain_thoughts: bool = False) -> dict[str, np.ndarray]:
        """A review sample (``review`` = (text, action): loss on review and action, and with ``chain_thoughts``
        on the thoughts after imagined frames) or, without ``review``, an alignment sample (``chain`` holds
        the real frames: loss on the imagine spans). History is context."""
        past = [self.step(*st).context_only() for st in history]
        is_review = review is not None
        tail = self.proposal(obs_codes, chain, train_images=not is_review, train_thoughts=is_review and chain_thoughts)
        if review is not None:
            cue = int(chain[0][1]) if self.review_cue and chain else None
            tail.extend(self.review(*review, cue=cue))
        return self.assemble(instruction, past, tail, max_len)
