"""The consistency check for reasoning text: the action it commits to, and that it names only what is there.

Independent of how the text was written (rules or a VLM), so both are held to the same bar:
  * action: the first action phrase of the last sentence must be the action actually taken;
  * grounding: every world noun named as present (outside plan/need/absence clauses) must be
    visible in the 9x7 view, held in the inventory, or the product of the action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from rig_core.annotate.context import StepContext

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_CLAUSE = re.compile(r"[,;:.!?]|\bbut\b|\band\b|\bso\b|\bwhile\b")
_WORD = re.compile(r"[a-z]+")
_TOOL = re.compile(r"\b(wood|wooden|stone|iron) (pickaxe|sword)s?\b")  # a tool's name is not a sighting


@dataclass(frozen=True)
class Vocabulary:
    world_nouns: dict[str, tuple[str, ...]]
    item_nouns: dict[str, str]
    plan_markers: tuple[str, ...]
    action_patterns: dict[str, tuple[re.Pattern, ...]]
    action_products: dict[str, tuple[str, ...]]


@lru_cache(maxsize=None)
def vocabulary() -> Vocabulary:
    doc = yaml.safe_load(resources.files("rig_core.resources").joinpath("reasoning.yaml").read_text())
    return Vocabulary(
        world_nouns={k: tuple(v) for k, v in doc["world_nouns"].items()},
        item_nouns=dict(doc["item_nouns"]),
        plan_markers=tuple(doc["plan_markers"]),
        action_patterns={a: tuple(re.compile(p, re.I) for p in ps) for a, ps in doc["action_patterns"].items()},
        action_products={a: tuple(v) for a, v in doc["action_products"].items()},
    )


@dataclass
class CheckResult:
    action: str | None  # the action the text commits to (None: none found)
    action_ok: bool
    ungrounded: list[str] = field(default_factory=list)

    @property
    def grounded_ok(self) -> bool:
        return not self.ungrounded

    @property
    def ok(self) -> bool:
        return self.action_ok and self.grounded_ok


def committed_action(text: str) -> str | None:
    """The action the last sentence commits to: the earliest action phrase in it."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    if not sentences:
        return None
    last = sentences[-1]
    best: tuple[int, str] | None = None
    for action, patterns in vocabulary().action_patterns.items():
        for p in patterns:
            m = p.search(last)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), action)
    return best[1] if best else None


def ungrounded_mentions(text: str, ctx: StepContext) -> list[str]:
    """World nouns named as present that are neither in view, nor held, nor made by the action."""
    voc = vocabulary()
    visible = ctx.visible_names()
    products = set(voc.action_products.get(ctx.action, ()))
    bad: list[str] = []
    for clause in _CLAUSE.split(_TOOL.sub(r"\2", text.lower())):
        if clause.strip().startswith("to ") or any(m in clause for m in voc.plan_markers):
            continue  # a purpose, plan, need or absence: not a sighting
        for word in _WORD.findall(clause):
            if word not in voc.world_nouns or word in products:
                continue
            if any(n in visible for n in voc.world_nouns[word]):
                continue
            item = voc.item_nouns.get(word)
            if item and ctx.inventory.get(item, 0) > 0:
                continue
            bad.append(word)
    return bad


def check(text: str, ctx: StepContext) -> CheckResult:
    action = committed_action(text)
    return CheckResult(action=action, action_ok=action == ctx.action, ungrounded=ungrounded_mentions(text, ctx))
