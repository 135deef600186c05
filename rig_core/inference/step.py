"""What one ``RigPolicy.act`` decodes per environment, and the token budgets it plans its context with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TAGS = 2  # the opening and closing tag around a span (<obs> ... </obs>, <think> ... </think>, ...)
ACT_SPAN = 3  # <act> ACTION </act>
REVIEW_SPAN = 6  # <review>, the cued proposal, </review>, <act> ACTION </act>: besides the review's text
SLACK = 16  # spare cache columns per act
REVIEW_OPENING = 2  # <review> and the cued proposal, after which the verdict is read


@dataclass(frozen=True)
class TokenBudget:
    """Most tokens each part of a step can take, for ``frame`` image tokens and thoughts of at most ``think``."""

    frame: int
    think: int
    thinks: bool = True  # the model writes a thought each step (--spans)
    imagines: bool = True  # and imagines the next frame

    @property
    def further_step(self) -> int:
        """One further imagined step: think, act, imagine."""
        return self.think + TAGS + ACT_SPAN + self.frame + TAGS

    @property
    def shortest_step(self) -> int:
        """The fewest tokens a past step of the history can take (an empty thought)."""
        return self.frame + TAGS + TAGS * self.thinks + ACT_SPAN + (self.frame + TAGS) * self.imagines

    @property
    def step(self) -> int:
        """A real step: the observed frame, then think, act and imagine (the spans the model has)."""
        return self.frame + TAGS + (self.think + TAGS) * self.thinks + ACT_SPAN + (self.frame + TAGS) * self.imagines

    @property
    def review(self) -> int:
        return self.think + REVIEW_SPAN

    def verify(self, steps: int | None) -> int:
        """Context kept free beyond a real step for candidates imagined ``steps`` steps and reviewed (None:
        none): the further steps and the review's opening."""
        return 0 if steps is None else max(0, steps - 1) * self.further_step + REVIEW_OPENING

    def reserve(self, lookahead: int) -> int:
        """Context kept free for what one act writes after the history: the step, and with ``lookahead``
        further imagined steps, those and the review."""
        return self.step + (lookahead * self.further_step + self.review if lookahead else 0)

    def columns(self, lookahead: int) -> int:
        """Most cache columns one act adds after its prefill (each decoded token is one column), and the room a
        frame decoded with drafts takes while it is decoded (``image_decoding.py``): the masked columns of rejected
        drafts and of rows decoded apart, and one pass's draft, at most a frame each."""
        return self.step + lookahead * self.further_step + self.think + SLACK + 3 * self.frame * self.imagines


@dataclass
class StepOutput:
    thought: str
    action: int
    imagined_codes: np.ndarray
    think_tokens: int
    think_closed: bool  # False: a text span hit the length limit and was closed by force
    fallback: bool = False  # with lookahead: a further thought or the review hit the limit, the proposal was taken
    review: str = ""  # with lookahead: the review written after the imagined steps
    proposed: int | None = None  # with lookahead: the first proposed action (the final one is ``action``)
    lookahead: list | None = None  # with lookahead: (thought, action, image codes) of each further imagined step
    p_worse: float | None = None  # with lookahead: the review's probability of a correction at its first token
    action_probs: np.ndarray | None = None  # [actions] the probabilities the proposed action was drawn from
    candidates: list | None = None  # with candidates: a ``branches.Branch`` per candidate, the policy's order first


@dataclass
class RowStep:
    """One environment's step while it is decoded: token ids throughout (actions as action tokens)."""

    obs: list[int]  # <obs> image tokens </obs>
    thought: list[int] = field(default_factory=list)
    proposed: int = 0  # the action token decoded after the thought
    action_probs: np.ndarray | None = None  # the probabilities it was drawn from, by action index
    image: np.ndarray | None = None  # the imagined frame's image tokens
    tokens: list[int] = field(default_factory=list)  # the step in the basic layout, then any further imagined steps
    further: list = field(default_factory=list)  # (thought, action index, codes) of each further imagined step
    thought_closed: bool = True  # the thought ended before the length limit
    ahead_closed: bool = True  # so did every further thought and the review
    review: list[int] = field(default_factory=list)
    p_worse: float | None = None
    taken: int = 0  # the action token taken (the proposal unless the review changed it)
    fallback: bool = False  # a cut-off text left the proposal in place
    branches: list | None = None  # with candidates: the ``branches.Branch`` of each

    def basic_step(self, close: int, act: int) -> list[int]:
        """The step as the history keeps it: observe, think, act (the action taken), imagine."""
        step = self.tokens[: self.tokens.index(close) + 1]
        step[step.index(act) + 1] = self.taken
        return step
