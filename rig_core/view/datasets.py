"""A dataset in the viewer: collected, reasoned (frames through the input's external links) or review data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.data.reader import Dataset, Episode
from rig_core.stats.metrics import wilson_interval
from rig_core.view.episodes import frame_psnr, inventory, outcome, unlocked_at, write_episode
from rig_core.view.site import Site, Sprite

VERDICTS = {0: "same", 1: "fine", 2: "worse"}  # rig_core.review.judge's codes, as review datasets store them


class DatasetEpisode:
    """One stored episode's steps (frames read a chunk at a time)."""

    def __init__(self, ep: Episode, actions: list[str], achievements: list[str]):
        self.ep, self.names, self.achievements = ep, actions, achievements
        self.length = ep.length
        names = ep["inventory"].attrs.get("names", []) if "inventory" in ep else []
        self.items = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        self.reasoning = ep.texts("reasoning") if "reasoning" in ep else None
        self.review = _review(ep) if "review/step" in ep else {}

    def chunk(self, start: int, stop: int, sprite: Sprite) -> dict[str, Any]:
        ep, last = self.ep, stop == self.length
        frames = ep["frames"][start:stop + 1]  # the frame after the chunk's last step too
        actions = ep["actions"][start:stop]
        rewards = ep["rewards"][start:stop]
        masks = ep["achievements_mask"][start:stop] if "achievements_mask" in ep else np.zeros(stop - start, np.uint32)
        inv = ep["inventory"][start + 1:stop + 1] if "inventory" in ep else None  # after each step
        steps = []
        for k, t in enumerate(range(start, stop)):
            step = {"t": t, "f": sprite.add(frames[k]), "action": self.names[int(actions[k])],
                    "reward": float(rewards[k]), "unlocked": unlocked_at(masks[k:k + 1], self.achievements)[0]}
            if inv is not None and k < len(inv):
                step["inventory"] = inventory(inv[k], self.items)
            if self.reasoning is not None:
                step["thought"] = self.reasoning[t]
            if t in self.review:
                step["proposal"] = self._proposal(self.review[t], frames[k + 1] if k + 1 < len(frames) else None,
                                                  int(actions[k]), sprite)
            steps.append(step)
        out: dict[str, Any] = {"steps": steps}
        if last and len(frames) > stop - start:
            out["final"] = sprite.add(frames[stop - start])
        return out

    def _proposal(self, r: dict[str, Any], real_next: np.ndarray | None, taken: int, sprite: Sprite) -> dict:
        """A visited state of review data: the proposed chain, what was imagined and what the forked world
        really showed, the judge's verdict and reason and the correction after each look-ahead depth j."""
        chain = []
        for j in range(len(r["proposed"])):
            real = r["real"][j] if j < r["real_steps"] else None
            chain.append({"action": self.names[int(r["proposed"][j])], "thought": r["thoughts"][j],
                          "f": sprite.add(r["imagined"][j]), "real": sprite.add(real),
                          "psnr": float(r["psnr"][j]) if real is not None else None,
                          "verdict": VERDICTS.get(int(r["verdict"][j]), str(int(r["verdict"][j]))),
                          "reason": r["reason"][j], "review": r["text"][j],
                          "corrected": self.names[int(r["corrected"][j])], "selected": bool(r["selected"][j])})
        return {"action": chain[0]["action"] if chain else None, "chain": chain,
                "expert": self.names[int(r["expert"])], "taken": self.names[taken], "source": "review data"}


def _review(ep: Episode) -> dict[int, dict[str, Any]]:
    """Per step t, its review arrays (S visited states, K look-ahead depths)."""
    steps = ep.read("review/step")
    if not len(steps):
        return {}
    k = ep["review/proposed"].shape[1]
    texts = {n: np.asarray(ep.texts(f"review/{n}"), dtype=object).reshape(len(steps), k)
             for n in ("thoughts", "reason", "text")}
    arrays = {n: ep.read(f"review/{n}") for n in ("proposed", "imagined", "real", "real_steps", "expert", "verdict",
                                                    "corrected", "psnr", "selected")}
    return {int(t): {**{n: a[s] for n, a in arrays.items()}, **{n: list(a[s]) for n, a in texts.items()}}
            for s, t in enumerate(steps.tolist())}


def write_dataset(site: Site, path: Path, report=None) -> dict[str, Any]:
    """Every episode of the dataset at ``path``; returns the index data."""
    with Dataset(path) as ds:
        man = ds.manifest
        achievements = list(man.get("achievement_names", []))
        episodes, tasks = [], {}
        refs = list(ds.refs().values())
        for number, ref in enumerate(refs):
            ep = ds.episode(ref.index)
            a = ref.attrs
            source = DatasetEpisode(ep, ds.action_names, achievements)
            chunks = write_episode(site, number, source)
            success, died = bool(a.get("success")), bool(a.get("died"))
            episodes.append({"id": number, "index": ref.index, "task": str(a.get("task", "?")),
                             "instruction": str(a.get("instruction", "")), "seed": a.get("seed"),
                             "player": str(a.get("agent", "?")), "success": success, "end": outcome(success, died),
                             "steps": ep.length, "reward": float(np.sum(ep["rewards"][()])),
                             "unlocked": json.loads(a.get("unlocked") or "[]"), "chunks": chunks,
                             "recorded": True, "reasoning": source.reasoning is not None,
                             "review": bool(source.review)})
            t = tasks.setdefault(episodes[-1]["task"], [0, 0])
            t[0] += 1
            t[1] += int(success)
            if report is not None:
                report(1, ep.length)
        review = man.get("review") or {}
        return {"kind": "dataset", "title": f"dataset {Path(path).name}",
                "facts": [["path", str(Path(path))], ["environment", f"{man['env'].get('id', '')} {man['env'].get('version', '')}"],
                          ["stages", ", ".join(man.get("stages", []))], ["episodes", str(len(refs))],
                          ["steps", str(sum(e["steps"] for e in episodes))],
                          ["command", str((man.get("producer") or {}).get("command", ""))]]
                         + ([["review", ", ".join(f"{k} {v}" for k, v in review.items())]] if review else []),
                "success": [{"player": "", "n": None, "rows": [_rate(task, *v) for task, v in sorted(tasks.items())]}],
                "episodes": episodes}


def _rate(task: str, episodes: int, successes: int) -> dict[str, Any]:
    lo, hi = wilson_interval(successes, episodes)
    return {"task": task, "episodes": episodes, "successes": successes, "rate": successes / episodes if episodes else 0,
            "ci95": [lo, hi]}
