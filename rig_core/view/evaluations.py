"""An evaluation in the viewer: one player's folder, or several players' folders with their paired comparison.

The summary comes from ``eval.json`` (and ``compare.json``), the episode pages from ``steps/`` (see
rig_core/evaluate/steps.py); imagined image codes are decoded with the tokenizer recorded beside them.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError
from rig_core.evaluate.compare import load_evaluation
from rig_core.evaluate.report import overall
from rig_core.evaluate.steps import STEPS_DIR, steps_index
from rig_core.fsutil import read_json
from rig_core.view.episodes import frame_psnr, inventory, outcome, unlocked_at, write_episode
from rig_core.view.site import Site, Sprite

PLOTS = ("success.png", "scaling.png", "imagination.png")


def player_folders(path: Path) -> list[Path]:
    """The evaluation folders under ``path``: itself, or one per player (in the order they were compared)."""
    path = Path(path)
    if (path / "eval.json").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / "eval.json").is_file()) if path.is_dir() else []
    compare = path / "compare.json"
    if compare.is_file():
        order = [Path(p["folder"]).name for p in (read_json(compare, "re-run rig evaluate").get("players") or [])]
        found.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
    return found


def _name(doc: dict[str, Any], folder: Path) -> str:
    who = doc["player"].get("checkpoint") or doc["player"].get("agent")
    return Path(str(who)).name if who else folder.name


class EvalEpisode:
    """One evaluated episode's recorded steps (an HDF5 group of ``steps/``)."""

    def __init__(self, group, names: list[str], achievements: list[str], items: list[str], image_tok):
        self.g, self.names, self.achievements, self.items, self.tok = group, names, achievements, items, image_tok
        self.length = int(group.attrs["length"])
        self.n = int(group.attrs["n"])

    def _decode(self, codes: np.ndarray) -> np.ndarray | None:
        if self.tok is None:
            return None
        return self.tok.decode(np.asarray(codes, np.int64).reshape(-1, codes.shape[-1])).reshape(
            codes.shape[:-1] + tuple(self.tok.frame_shape))

    def chunk(self, start: int, stop: int, sprite: Sprite) -> dict[str, Any]:
        g, last = self.g, stop == self.length
        ahead = g["ahead/actions"].shape[1] if "ahead/actions" in g else 0
        frames = g["frames"][start:min(self.length + 1, stop + 1 + ahead)]
        actions = g["actions"][()]  # whole episode: a look-ahead chain is checked against the actions to come
        read = {k: g[k][start:stop] for k in ("rewards", "achievements_mask", "inventory", "expert", "valid")}
        thoughts = [t.decode() if isinstance(t, bytes) else str(t) for t in g["reasoning"][start:stop]]
        imagined = None
        if "imagined" in g and self.tok is not None:
            decoded = self._decode(g["imagined_codes"][start:stop])
            imagined = [d if m else None for d, m in zip(decoded, g["imagined"][start:stop])]
        steps = []
        for k, t in enumerate(range(start, stop)):
            step = {"t": t, "f": sprite.add(frames[k]), "action": self.names[int(actions[t])],
                    "reward": float(read["rewards"][k]), "thought": thoughts[k],
                    "unlocked": unlocked_at(read["achievements_mask"][k:k + 1], self.achievements)[0],
                    "inventory": inventory(read["inventory"][k], self.items)}
            if int(read["expert"][k]) >= 0:
                step["expert"] = self.names[int(read["expert"][k])]
            if not bool(read["valid"][k]):
                step["invalid"] = True
            real_next = frames[k + 1] if k + 1 < len(frames) else None
            if self.n > 0:
                step["proposal"] = self._proposal(g, t, k, frames, actions, imagined[k] if imagined else None, sprite)
            elif imagined is not None and imagined[k] is not None:
                step["imagined"] = [{"f": sprite.add(imagined[k]), "psnr": frame_psnr(imagined[k], real_next),
                                     "label": "imagined next frame"}]
            if "candidates/actions" in g:
                step["candidates"] = self._candidates(g, t)
            steps.append(step)
        out: dict[str, Any] = {"steps": steps}
        if last:
            out["final"] = sprite.add(frames[stop - start])
        return out

    def _proposal(self, g, t: int, k: int, frames, actions, first, sprite: Sprite) -> dict[str, Any]:
        """With lookahead: the proposal, the frames imagined along its chain (each against the real frame where
        the episode really took the same actions), the review and the action taken."""
        proposed = int(g["proposed"][t])
        chain_actions = [proposed]
        chain = [{"action": self.names[proposed], "thought": "", "image": first}]
        if "ahead/actions" in g:
            images = self._decode(g["ahead/codes"][t])
            for j, a in enumerate(g["ahead/actions"][t].tolist()):
                if a < 0:
                    break
                text = g["ahead/thoughts"][t, j]
                chain.append({"action": self.names[a], "thought": text.decode() if isinstance(text, bytes) else str(text),
                              "image": images[j] if images is not None else None})
                chain_actions.append(a)
        out = []
        for j, c in enumerate(chain):
            same = [int(x) for x in actions[t:t + j + 1]] == chain_actions[:j + 1]
            real = frames[k + j + 1] if same and k + j + 1 < len(frames) else None
            out.append({"action": c["action"], "thought": c["thought"], "f": sprite.add(c["image"]),
                        "real": sprite.add(real), "psnr": frame_psnr(c["image"], real)})
        p = float(g["p_worse"][t])
        review = g["review"][t]
        return {"action": self.names[proposed], "chain": out, "taken": self.names[int(actions[t])],
                "review": review.decode() if isinstance(review, bytes) else str(review),
                "p_worse": None if np.isnan(p) else p, "source": "lookahead"}

    def _candidates(self, g, t: int) -> list[dict[str, Any]]:
        acts, scores = g["candidates/actions"][t], g["candidates/scores"][t]
        texts = g["candidates/thoughts"][t] if "candidates/thoughts" in g else [""] * len(acts)
        return [{"action": self.names[int(a)], "score": float(s),
                 "thought": x.decode() if isinstance(x, bytes) else str(x)}
                for a, s, x in zip(acts, scores, texts) if int(a) >= 0]


def _image_tokenizer(folder: Path):
    from rig_core.tokenize.image import FILE, GridImageTokenizer

    return GridImageTokenizer.load(folder / STEPS_DIR) if (folder / STEPS_DIR / FILE).is_file() else None


def _success_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"task": task, "episodes": t["episodes"], "successes": t["successes"], "rate": t["rate"],
             "ci95": t["ci95"], "mean_steps": t.get("mean_steps")} for task, t in entry["tasks"].items()]


def _player_summary(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = []
    for e in doc["sweep"]:
        o = overall(e)
        rows.append({"player": name, "n": e["test_time_steps"], "overall": o, "rows": _success_rows(e),
                     "groups": e.get("groups", {}), "crafter_score": (e.get("open") or {}).get("crafter_score"),
                     "crafter_score_ci95": (e.get("open") or {}).get("crafter_score_ci95"),
                     "expert_agreement": e.get("expert_agreement"), "changed_rate": e.get("changed_rate"),
                     "actions_per_s": e.get("actions_per_s")})
    return rows


def write_evaluation(site: Site, path: Path, report=None) -> dict[str, Any]:
    """Every player's episodes and summary; returns the index data."""
    from rig_core.envs import make_env

    path = Path(path)
    folders = player_folders(path)
    if not folders:
        raise RigError(f"{path} holds no evaluation (no eval.json in it or in a folder under it)",
                       "pass a folder written by rig evaluate --out")
    env = make_env()
    names, achievements, items = env.action_names, env.achievement_names, env.item_names
    episodes, success, plots, players, missing = [], [], [], [], []
    several = len(folders) > 1 or folders[0] != path
    if several and site.copy_file(path / "players.png", "plots/players.png"):
        plots.append({"title": "players against the first, paired", "src": "plots/players.png"})
    if several and site.copy_file(path / "achievements.png", "plots/achievements.png"):
        plots.append({"title": "success per achievement, players side by side", "src": "plots/achievements.png"})
    for p, folder in enumerate(folders):
        doc = load_evaluation(folder)
        name = _name(doc, folder)
        players.append({"name": name, "folder": folder.name, "checkpoint": doc["player"].get("checkpoint"),
                        "agent": doc["player"].get("agent"), "suite": doc.get("suite"),
                        "seeds": [doc["seeds"][0], doc["seeds"][-1]] if doc.get("seeds") else None,
                        "temperature": doc.get("temperature"), "command": doc.get("command", "")})
        success += _player_summary(doc, name)
        for plot in PLOTS:
            src = site.copy_file(folder / plot, f"plots/{p}/{plot}")
            if src:
                plots.append({"title": f"{name}: {plot[:-4]}", "src": src})
        tok = _image_tokenizer(folder)
        with ExitStack() as stack:
            recorded = steps_index(folder, stack)
            if not recorded:
                missing.append(name)
            for e in doc["sweep"]:
                n = int(e["test_time_steps"])
                for r in e["episodes"]:
                    number = len(episodes)
                    group = recorded.get((n, r["task"], int(r["seed"])))
                    chunks = 0
                    if group is not None:
                        chunks = write_episode(site, number, EvalEpisode(group, names, achievements, items, tok))
                    episodes.append({"id": number, "player": name, "n": n, "task": r["task"], "seed": r["seed"],
                                     "instruction": str(group.attrs.get("instruction", "")) if group is not None else "",
                                     "success": bool(r["success"]), "end": outcome(r["success"], r.get("died", False)),
                                     "steps": r["steps"], "reward": r.get("reward"), "unlocked": r.get("unlocked", []),
                                     "chunks": chunks, "recorded": group is not None})
                    if report is not None:
                        report(1, r["steps"] if group is not None else 0)
    compare = read_json(path / "compare.json", "re-run rig evaluate") if several and (path / "compare.json").is_file() else None
    facts = [["path", str(path)], ["players", ", ".join(p["name"] for p in players)]]
    first = players[0]
    if first["seeds"]:
        facts.append(["seeds", f"{first['seeds'][0]}..{first['seeds'][1]} (suite {first['suite']})"])
    if first["command"]:  # several players come from one command
        facts.append(["command", first["command"]])
    if missing:
        facts.append(["not recorded", f"{', '.join(missing)}: written by an older rig evaluate (no steps/); "
                      "re-run it to see its episodes step by step"])
    return {"kind": "evaluation", "title": f"evaluation {path.name}", "facts": facts, "players": players,
            "success": success, "compare": compare, "plots": plots, "episodes": episodes}
