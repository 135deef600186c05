"""Each environment's history of real steps as token ids: how a step is written into it, and the edits the
loop makes once the environment answers (the frame that really followed, the action really taken)."""

from __future__ import annotations

import numpy as np


class StepHistoryMixin:
    """For ``RigPolicy``: needs ``self.tok``, ``self.history`` (per row, a list of steps as token ids) and
    ``self.thinks`` / ``self.imagines`` (the spans the model was trained with)."""

    def _step_tail(self, thought: list[int], action: int, image) -> list[int]:
        """``<think> text </think> <act> ACTION </act> <imagine> img </imagine>`` as token ids (the spans the
        model was trained with)."""
        s = self.tok.special
        think = [s["<think>"], *thought, s["</think>"]] if self.thinks else []
        imagined = [s["<imagine>"], *image.tolist(), s["</imagine>"]] if self.imagines else []
        return think + [s["<act>"], action, s["</act>"]] + imagined

    def _observe_outcome(self, row: int, codes: np.ndarray) -> None:
        """Put the frame that really followed the last step into its imagine span.

        In the training data a step's imagine span holds the real next frame, so the context the
        policy acts on keeps what happened, not what it imagined would happen.
        """
        if not self.history[row] or not self.imagines:
            return
        step = self.history[row][-1]
        start = step.index(self.tok.special["<imagine>"]) + 1
        step[start : start + len(codes)] = self.tok.images(codes).tolist()

    def rewrite_last_action(self, row: int, action: int) -> None:
        """Record in the history that ``action`` was taken at the last step (not the one proposed)."""
        step = self.history[row][-1]
        step[step.index(self.tok.special["<act>"]) + 1] = self.tok.action(action)
