"""Playing episodes with the RIG policy or a baseline agent through one loop, batched over environments."""

from __future__ import annotations

from typing import Callable, Collection, Iterator

import numpy as np

from rig_core.agents import make_agent
from rig_core.envs import make_env
from rig_core.errors import RigError
from rig_core.inference.branches import check_candidates
from rig_core.annotate.adherence import goals_named
from rig_core.records import EpisodeResult, StepRecord
from rig_core.tasks import Task


class Baseline:
    """The expert or random agent behind the same interface as RigPolicy (one agent per environment)."""

    def __init__(self, name: str, env, n: int):
        self.name = name
        self.agents = [make_agent(name, env) for _ in range(n)]

    def begin(self, tasks: list[Task], seeds: list[int]) -> None:
        for a, t, s in zip(self.agents, tasks, seeds):
            a.reset(t, s)


def imagining_groups(active: list[int], imagine: bool | Collection[int]) -> list[tuple[list[int], bool]]:
    """The active environments split into one batched policy call that imagines and one that does not."""
    if imagine is True or imagine is False:
        return [(active, imagine)]
    yes = [i for i in active if i in imagine]
    no = [i for i in active if i not in imagine]
    return [(rows, flag) for rows, flag in ((yes, True), (no, False)) if rows]


def play(tasks: list[Task], seeds: list[int], *, policy=None, agent: str | None = None, max_steps: int | None = None,
         test_time_steps: int = 0, compare_expert: bool = False,
         on_step: Callable[[StepRecord], None] | None = None,
         imagine: bool | Collection[int] = True, picker=None, candidates: int | None = None
         ) -> Iterator[EpisodeResult]:
    """Play one episode per (task, seed), all environments in lock-step (one batched policy call per step).

    ``imagine``: which environments' imagined next frames are decoded at N = 0 (True: all, False: none, or
    a set of environment indices, e.g. the episodes an evaluation records). An imagined frame is never
    acted on and the real next frame replaces it in the history, so leaving it out changes no greedy
    thought or action; it saves the 81 image tokens that are most of a step's decoding. Those steps'
    ``StepRecord.imagined`` is None. Looking ahead (N > 0) always imagines.

    ``picker`` (with a policy): chooses the action each environment takes from the policy's step output (its
    action probabilities) and the live env, e.g. among the policy's top candidates
    (``rig_core/review/candidates.py``). It has ``begin(tasks, seeds, envs)``, called once the envs are reset,
    and ``pick(rows, envs, obs, outputs) -> actions``, called at every step for every active environment. The
    history records the action taken; ``StepRecord.proposed_name`` and ``EpisodeResult.changed`` the policy's
    own where the picker took another.

    ``candidates`` K (with a policy): the policy's K most probable actions after its thought are each imagined
    ``test_time_steps`` steps and scored by its review, and the one chosen is played (``inference/branches.py``;
    K = 1: its top action). Its own draw is then the proposal; ``EpisodeResult.ranks`` has the policy's rank of
    each action played."""
    if (policy is None) == (agent is None):
        raise ValueError("pass exactly one of policy or agent")
    if picker is not None and policy is None:
        raise ValueError("a picker chooses among a policy's actions: pass a policy")
    if test_time_steps < 0:
        raise RigError(f"--test-time-steps {test_time_steps} is negative", "pass 0 or more")
    if policy is not None and candidates is not None:
        check_candidates(candidates, test_time_steps, policy.stage, getattr(policy, "checkpoint", ""))
    elif policy is not None and test_time_steps > 0 and policy.stage != "lookahead":
        raise RigError(f"the checkpoint {getattr(policy, 'checkpoint', '')} was trained without review data "
                       f"(stage '{policy.stage}'), so it cannot look ahead with --test-time-steps {test_time_steps}",
                       "use --test-time-steps 0, or a checkpoint from rig train --stage lookahead")
    n = len(tasks)
    envs = [make_env("crafter", length=None) for _ in range(n)]
    names = envs[0].action_names
    obs = [e.reset(s) for e, s in zip(envs, seeds)]
    base = Baseline(agent, envs[0], n) if agent else None
    if base:
        base.begin(tasks, seeds)
    else:
        policy.reset([t.instruction(s) for t, s in zip(tasks, seeds)])
    if picker is not None:
        picker.begin(tasks, seeds, envs)
    experts = None
    if compare_expert:
        experts = Baseline("expert", envs[0], n)
        experts.begin(tasks, seeds)
    budgets = [max_steps or t.budget for t in tasks]
    results = [EpisodeResult(i, seeds[i], tasks[i].id, 0, False, False, 0.0, []) for i in range(n)]
    unlocked = [set() for _ in range(n)]
    last = [-1] * n  # the action each environment took at its previous step
    active = list(range(n))
    while active:
        if base:
            outs = [(base.agents[i].act(obs[i]), "", None, True, "", None, False, None, None, None, None)
                    for i in active]
        else:
            stepped = {}
            ahead = 0 if candidates else test_time_steps  # (candidates imagine in rows of their own)
            for rows, im in imagining_groups(active, True if ahead else imagine):
                for i, o in zip(rows, policy.act(np.stack([obs[i].frame for i in rows]), rows=rows, lookahead=ahead,
                                                 imagine=im, candidates=candidates, candidate_steps=test_time_steps)):
                    stepped[i] = (o, im)
            outs = [(o.action, o.thought, policy.decode_frames(o.imagined_codes[None])[0] if im else None,
                     o.think_closed, o.review, o.proposed if test_time_steps or candidates else None, o.fallback,
                     o.p_worse, o.imagined_codes if im else None, o.lookahead,
                     _ranked(o, names) if candidates else None)
                    for o, im in (stepped[i] for i in active)]
            if picker is not None:
                outs = _picked(policy, picker, active, envs, obs, [stepped[i][0] for i in active], outs)
        still = []
        for k, i in enumerate(active):
            # a baseline's outputs: always valid, no thought, imagination or review
            action, thought, imagined, valid, review, proposed, fallback, p_worse, codes, ahead, ranked = outs[k]
            expert_action = experts.agents[i].act(obs[i]) if experts else None
            frame = obs[i].frame
            obs[i], reward, term, trunc, info = envs[i].step(int(action))
            r = results[i]
            if r.steps:  # copying the last action: how often the player does, and how often the expert would
                r.repeats += int(action == last[i])
                r.expert_repeats += int(expert_action is not None and expert_action == last[i])
            last[i] = int(action)
            r.steps += 1
            r.reward += reward
            r.invalid += int(not valid)
            r.changed += int(proposed is not None and proposed != action)
            r.fallback += int(fallback)
            if not base:
                own, other = goals_named(thought, tasks[i].id)
                r.on_task += int(own)
                r.off_task += int(other)
            if p_worse is not None:
                r.p_worse.append(round(float(p_worse), 4))
            if ranked is not None:
                r.ranks.append(next((rank for a, _, rank, _ in ranked if a == action), -1))
            if expert_action is not None:
                r.compared += 1
                r.agree += int(expert_action == action)
            unlocked[i] |= set(info["achievements"])
            success = tasks[i].is_success(unlocked[i], obs[i].inventory)
            if on_step:
                on_step(StepRecord(env=i, t=r.steps - 1, frame=frame, action=int(action), action_name=names[action],
                                   thought=thought, imagined=imagined, imagined_codes=codes, lookahead=ahead,
                                   review=review, next_frame=obs[i].frame,
                                   proposed_name=names[proposed] if proposed is not None else "", p_worse=p_worse,
                                   candidates=ranked,
                                   inventory=dict(obs[i].inventory), unlocked=sorted(unlocked[i]), reward=reward,
                                   valid=valid, expert_action=expert_action))
            if term or trunc or success or r.steps >= budgets[i]:
                r.success, r.died, r.unlocked = success, term, sorted(unlocked[i])
                r.ended = "" if success else info.get("death", "died") if term else "time"
                yield r
            else:
                still.append(i)
        active = still


def _picked(policy, picker, active: list[int], envs, obs, steps: list, outs: list[tuple]) -> list[tuple]:
    """The step outputs with the picker's actions taken (the policy's own as the proposal); the history
    records each action taken."""
    actions = picker.pick(active, envs, [obs[i] for i in active], steps)
    picked = []
    for i, a, o, out in zip(active, actions, steps, outs):
        if int(a) != o.action:
            policy.rewrite_last_action(i, int(a))
        picked.append((int(a), *out[1:5], o.action if out[5] is None else out[5], *out[6:]))
    return picked


def _ranked(out, names: list[str]) -> list[tuple[int, str, int, float | None]]:
    """A step's candidates as (action, its name, the policy's rank of it, the review's P(worse)), in the policy's
    order."""
    if out.candidates is None:  # one candidate: the top action, not scored
        return [(int(out.action), names[int(out.action)], 0, None)]
    return [(b.action, names[b.action], b.rank, None if b.p_worse is None else round(float(b.p_worse), 4))
            for b in out.candidates]
