"""`rig imagine`: the model as a world model, open loop: frame + actions -> imagined frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError
from rig_core.tokenize.image import psnr
from rig_core.viz.gif import annotate


def parse_source(spec: str) -> tuple[Path, int, int]:
    """DATASET:EPISODE:STEP."""
    try:
        path, ep, step = spec.rsplit(":", 2)
        return Path(path), int(ep), int(step)
    except ValueError as exc:
        raise RigError(f"--from {spec} is not DATASET:EPISODE:STEP", "e.g. --from datasets/basic:3:40") from exc


def load_frame(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    import imageio.v3 as iio

    if not Path(path).exists():
        raise RigError(f"frame {path} does not exist", "pass a PNG written from a Crafter frame")
    try:
        img = np.asarray(iio.imread(path))
    except Exception as exc:
        raise RigError(f"{path} is not a readable image", "pass a PNG") from exc
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.shape != tuple(shape):
        raise RigError(f"frame {path} is {img.shape[1]}x{img.shape[0]}, the model expects {shape[1]}x{shape[0]} RGB",
                       f"pass a {shape[1]}x{shape[0]} frame (e.g. one from rig dataset gif or the environment)")
    return img.astype(np.uint8)


CONTEXT_STEPS = 32  # real steps walked before a dataset start (the policy keeps what fits its context)


def dataset_start(path: Path, episode: int, step: int, k: int, actions: list[int] | None,
                  cold: bool = False) -> dict[str, Any]:
    """A ``--from DATASET:EPISODE:STEP`` start: its frame, the k real frames after it, the dataset's
    actions (unless ``actions`` are given), its instruction and, unless ``cold``, the real steps
    before it (up to CONTEXT_STEPS frames and actions) for the policy to walk first."""
    from rig_core.data.reader import Dataset

    with Dataset(path) as ds:
        if not 0 <= episode < len(ds):
            raise RigError(f"episode {episode} is outside the dataset (0..{len(ds) - 1})", "pass an episode in range")
        ep = ds.episode(episode)
        if not 0 <= step < ep.length:
            raise RigError(f"step {step} is outside episode {episode} (0..{ep.length - 1})", "pass a step in range")
        k = min(k, ep.length - step)
        frames, taken = ep["frames"], ep["actions"]
        first = step if cold else max(0, step - CONTEXT_STEPS)
        return {"start": frames[step], "real": frames[step + 1 : step + 1 + k],
                "actions": actions if actions is not None else [int(a) for a in taken[step : step + k]],
                "instruction": str(ep.attrs.get("instruction", "")),
                "past": (frames[first:step], [int(a) for a in taken[first:step]])}


def imagine(policy, start: np.ndarray, actions: list[int | None], instruction: str,
            real: np.ndarray | None = None, past: tuple[np.ndarray, list[int]] | None = None) -> dict[str, Any]:
    """Roll the model forward on its own frames; ``None`` actions are the policy's own choice.

    ``past`` (frames, actions): real steps before ``start`` that the policy walks first (real frames,
    those actions, its own thoughts), so it imagines in context as it does when it plays."""
    if not policy.imagines:
        raise RigError(f"this model was trained with --spans {','.join(policy.builder.spans)}: it does not imagine "
                       "frames", "imagine with a model trained with the imagine span (act,imagine or think,act,imagine)")
    policy.reset([instruction])
    if past is not None:
        for f, a in zip(*past):
            policy.act(np.asarray(f)[None], forced_actions=[int(a)], imagine=False)  # the real frame follows
    frame = start
    frames, chosen, thoughts = [], [], []
    for a in actions:
        out = policy.act(frame[None], forced_actions=[a])[0]
        frame = policy.decode_frames(out.imagined_codes[None])[0]
        frames.append(frame)
        chosen.append(out.action)
        thoughts.append(out.thought)
    result: dict[str, Any] = {"imagined": np.stack(frames), "actions": chosen, "thoughts": thoughts,
                              "context_steps": 0 if past is None else len(past[1])}
    if real is not None:
        n = min(len(real), len(frames))
        result["psnr"] = [psnr(real[k], frames[k]) for k in range(n)]
        result["psnr_copy_last"] = [psnr(real[k], start) for k in range(n)]
    return result


def write_output(out: Path, start: np.ndarray, res: dict[str, Any], action_names: list[str],
                 real: np.ndarray | None = None, scale: int = 4) -> Path:
    """A GIF (one frame per step) or a PNG strip: real | imagined, with the action and PSNR under each."""
    out = Path(out)
    if out.suffix.lower() not in (".gif", ".png"):
        raise RigError(f"--out {out} must end in .gif or .png", "name it like imagine.gif")
    panels = []
    for k, img in enumerate(res["imagined"]):
        lines = [f"step {k + 1}: {action_names[res['actions'][k]]}"]
        if real is not None and k < len(real):
            pair = np.concatenate([real[k], np.full((img.shape[0], 2, 3), 255, np.uint8), img], axis=1)
            lines.append(f"real | imagined  PSNR {res['psnr'][k]:.1f} dB")
        else:
            pair = img
        panels.append(annotate(pair, lines, scale))
    first = annotate(np.concatenate([start, np.full((start.shape[0], 2, 3), 255, np.uint8), start], axis=1)
                     if real is not None else start, ["start frame"], scale)
    panels.insert(0, first)
    import imageio.v3 as iio

    h = max(p.shape[0] for p in panels)
    w = max(p.shape[1] for p in panels)
    panels = [np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1]), (0, 0))) for p in panels]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    if out.suffix.lower() == ".gif":
        iio.imwrite(tmp, np.stack(panels), duration=600, loop=0)
    else:
        iio.imwrite(tmp, np.concatenate(panels, axis=0))
    tmp.replace(out)
    return out
