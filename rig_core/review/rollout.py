"""Roll out RIG-basic with the expert alongside; at every visited state fork, judge and record a review sample.

At each real step the policy proposes a chain of ``horizon`` imagined steps (its action, imagined
frame, and further imagined steps). A fork of the env plays the chain to get the real frames; a
second fork lets the expert act. Judged after each step j = 1..horizon, every state gives
``horizon`` review samples (one per number of imagined steps) and the imagined-vs-real pairs.
The real episode then goes on with the action chosen by ``follow``.

With ``candidates`` K, each state also gives candidate samples (``CandidateLog``): the policy's K most probable
actions after its thought and the expert's action, each imagined ``horizon`` steps by the policy (rows of one
batch, ``inference/branches.py``) and judged as the oracle judges a candidate: not worse than the expert's move
after ``horizon`` steps (the candidate played, then the expert acting on) is fine. Any candidate may be fine;
the expert's own is always ``same``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from rig_core.agents import make_agent
from rig_core.data.episode import EpisodeRecord
from rig_core.envs import make_env
from rig_core.review.judge import SAME, WORSE, play_branch
from rig_core.review.candidate_log import CandidateLog
from rig_core.review.oracle import expert_plan
from rig_core.review.texts import ReviewWriter
from rig_core.tasks import Task
from rig_core.tokenize.image import psnr


@dataclass
class ReviewLog:
    """Per-state review arrays of one episode (S states, K = horizon)."""

    horizon: int
    frame_shape: tuple
    step: list[int] = field(default_factory=list)
    proposed: list[list[int]] = field(default_factory=list)
    thoughts: list[list[str]] = field(default_factory=list)
    imagined_codes: list[np.ndarray] = field(default_factory=list)
    imagined: list[np.ndarray] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    real_steps: list[int] = field(default_factory=list)
    expert: list[int] = field(default_factory=list)
    verdict: list[list[int]] = field(default_factory=list)
    reason: list[list[str]] = field(default_factory=list)
    text: list[list[str]] = field(default_factory=list)
    corrected: list[list[int]] = field(default_factory=list)
    psnr: list[list[float]] = field(default_factory=list)
    candidates: CandidateLog | None = None  # with --candidates: the candidate samples of every state

    def select(self, confirm_share: float, rng: np.random.Generator, confirm_floor: float = 0.0) -> np.ndarray:
        """Which (state, j) samples train the review: every correction, and confirmations to make up
        ``confirm_share`` of the selection (all of them when there are not enough), but at least
        ``confirm_floor`` of the episode's confirmations: an episode the policy plays right on its own
        (no correction, e.g. hitting grass for a sapling) still teaches the review to confirm."""
        v = np.asarray(self.verdict, np.int8).reshape(-1, self.horizon)
        sel = v == WORSE
        conf = np.flatnonzero(~sel.ravel())
        n_corr = int(sel.sum())
        want = len(conf) if confirm_share >= 1 else int(round(confirm_share / (1 - confirm_share) * n_corr))
        want = max(want, int(np.ceil(confirm_floor * len(conf))))
        keep = rng.choice(conf, size=min(want, len(conf)), replace=False) if len(conf) else conf
        flat = sel.ravel()
        flat[keep] = True
        return flat.reshape(v.shape)

    def arrays(self, confirm_share: float, rng: np.random.Generator,
               confirm_floor: float = 0.0) -> dict[str, np.ndarray]:
        K, S = self.horizon, len(self.step)
        shape = tuple(self.frame_shape)
        extra = {} if self.candidates is None else self.candidates.arrays(
            self.candidates.codes[0].shape[-1] if self.candidates.codes else 0)
        return extra | {
            "review/step": np.asarray(self.step, np.int32),
            "review/proposed": np.asarray(self.proposed, np.int16).reshape(S, K),
            "review/thoughts": np.asarray(self.thoughts, dtype=object).reshape(S, K),
            "review/imagined_codes": np.asarray(self.imagined_codes, np.int16).reshape(S, K, -1),
            "review/imagined": np.asarray(self.imagined, np.uint8).reshape((S, K) + shape),
            "review/real": np.asarray(self.real, np.uint8).reshape((S, K) + shape),
            "review/real_steps": np.asarray(self.real_steps, np.int8),
            "review/expert": np.asarray(self.expert, np.int16),
            "review/verdict": np.asarray(self.verdict, np.int8).reshape(S, K),
            "review/reason": np.asarray(self.reason, dtype=object).reshape(S, K),
            "review/text": np.asarray(self.text, dtype=object).reshape(S, K),
            "review/corrected": np.asarray(self.corrected, np.int16).reshape(S, K),
            "review/psnr": np.asarray(self.psnr, np.float32).reshape(S, K),
            "review/selected": self.select(confirm_share, rng, confirm_floor) if S else np.zeros((0, K), bool),
        }


def _pad(frames: list[np.ndarray], k: int, shape) -> tuple[np.ndarray, int]:
    """``k`` frames: those the branch reached, then zeros (``real_steps`` says how many are real)."""
    out = np.zeros((k,) + tuple(shape), np.uint8)
    for i, f in enumerate(frames[:k]):
        out[i] = f
    return out, min(len(frames), k)


def review_episodes(policy, tasks: list[Task], seeds: list[int], indices: list[int], *, horizon: int,
                    follow: str = "corrected", max_steps: int | None = None, seed: int = 0,
                    on_steps=None, candidates: int | None = None) -> list[tuple[EpisodeRecord, ReviewLog]]:
    """Play one episode per (task, seed) with the policy, all in lock-step; returns records and review logs."""
    n = len(tasks)
    envs = [make_env("crafter", length=None) for _ in range(n)]
    names = envs[0].action_names
    experts = [make_agent("expert", envs[0]) for _ in range(n)]
    writer = ReviewWriter(names, seed)
    obs = [e.reset(s) for e, s in zip(envs, seeds)]
    for x, t, s in zip(experts, tasks, seeds):
        x.reset(t, s)
    policy.reset([t.instruction(s) for t, s in zip(tasks, seeds)])
    records = [EpisodeRecord(item_names=list(envs[0].item_names), achievement_names=list(envs[0].achievement_names))
               for _ in range(n)]
    logs = [ReviewLog(horizon, envs[0].frame_shape) for _ in range(n)]
    for log in logs:
        log.candidates = CandidateLog(candidates, horizon) if candidates else None
    thoughts: list[list[str]] = [[] for _ in range(n)]
    for r, o in zip(records, obs):
        r.add_observation(o)
    budgets = [max_steps or t.budget for t in tasks]
    unlocked = [set() for _ in range(n)]
    done = [False] * n
    active = list(range(n))
    while active:
        plans = {i: expert_plan(envs[i], obs[i], experts[i], horizon) for i in active}  # the expert acts on obs
        outs = policy.act(np.stack([obs[i].frame for i in active]), rows=active, lookahead=horizon - 1, review=False,
                          candidates=candidates, candidate_steps=horizon, also=[plans[i].action for i in active])
        for k, i in enumerate(active):
            out, env, log, plan = outs[k], envs[i], logs[i], plans[i]
            chain = [out.proposed] + [a for _, a, _ in out.lookahead]
            codes = [out.imagined_codes] + [c for _, _, c in out.lookahead]
            texts = [out.thought] + [t for t, _, _ in out.lookahead]
            expert_action, intent = plan.action, plan.intent
            mine = play_branch(env, chain)
            judged = plan.verdicts(env, obs[i], experts[i], chain[0], horizon)  # the proposed action, then the expert
            imagined = policy.decode_frames(np.stack(codes))
            real, reached = _pad(mine.frames, horizon, env.frame_shape)
            t = records[i].length
            verdicts, reasons, reviews, corrected, scores = [], [], [], [], []
            for j, v in enumerate(judged, 1):
                better = expert_action if v.kind == WORSE else chain[0]
                verdicts.append(v.kind)
                reasons.append(v.reason)
                corrected.append(better)
                reviews.append(writer.write(v, chain[0], better, intent, (indices[i], t, j)))
                scores.append(float(psnr(imagined[j - 1], real[j - 1])) if j <= reached else float("nan"))
            log.step.append(t)
            log.proposed.append(chain)
            log.thoughts.append(texts)
            log.imagined_codes.append(np.stack(codes))
            log.imagined.append(imagined)
            log.real.append(real)
            log.real_steps.append(reached)
            log.expert.append(expert_action)
            log.verdict.append(verdicts)
            log.reason.append(reasons)
            log.text.append(reviews)
            log.corrected.append(corrected)
            log.psnr.append(scores)
            if log.candidates is not None:
                log.candidates.add(out, lambda a: judged[-1] if a == chain[0] else
                                   plan.verdicts(env, obs[i], experts[i], a, horizon)[-1],
                                   lambda v, a, c: writer.write(v, a, expert_action if v.kind == WORSE else a, intent,
                                                                (indices[i], t, 1000 + c)))
            action = {"policy": chain[0], "expert": expert_action, "corrected": corrected[-1]}[follow]
            if action != chain[0]:
                policy.rewrite_last_action(i, action)
            obs[i], reward, term, trunc, info = env.step(int(action))
            unlocked[i] |= set(info["achievements"])
            success = tasks[i].is_success(unlocked[i], obs[i].inventory)
            last = records[i].length + 1 >= budgets[i]
            records[i].add_observation(obs[i])
            records[i].add_step(action, reward, term or success, (trunc or last) and not (term or success),
                                info.get("achievements", []), intent)
            thoughts[i].append(out.thought)
            if term or trunc or success or last:
                done[i] = True
                records[i].attrs.update(success=bool(success), died=bool(term))
            if on_steps:
                on_steps(1)
        active = [i for i in active if not done[i]]
    for i in range(n):
        records[i].extra["reasoning"] = np.asarray(thoughts[i], dtype=object)
        agree = np.mean(np.asarray(logs[i].verdict)[:, 0] == SAME) if logs[i].step else 0.0
        records[i].attrs.update(seed=int(seeds[i]), task=tasks[i].id, instruction=tasks[i].instruction(seeds[i]),
                                agent="rig-basic", follow=follow, horizon=int(horizon),
                                unlocked=json.dumps(sorted(unlocked[i])), expert_agreement=float(agree))
    return list(zip(records, logs))
