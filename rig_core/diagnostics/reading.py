"""Reading the frame: does the policy's thought name what the reference thought names, where it is?

On held-out expert states with the reference history (the dataset's frames, thoughts and actions) as
context, the policy decodes its thought and action greedily. The thought is compared with the reference
on the spatial facts the rule annotator writes (``annotate.rules.where``: "3 cells to the left and
2 cells up"), which are what the action depends on, and the action with the expert's:

- ``action``     the policy's action is the expert's;
- ``where``      among states whose reference names an offset: the policy names the same offsets;
- ``direction``  among those: the same signs (left/right, up/down) for every offset;
- ``missed``     among those: the policy names no offset at all ("I do not see a tree here");
- ``invented``   among states whose reference names none: the policy names one anyway.

A policy that acts well in training (teacher-forced action accuracy near 100 %) but reads the frame
badly fails in the environment: this measures the gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.stats.metrics import wilson_interval

_AXIS = r"(\d+) cells? to the (left|right)"
_UPDOWN = r"(\d+) cells? (up|down)"
OFFSET = re.compile(rf"{_AXIS}(?: and {_UPDOWN})?|{_UPDOWN}")


def offsets_in(text: str) -> list[tuple[int, int]]:
    """The (dx, dy) offsets a thought names, in order (dx > 0 right, dy > 0 down), as ``where`` writes them."""
    out = []
    for m in OFFSET.finditer(text):
        n_x, lr, n_y, ud, n_y2, ud2 = m.groups()
        dx = (int(n_x) * (1 if lr == "right" else -1)) if n_x else 0
        n_y, ud = (n_y, ud) if n_y else (n_y2, ud2)
        dy = (int(n_y) * (1 if ud == "down" else -1)) if n_y else 0
        out.append((dx, dy))
    return out


@dataclass
class ReadingSample:
    """One held-out state: the context the policy gets and the reference it is compared with."""

    instruction: str
    history: list[tuple[np.ndarray, str, int, np.ndarray]]  # (codes, thought, action, next codes) per earlier step
    frame: np.ndarray
    thought: str
    action: int


def reading_samples(ds, episodes: list[int], image_tok, *, per_episode: int = 4, history: int = 3,
                    seed: int = 0) -> list[ReadingSample]:
    """``per_episode`` random states of each episode (with reasoning), each with ``history`` earlier steps.

    On a reasoned expert dataset the history and the reference are the expert's. On a review dataset
    (the basic policy's own rollouts, ``rig augment --stage review``) the history is the policy's own
    (its thoughts as it wrote them, the actions taken) and the reference is the expert's at that state:
    the rule annotator's reasoning (as ``rig augment --stage reason`` writes it) and ``review/expert``,
    so the policy is read on the states and histories it makes itself."""
    rng = np.random.default_rng(seed)
    rules = None
    out = []
    for i in episodes:
        ep = ds.episode(i)
        if "reasoning" not in ep:
            continue
        frames, actions, thoughts = ep.read("frames"), ep.read("actions"), ep.texts("reasoning")
        if not len(actions):
            continue
        ref_thoughts, ref_actions = thoughts, [int(a) for a in actions]
        if "review/expert" in ep:  # the policy's rollout: the expert's thought and action are the reference
            from rig_core.annotate.rules import RuleAnnotator, expert_actions

            rules = rules or RuleAnnotator(0)
            ref_thoughts = rules.annotate_expert(ep, ds.action_names, ds.manifest.get("semantic_names", {}))
            ref_actions = [int(a) for a in expert_actions(ep)]
        codes = image_tok.encode(frames)
        instruction = str(ep.attrs.get("instruction", ""))
        for t in sorted(rng.choice(len(actions), size=min(per_episode, len(actions)), replace=False)):
            past = [(codes[k], thoughts[k], int(actions[k]), codes[k + 1]) for k in range(max(0, t - history), t)]
            out.append(ReadingSample(instruction, past, frames[t], ref_thoughts[t], ref_actions[t]))
    return out


def _rate(hits: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(hits, n)  # (0, 1) when n is 0
    return {"rate": hits / n if n else None, "n": n, "ci95": [lo, hi]}


def _signs(offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(int(np.sign(dx)), int(np.sign(dy))) for dx, dy in offsets]


def reading_accuracy(policy, samples: list[ReadingSample], batch: int = 16, examples: int = 6) -> dict[str, Any]:
    """Greedy thought and action of ``policy`` on each sample, scored against the reference (see module doc)."""
    builder = policy.builder
    hits = {"action": 0, "where": 0, "direction": 0, "invented": 0, "missed": 0}
    named = unnamed = 0
    shown = []
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        policy.reset([s.instruction for s in chunk])
        for b, s in enumerate(chunk):
            policy.history[b] = [builder.step(*step).ids for step in s.history]
        outs = policy.act(np.stack([s.frame for s in chunk]), imagine=False)  # thought and action only
        for s, o in zip(chunk, outs):
            ref, got = offsets_in(s.thought), offsets_in(o.thought)
            hits["action"] += o.action == s.action
            if ref:
                named += 1
                hits["where"] += got == ref
                hits["direction"] += _signs(got) == _signs(ref)
                hits["missed"] += not got
            else:
                unnamed += 1
                hits["invented"] += bool(got)
            if len(shown) < examples and ref and got != ref:
                shown.append({"reference": s.thought, "policy": o.thought})
    n = len(samples)
    return {"states": n, "action": _rate(hits["action"], n), "where": _rate(hits["where"], named),
            "direction": _rate(hits["direction"], named), "missed": _rate(hits["missed"], named),
            "invented": _rate(hits["invented"], unnamed),
            "examples": shown}


def held_out_episodes(run, ds) -> list[int]:
    """Episodes of ``ds`` the run did not train on: its validation split when ``ds`` is its (basic)
    training data; otherwise the episodes whose (task, seed) is not in its training split (the same
    seeds give the same world, whatever dataset holds them)."""
    from rig_core.data.reader import Dataset
    from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint
    from rig_core.model.run_config import load_run_config
    from rig_core.train.data import split_episodes

    cfg = load_run_config(run_of_checkpoint(find_checkpoint(Path(run))))  # a run or one of its checkpoints
    trained = cfg.basic_data if cfg.stage == "lookahead" else cfg.data
    own = [trained, *([cfg.data, *cfg.more_data] if cfg.stage == "lookahead" else [])]  # basic and review data
    if any(d and Path(d).resolve() == Path(ds.root).resolve() for d in own):  # data it split: its held-out part
        return split_episodes(ds.indices(), cfg.val_fraction, cfg.seed)[1]
    if not trained or not Path(trained).exists():
        return list(ds.indices())
    with Dataset(Path(trained)) as src:
        train_eps = set(split_episodes(src.indices(), cfg.val_fraction, cfg.seed)[0])
        seen = {key for i, key in zip(src.indices(), _keys(src)) if i in train_eps}
    return [i for i, key in zip(ds.indices(), _keys(ds)) if key not in seen]


def _keys(ds) -> list[tuple[str, int]]:
    """(task, seed) of every episode, in index order."""
    refs = ds.refs()
    return [(str(refs[i].attrs.get("task", "")), int(refs[i].attrs.get("seed", -1))) for i in ds.indices()]
