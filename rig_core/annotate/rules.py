"""The rule annotator: 1-3 grounded sentences per step from what the policy can observe.

Sentence 1 says what matters in view (a threat, the thing the agent works toward, or its
absence); sentence 2 what is needed next toward the task and why (from the agent's
recorded intent and the vitals); sentence 3 commits to the action actually taken. Only
cells of the 9x7 view and the inventory are ever named as present; the agent's
remembered map is never used. Phrasings come from ``resources/reasoning.yaml``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from rig_core.annotate.context import StepContext, episode_contexts

THREATS = ("zombie", "skeleton", "arrow")
DIR_OF_ACTION = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}
WORD_OF_DIR = {(-1, 0): "left", (1, 0): "right", (0, -1): "up", (0, 1): "down"}


@dataclass(frozen=True)
class Phrasebook:
    phrasings: dict[str, Any]
    item_sources: dict[str, str]
    salience: tuple[str, ...]
    goals: dict[str, str]
    vitals_remedy: dict[str, str]
    mass_nouns: frozenset[str]

    def np(self, thing: str) -> str:
        """A noun phrase with its article: 'water', 'a tree'."""
        if thing in self.mass_nouns:
            return thing
        return f"{'an' if thing[0] in 'aeiou' else 'a'} {thing}"


@lru_cache(maxsize=None)
def phrasebook() -> Phrasebook:
    d = yaml.safe_load(resources.files("rig_core.resources").joinpath("reasoning.yaml").read_text())
    return Phrasebook(d["phrasings"], d["item_sources"], tuple(d["salience"]), d["goals"], d["vitals_remedy"],
                      frozenset(d["mass_nouns"]))


def where(dx: int, dy: int) -> str:
    """An offset in words: '2 cells to the left and 1 cell up'."""
    parts = []
    if dx:
        parts.append(f"{abs(dx)} cell{'s' if abs(dx) > 1 else ''} to the {'left' if dx < 0 else 'right'}")
    if dy:
        parts.append(f"{abs(dy)} cell{'s' if abs(dy) > 1 else ''} {'up' if dy < 0 else 'down'}")
    return " and ".join(parts) if parts else "here"


def _subgoal(intent: dict[str, Any]) -> tuple[str, str]:
    """(subgoal, note) from the recorded intent, e.g. ('collect wood', 'explore for tree')."""
    sub = str(intent.get("subgoal") or "")
    head, _, note = sub.partition(":")
    return head.strip().lower(), note.strip().lower()


class RuleAnnotator:
    name = "rules"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.book = phrasebook()

    # -- public --------------------------------------------------------------------------
    def annotate_episode(self, ep, action_names: list[str], semantic_names: dict[str, str],
                         actions=None) -> list[str]:
        """The reasoning at every step of a stored episode (its privileged state), as ``rig augment --stage
        reason`` writes it; ``actions`` phrases other actions than the ones taken."""
        seed = int(ep.attrs.get("seed", 0))
        return [self.annotate(c, seed) for c in episode_contexts(ep, action_names, semantic_names, with_frames=False,
                                                                 actions=actions)]

    def annotate_expert(self, ep, action_names: list[str], semantic_names: dict[str, str]) -> list[str]:
        """The expert's reasoning at every state a policy visited (a review episode): its intent, and the
        expert's own action where the policy took another (the action the thought ends on is the target's)."""
        return self.annotate_episode(ep, action_names, semantic_names, actions=expert_actions(ep))

    def annotate(self, ctx: StepContext, episode_seed: int = 0) -> str:
        rng = random.Random(f"{self.seed}:{episode_seed}:{ctx.step}")
        if ctx.noise:
            return " ".join([self._pick(rng, "noise"), self._action(ctx, rng, None)])
        focus = self._focus(ctx)
        parts = [self._scene(ctx, rng, focus), self._need(ctx, rng, focus), self._action(ctx, rng, focus)]
        return " ".join(p for p in parts if p)

    # -- pieces --------------------------------------------------------------------------
    def _pick(self, rng: random.Random, key: str, **slots: Any) -> str:
        options = self.book.phrasings[key]
        text = rng.choice(options)
        for name in ("thing", "item", "product"):
            if name in slots and slots[name]:
                slots[f"{name}_np"] = self.book.np(slots[name])
        text = text.format(**slots) if slots else text
        return text[0].upper() + text[1:]

    def _wanted(self, ctx: StepContext) -> tuple[str | None, str | None]:
        """(item needed, the world thing that gives it) from the intent's sub-goal."""
        sub, note = _subgoal(ctx.intent)
        m = re.match(r"collect (\w+)", sub)
        if m:
            item = m.group(1)
            return item, self.book.item_sources.get(item, item)
        if sub in ("drink water",):
            return "drink", "water"
        if sub in ("eat", "hunt cow"):
            return "food", "cow"
        m = re.match(r"(fight|defeat) (\w+)", sub)
        if m:
            return None, m.group(2)
        if "plant" in sub:
            return None, "plant"
        return None, None

    def _focus(self, ctx: StepContext) -> tuple[str, tuple[int, int]] | None:
        """The visible thing that matters most: a near threat, else the wanted thing, else salient things."""
        for threat in THREATS:
            seen = ctx.visible(threat)
            if seen and abs(seen[0][0]) + abs(seen[0][1]) <= 4:
                return threat, seen[0]
        _, thing = self._wanted(ctx)
        if thing and thing != "grass" and ctx.visible(thing):
            return thing, ctx.visible(thing)[0]
        return None

    def _scene(self, ctx: StepContext, rng: random.Random, focus) -> str:
        if ctx.sleeping:
            return self._pick(rng, "scene_sleeping")
        if focus is None:
            _, thing = self._wanted(ctx)
            if thing and thing not in ("grass",):
                return self._pick(rng, "scene_missing", thing=thing)
            return ""
        thing, (dx, dy) = focus
        if (dx, dy) == tuple(ctx.facing):
            return self._pick(rng, "scene_front", thing=thing)
        key = "scene_threat" if thing in THREATS else "scene_visible"
        return self._pick(rng, key, thing=thing, where=where(dx, dy))

    def _need(self, ctx: StepContext, rng: random.Random, focus) -> str:
        sub, note = _subgoal(ctx.intent)
        goal = self.book.goals.get(ctx.task_id, ctx.task_id.replace("_", " "))
        item, thing = self._wanted(ctx)
        if ctx.sleeping or sub == "sleep":
            if "shelter" in note or "wall" in note:
                return self._pick(rng, "need_shelter")
            return self._vital(ctx, rng, "energy")
        if sub.startswith("fight"):
            return self._pick(rng, "need_fight") if focus and focus[0] in THREATS else ""
        if sub.startswith("defeat"):
            key = "need_direct" if ctx.task_id == f"defeat_{thing}" else "need_hunt"
            return self._pick(rng, key, thing=thing, goal=goal)
        if sub == "drink water" and ctx.vitals.get("drink", 9) <= 5:
            return self._vital(ctx, rng, "drink")
        if sub in ("eat", "hunt cow") and ctx.vitals.get("food", 9) <= 5:
            return self._vital(ctx, rng, "food")
        if item:
            exploring = focus is None and thing and thing != "grass" and "explore" in note
            if self._is_task_item(ctx, item):
                if exploring:
                    return self._pick(rng, "need_direct_explore", goal=goal, source=self.book.np(thing))
                return self._pick(rng, "need_direct", goal=goal)
            if exploring:
                return self._pick(rng, "need_explore", item=item, source=self.book.np(thing), goal=goal)
            return self._pick(rng, "need_item", item=item, goal=goal)
        m = re.match(r"(place|make) (.+)", sub)
        if m:
            key = "need_place" if m.group(1) == "place" else "need_make"
            if ctx.task_id == f"{m.group(1)}_{m.group(2).replace(' ', '_')}":
                key = "need_direct"
            return self._pick(rng, key, product=m.group(2), goal=goal)
        if "plant" in sub:
            return self._pick(rng, "need_plant")
        if sub.startswith("wait to get tired"):
            return self._pick(rng, "need_tired")
        if sub in ("done", "rest", "wait"):
            return self._pick(rng, "need_idle")
        return ""

    @staticmethod
    def _is_task_item(ctx: StepContext, item: str) -> bool:
        """Whether getting ``item`` is the task itself (collect_wood and wood, collect_drink and drink...)."""
        return ctx.task_id in (f"collect_{item}", {"food": "eat_cow", "drink": "collect_drink"}.get(item, ""))

    def _vital(self, ctx: StepContext, rng: random.Random, vital: str) -> str:
        value = ctx.vitals.get(vital, 0)
        return self._pick(rng, "need_vital", vital=vital, vital_cap=vital.capitalize(), value=value,
                          remedy=self.book.vitals_remedy[vital])

    def _action(self, ctx: StepContext, rng: random.Random, focus) -> str:
        a = ctx.action
        if a in DIR_OF_ACTION:
            d = DIR_OF_ACTION[a]
            word = WORD_OF_DIR[d]
            if focus is not None and not ctx.noise:
                thing, (dx, dy) = focus
                toward = dx * d[0] > 0 or dy * d[1] > 0
                if thing in THREATS and not _subgoal(ctx.intent)[0].startswith(("fight", "defeat")):
                    if not toward:
                        return self._pick(rng, "act_move_away", dir=word, thing=thing)
                elif (dx, dy) == d:
                    return self._pick(rng, "act_turn", dir=word)
                elif toward:
                    return self._pick(rng, "act_move_toward", dir=word, thing=thing)
            return self._pick(rng, "act_move", dir=word)
        if a == "do":
            front = ctx.front()
            options = self.book.phrasings["act_do"]
            key = front if front in options else "other"
            text = rng.choice(options[key]).format(front=front)
            return text
        if a == "sleep":
            return self._pick(rng, "act_sleep")
        if a == "noop":
            return self._pick(rng, "act_noop")
        if a.startswith("place_"):
            product = {"plant": "sapling"}.get(a[6:], a[6:])
            return self._pick(rng, "act_place", product=product)
        if a.startswith("make_"):
            return self._pick(rng, "act_make", product=a[5:].replace("_", " "))
        raise ValueError(f"no phrasing for action {a}")


def expert_actions(ep) -> np.ndarray:
    """The expert's action at every step of a review episode (``review/expert`` at ``review/step``), the action
    taken where no review state was recorded."""
    actions = np.array(ep.read("actions"), copy=True)
    if "review/expert" in ep:
        actions[np.asarray(ep.read("review/step"), int)] = ep.read("review/expert")
    return actions
