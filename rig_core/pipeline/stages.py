"""The kinds of stage a pipeline recipe can declare: the settings each takes and which of them name inputs.

A stage's settings are those of the command it runs (``rig collect``, ``rig augment --stage reason|review``,
``rig train``, ``rig evaluate``, ``rig play``), under the same names; the keys listed in ``inputs`` name an
earlier stage of the recipe, a path, or a shipped model.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from rig_core.annotate.augment import ReasonConfig
from rig_core.config import CollectConfig, EvalConfig, ReviewConfig
from rig_core.model.run_config import TrainConfig

# Set by the pipeline itself (its folders, its --workers), never by a stage.
_PIPELINE_OWNED = {"out", "workers", "data", "checkpoint", "episodes_per_shard", "more_data", "init",
                   "init_checkpoint"}
AGENTS = ("expert", "random")


@dataclass(frozen=True)
class Kind:
    name: str
    settings: dict[str, Any]  # key -> default
    inputs: tuple[str, ...]  # keys whose values name stages, paths or shipped models
    required: tuple[str, ...] = ()  # inputs that must be given
    resumable: bool = True  # an interrupted stage continues (else it starts over)
    summary: str = ""
    choices: dict[str, tuple] = field(default_factory=dict)  # settings that take one of a few values


def _defaults(cls, skip=()) -> dict[str, Any]:
    out = {}
    for f in fields(cls):
        if f.name in _PIPELINE_OWNED or f.name in skip:
            continue
        if f.default is not MISSING:
            out[f.name] = f.default
        else:
            out[f.name] = f.default_factory() if f.default_factory is not MISSING else None
    return out


# rig evaluate's settings (a recipe's stage picks its suite and size), and which checkpoint of a trained player
_EVALUATE = {**_defaults(EvalConfig, skip=("device", "compare_expert", "command")), "suite": "basic", "episodes": 10,
             "checkpoint": "last"}
_PLAY = {"live": False, "agent": None, "task": "collect_wood", "seed": 1_000_000, "max_steps": None, "test_time_steps": 0,
         "temperature": None, "max_think": 64, "review_threshold": None, "history": None, "draft": True,
         "candidates": None, "candidate_margin": 0.0}

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("collect", _defaults(CollectConfig), (), summary="rig collect: an agent's episodes"),
    Kind("reason", _defaults(ReasonConfig), ("data",), ("data",), summary="rig augment --stage reason"),
    Kind("train", {"recipe": None, **_defaults(TrainConfig, skip=("recipe",))}, ("data", "init"), ("data",),
         summary="rig train (basic, or lookahead with init)"),
    Kind("review", _defaults(ReviewConfig), ("data", "checkpoint"), ("data", "checkpoint"),
         summary="rig augment --stage review"),
    Kind("evaluate", _EVALUATE, ("players",), ("players",), resumable=False,
         summary="rig evaluate: every player on the same seeds, one paired report",
         choices={"checkpoint": ("last", "best")}),
    Kind("play", _PLAY, ("checkpoint",), resumable=False, summary="rig play --record: one recorded episode"),
    Kind("ablation", {"baseline": "act", "target": "think,act,imagine"}, ("evaluation",), ("evaluation",),
         resumable=False, summary="success against training data per --spans layout, from one evaluate stage"),
)}
