"""The expert as an oracle over a live state: its own plan, and its verdict on any proposed first action.

``expert_plan`` is what the review data is judged against (``rollout.review_episodes``): the expert acts on
the real observation (so its memory stays in step with the episode), says what it is after, and plays its
own branch in a fork. ``ExpertPlan.verdicts`` judges a proposed first action the way the review data does: a
fork where the proposal is played and then the expert acts on, against the expert's own branch, compared
after each step j by ``judge.judge`` (same / fine / worse and the reason).

``OracleScorer`` puts that behind the scorer interface of ``candidates.CandidatePlayer``: a privileged
scorer (it reads the live env and keeps one expert per environment in step with the real play), the most
any verifier over the same candidates can know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rig_core.agents import make_agent
from rig_core.agents.base import explain
from rig_core.annotate.context import view_names
from rig_core.review.candidates import Judgement
from rig_core.review.judge import (WORSE, Branch, Snapshot, Verdict, expert_branch, judge, snapshot,
                                  target_in_sight)
from rig_core.review.texts import intent_words
from rig_core.tasks import Task


@dataclass
class ExpertPlan:
    """The expert at one live state: its action and intent, the target the frame shows it is after (None when
    it explores or walks to what no frame shows), the state, and the branch it plays from there."""

    action: int
    intent: Any
    target: tuple[int, int] | None
    start: Snapshot
    branch: Branch

    def verdicts(self, env, obs, expert, proposed: int, horizon: int) -> list[Verdict]:
        """The verdict on playing ``proposed`` first, then the expert acting on (a fork of ``env`` at ``obs``,
        with a copy of the ``expert`` this plan came from), after each of 1..``horizon`` steps."""
        proposal = expert_branch(env, obs, expert, proposed, horizon)
        same = int(proposed) == self.action
        return [judge(self.start, proposal, self.branch, j, self.target, same_first=same) for j in range(1, horizon + 1)]


def expert_plan(env, obs, expert, horizon: int) -> ExpertPlan:
    """The expert's plan at the live state ``obs`` of ``env``. The expert acts on ``obs`` here: call it once per
    real observation, as the episode goes on, to keep its memory in step."""
    action = int(expert.act(obs))
    intent = explain(expert, obs)
    target = expert.skills.target
    target = tuple(int(v) for v in target) if target is not None else None
    view = view_names(obs.privileged["semantic"], getattr(env, "semantic_names", {}))
    target = target_in_sight(target, intent_words(intent)[0], {n for row in view for n in row})
    return ExpertPlan(action, intent, target, snapshot(env, obs), expert_branch(env, obs, expert, action, horizon))


class OracleScorer:
    """Judges candidate first actions with the expert in forks of the live env: a candidate is fine when it is
    not worse than the expert's own move after ``horizon`` steps (the rules of the review data). One expert per
    environment acts on every real observation it is shown, so ``score`` must see each row at every step."""

    def __init__(self, horizon: int = 3):
        if horizon < 1:
            raise ValueError("the oracle needs a horizon of at least 1 step")
        self.horizon = horizon
        self.experts: list = []
        self.plans: dict[int, ExpertPlan] = {}  # the last plan of each environment (for records)

    def begin(self, tasks: list[Task], seeds: list[int], envs: list) -> None:
        self.experts = [make_agent("expert", envs[0]) for _ in tasks]
        for x, t, s in zip(self.experts, tasks, seeds):
            x.reset(t, s)
        self.plans = {}

    def score(self, row: int, env, obs, actions: list[int]) -> list[Judgement]:
        expert = self.experts[row]
        plan = self.plans[row] = expert_plan(env, obs, expert, self.horizon)
        out = []
        for a in actions:
            v = plan.verdicts(env, obs, expert, a, self.horizon)[-1]
            out.append(Judgement(fine=v.kind != WORSE, reason=v.reason or v.name))
        return out
