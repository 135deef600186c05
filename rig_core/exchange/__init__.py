"""Datasets in other formats: Minari (through the minari library) and LeRobot v3.0 (pyarrow + av), out
and back without loss, and datasets made elsewhere in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.exchange.episodes import check_new_output, write_dataset
from rig_core.ui import progress

FORMATS = ("minari", "lerobot")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise RigError(f"unknown dataset format '{fmt}'", f"choose one of: {', '.join(FORMATS)}")


def _episodes_of(data: Path) -> int:
    from rig_core.data.schema import read_manifest

    return sum(len(s.get("episodes", [])) for s in read_manifest(Path(data))["shards"])


def export_dataset(fmt: str, data: Path, out: str, *, root: Path | None = None, fps: int = 10,
                   quiet: bool = False) -> dict[str, Any]:
    """Write the rig dataset ``data`` as ``fmt``: for minari ``out`` is a dataset id (stored under ``root``,
    Minari's own folder by default), for lerobot a new folder."""
    _check_format(fmt)
    if fmt == "minari":
        from rig_core.exchange.minari_format import check_export

        check_export(out, root)
    else:
        from rig_core.exchange.lerobot_format import check_export

        check_export(Path(out))
    total = _episodes_of(data)
    start = time.perf_counter()
    with progress(f"export {fmt}", total, quiet=quiet) as rep:
        def tick(ep) -> None:
            rep.add("steps", ep.length)
            rep.advance(1)

        if fmt == "minari":
            from rig_core.exchange.minari_format import export_minari

            result = export_minari(Path(data), out, root=root, on_episode=tick)
        else:
            from rig_core.exchange.lerobot_format import export_lerobot

            result = export_lerobot(Path(data), Path(out), fps=fps, on_episode=tick)
    result.update({"format": fmt, "source": str(data), "elapsed_s": round(time.perf_counter() - start, 3)})
    return result


def import_dataset(fmt: str, src: str, out: Path, *, root: Path | None = None, quiet: bool = False,
                   command: str = "rig dataset import") -> dict[str, Any]:
    """Read a ``fmt`` dataset (a Minari dataset id, or a LeRobot folder) into the new rig dataset ``out``."""
    _check_format(fmt)
    check_new_output(Path(out))
    if fmt == "minari":
        from rig_core.exchange.minari_format import open_minari

        manifest, total, episodes, source = open_minari(src, root=root)
    else:
        from rig_core.exchange.lerobot_import import open_lerobot

        manifest, total, episodes, source = open_lerobot(Path(src))
    start = time.perf_counter()
    with progress(f"import {fmt}", total, quiet=quiet) as rep:
        def tick(ep) -> None:
            rep.add("steps", ep.length)
            rep.advance(1)

        result = write_dataset(Path(out), manifest, episodes, command=command, source=source, on_episode=tick)
    result.update({"format": fmt, "source": str(src), "elapsed_s": round(time.perf_counter() - start, 3)})
    return result


__all__ = ["FORMATS", "export_dataset", "import_dataset"]
