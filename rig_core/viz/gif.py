"""Episode GIFs: each frame enlarged, with the step and action written under it."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.fsutil import ensure_writable_dir


def annotate(frame: np.ndarray, lines: list[str], scale: int) -> np.ndarray:
    """The frame scaled by ``scale`` (nearest) with a text band under it."""
    img = Image.fromarray(frame).resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
    font = ImageFont.load_default()
    band = 12 * len(lines) + 6
    canvas = Image.new("RGB", (img.width, img.height + band), (16, 16, 16))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, img.height + 3 + 12 * i), line, fill=(235, 235, 235), font=font)
    return np.asarray(canvas)


def episode_gif(root: Path, episode: int, out: Path, *, scale: int = 4, fps: int = 8,
                start: int = 0, stop: int | None = None) -> dict:
    """Write an episode (or a step range of it) as a GIF; returns what was written."""
    if scale < 1 or fps < 1:
        raise RigError("--scale and --fps must be at least 1", "pass positive values")
    if out.suffix.lower() != ".gif":
        raise RigError(f"--out {out} must end in .gif", "name the output like episode.gif")
    ensure_writable_dir(out.parent if str(out.parent) else Path("."), "GIF")
    with Dataset(root) as ds:
        ep = ds.episode(episode)
        names = ds.action_names
        t_end = ep.length if stop is None else min(stop, ep.length)
        if not 0 <= start < max(t_end, 1) or t_end < start:
            raise RigError(f"step range {start}..{stop} is outside the episode (0..{ep.length})",
                           "pass --start/--stop inside the episode")
        frames = ep["frames"][start : t_end + 1]
        actions = ep["actions"][start:t_end]
        images = []
        for i, frame in enumerate(frames):
            t = start + i
            act = names[int(actions[i])] if i < len(actions) else "(end)"
            images.append(annotate(frame, [f"t={t}", act], scale))
    tmp = out.with_name(f".{out.name}.tmp.gif")
    iio.imwrite(tmp, np.stack(images), duration=int(1000 / fps), loop=0)
    tmp.replace(out)
    return {"out": str(out), "episode": episode, "frames": len(images)}
