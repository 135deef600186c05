"""Pretrained models that ship inside the package (rig_core/resources/models/<name>), usable by name
wherever a checkpoint is accepted.

A shipped model is a stand-alone checkpoint: ``model/`` (Hugging Face layout, safetensors), ``tokenizer/``,
the run's ``config.json``, its model card ``README.md`` and the card's figures as ``card.json``. It holds no
optimizer state: a run that continues from it starts with ``rig train --init NAME``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from rig_core.errors import RigError

CARD = "card.json"


def models_folder() -> Path:
    return Path(str(resources.files("rig_core.resources").joinpath("models")))


def shipped_models() -> dict[str, Path]:
    """Shipped model folders by name (a folder counts when it has a card and weights)."""
    folder = models_folder()
    if not folder.is_dir():
        return {}
    return {d.name: d for d in sorted(folder.iterdir())
            if (d / CARD).is_file() and (d / "model" / "model.safetensors").is_file()}


def resolve_model(path: str | Path) -> Path:
    """A path as given when it exists, else the shipped model of that name, else the path (whose absence
    the caller reports)."""
    p = Path(path)
    if p.exists():
        return p
    shipped = shipped_models()
    return shipped.get(str(path), p)


def model_card(name: str) -> dict[str, Any]:
    """The figures of a shipped model's card (card.json)."""
    shipped = shipped_models()
    if name not in shipped:
        raise RigError(f"no shipped model named '{name}'",
                       f"choose one of: {', '.join(shipped) or '(none installed)'} (rig models lists them)")
    try:
        return json.loads((shipped[name] / CARD).read_text())
    except (OSError, ValueError) as exc:
        raise RigError(f"the card of shipped model {name} is corrupt ({exc.__class__.__name__})",
                       "reinstall rig") from exc


def list_models() -> list[dict[str, Any]]:
    """Every shipped model with the headline figures of its card."""
    rows = []
    for name, folder in shipped_models().items():
        card = model_card(name)
        rows.append({"name": name, "path": str(folder), **{k: card.get(k) for k in (
            "stage", "parameters", "training_steps", "evaluation", "description")}})
    return rows
