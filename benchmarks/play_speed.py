"""Play speed: real actions/s of the RIG loop for B environments with the cross-step KV cache and with the
full-prefill path side by side in the same run, next to the raw environment step rate, and tokens/s of our
batched constrained decoding (token by token) next to plain `model.generate` on the same prompts (same number
of new tokens, greedy, KV cache). With --drafts, imagined frames decoded with the last frame as the draft
against token by token (`--no-draft`), both policies stepping the same worlds in turn, step by step.

    python benchmarks/play_speed.py --checkpoint runs/basic --batches 50 --steps 60      # a trained model
    python benchmarks/play_speed.py --data datasets/basic-reason [--recipes tiny,cpu-15m] [--steps 6]
    python benchmarks/play_speed.py --checkpoint crafter-basic --batches 50 --steps-n '' --drafts 1,2 \
        --draft-steps 10 --temperatures 0,0.5 --max-think 64 --section drafts

With --checkpoint the model is a trained one, so its thoughts have their real length; with --data, models
are built by `rig train --max-steps 1` on the dataset. N = 0 decodes as `rig evaluate` does for episodes it
does not record (no imagined frame); N = 2 runs the lookahead decoding (a review included) on the same
weights. Each measurement plays --steps real steps of the same worlds, so the contexts fill as in an episode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from rig_core.diagnostics.draft_speed import paired_run
from rig_core.envs import make_env
from rig_core.inference.policy import RigPolicy
from rig_core.train.config import train_config
from rig_core.train.run import run_train
from rig_core.results import write_section

out = Console()


def raw_env_rate(steps: int = 600) -> float:
    env = make_env(length=None)
    env.reset(0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(int(rng.integers(1, 6)))
        if term or trunc:
            env.reset(1)
    return steps / (time.perf_counter() - start)


def loop_rate(policy: RigPolicy, b: int, steps: int, n: int = 0) -> tuple[float, float]:
    """(actions/s, generated tokens/s) of the full loop: env stepping included."""
    envs = [make_env(length=None) for _ in range(b)]
    frames = np.stack([e.reset(2_000_000 + i).frame for i, e in enumerate(envs)])
    imagine = n > 0  # N = 0: as rig evaluate decodes the episodes it does not record
    policy.reset(["Collect wood."] * b)
    policy.act(frames, lookahead=n, imagine=imagine)  # warm-up, untimed: each path starts warm
    policy.reset(["Collect wood."] * b)
    tokens = 0
    per_image = policy.image_tok.tokens_per_frame + 2
    start = time.perf_counter()
    for _ in range(steps):
        outs = policy.act(frames, lookahead=n, imagine=imagine)
        tokens += sum(o.think_tokens + 2 + 3 + imagine * per_image + n * (per_image + 5) for o in outs)
        nxt = []
        for i, (e, o) in enumerate(zip(envs, outs)):
            obs, _, term, trunc, _ = e.step(o.action)
            nxt.append(e.reset(3_000_000 + i).frame if term or trunc else obs.frame)  # a death: play on elsewhere
        frames = np.stack(nxt)
    dt = time.perf_counter() - start
    return b * steps / dt, tokens / dt


def generate_rate(policy: RigPolicy, b: int, new_tokens: int, repeats: int = 3) -> tuple[float, float]:
    """tokens/s of plain model.generate vs our decoding on the same prompts (the context up to <think>)."""
    env = make_env(length=None)
    frame = env.reset(3).frame
    policy.reset(["Collect wood."] * b)
    s = policy.tok.special
    codes = policy.image_tok.encode(np.stack([frame] * b))
    rows = [policy._context(i, [s["<obs>"], *policy.tok.images(c).tolist(), s["</obs>"], s["<think>"]])
            for i, c in enumerate(codes)]
    ids = torch.tensor(rows)
    model = policy.model
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=policy.tok.pad_id)
        start = time.perf_counter()
        for _ in range(repeats):
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=policy.tok.pad_id)
        plain = b * new_tokens * repeats / (time.perf_counter() - start)
        start = time.perf_counter()
        made = 0
        for _ in range(repeats):
            policy.reset(["Collect wood."] * b)
            outs = policy.act(np.stack([frame] * b))
            made += sum(o.think_tokens + 2 + 3 + policy.image_tok.tokens_per_frame for o in outs)
        ours = made / (time.perf_counter() - start)
    return ours, plain


def draft_table(rows: list[dict]) -> Table:
    t = Table(title="imagined frames: drafts against token by token (same worlds, in turn; act time only)",
              title_justify="left")
    for col in ("T", "B", "N", "window", "actions/s", "token by token", "speed-up", "passes/frame", "first", "further",
                "row passes", "image tok/s", "token by token ", "speed-up ", "rows differing"):
        t.add_column(col, justify="right")
    for r in rows:
        d, p = r["drafts"], r["token by token"]
        t.add_row(f"{r['temperature']:g}", str(r["B"]), str(r["N"]), str(r.get("window", 12)), f"{d['actions_per_s']:.2f}",
                  f"{p['actions_per_s']:.2f}", f"{r['speedup']:.2f}x", f"{d['passes_per_frame']:.1f}",
                  f"{d['passes_first_frame']:.1f}", "" if d["passes_further_frame"] is None else
                  f"{d['passes_further_frame']:.1f}", f"{r['row_passes_per_frame']:.1f}",
                  f"{d['image_tokens_per_s']:,.0f}", f"{p['image_tokens_per_s']:,.0f}", f"{r['image_speedup']:.2f}x",
                  f"{r['row_steps_differing']} of {r['row_steps']}")
    return t


def kind_table(rows: list[dict]) -> Table:
    t = Table(title="what the draft gave, by the kind of step the frame imagines", title_justify="left")
    for col in ("T", "N", "kind", "frames", "cells kept from the draft", "rejections", "row passes"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for r in rows:
        for kind, k in r["by_kind"].items():
            t.add_row(f"{r['temperature']:g}", str(r["N"]), kind, str(k["frames"]), f"{k['kept_share']:.1%}",
                      f"{k['rejections']:.1f}", f"{k['row_passes']:.1f}")
    return t


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="dataset to build untrained models of --recipes on")
    p.add_argument("--checkpoint", type=Path, help="a trained run to measure instead")
    p.add_argument("--recipes", default="tiny,cpu-15m")
    p.add_argument("--steps", type=int, default=6, help="real steps per measurement (an episode's length)")
    p.add_argument("--steps-n", default="0,2", help="test-time steps N to measure")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--max-think", type=int, default=32)
    p.add_argument("--slide-keep", default="0.5", help="shares of the context a slide keeps, one cache run each")
    p.add_argument("--drafts", default="", help="test-time steps N to measure with and without drafts (e.g. 1,2)")
    p.add_argument("--draft-steps", type=int, default=10, help="real steps per draft measurement")
    p.add_argument("--temperatures", default="0,0.5", help="decoding temperatures of the draft measurements")
    p.add_argument("--draft-windows", default="", help="most draft cells a row verifies per forward pass, one "
                   "draft measurement each (default: the policy's, 12)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/play_speed.json"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the --json results file it replaces (the others are kept)")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    res = {"raw_env_steps_per_s": raw_env_rate(), "rows": []}
    if (a.data is None) == (a.checkpoint is None):
        p.error("pass --checkpoint RUN (a trained model) or --data DATASET (untrained models of --recipes)")
    with tempfile.TemporaryDirectory(prefix="rig-play-") as tmp:
        runs = [(a.checkpoint.name, a.checkpoint)] if a.checkpoint else []
        for recipe in [] if a.checkpoint else a.recipes.split(","):
            run = Path(tmp) / recipe
            run_train(train_config(recipe, {"data": str(a.data), "out": str(run), "max_steps": 1, "save_every": 1,
                                            "eval_every": 1, "num_workers": 0}), quiet=True)
            runs.append((recipe, run))
        for name, run in runs if a.steps_n else []:  # (--steps-n '': the draft measurements only)
            policy = RigPolicy.from_checkpoint(run, max_think=a.max_think)
            for b in [int(x) for x in a.batches.split(",")]:
                policy.draft = False  # the decoding machinery against generate: token by token, as generate is
                ours, plain = generate_rate(policy, b, new_tokens=a.max_think + 2 + 3 + policy.image_tok.tokens_per_frame)
                policy.draft = True
                for n in [int(x) for x in a.steps_n.split(",") if x]:
                    policy.stage = "lookahead" if n else "basic"  # decoding mechanics; speed does not depend on training
                    policy.step_cache = False
                    full = loop_rate(policy, b, a.steps, n)
                    policy.step_cache = True
                    for keep in [float(x) for x in a.slide_keep.split(",")]:
                        policy.slide_keep = keep
                        cached = loop_rate(policy, b, a.steps, n)
                        res["rows"].append({"recipe": name, "B": b, "N": n, "slide_keep": keep, "draft": policy.draft,
                                            "actions_per_s": cached[0], "actions_per_s_full_prefill": full[0],
                                            "speedup": cached[0] / full[0], "loop_tokens_per_s": cached[1],
                                            "ours_tokens_per_s": ours if n == 0 else None,
                                            "generate_tokens_per_s": plain if n == 0 else None,
                                            "ratio": ours / plain if n == 0 else None})
        if a.drafts:  # (in the temporary folder's lifetime: --data models live there)
            windows = [int(x) for x in a.draft_windows.split(",")] if a.draft_windows else [None]
            res["drafts"] = [paired_run(run, b, n, temp, a.draft_steps, a.max_think, window=w)
                             for _, run in runs for temp in [float(x) for x in a.temperatures.split(",")]
                             for b in [int(x) for x in a.batches.split(",")] for n in [int(x) for x in a.drafts.split(",")]
                             for w in windows]
    t = Table(title=f"play speed (raw environment: {res['raw_env_steps_per_s']:,.0f} steps/s, one process)",
              title_justify="left")
    for col in ("model", "B", "N", "slide keeps", "actions/s", "full prefill", "speed-up", "ours tokens/s", "generate tokens/s",
                "ratio"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in res["rows"]:
        f = lambda x, fmt: "" if x is None else format(x, fmt)
        t.add_row(r["recipe"], str(r["B"]), str(r["N"]), f"{r['slide_keep']:.2f}", f"{r['actions_per_s']:.2f}",
                  f"{r['actions_per_s_full_prefill']:.2f}", f"{r['speedup']:.2f}x", f(r["ours_tokens_per_s"], ",.0f"),
                  f(r["generate_tokens_per_s"], ",.0f"), f(r["ratio"], ".2f"))
    if res["rows"]:
        out.print(t)
    if a.drafts:
        out.print(draft_table(res["drafts"]))
        out.print(kind_table(res["drafts"]))
    out.print("N = 2 runs the lookahead decoding (2 further imagined steps, a review, the final action) on the same "
              "model: speed does not depend on training.")
    write_section(a.json, "benchmarks/play_speed.py", a.section, res, sys.argv[1:] if argv is None else argv)
    return res


if __name__ == "__main__":
    main()
