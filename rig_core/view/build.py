"""`rig view`: which kind of folder PATH is, and its site written beside it (or to ``out``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rig_core.view.detect import kind_of
from rig_core.view.site import Site, default_out

def _count(path: Path, kind: str) -> int:
    """Episodes to write, for the progress bar."""
    if kind == "dataset":
        from rig_core.data.reader import Dataset

        with Dataset(path) as ds:
            return len(ds)
    from rig_core.evaluate.compare import load_evaluation
    from rig_core.view.evaluations import player_folders

    return sum(len(e["episodes"]) for f in player_folders(path) for e in load_evaluation(f)["sweep"])


def write_site(path: Path, out: Path, *, up: str | None = None, quiet: bool = True) -> dict[str, Any]:
    """Write the site of ``path`` into ``out`` (replacing an earlier view there); returns what was written."""
    from rig_core.ui import progress
    from rig_core.view.datasets import write_dataset
    from rig_core.view.evaluations import write_evaluation
    from rig_core.view.pipelines import write_pipeline

    path = Path(path)
    if path.is_file():
        path = path.parent
    kind = kind_of(path)
    site = Site(out)
    try:
        if kind == "pipeline":
            index = write_pipeline(site, path, lambda src, dest, title: write_site(src, dest, up=title, quiet=quiet))
        else:
            with progress(f"view {path.name}", _count(path, kind), quiet=quiet) as rep:
                def report(episodes: int, steps: int) -> None:
                    rep.advance(episodes)
                    rep.add("steps", steps)

                write = write_dataset if kind == "dataset" else write_evaluation
                index = write(site, path, report)
        if up:
            index["up"] = {"href": "../index.html", "title": up}
        info = site.finish(index, path, kind)
    except BaseException:
        site.abort()
        raise
    return info


def view(path: Path, out: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """`rig view PATH [--out DIR]`: the site, where it is, and how long it took to write."""
    path = Path(path)
    kind_of(path)  # one clear line before anything is written
    out = Path(out) if out is not None else default_out(path.parent if path.is_file() else path)
    start = time.perf_counter()
    info = write_site(path, out, quiet=quiet)
    info["out"] = str(out)
    info["index"] = str((out / "index.html").resolve())
    info["seconds"] = round(time.perf_counter() - start, 2)
    return info
