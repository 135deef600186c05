"""What one real step and one episode of play were: the records the agent loop fills and views, videos,
logs and metrics read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class StepRecord:
    """What happened at one real step of one environment (for views, logs, videos and metrics)."""

    env: int
    t: int
    frame: np.ndarray
    action: int
    action_name: str
    thought: str = ""
    imagined: np.ndarray | None = None  # the imagined next frame (RIG policy only; None where not decoded)
    imagined_codes: np.ndarray | None = None  # its image codes (None where not decoded)
    lookahead: list | None = None  # with lookahead: (thought, action index, image codes) of each further imagined step
    review: str = ""
    proposed_name: str = ""  # with lookahead: the action proposed before the review (action_name: the one taken)
    p_worse: float | None = None  # with lookahead: the review's P(correction) at its first token
    candidates: list | None = None  # with candidates: (action, name, the policy's rank, the review's P(worse)) each
    next_frame: np.ndarray | None = None
    inventory: dict = field(default_factory=dict)
    unlocked: list = field(default_factory=list)
    reward: float = 0.0
    valid: bool = True
    expert_action: int | None = None


@dataclass
class EpisodeResult:
    env: int
    seed: int
    task: str
    steps: int
    success: bool
    died: bool
    reward: float
    unlocked: list[str]
    ended: str = ""  # how a game that did not succeed ended: a cause of death (rig_core/envs/deaths.py) or "time"
    invalid: int = 0
    changed: int = 0  # lookahead: steps where the review replaced the proposal
    fallback: int = 0  # lookahead: steps where a cut-off text left the proposal in place
    p_worse: list = field(default_factory=list)  # lookahead: the review's P(correction) at each step
    ranks: list = field(default_factory=list)  # candidates: the policy's rank of the action played at each step
    agree: int = 0
    compared: int = 0
    repeats: int = 0  # steps (after the first) whose action is the one just taken
    expert_repeats: int = 0  # compared steps (after the first) where the expert's action is the one just taken
    on_task: int = 0  # RIG policy: steps whose thought names the task's goal
    off_task: int = 0  # ... that name another task's goal and not its own (the thought drifted)
