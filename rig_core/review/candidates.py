"""Play the best of the policy's own candidates: its top-K actions after its thought, each scored, one chosen.

At every real step the policy thinks and draws its action as usual; ``CandidatePlayer`` then takes the K
actions it gives most probability (in its order, from ``StepOutput.action_probs``), has a scorer judge each
one as fine or not, and plays the first fine candidate, or the top one where none is. With K = 1 it plays the
policy's most likely action (no scorer needed). The scorer is any object with ``begin(tasks, seeds, envs)``
and ``score(row, env, obs, actions) -> list[Judgement]``, called for every active environment at every step
(``oracle.OracleScorer``: the expert judging each candidate in forks of the live env).

``follow="policy"`` plays the policy's own action instead and only records the judgements (every candidate and
the action judged): how often a verifier over K candidates could have helped, on the states of the policy's own
play; with a policy that plays its learned verifier (``play(..., candidates=K)``), how well that verifier ranks
them (``ranking``). ``on_state`` receives a ``JudgedState`` per environment and step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rig_core.inference.branches import choose, top_actions

FOLLOW = ("best", "policy")
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5)  # candidate margins whose choices ``ranking`` replays


@dataclass(frozen=True)
class Judgement:
    """A scorer's word on one candidate: ``fine`` (may be played) and why (e.g. the oracle's verdict: same,
    fine, damage, progress, wasted, farther)."""

    fine: bool
    reason: str = ""


@dataclass
class JudgedState:
    """One environment's step: the candidates (best first), their judgements, the policy's drawn action and
    its judgement, and the action played."""

    env: int
    t: int
    candidates: list[int]
    probs: list[float]
    judgements: list[Judgement]
    own: int
    own_judgement: Judgement | None
    played: int
    p_worse: list[float] | None = None  # with a learned verifier: its P(worse) of each candidate


def first_fine(candidates: list[int], judgements: list[Judgement]) -> int:
    """The first candidate judged fine, or the top one where none is."""
    return next((a for a, j in zip(candidates, judgements) if j.fine), candidates[0])


class CandidatePlayer:
    """A ``picker`` for ``inference.episodes.play``: the policy's top-``k`` actions, scored, one chosen."""

    def __init__(self, k: int, scorer=None, follow: str = "best",
                 on_state: Callable[[JudgedState], None] | None = None):
        if k < 1:
            raise ValueError(f"need at least one candidate, got k={k}")
        if follow not in FOLLOW:
            raise ValueError(f"follow must be one of {FOLLOW}, got {follow!r}")
        if scorer is None and (k > 1 or follow == "policy"):
            raise ValueError("choosing among several candidates, or judging the policy's own, needs a scorer")
        self.k, self.scorer, self.follow, self.on_state = k, scorer, follow, on_state
        self.steps: list[int] = []

    def begin(self, tasks, seeds, envs) -> None:
        self.steps = [0] * len(tasks)
        if self.scorer is not None:
            self.scorer.begin(tasks, seeds, envs)

    def pick(self, rows: list[int], envs, obs, outputs) -> list[int]:
        actions = []
        for i, o, out in zip(rows, obs, outputs):
            if out.action_probs is None:
                raise ValueError("the policy's step output carries no action probabilities")
            cands = top_actions(out.action_probs, self.k)
            judged = cands + ([out.action] if self.follow == "policy" and out.action not in cands else [])
            verdicts = self.scorer.score(i, envs[i], o, judged) if self.scorer is not None else []
            best = first_fine(cands, verdicts[: len(cands)]) if verdicts else cands[0]
            played = out.action if self.follow == "policy" else best
            if self.on_state is not None:
                own = verdicts[judged.index(out.action)] if out.action in judged and verdicts else None
                scored = {b.action: b.p_worse for b in out.candidates or [] if b.p_worse is not None}
                self.on_state(JudgedState(i, self.steps[i], cands, [float(out.action_probs[a]) for a in cands],
                                          verdicts[: len(cands)], int(out.action), own, int(played),
                                          [scored[a] for a in cands] if all(a in scored for a in cands) else None))
            self.steps[i] += 1
            actions.append(played)
        return actions


def _share(hits: list[bool], keys: list, of: list[bool] | None = None) -> dict:
    """The share of ``hits`` (among the units where ``of`` holds), with a 95 % interval that resamples whole
    episodes (``keys``: each unit's episode)."""
    from rig_core.stats.metrics import clustered_share_interval

    of = [True] * len(hits) if of is None else of
    per: dict = {}
    for h, k, o in zip(hits, keys, of):
        if o:
            n = per.setdefault(k, [0, 0])
            n[0] += int(h)
            n[1] += 1
    units = sum(n for _, n in per.values())
    if not units:
        return {"share": None, "ci95": None, "of": 0}
    lo, hi = clustered_share_interval([h for h, _ in per.values()], [n for _, n in per.values()])
    return {"share": sum(h for h, _ in per.values()) / units, "ci95": [lo, hi], "of": units}


def ranking(states: list[JudgedState], keys: list) -> dict:
    """How well a learned verifier chose among the candidates, on states judged by the oracle (each with its
    episode in ``keys``): the share of states where the action it played is fine against the policy's top one
    (``played_fine``, ``top1_fine``; their difference with an interval that resamples episodes), where it fixed a
    worse top one (``rescued``) or broke a fine one (``broken``), where any candidate was fine (the ceiling), where
    its least-likely-worse candidate is fine (``least_worse_fine``: the choice at margin 0), the share fine and
    changed had it chosen with each of ``MARGINS`` (``fine_by_margin``, ``changed_by_margin``), the same for the
    candidate least likely worse against its action's prior (``fine_relative``, ``changed_relative``: P(worse)
    less the action's mean P(worse) on the other episodes, which removes what the verifier knows of an action
    whatever the state), and the ROC AUC of its P(worse) for the oracle's worse verdicts over every candidate
    (``auc_p_worse``; against the prior: ``auc_p_worse_relative``) and over the top ones alone
    (``auc_p_worse_top1``)."""
    from rig_core.stats.metrics import clustered_share_interval, roc_auc, roc_auc_interval

    played = [s.own_judgement is not None and s.own_judgement.fine for s in states]
    top = [s.judgements[0].fine for s in states]
    out = {"states": len(states), "episodes": len(set(keys)), "played_fine": _share(played, keys),
           "top1_fine": _share(top, keys),
           "any_fine": _share([any(j.fine for j in s.judgements) for s in states], keys),
           "rescued": _share([p and not t for p, t in zip(played, top)], keys),
           "broken": _share([t and not p for p, t in zip(played, top)], keys)}
    per: dict = {}
    for p, t, k in zip(played, top, keys):
        d = per.setdefault(k, [0, 0])
        d[0] += int(p) - int(t)
        d[1] += 1
    out["played_minus_top1"] = None if not per else {
        "difference": sum(d for d, _ in per.values()) / sum(n for _, n in per.values()),
        "ci95": list(clustered_share_interval([d for d, _ in per.values()], [n for _, n in per.values()]))}
    scored = [(s, k) for s, k in zip(states, keys) if s.p_worse is not None]
    scored_keys = [k for _, k in scored]
    # what a margin would have chosen on the same states (every candidate's P(worse) and verdict is known);
    # margin 0 is the least likely worse candidate
    picks = {m: [choose(s.p_worse, m) for s, _ in scored] for m in MARGINS}
    out["fine_by_margin"] = {f"{m:g}": _share([s.judgements[c].fine for (s, _), c in zip(scored, picks[m])],
                                              scored_keys) for m in MARGINS}
    out["changed_by_margin"] = {f"{m:g}": float(np.mean([c != 0 for c in picks[m]])) if scored else None
                                for m in MARGINS}
    out["least_worse_fine"] = out["fine_by_margin"]["0"]
    # scored against each action's prior: P(worse) less the action's mean P(worse) on the other episodes
    relative = _relative_to_prior([s for s, _ in scored], scored_keys)
    rel_picks = [int(np.argmin(r)) for r in relative]
    out["fine_relative"] = _share([s.judgements[c].fine for (s, _), c in zip(scored, rel_picks)], scored_keys)
    out["changed_relative"] = float(np.mean([c != 0 for c in rel_picks])) if scored else None
    scores = [p for s, _ in scored for p in s.p_worse]
    worse = [not j.fine for s, _ in scored for j in s.judgements]
    groups = [k for s, k in scored for _ in s.judgements]
    out["auc_p_worse"] = None
    if any(worse) and not all(worse):
        out["auc_p_worse"] = {"auc": roc_auc(scores, worse), "ci95": list(roc_auc_interval(scores, worse,
                                                                                           groups=groups)),
                              "candidates": len(scores)}
    rel_scores = [float(r) for rs in relative for r in rs]
    out["auc_p_worse_relative"] = None
    if any(worse) and not all(worse):
        out["auc_p_worse_relative"] = {"auc": roc_auc(rel_scores, worse),
                                       "ci95": list(roc_auc_interval(rel_scores, worse, groups=groups)),
                                       "candidates": len(rel_scores)}
    top_worse = [not s.judgements[0].fine for s, _ in scored]
    out["auc_p_worse_top1"] = None  # does it see that the policy's own top action is worse?
    if any(top_worse) and not all(top_worse):
        top_scores = [s.p_worse[0] for s, _ in scored]
        out["auc_p_worse_top1"] = {"auc": roc_auc(top_scores, top_worse),
                                   "ci95": list(roc_auc_interval(top_scores, top_worse, groups=scored_keys)),
                                   "states": len(top_scores)}
    return out


def _relative_to_prior(states: list[JudgedState], keys: list) -> list[np.ndarray]:
    """Each candidate's P(worse) less its action's mean P(worse) over the states of the other episodes
    (leave one episode out, so a state's own verdicts never set its prior); an action never scored elsewhere
    takes the mean over all candidates elsewhere."""
    total: dict = {}
    by_key: dict = {}
    for s, k in zip(states, keys):
        for a, p in zip(s.candidates, s.p_worse):
            for d in (total, by_key.setdefault(k, {})):
                n = d.setdefault(a, [0.0, 0])
                n[0] += p
                n[1] += 1
    all_sum, all_n = sum(v[0] for v in total.values()), sum(v[1] for v in total.values())
    out = []
    for s, k in zip(states, keys):
        own = by_key[k]
        rest_sum = all_sum - sum(v[0] for v in own.values())
        rest_n = all_n - sum(v[1] for v in own.values())
        fallback = rest_sum / rest_n if rest_n else 0.0
        prior = []
        for a in s.candidates:
            t, o = total[a], own[a]
            prior.append((t[0] - o[0]) / (t[1] - o[1]) if t[1] > o[1] else fallback)
        out.append(np.asarray(s.p_worse) - np.asarray(prior))
    return out


def headroom(states: list[JudgedState], keys: list, ks: tuple[int, ...] = (2, 4)) -> dict:
    """What a verifier over the policy's top-k could fix, on judged states (each with its episode in ``keys``):
    the share where the top-1 is worse, where it is worse and another of the top-k is fine (``rescued``) or
    none is (``stuck``), the same for the policy's drawn action, how often the expert's own action is among the
    top-k and the policy's mean probability at each rank; then the top-1's worse verdicts by the judge's
    reason."""
    ks = tuple(k for k in ks if all(len(s.judgements) >= k for s in states))
    worse = [not s.judgements[0].fine for s in states]
    own_worse = [s.own_judgement is not None and not s.own_judgement.fine for s in states]
    fine_in = {k: [any(j.fine for j in s.judgements[1:k]) for s in states] for k in ks}
    out = {"states": len(states), "episodes": len(set(keys)), "top1_worse": _share(worse, keys),
           "own_worse": _share(own_worse, keys),
           "own_is_top1": _share([s.own == s.candidates[0] for s in states], keys),
           "prob_by_rank": [float(np.mean([s.probs[r] for s in states]))
                            for r in range(min((len(s.probs) for s in states), default=0))]}
    for k in ks:
        any_fine = [any(j.fine for j in s.judgements[:k]) for s in states]
        out[f"top{k}"] = {
            "rescued": _share([w and f for w, f in zip(worse, fine_in[k])], keys),
            "stuck": _share([w and not f for w, f in zip(worse, fine_in[k])], keys),
            "rescued_when_top1_worse": _share(fine_in[k], keys, worse),
            "own_worse_and_a_fine_one": _share([w and f for w, f in zip(own_worse, any_fine)], keys),
            "expert_among": _share([any(j.reason == "same" for j in s.judgements[:k]) for s in states], keys)}
    reasons = sorted({s.judgements[0].reason for s, w in zip(states, worse) if w})
    out["by_reason"] = {r: {"top1_worse": _share([w and s.judgements[0].reason == r for s, w in zip(states, worse)],
                                                 keys),
                            **{f"rescued_top{k}": _share(fine_in[k], keys,
                                                         [w and s.judgements[0].reason == r
                                                          for s, w in zip(states, worse)]) for k in ks}}
                        for r in reasons}
    return out
