"""Which kind of folder `rig view` was given, or one clear line saying it is none of them."""

from __future__ import annotations

from pathlib import Path

from rig_core.errors import RigError

KINDS = ("dataset", "evaluation", "pipeline")


def kind_of(path: Path, quiet: bool = False) -> str | None:
    """``dataset``, ``evaluation`` (one player or several) or ``pipeline``; otherwise a RigError (None when
    ``quiet``)."""
    from rig_core.view.evaluations import player_folders

    path = Path(path)
    if path.is_file() and path.name in ("dataset.json", "eval.json", "pipeline.json"):
        path = path.parent
    if (path / "pipeline.json").is_file():
        return "pipeline"
    if (path / "dataset.json").is_file():
        return "dataset"
    if path.is_dir() and player_folders(path):
        return "evaluation"
    if quiet:
        return None
    if not path.exists():
        raise RigError(f"{path} does not exist", "pass a dataset, an evaluation or a pipeline folder")
    raise RigError(f"{path} is not a dataset, an evaluation or a pipeline folder (it holds no dataset.json, eval.json, "
                   "player folders with eval.json, or pipeline.json)",
                   "pass a folder written by rig collect, rig augment, rig evaluate or rig pipeline")
