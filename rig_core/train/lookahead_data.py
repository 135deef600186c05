"""Training data of the lookahead stage: review, alignment and basic samples mixed at set shares.

- review: a selected (state, j) sample of a review dataset: the proposal with j imagined steps
  (context), then the review text and the action to take (loss); with ``--review-frames real`` the
  proposal shows the fork's real frames instead (the true outcome the verdict was read from), with
  ``both`` each sample comes once of each kind;
- align: the proposal of a state with the real frames of its fork in the imagine spans (loss there);
- blocked: an align sample whose proposal was a move the world blocked (the view held, the player only
  turned), drawn again from the align pool at a share of its own. A policy walks into things far more
  often than an expert, and a world model that has not learnt to read the cell ahead draws every move as
  going through;
- basic: an ordinary window of the basic data (the input dataset of the review stage);
- relabel (DAgger): a state the basic policy visited in its review rollout, with the policy's own
  steps as history (its thoughts, the actions taken) and the expert's reasoning (the rule annotator
  on the state's privileged data) and action as the targets; the next frame is a target too when the
  action taken there was the expert's. A policy trained only on expert histories learns to copy its
  last thought ("I do not see a tree ... so I step up" with a tree in view); these samples show it
  its own histories and what it should have thought and done.
- verify: a candidate of a review dataset made with ``--candidates`` (``review/candidates/*``): the state's
  context and the policy's thought, the candidate as the action, j = 0..H of its imagined steps, then the
  review text of its verdict (the loss; its first token is what the verifier reads: "Good" fine, "Wait"
  worse). Every (state, candidate, j) is in the pool; j = 0 reviews the candidate with no imagined frame.

The item list is fixed when the run starts (a pure function of the data and the seed), so the
epoch order and ``--resume`` work exactly as in the basic stage.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from rig_core.annotate.rules import RuleAnnotator
from rig_core.data.reader import Dataset
from rig_core.data.schema import episode_key
from rig_core.errors import RigError
from rig_core.envs.view import content_shifts
from rig_core.review.moves import HELD, move_outcome, view_cells
from rig_core.tokenize.sequence import SequenceBuilder
from rig_core.train.data import SequenceDataset, Window

BASIC, REVIEW, ALIGN, REVIEW_REAL, RELABEL, BLOCKED, VERIFY = 0, 1, 2, 3, 4, 5, 6
KINDS = {BASIC: "basic", REVIEW: "review", ALIGN: "align", REVIEW_REAL: "review_real", RELABEL: "relabel",
         BLOCKED: "blocked", VERIFY: "verify"}
REVIEWS = (REVIEW, REVIEW_REAL)  # the kinds that are review samples (imagined or real frames in the proposal)
HISTORY_STEPS = 8  # earlier real steps offered as context (the oldest are dropped to fit the context)


def has_real_frames(reached: int, j: int) -> bool:
    """Whether the fork of a state reached the ``j`` steps (1-based) a review sample shows: its real frames exist."""
    return int(reached) >= j


def blocked_states(ep, shifts: dict[int, tuple[int, int]]) -> set[int]:
    """The states of a review episode whose proposal was a move and whose fork's first real frame held the
    view (``review.moves.move_outcome`` on the pixels: the way was blocked)."""
    proposed, reached, at = ep.read("review/proposed"), ep.read("review/real_steps"), ep.read("review/step")
    moves = [s for s in range(len(reached)) if reached[s] > 0 and int(proposed[s, 0]) in shifts]
    if not moves:
        return set()
    frames, real = ep.read("frames"), ep.read("review/real")
    return {s for s in moves if move_outcome(view_cells(frames[int(at[s])]), view_cells(real[s, 0]),
                                             shifts[int(proposed[s, 0])]) == HELD}


def review_items(ds: Dataset, episodes: list[int], source: int = 0, frames: str = "imagined",
                 blocked: bool = False) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple]]:
    """(review items, align items, relabel items, blocked items) of ``episodes`` of review dataset number
    ``source``: (kind, source, episode, state, j). ``frames`` (imagined | real | both) picks the review
    kinds; a sample whose fork ended before its j-th step has no real frames to show and stays imagined.
    Blocked items (align items of blocked moves, ``blocked_states``) are found only when ``blocked``."""
    rev, ali, rel, blo = [], [], [], []
    shifts = content_shifts(list(ds.action_names)) if blocked else {}
    for i in episodes:
        ep = ds.episode(i)
        if "review/selected" not in ep:
            continue
        sel, reached = ep.read("review/selected"), ep.read("review/real_steps")
        rel += [(RELABEL, source, i, s, 0) for s in range(len(reached))]
        for s, j in zip(*np.nonzero(sel)):
            real = frames != "imagined" and has_real_frames(reached[s], int(j) + 1)
            if frames != "real" or not real:
                rev.append((REVIEW, source, i, int(s), int(j) + 1))
            if real:
                rev.append((REVIEW_REAL, source, i, int(s), int(j) + 1))
        for s, r in enumerate(reached):
            if r > 0:
                ali.append((ALIGN, source, i, s, int(r)))
        if blocked:
            blo += [(BLOCKED, source, i, s, int(reached[s])) for s in sorted(blocked_states(ep, shifts))]
    return rev, ali, rel, blo


def candidate_items(ds: Dataset, episodes: list[int], source: int = 0) -> list[tuple]:
    """Candidate items (VERIFY, source, episode, state, j, candidate) of ``episodes``: every candidate of every
    state with j = 0..H imagined steps (datasets made without ``--candidates`` have none)."""
    out = []
    for i in episodes:
        ep = ds.episode(i)
        if "review/candidates/verdict" not in ep:
            continue
        verdict = ep.read("review/candidates/verdict")
        H = ep.read("review/candidates/proposed").shape[-1]
        out += [(VERIFY, source, i, int(s), j, int(c)) for s, c in zip(*np.nonzero(verdict >= 0)) for j in range(H + 1)]
    return out


def mix(pools: dict[int, list], shares: dict[int, float], seed: int) -> list:
    """A fixed item list with ``shares`` of each kind, anchored on using every review item once."""
    rng = np.random.default_rng(seed)
    total = sum(shares.values())
    shares = {k: v / total for k, v in shares.items() if v > 0}
    anchor = REVIEW if shares.get(REVIEW) and pools.get(REVIEW) else max(
        (k for k in shares if pools.get(k)), key=lambda k: len(pools[k]) / shares[k], default=None)
    if anchor is None:
        return []
    n = int(np.ceil(len(pools[anchor]) / shares[anchor]))
    out = []
    for k, w in shares.items():
        pool = pools.get(k) or []
        want = len(pool) if k == anchor else int(round(n * w))
        if not pool or want == 0:
            continue
        reps = [rng.permutation(len(pool)) for _ in range(-(-want // len(pool)))]
        out += [pool[j] for j in np.concatenate(reps)[:want]]
    return out


@dataclass(frozen=True)
class ReviewSource:
    """One review dataset of a lookahead run and the image codes of its frames and of its forks' real frames."""
    root: Path
    codes: Path
    real_codes: Path


class LookaheadDataset(torch.utils.data.Dataset):
    """Review / align items from the review datasets, basic items delegated to a SequenceDataset."""

    CACHE_EPISODES = 64

    def __init__(self, sources: list[ReviewSource], basic: SequenceDataset, builder: SequenceBuilder, items: list,
                 max_len: int, chain_thoughts: bool = False, canonicalize=None):
        self.sources = list(sources)
        self.canonicalize = canonicalize or (lambda codes: codes)  # the run's code map, for stored imagined codes
        self.basic, self.builder, self.items, self.max_len = basic, builder, items, max_len
        self.chain_thoughts = chain_thoughts
        self._pid = None
        self._cache: OrderedDict[tuple[int, int], dict] = OrderedDict()
        self._reached: dict[tuple[int, int], np.ndarray] = {}
        self._rules = RuleAnnotator(0)

    def __len__(self) -> int:
        return len(self.items)

    def _open(self) -> None:
        if self._pid != os.getpid():
            self._open_sources = [(Dataset(src.root), h5py.File(src.codes, "r"), h5py.File(src.real_codes, "r"))
                                  for src in self.sources]
            self._pid = os.getpid()

    def _episode(self, source: int, index: int) -> dict:
        if (source, index) in self._cache:
            self._cache.move_to_end((source, index))
            return self._cache[(source, index)]
        ds, codes, real = self._open_sources[source]
        ep = ds.episode(index)
        key = episode_key(index)
        S, K = ep.read("review/proposed").shape
        if "review/candidates/verdict" in ep:
            shape = ep.read("review/candidates/proposed").shape
            cands = {"proposed": ep.read("review/candidates/proposed"),
                     "thoughts": np.asarray(ep.texts("review/candidates/thoughts"), dtype=object).reshape(shape),
                     "imagined": self.canonicalize(ep.read("review/candidates/imagined_codes").astype(np.int64)),
                     "text": np.asarray(ep.texts("review/candidates/text"), dtype=object).reshape(shape[:2])}
        else:
            cands = None
        item = {"instruction": str(ep.attrs.get("instruction", "")), "codes": codes[key][()].astype(np.int64),
                "reasoning": ep.texts("reasoning"), "actions": ep.read("actions").astype(np.int64),
                "step": ep.read("review/step"), "proposed": ep.read("review/proposed"),
                "thoughts": np.asarray(ep.texts("review/thoughts"), dtype=object).reshape(S, K),
                "imagined": self.canonicalize(ep.read("review/imagined_codes").astype(np.int64)),
                "real": real[key][()].astype(np.int64),
                "text": np.asarray(ep.texts("review/text"), dtype=object).reshape(S, K),
                "corrected": ep.read("review/corrected"),
                "expert": ep.read("review/expert").astype(np.int64), "ep": ep, "ds": ds, "candidates": cands}
        self._cache[(source, index)] = item
        if len(self._cache) > self.CACHE_EPISODES:
            self._cache.popitem(last=False)
        return item

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.build(self.items[i])

    def reached(self, source: int, index: int, s: int) -> int:
        """How many real frames the fork of state ``s`` of an episode reached (reads that one small array,
        not the episode's frames and codes)."""
        self._open()
        if (source, index) not in self._reached:
            self._reached[(source, index)] = self._open_sources[source][0].episode(index).read("review/real_steps")
        return int(self._reached[(source, index)][s])

    def expert_thoughts(self, source: int, index: int) -> list[str]:
        """The expert's reasoning at every step of a review episode: the rule annotator (as
        ``rig augment --stage reason`` writes it) on the states the policy visited, ending on the expert's
        action (the target) where the policy took another."""
        self._open()
        e = self._episode(source, index)
        if "expert_thoughts" not in e:
            ds = e["ds"]
            e["expert_thoughts"] = self._rules.annotate_expert(e["ep"], ds.action_names,
                                                               ds.manifest.get("semantic_names", {}))
        return e["expert_thoughts"]

    def build(self, item: tuple) -> dict[str, np.ndarray]:
        """The sample of an item (kind, ...), also one not in the mix (e.g. a review item with the other frames)."""
        if item[0] == BASIC:
            return self.basic[item[1]]
        self._open()
        kind, source, index, s, j = item[:5]
        e = self._episode(source, index)
        t = int(e["step"][s])
        c = e["codes"]
        history = [(c[k], e["reasoning"][k], int(e["actions"][k]), c[k + 1]) for k in range(max(0, t - HISTORY_STEPS), t)]
        if kind == VERIFY:
            col, cand = item[5], e["candidates"]
            chain = [(str(cand["thoughts"][s, col, m]), int(cand["proposed"][s, col, m]), cand["imagined"][s, col, m])
                     for m in range(max(j, 1))]
            if j == 0:  # reviewed straight after the action
                chain[0] = chain[0][:2] + (None,)
            return self.builder.candidate_sample(e["instruction"], history, c[t], chain, str(cand["text"][s, col]),
                                                 self.max_len)
        if kind == RELABEL:
            expert = int(e["expert"][s])
            nxt = c[t + 1] if int(e["actions"][t]) == expert else None  # the real next frame is the expert's outcome
            step = (c[t], self.expert_thoughts(source, index)[t], expert, nxt)
            past = [self.builder.step(*st).context_only() for st in history]  # the policy's steps: context
            return self.builder.assemble(e["instruction"], past, self.builder.step(*step), self.max_len)
        frames = e["imagined"] if kind == REVIEW else e["real"]
        chain = [(str(e["thoughts"][s, m]), int(e["proposed"][s, m]), frames[s, m]) for m in range(j)]
        review = (str(e["text"][s, j - 1]), int(e["corrected"][s, j - 1])) if kind in REVIEWS else None
        return self.builder.lookahead_sample(e["instruction"], history, c[t], chain, review=review,
                                             max_len=self.max_len, chain_thoughts=self.chain_thoughts)


def check_review_data(ds: Dataset) -> None:
    if not ds.complete:
        raise RigError(f"dataset {ds.root} is incomplete",
                       f"finish it: rig augment --stage review ... --out {ds.root} --resume")
    if "review" not in ds.manifest.get("stages", []):
        raise RigError(f"dataset {ds.root} has no review samples",
                       f"make them with: rig augment --stage review --checkpoint BASIC --data IN --out {ds.root}")


def basic_windows_items(windows: list[Window]) -> list[tuple]:
    return [(BASIC, k) for k in range(len(windows))]
