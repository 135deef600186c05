"""The static site `rig view` writes: the page and its script (package resources), the index data, and per
episode one script of step data and one WebP sprite of frames per chunk of steps, loaded only when shown.

Everything opens from the file system: data travels in ``<script>`` files (a browser refuses ``fetch`` of local
files), each a JSON literal with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no text
from the data (a model's thought, an imported task) can close the script or open markup. The page puts every
text into the document with ``textContent``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.errors import RigError

MARKER = "view.json"  # in every site: what it shows, from where, written by which rig
FORMAT = "rig-view"
ASSETS = ("index.html", "lib.js", "view.js", "view.css")
CHUNK = 100  # steps per data file and sprite: a long game loads only the chunks around the step shown
COLUMNS = 10  # frames per sprite row
FRAME = 64  # sprite cell size in pixels (frames of another size are padded or cut to it)


def js_literal(obj: Any) -> str:
    """``obj`` as a JavaScript expression that no string inside it can break out of (see the module doc)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def clean(x: Any) -> Any:
    """JSON-safe plain values: numpy scalars unwrapped, NaN and infinities as null, floats rounded."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return round(x, 4) if math.isfinite(x) else None
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return x


class Sprite:
    """The distinct frames of one chunk, each stored once, written as one lossless WebP grid."""

    def __init__(self):
        self.frames: list[np.ndarray] = []
        self._index: dict[bytes, int] = {}

    def add(self, frame: np.ndarray | None) -> int | None:
        """The frame's cell in the sprite (a frame seen before in this chunk reuses its cell)."""
        if frame is None:
            return None
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        key = hashlib.blake2b(frame.tobytes(), digest_size=16).digest()
        if key not in self._index:
            self._index[key] = len(self.frames)
            self.frames.append(frame)
        return self._index[key]

    def image_bytes(self) -> bytes:
        from PIL import Image

        n = max(1, len(self.frames))
        cols = min(COLUMNS, n)
        rows = -(-n // cols)
        sheet = np.zeros((rows * FRAME, cols * FRAME, 3), np.uint8)
        for i, f in enumerate(self.frames):
            r, c = divmod(i, cols)
            h, w = min(FRAME, f.shape[0]), min(FRAME, f.shape[1])
            sheet[r * FRAME:r * FRAME + h, c * FRAME:c * FRAME + w] = f[:h, :w, :3]
        buf = io.BytesIO()
        # lossless WebP, fastest method: ~0.2 ms a frame, smaller than PNG on Crafter's frames (docs/view.md)
        Image.fromarray(sheet).save(buf, "WEBP", lossless=True, method=0, quality=0)
        return buf.getvalue()


class Site:
    """A site being written into a temporary folder beside ``out``; ``finish`` puts it in place of ``out``."""

    def __init__(self, out: Path):
        self.out = Path(out)
        check_out(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}.{os.getpid()}.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        (self.tmp / "data").mkdir(parents=True)
        self.bytes = {"frames": 0, "data": 0}
        self.frames = self.steps = self.episodes = 0
        self.chunk = CHUNK  # steps per chunk, told to the page in the index

    def write_chunk(self, episode: int, chunk: int, data: dict[str, Any], sprite: Sprite, steps: int) -> None:
        """One chunk of one episode: ``ep/<episode>/<chunk>.js`` and ``.webp``."""
        folder = self.tmp / "ep" / str(episode)
        folder.mkdir(parents=True, exist_ok=True)
        image = sprite.image_bytes()
        (folder / f"{chunk}.webp").write_bytes(image)
        script = f"RIG.chunk({episode},{chunk},{js_literal(clean(data | {'cols': min(COLUMNS, max(1, len(sprite.frames)))}))});\n"
        (folder / f"{chunk}.js").write_text(script, encoding="utf-8")
        self.bytes["frames"] += len(image)
        self.bytes["data"] += len(script.encode("utf-8"))
        self.frames += len(sprite.frames)
        self.steps += steps

    def copy_file(self, src: Path, name: str) -> str | None:
        """Copy ``src`` into the site as ``name`` (a plot, a GIF); returns the relative path, None if absent."""
        src = Path(src)
        if not src.is_file():
            return None
        dest = self.tmp / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return name

    def child(self, name: str) -> Path:
        """The folder of a sub-site (a pipeline's stage) inside this one."""
        return self.tmp / name

    def add_child(self, info: dict[str, Any]) -> None:
        """Count a finished sub-site's episodes, steps, frames and bytes in this site's."""
        self.episodes += info["episodes"]
        self.steps += info["steps"]
        self.frames += info["frames"]
        for k, v in info["bytes"].items():
            self.bytes[k] += v

    def finish(self, index: dict[str, Any], source: Path, kind: str) -> dict[str, Any]:
        """Write the index data, the page and the marker, then swap the finished site in place of ``out``."""
        from rig_core import __version__

        index = clean(index | {"chunk": self.chunk})
        script = f"window.RIG_VIEW={js_literal(index)};\n"
        (self.tmp / "data" / "index.js").write_text(script, encoding="utf-8")
        self.bytes["data"] += len(script.encode("utf-8"))
        assets = resources.files("rig_core.view") / "assets"
        for name in ASSETS:
            (self.tmp / name).write_bytes((assets / name).read_bytes())
        info = {"format": FORMAT, "kind": kind, "source": str(source), "rig": __version__,
                "episodes": self.episodes + len(index.get("episodes", [])), "steps": self.steps, "frames": self.frames,
                "bytes": dict(self.bytes)}
        (self.tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        old = self.out.parent / f".{self.out.name}.{os.getpid()}.old"
        if self.out.exists():
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        shutil.rmtree(old, ignore_errors=True)
        return info

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_out(out: Path) -> None:
    """``out`` may be new, empty or an earlier view (replaced whole); anything else is refused."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise RigError(f"{out} exists and is not a view written by rig view",
                       "choose another --out, or remove it first")


def default_out(path: Path) -> Path:
    """Beside the viewed folder: ``evals/cb`` is viewed in ``evals/cb-view``."""
    path = Path(path).resolve()
    return path.parent / f"{path.name}-view"
