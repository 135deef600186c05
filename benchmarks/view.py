"""`rig view` at scale: what recording every episode's steps costs `rig evaluate` (time and disk), and the time and
size on disk of the site for a 500-episode evaluation and for a whole game of 1,000+ steps.

    python benchmarks/view.py                                   # 100 episodes x 5 basic tasks x 60 steps, random agent
    python benchmarks/view.py --episodes 10 --policy-episodes 1 # smaller

1. ``rig evaluate --agent random --suite basic --episodes E --max-steps 60`` (5 x E episodes, really played; the random
   agent is the fastest player, so the recorder's share of the time is at its largest), played twice in this process,
   with the recorder off and on (in that order), plus the time spent inside the recorder itself.
2. ``rig view`` of that evaluation: seconds, bytes of frames (WebP sprites) and of step data, per 1,000 steps.
3. ``rig collect --agent expert --task open --episodes 1`` (a whole game) and its view.
4. ``rig evaluate --checkpoint crafter-basic`` on a few episodes (thoughts and imagined frames) and its view: the
   bytes a policy's steps add (text, imagined image codes and frames).
The machine's other load is not controlled: compare the figures of one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.results import write_section

RESULTS = Path(__file__).resolve().parent / "results" / "view.json"
out = Console(width=150)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


class Timer:
    """Seconds spent in the wrapped functions."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
        return timed


def evaluate(folder: Path, episodes: int, max_steps: int, record: bool, **player) -> dict:
    """One evaluation in this process; ``record=False`` turns the step recorder into no-ops."""
    import rig_core.evaluate.steps as steps
    from rig_core.config import EvalConfig
    from rig_core.evaluate.runner import run_evaluate

    saved = steps.StepLog.add, steps.StepLog.close, steps.write_steps
    timer = Timer()
    if record:
        steps.StepLog.add, steps.StepLog.close = timer.wrap(saved[0]), timer.wrap(saved[1])
        steps.write_steps = timer.wrap(saved[2])
    else:
        steps.StepLog.add = lambda self, rec: None
        steps.StepLog.close = lambda self, *a: {"arrays": {}, "frames": None, "attrs": {}}
        steps.write_steps = lambda folder, records, first: first
    try:
        t0 = time.perf_counter()
        cfg = EvalConfig(suite="basic", episodes=episodes, max_steps=max_steps, gifs=0,
                         imagination_episodes=player.pop("imagination_episodes", 0), batch=player.pop("batch", 8),
                         imagination_steps=player.pop("imagination_steps", 3)).validate()
        report = run_evaluate(cfg, out=folder, quiet=True, **player)
        wall = time.perf_counter() - t0
    finally:
        steps.StepLog.add, steps.StepLog.close, steps.write_steps = saved
    played = sum(e["steps"] for e in report["sweep"][0]["episodes"])
    return {"episodes": len(report["sweep"][0]["episodes"]), "steps": played, "seconds": wall,
            "recorder_seconds": timer.seconds if record else 0.0,
            "steps_bytes": _size(folder / "steps") if record else 0}


def view(path: Path, site: Path) -> dict:
    from rig_core.view.build import view as write_view

    info = write_view(path, site, quiet=True)
    k = 1000 / max(1, info["steps"])
    return {"episodes": info["episodes"], "steps": info["steps"], "frames": info["frames"], "seconds": info["seconds"],
            "bytes_frames": info["bytes"]["frames"], "bytes_data": info["bytes"]["data"], "bytes_total": _size(site),
            "files": sum(1 for p in site.rglob("*") if p.is_file()),
            "mb_per_1000_steps": _size(site) * k / 1e6, "frame_mb_per_1000_steps": info["bytes"]["frames"] * k / 1e6,
            "data_mb_per_1000_steps": info["bytes"]["data"] * k / 1e6}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=100, help="episodes per basic task (5 tasks)")
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--policy", default="crafter-basic", help="checkpoint for the policy sample ('' to skip)")
    p.add_argument("--policy-episodes", type=int, default=2, help="episodes per basic task of the policy sample")
    p.add_argument("--open-seed", type=int, default=0, help="world seed of the whole game (0: 1,379 steps)")
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the --json results file it replaces (the others are kept)")
    a = p.parse_args(argv)
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="rig-view-") as tmp:
        tmp = Path(tmp)
        off = evaluate(tmp / "off", a.episodes, a.max_steps, False, agent="random", checkpoint=None)
        on = evaluate(tmp / "on", a.episodes, a.max_steps, True, agent="random", checkpoint=None)
        res["evaluate_random"] = {"off": off, "on": on, "overhead": on["seconds"] / off["seconds"] - 1,
                                  "recorder_us_per_step": 1e6 * on["recorder_seconds"] / on["steps"],
                                  "steps_mb_per_1000_steps": on["steps_bytes"] / on["steps"] * 1000 / 1e6}
        res["view_evaluation"] = view(tmp / "on", tmp / "on-view")
        from rig_core.collect.runner import run_collect
        from rig_core.config import CollectConfig

        run_collect(CollectConfig(out=str(tmp / "open"), agent="expert", task="open", episodes=1, seed=a.open_seed),
                    quiet=True)
        res["view_open_game"] = view(tmp / "open", tmp / "open-view")
        if a.policy:
            pol = evaluate(tmp / "policy", a.policy_episodes, a.max_steps, True, checkpoint=a.policy, agent=None,
                           imagination_episodes=5 * a.policy_episodes, imagination_steps=1, batch=10)
            pol["recorder_us_per_step"] = 1e6 * pol["recorder_seconds"] / pol["steps"]
            pol["steps_mb_per_1000_steps"] = pol["steps_bytes"] / pol["steps"] * 1000 / 1e6
            res["evaluate_policy"] = pol
            res["view_policy"] = view(tmp / "policy", tmp / "policy-view")
    t = Table(title="rig view at scale (one process; the machine's other load not controlled)", title_justify="left")
    for col in ("what", "episodes", "steps", "seconds", "MB on disk", "MB / 1,000 steps"):
        t.add_column(col, justify="left" if col == "what" else "right")
    e = res["evaluate_random"]
    t.add_row("rig evaluate, random agent, recorder off", str(e["off"]["episodes"]), str(e["off"]["steps"]),
              f"{e['off']['seconds']:.1f}", "", "")
    t.add_row(f"  recorder on (+{100 * e['overhead']:.1f} %; {e['recorder_us_per_step']:.0f} us a step inside it)",
              str(e["on"]["episodes"]), str(e["on"]["steps"]), f"{e['on']['seconds']:.1f}",
              f"{e['on']['steps_bytes'] / 1e6:.2f}", f"{e['steps_mb_per_1000_steps']:.3f}")
    for key, what in (("view_evaluation", "rig view of that evaluation"), ("view_open_game", "rig view of a whole game"),
                      ("view_policy", f"rig view of {a.policy} (thoughts, imagined frames)")):
        if key in res:
            v = res[key]
            t.add_row(what, str(v["episodes"]), str(v["steps"]), f"{v['seconds']:.1f}", f"{v['bytes_total'] / 1e6:.2f}",
                      f"{v['mb_per_1000_steps']:.3f} (frames {v['frame_mb_per_1000_steps']:.3f})")
    if "evaluate_policy" in res:
        pol = res["evaluate_policy"]
        t.add_row(f"  its steps/ ({pol['recorder_us_per_step']:.0f} us a step in the recorder)", str(pol["episodes"]),
                  str(pol["steps"]), f"{pol['seconds']:.1f}", f"{pol['steps_bytes'] / 1e6:.2f}",
                  f"{pol['steps_mb_per_1000_steps']:.3f}")
    out.print(t)
    write_section(a.json, "benchmarks/view.py", a.section, res, sys.argv[1:] if argv is None else argv)
    return res


if __name__ == "__main__":
    main()
