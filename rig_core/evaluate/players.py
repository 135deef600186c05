"""Several players in one `rig evaluate`: every (player, test-time steps) on the same seeds, one folder each,
then one paired comparison against the first player, a report and a plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rig_core.config import EvalConfig
from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_text, ensure_writable_dir


def _stage(checkpoint: Path) -> str:
    from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint
    from rig_core.model.run_config import load_run_config

    return load_run_config(run_of_checkpoint(find_checkpoint(Path(checkpoint)))).stage


def plan_players(checkpoints: list[Path], agents: list[str], test_time_steps: str) -> list[dict[str, Any]]:
    """Each player with the test-time steps it can play: a basic checkpoint and a baseline play N = 0 only
    (and a basic checkpoint without --candidates: it has no review to score them with)."""
    from rig_core.evaluate.runner import parse_steps

    sweep = parse_steps(test_time_steps)
    plan = []
    for c in checkpoints:
        review = _stage(c) == "lookahead"
        plan.append({"checkpoint": Path(c), "agent": None, "steps": sweep if review else [0], "name": Path(c).name,
                     "review": review})
    plan += [{"checkpoint": None, "agent": a, "steps": [0], "name": a} for a in agents]
    names = [p["name"] for p in plan]
    for i, p in enumerate(plan):  # folder names: the run's or agent's name, numbered where two share one
        p["folder"] = p["name"] if names.count(p["name"]) == 1 else f"{p['name']}-{i + 1}"
    if len(plan) < 2:
        raise RigError("several players need at least two --checkpoint / --agent", "add a player, or evaluate one")
    return plan


def run_players(checkpoints: list[Path], agents: list[str], cfg: EvalConfig, out: Path,
                quiet: bool = False) -> dict[str, Any]:
    """Evaluate every player into ``out/<player>`` on the same seeds, then compare them all against the first."""
    from rig_core.collect.ray_backend import session_for
    from rig_core.evaluate.compare import compare_players, markdown
    from rig_core.evaluate.runner import run_evaluate

    plan = plan_players(checkpoints, agents, cfg.test_time_steps)
    cfg.validate()
    out = ensure_writable_dir(Path(out), "evaluation output")
    dirs = []
    with session_for(cfg.backend, cfg.workers, cfg.address):
        for p in plan:  # with --backend ray: one Ray for every player
            folder = out / p["folder"]
            run_evaluate(replace(cfg, test_time_steps=",".join(str(n) for n in p["steps"]),
                                 candidates=cfg.candidates if p.get("review") else None),
                         checkpoint=p["checkpoint"], agent=p["agent"], out=folder, quiet=quiet)
            dirs.append(folder)
    result = compare_players(dirs, out=out)
    result["players"] = [{"folder": str(d), "test_time_steps": p["steps"]} for d, p in zip(dirs, plan)]
    plot_players(dirs, result, out / "players.png")
    plots = "\n![players](players.png)\n"
    if plot_achievements(dirs, out / "achievements.png"):
        plots += "\n![success per achievement](achievements.png)\n"
    skipped = [p["name"] for p in plan
               if p["checkpoint"] is not None and len(p["steps"]) < len(cfg.test_time_steps.split(","))]
    plain = [p["name"] for p in plan if p["checkpoint"] is not None and not p.get("review")] if cfg.candidates else []
    note = (f"\n{', '.join(skipped)}: trained without review data, played at N = 0 only.\n" if skipped else "")
    note += (f"\n{', '.join(plain)}: trained without review data, played its own actions (no candidates).\n"
             if plain else "")
    atomic_write_text(out / "report.md", markdown(result) + note + plots)
    return result


def plot_players(dirs: list[Path], result: dict[str, Any], path: Path) -> None:
    """Success with its 95 % interval per player and N; the paired differences against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rig_core.evaluate.compare import load_evaluation
    from rig_core.evaluate.report import overall

    labels, rates, lows, highs = [], [], [], []
    for d in dirs:
        doc = load_evaluation(d)
        who = doc["player"].get("checkpoint") or doc["player"].get("agent")
        for e in doc["sweep"]:
            o = overall(e)
            labels.append(f"{Path(str(who)).name} N={e['test_time_steps']}")
            rates.append(100 * o["rate"])
            lows.append(100 * (o["rate"] - o["ci95"][0]))
            highs.append(100 * (o["ci95"][1] - o["rate"]))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.errorbar(range(len(rates)), rates, yerr=[lows, highs], fmt="o", capsize=4)
    a.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    a.set_ylabel("success (%)")
    a.set_title("success, 95 % interval")
    rows = result["rows"]
    diffs = [100 * r["success_diff"] for r in rows]
    b.errorbar(range(len(rows)), diffs, fmt="o", capsize=4,
               yerr=[[d - 100 * r["success_diff_ci95"][0] for d, r in zip(diffs, rows)],
                     [100 * r["success_diff_ci95"][1] - d for d, r in zip(diffs, rows)]])
    b.axhline(0, color="grey", lw=0.8)
    b.set_xticks(range(len(rows)), [Path(r["player"].split(" N=")[0]).name + (" N=" + r["player"].split(" N=")[1]
                                    if " N=" in r["player"] else "") for r in rows], rotation=30, ha="right")
    b.set_ylabel("difference (points)")
    b.set_title(f"against {Path(result['baseline'].split(' N=')[0]).name}"
                + (" (paired)" if all(r["paired"] for r in rows) else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_achievements(dirs: list[Path], path: Path) -> bool:
    """Whole games: each achievement's success with its 95 % interval, the players side by side (their first N).
    False (nothing drawn) when the players did not play whole games."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rig_core.evaluate.compare import load_evaluation

    games = []
    for d in dirs:
        doc = load_evaluation(d)
        o = doc["sweep"][0].get("open")
        if o is None or "achievement_ci95" not in o:
            return False
        games.append((Path(str(doc["player"].get("checkpoint") or doc["player"].get("agent"))).name, o))
    names = list(games[0][1]["achievement_rates"])
    x = np.arange(len(names))
    width = 0.8 / len(games)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for k, (who, o) in enumerate(games):
        rates = np.array([o["achievement_rates"][a] for a in names])
        lo = rates - np.array([o["achievement_ci95"][a][0] for a in names])
        hi = np.array([o["achievement_ci95"][a][1] for a in names]) - rates
        ax.bar(x + (k - (len(games) - 1) / 2) * width, rates, width, yerr=[lo, hi], capsize=2,
               label=f"{who} (score {o['crafter_score']:.1f})")
    ax.set_xticks(x, [a.replace("_", " ") for a in names], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("success (% of games, 95 % interval)")
    ax.set_title("success per achievement over whole games, same seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def evaluate(checkpoints: list[Path], agents: list[str], cfg: EvalConfig, out: Path,
             quiet: bool = False) -> tuple[bool, dict[str, Any]]:
    """`rig evaluate`'s one entry: several players are played on the same seeds and compared
    (``(True, paired)``), one player is evaluated alone (``(False, result)``)."""
    from rig_core.evaluate.runner import run_evaluate

    if len(checkpoints) + len(agents) > 1:
        return True, run_players(checkpoints, agents, cfg, out, quiet=quiet)
    return False, run_evaluate(cfg, checkpoint=checkpoints[0] if checkpoints else None,
                               agent=agents[0] if agents else None, out=out, quiet=quiet)
