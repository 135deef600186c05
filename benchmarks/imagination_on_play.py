"""World models side by side on the same states: one player's own play, every model's 1-step imagination.

    python benchmarks/imagination_on_play.py --player crafter-basic --models crafter-basic runs/a runs/b \
        [--episodes 20] [--out benchmarks/out/imagination_on_play.json] [--section NAME --update]

The player (a checkpoint at N = 0 with its own decoding, or ``expert``) plays ``--episodes`` episodes of the
basic tasks on held-out seeds (those of benchmarks/lookahead.py's imagination windows); each model then
imagines from the same 120 windows at most, in context, greedy, with the actions really taken. One row per
model and class of step (moves that went through, blocked moves, moves the frames cannot tell, other
actions): model and copy-last PSNR per window, the paired gain with its 95 % interval, code accuracy, the share
of moves whose imagined view held (right for blocked moves, wrong for the others); and
per model the PSNR pooled over all windows and the tokenizer's ceiling. Writes --out and, with --update, the
section --section of benchmarks/results/imagination_on_play.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from lookahead import imagination, own_windows  # noqa: E402  (the windows and measurement of that benchmark)

from rig_core.results import publish  # noqa: E402

out = Console()
RESULTS = Path(__file__).parent / "results" / "imagination_on_play.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--player", default="crafter-basic", help="checkpoint whose own play gives the states, or expert")
    p.add_argument("--models", nargs="+", required=True, help="checkpoints whose imagination is measured")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--rollouts", type=int, default=120, help="windows at most")
    p.add_argument("--horizon", type=int, default=3, help="steps each window needs ahead (as benchmarks/lookahead.py)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/imagination_on_play.json"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the results file it writes")
    p.add_argument("--update", action="store_true", help=f"also write the section of {RESULTS}")
    a = p.parse_args()
    ns = argparse.Namespace(suite="basic", imagination_episodes=a.episodes, max_steps=a.max_steps,
                            imagine_on="expert" if a.player == "expert" else "basic", basic=Path(a.player),
                            lookahead=None, seed=0, horizon=a.horizon, rollouts=a.rollouts, batch=25, cold=False)
    episodes = own_windows(ns)
    result = {"player": a.player, "models": {}}
    t = Table(title=f"1-step imagination on {a.player}'s own play ({a.episodes} episodes)", title_justify="left")
    for col in ("model", "steps", "windows", "model dB", "copy-last dB", "gain [95 %]", "codes right", "view held"):
        t.add_column(col, justify="right" if col not in ("model", "steps") else "left")
    for m in a.models:
        im = imagination(Path(m), episodes, ns)
        result["models"][m] = im
        h1 = im["horizons"][0]
        rows = [("all", h1)] + list(im.get("by_outcome", {}).items())
        for k, r in rows:
            lo, hi = r["psnr_gain_ci95"]
            t.add_row(m if k == "all" else "", k, str(r["samples"]), f"{r['psnr_model']:.1f}", f"{r['psnr_copy_last']:.1f}",
                      f"{r['psnr_model'] - r['psnr_copy_last']:+.1f} [{lo:+.1f}, {hi:+.1f}]", f"{r['cell_accuracy']:.1%}",
                      "" if r.get("imagined_held") is None else f"{r['imagined_held']:.0%}")
        t.add_row("", "pooled / ceiling", "", f"{h1['psnr_pooled_model']:.1f}", f"{h1['psnr_pooled_copy_last']:.1f}",
                  f"ceiling {h1['psnr_tokenizer_ceiling']:.1f}", "", "", end_section=True)
    out.print(t)
    publish(result, "benchmarks/imagination_on_play.py", a.section, sys.argv[1:], a.out, RESULTS if a.update else None)
    out.print(f"wrote {a.out}" + (f" and the section '{a.section}' of {RESULTS}" if a.update else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
