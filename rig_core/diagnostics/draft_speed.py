"""Imagined frames with and without drafts, side by side (``benchmarks/play_speed.py --drafts``).

Two copies of a policy, one decoding imagined frames with the last frame as the draft and one token by token
(``--no-draft``), step the same worlds (the same seeds) in turn, step by step, so that the load of a shared
machine falls on both alike; each one's ``act`` calls are timed (the environments' own steps are not). Per
copy: actions/s, forward passes per imagined frame and image tokens/s; for the drafted one, how much of
each frame its draft gave, by the kind of step the frame imagines: a move that went through in the world,
a move it blocked, another action (the step's first imagined frame; its proposal is the action the world
saw unless the review changed it), and the further imagined steps of a lookahead. Greedy, the two copies
must write the same thoughts, actions and frames at every step: the count of steps where they did not is
part of the result.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.envs import make_env
from rig_core.envs.view import content_shifts

VARIANTS = (("drafts", True), ("token by token", False))
SEED = 2_000_000  # the worlds (as play_speed.py's loop_rate)


def _kind(proposed: int, taken: int, moved: bool, shifts: dict) -> str:
    if proposed not in shifts:
        return "other"
    if proposed != taken:
        return "move (review changed it)"  # the world saw another action: its outcome is unknown
    return "move through" if moved else "move blocked"


def _outputs(outs) -> list:
    return [(o.thought, o.action, o.proposed, o.review, o.imagined_codes.tolist(),
             [(t, a, c.tolist()) for t, a, c in o.lookahead or []]) for o in outs]


def paired_run(checkpoint: Path, batch: int, n: int, temperature: float, steps: int, max_think: int = 64,
               seed: int = 0, window: int | None = None) -> dict[str, Any]:
    """``steps`` real steps of ``batch`` worlds at test-time steps ``n`` for both copies (after one untimed warm-up
    step each; ``window``: the most draft cells a row verifies per pass, default the policy's); see the module's
    docstring."""
    from rig_core.inference.policy import RigPolicy

    pols = {name: RigPolicy.from_checkpoint(checkpoint, max_think=max_think, temperature=temperature, seed=seed,
                                            draft=draft) for name, draft in VARIANTS}
    if window is not None:
        pols["drafts"].draft_window = window
    shifts = content_shifts(list(pols["drafts"].tok.action_names))
    envs, frames = {}, {}
    for name, pol in pols.items():
        if n:
            pol.stage = "lookahead"  # decoding mechanics: speed does not depend on training
        envs[name] = [make_env(length=None) for _ in range(batch)]
        frames[name] = np.stack([e.reset(SEED + i).frame for i, e in enumerate(envs[name])])
        pol.reset(["Collect wood."] * batch)
        pol.act(frames[name], lookahead=n)  # warm-up, untimed
        pol.reset(["Collect wood."] * batch)
        pol.frame_log = []
    seconds = dict.fromkeys(pols, 0.0)
    differing, rows = 0, defaultdict(list)
    for step in range(steps):
        said = {}
        for name in (list(pols) if step % 2 == 0 else list(pols)[::-1]):
            pol, before = pols[name], len(pols[name].frame_log)
            start = time.perf_counter()
            outs = pol.act(frames[name], lookahead=n)
            seconds[name] += time.perf_counter() - start
            said[name] = _outputs(outs)
            entries = pol.frame_log[before:]  # the step's first imagined frame, then its further ones
            nxt = []
            for i, (e, o) in enumerate(zip(envs[name], outs)):
                at = tuple(e._crafter._player.pos)
                obs, _, term, trunc, _ = e.step(o.action)
                moved = tuple(e._crafter._player.pos) != at
                nxt.append(e.reset(SEED + batch * (step + 1) + i).frame if term or trunc else obs.frame)
                if entries and entries[0]["rows"] is not None:
                    proposed = o.proposed if n else o.action
                    rows[_kind(proposed, o.action, moved, shifts)].append(entries[0]["rows"][i])
                    for e2 in entries[1:]:
                        rows["further imagined step"].append(e2["rows"][i])
            frames[name] = np.stack(nxt)
        differing += sum(a != b for a, b in zip(*said.values()))
    return _summary(pols, seconds, rows, differing, batch, n, temperature, steps) | {
        "window": pols["drafts"].draft_window}


def _summary(pols, seconds, rows, differing, batch, n, temperature, steps) -> dict[str, Any]:
    tokens = pols["drafts"].image_tok.tokens_per_frame
    out: dict[str, Any] = {"B": batch, "N": n, "temperature": temperature, "steps": steps}
    for name, pol in pols.items():
        log = pol.frame_log
        first = [e["passes"] for e in log[:: n + 1]]
        further = [e["passes"] for k, e in enumerate(log) if k % (n + 1)]
        out[name] = {"actions_per_s": batch * steps / seconds[name], "act_seconds": seconds[name],
                     "passes_per_frame": float(np.mean([e["passes"] for e in log])),
                     "passes_first_frame": float(np.mean(first)),
                     "passes_further_frame": float(np.mean(further)) if further else None,
                     "image_tokens_per_s": sum(e["batch"] * tokens for e in log) / sum(e["seconds"] for e in log),
                     "image_seconds": sum(e["seconds"] for e in log)}
    out["speedup"] = out["drafts"]["actions_per_s"] / out["token by token"]["actions_per_s"]
    out["image_speedup"] = out["drafts"]["image_tokens_per_s"] / out["token by token"]["image_tokens_per_s"]
    out["row_passes_per_frame"] = float(np.mean([r["passes"] for v in rows.values() for r in v]))
    out["by_kind"] = {k: {"frames": len(v), "kept_share": float(np.mean([r["accepted"] for r in v])) / (tokens - 1),
                          "rejections": float(np.mean([r["rejected"] for r in v])),
                          "row_passes": float(np.mean([r["passes"] for r in v]))} for k, v in sorted(rows.items())}
    out["row_steps_differing"] = int(differing)  # greedy: 0 (the same thoughts, actions and frames)
    out["row_steps"] = batch * steps
    return out
