"""The review span of ``RigPolicy``'s step loop: the verdict at the review's first text token (P(worse)
from the correction and confirmation openings, decided by ``review_threshold`` when one is set), the review
text, and the action it leaves standing."""

from __future__ import annotations

import torch


class ReviewMixin:
    """Review decoding for ``RigPolicy`` (uses its ``_feed``, ``_text``, ``_action`` and ``_start``)."""

    review_threshold: float | None = None  # None: the review writes its verdict freely
    _openings: tuple[list[int], list[int]] | None = None

    def openings(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(first tokens of the correction phrasings, of the confirmation phrasings) on ``device``: those of the
        review data the checkpoint was trained on (rig.json ``review_openings``), else review.yaml's."""
        if self._openings is None:
            from rig_core.annotate.review_words import opening_tokens

            stored = (getattr(self, "meta", None) or {}).get("review_openings")
            self._openings = ((list(stored["correct"]), list(stored["confirm"])) if stored
                              else opening_tokens(self.tok))
        return (torch.tensor(self._openings[0], device=device), torch.tensor(self._openings[1], device=device))

    def p_correction(self, logits: torch.Tensor) -> torch.Tensor:
        """P(worse) per row of next-token ``logits`` [B, V] at a review's first text token: the mass on the
        correction phrasings' first tokens against the confirmations' (0.5 when both are nil)."""
        worse, fine = self.openings(logits.device)
        p = torch.softmax(logits.float(), -1)
        w, f = p[:, worse].sum(-1), p[:, fine].sum(-1)
        return torch.where(w + f > 0, w / (w + f).clamp_min(1e-30), torch.full_like(w, 0.5))

    def _verdict(self, logits: torch.Tensor):
        """The review's verdict at its first text token (``p_correction``). With ``review_threshold`` tau the
        verdict is decided here: the review opens with the most likely correction token when P(worse) >= tau,
        else with the most likely confirmation token (fed, so the text goes on from it). Returns (first tokens
        per row, P(worse) per row, says worse per row or None without a threshold, the next logits)."""
        p_worse = self.p_correction(logits)
        if self.review_threshold is None:
            return [[] for _ in range(len(p_worse))], p_worse.tolist(), None, logits
        says = p_worse >= self.review_threshold
        worse, fine = self.openings(logits.device)
        first = torch.where(says, worse[logits[:, worse].argmax(-1)], fine[logits[:, fine].argmax(-1)]).tolist()
        return [[t] for t in first], p_worse.tolist(), says.tolist(), self._feed([[t] for t in first])

    def _review(self, logits, proposed: list[int], forced: list[int | None] | None, then: list[int]):
        """From a review's first text token: the verdict, the text and the action after it (feeding ``then``);
        a proposal (token id) the threshold confirms is the action taken. Returns (review tokens, closed within
        the limit, P(worse), action ids, the next logits)."""
        s = self.tok.special
        first, p_worse, says, logits = self._verdict(logits)
        texts, closed, logits = self._text(logits, s["</review>"], [s["<act>"]])
        final, logits = self._action(logits, forced, then)
        if says is not None:  # the threshold confirmed these proposals: they are the actions taken
            final = [x if w or (forced and forced[i] is not None) else a
                     for i, (a, x, w) in enumerate(zip(proposed, final, says))]
        return [f + t for f, t in zip(first, texts)], closed, p_worse, final, logits

    @torch.no_grad()
    def review_from(self, rows: list[list[int]], proposals: list[int]) -> list[tuple[float, str, int]]:
        """Given contexts that end where a review's text begins (``<review>`` and, with the cue, the proposal)
        and the proposed action of each, write the review as ``act`` does and the action after it (a proposal
        the threshold confirms is kept): (P(worse), review text, action index) per row. For offline measures."""
        self._drop_step_cache()
        reviews, _, p_worse, final, _ = self._review(self._start(rows), [self.tok.action(p) for p in proposals],
                                                     None, [])
        self._drop_step_cache()
        return [(p, self.tok.decode_text(r), self.tok.action_index(a)) for p, r, a in zip(p_worse, reviews, final)]
