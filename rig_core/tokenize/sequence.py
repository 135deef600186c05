"""The step sequence of DESIGN §4.3, with the loss mask and a span type per token.

    <bos> <task> instruction </task>
    <obs> img x81 </obs> <think> text </think> <act> ACTION </act> <imagine> img x81 </imagine>   (per step)

Loss is on the think text, the action and the imagined frame (each with its closing tag),
never on the task or the observation. Span types let training report a loss per span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rig_core.tokenize.vocab import RigTokenizer

IGNORE = -100
SPAN_CONTEXT, SPAN_THINK, SPAN_ACT, SPAN_IMAGINE, SPAN_REVIEW = 0, 1, 2, 3, 4
SPAN_NAMES = {SPAN_THINK: "think", SPAN_ACT: "act", SPAN_IMAGINE: "imagine", SPAN_REVIEW: "review"}


@dataclass
class Piece:
    """Token ids being assembled, with labels and span types."""

    ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    spans: list[int] = field(default_factory=list)

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
    def __init__(self, tok: RigTokenizer, tokens_per_frame: int):
        self.tok = tok
        self.tpf = tokens_per_frame
        self.s = tok.special
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

    def think(self, text_ids: list[int], span: int = SPAN_THINK, open_tag="<think>", close_tag="</think>") -> Piece:
        s = self.s
        return Piece().add([s[open_tag]]).add(list(text_ids) + [s[close_tag]], span, train=True)

    def act(self, action_index: int) -> Piece:
        s = self.s
        return Piece().add([s["<act>"]]).add([self.tok.action(action_index), s["</act>"]], SPAN_ACT, train=True)

    def imagine(self, codes: np.ndarray) -> Piece:
        s = self.s
        return Piece().add([s["<imagine>"]]).add([*self.tok.images(codes), s["</imagine>"]], SPAN_IMAGINE, train=True)

    def step(self, obs_codes: np.ndarray, text: str, action_index: int, next_codes: np.ndarray) -> Piece:
        """One real step: observe, think, act, imagine the next frame."""
        return (self.observation(obs_codes).extend(self.think(self._text_ids(text)))
                .extend(self.act(action_index)).extend(self.imagine(next_codes)))

    # -- sizes ------------------------------------------------------------------------
    def step_length(self, text_tokens: int) -> int:
        """Tokens of one step whose think text has ``text_tokens`` tokens."""
        return (self.tpf + 2) + (text_tokens + 2) + 3 + (self.tpf + 2)

    def sample(self, instruction: str, steps: list[tuple[np.ndarray, str, int, np.ndarray]],
               max_len: int | None = None) -> dict[str, np.ndarray]:
        """A training sample: the task prefix and consecutive steps, cut to ``max_len`` from the left
        at a step boundary (the most recent steps are kept)."""
        prefix = self.prefix(instruction)
        pieces = [self.step(*st) for st in steps]
        if max_len is not None:
            while pieces and len(prefix) + sum(len(p) for p in pieces) > max_len:
                pieces.pop(0)
        out = Piece().extend(prefix)
        for p in pieces:
            out.extend(p)
        return out.arrays()
