"""Recording an episode: frame and imagination side by side with the text under them (GIF or MP4), and
what made a recording written beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json
from rig_core.records import StepRecord
from rig_core.versions import versions
from rig_core.viz.gif import annotate


class Recorder:
    def __init__(self, path: Path, fps: int = 6, scale: int = 4):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".gif", ".mp4"):
            raise RigError(f"--record {path} must end in .gif or .mp4", "name the file like play.gif")
        if self.path.suffix.lower() == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError as exc:
                raise RigError("writing MP4 needs imageio-ffmpeg", "pip install imageio-ffmpeg, or record a .gif") from exc
        self.fps, self.scale, self.frames = fps, scale, []

    def add(self, rec: StepRecord) -> None:
        blank = np.zeros_like(rec.frame)
        pair = np.concatenate([rec.frame, np.full((rec.frame.shape[0], 2, 3), 255, np.uint8),
                               rec.imagined if rec.imagined is not None else blank], axis=1)
        thought = rec.thought if len(rec.thought) < 90 else rec.thought[:87] + "..."
        lines = [f"t={rec.t}  {rec.action_name}", thought] + ([f"review: {rec.review[:80]}"] if rec.review else [])
        self.frames.append(annotate(pair, lines, self.scale))

    def close(self) -> Path | None:
        if not self.frames:
            return None
        import imageio.v3 as iio

        w = max(f.shape[1] for f in self.frames)
        h = max(f.shape[0] for f in self.frames)
        stack = np.stack([np.pad(f, ((0, h - f.shape[0]), (0, w - f.shape[1]), (0, 0))) for f in self.frames])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        if self.path.suffix.lower() == ".gif":
            iio.imwrite(tmp, stack, duration=int(1000 / self.fps), loop=0)
        else:
            iio.imwrite(tmp, stack, fps=self.fps)
        tmp.replace(self.path)
        return self.path


def write_beside(media: Path | str, record: dict[str, Any], command: str) -> Path:
    """What produced a picture or video (the command, its settings and result, the package versions) as
    ``NAME.EXT.json`` beside it; returns that path."""
    path = Path(f"{media}.json")
    atomic_write_json(path, {"command": command, **record, "versions": versions()})
    return path
