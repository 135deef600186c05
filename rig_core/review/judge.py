"""The expert judges a proposal: its real outcome in a forked env against the expert's own plan.

Both branches start from the same live state (``copy.deepcopy`` of the env, so they share the
world's random future): branch A plays the policy's proposed actions, branch B lets a copy of
the expert act for as many steps. After each step j the outcomes are compared, in this order:

- ``damage``   A has less health than B (or died while B lives);
- ``progress`` B unlocked an achievement or gained items that A did not (when no target is in sight, only
  what B's first action gains counts: an exploring expert's later finds are luck of its private route,
  which no frame shows);
- ``wasted``   A's first action changed nothing (place, facing, items, view) while B's did: the
  real next frame equals the observed one, the easiest mistake to see (a blocked move, a "do" on grass);
- ``farther``  A ends farther from the expert's current target than B, when that target is in the
  player's view and what the expert is after shows in it (``target_in_sight``). Otherwise (exploring,
  wandering, walking back to a remembered tree) the target is the expert's private choice: nothing
  in the frame tells the policy which way it lies, so a review could only learn noise from it
  (on such labels the review's "Wait" was hardly better than chance on held-out states, ROC AUC
  0.59-0.63; docs/experiments.md), and the move is ``fine``.

A proposal whose first action is the expert's is ``same``; one that loses on none of the above
is ``fine`` (an equally good alternative): both are confirmed. Otherwise it is ``worse``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from rig_core.envs.crafter import VIEW_COLS, VIEW_ROWS, VITALS

SAME, FINE, WORSE = 0, 1, 2
VERDICTS = {SAME: "same", FINE: "fine", WORSE: "worse"}


@dataclass(frozen=True)
class Snapshot:
    pos: tuple[int, int]
    facing: tuple[int, int]
    health: int
    items: tuple[tuple[str, int], ...]  # non-vital inventory
    unlocked: frozenset
    view: bytes
    alive: bool = True

    def item_dict(self) -> dict[str, int]:
        return dict(self.items)


def snapshot(env, obs, alive: bool = True) -> Snapshot:
    p = obs.privileged
    items = tuple(sorted((k, int(v)) for k, v in obs.inventory.items() if k not in VITALS))
    return Snapshot(pos=tuple(p["position"]), facing=tuple(p["facing"]), health=int(obs.inventory.get("health", 0)),
                    items=items, unlocked=frozenset(env.unlocked), view=np.asarray(p["semantic"]).tobytes(),
                    alive=alive)


@dataclass
class Branch:
    """What a branch did: a snapshot and a frame after each step it managed (it stops at an episode end)."""

    snaps: list[Snapshot]
    frames: list[np.ndarray]
    actions: list[int]


def play_branch(env, actions: list[int]) -> Branch:
    """Play ``actions`` in a fork of ``env``; the original env is not touched."""
    fork = copy.deepcopy(env)
    out = Branch([], [], [])
    for a in actions:
        obs, _, term, trunc, _ = fork.step(int(a))
        out.snaps.append(snapshot(fork, obs, alive=not term))
        out.frames.append(np.asarray(obs.frame))
        out.actions.append(int(a))
        if term or trunc:
            break
    return out


def expert_branch(env, obs, expert, first: int, steps: int) -> Branch:
    """The expert's branch: ``first`` (its action at this state), then a copy of the expert acts on."""
    fork, agent = copy.deepcopy(env), copy.deepcopy(expert)
    out = Branch([], [], [])
    action = int(first)
    for k in range(steps):
        if k:
            action = int(agent.act(obs))
        obs, _, term, trunc, _ = fork.step(action)
        out.snaps.append(snapshot(fork, obs, alive=not term))
        out.frames.append(np.asarray(obs.frame))
        out.actions.append(action)
        if term or trunc:
            break
    return out


@dataclass
class Verdict:
    kind: int  # SAME / FINE / WORSE
    reason: str = ""  # damage | progress | farther | wasted | "" (when not worse)
    health: int = 0  # health the proposal loses against the expert's plan
    item: str | None = None  # what the expert's plan gains that the proposal misses
    deed: str | None = None  # else the achievement it unlocks that gains no item (e.g. defeat_zombie, eat_cow)

    @property
    def name(self) -> str:
        return VERDICTS[self.kind]


def _gains(start: Snapshot, end: Snapshot) -> dict[str, int]:
    a, b = start.item_dict(), end.item_dict()
    return {k: b.get(k, 0) - a.get(k, 0) for k in b if b.get(k, 0) > a.get(k, 0)}


def _changed(start: Snapshot, after: Snapshot) -> bool:
    return (start.pos, start.facing, start.items, start.unlocked, start.view) != (
        after.pos, after.facing, after.items, after.unlocked, after.view)


def _distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def in_view(pos: tuple[int, int], cell: tuple[int, int]) -> bool:
    """Whether ``cell`` shows in the local view of a player standing at ``pos``."""
    return abs(cell[0] - pos[0]) <= VIEW_COLS // 2 and abs(cell[1] - pos[1]) <= VIEW_ROWS // 2


def target_in_sight(target: tuple[int, int] | None, thing: str | None, seen: set[str]) -> tuple[int, int] | None:
    """The expert's target if what it is after (``thing``, e.g. 'tree') is among the things in view
    (``seen``), else None: an exploring or remembering expert's target is not for the frame to judge."""
    return target if target is not None and thing is not None and thing in seen else None


def _missed_progress(start: Snapshot, a: Snapshot, b: Snapshot) -> tuple[str | None, str | None] | None:
    """What branch B gained that branch A did not, if anything: (the item, e.g. 'wood pickaxe', None) when
    B has more of one, else (None, the achievement, e.g. 'defeat_zombie') for a deed that gains no item."""
    new_b, new_a = b.unlocked - start.unlocked, a.unlocked - start.unlocked
    gain_a, gain_b = _gains(start, a), _gains(start, b)
    missed = {k: v - gain_a.get(k, 0) for k, v in gain_b.items() if v > gain_a.get(k, 0)}
    if len(new_b) > len(new_a) or (missed and sum(gain_b.values()) > sum(gain_a.values())):
        if missed:
            return max(missed, key=missed.get).replace("_", " "), None
        return None, sorted(new_b - new_a)[0]
    return None


def judge(start: Snapshot, proposal: Branch, expert: Branch, steps: int, target: tuple[int, int] | None,
          same_first: bool) -> Verdict:
    """Compare the two branches after ``steps`` steps (or where either ended).

    With no target in sight, only a gain of the expert's first action counts as missed progress (what the
    expert finds later on its own route the frame cannot tell)."""
    if same_first:
        return Verdict(SAME)
    j = min(steps, len(proposal.snaps), len(expert.snaps))
    if j == 0:
        return Verdict(FINE)
    a, b = proposal.snaps[j - 1], expert.snaps[j - 1]
    if (b.alive and not a.alive) or a.health < b.health:
        return Verdict(WORSE, "damage", health=max(1, b.health - a.health))
    k = j if target is not None else 1
    missed = _missed_progress(start, proposal.snaps[k - 1], expert.snaps[k - 1])
    if missed is not None:
        return Verdict(WORSE, "progress", item=missed[0], deed=missed[1])
    if not _changed(start, proposal.snaps[0]) and _changed(start, expert.snaps[0]):
        return Verdict(WORSE, "wasted")  # before ``farther``: what the imagined frame shows (nothing moved)
    if target is not None and in_view(start.pos, target) and _distance(a.pos, target) > _distance(b.pos, target):
        return Verdict(WORSE, "farther")
    return Verdict(FINE)
