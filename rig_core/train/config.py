"""The training configuration from a recipe: recipe defaults, then command-line overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rig_core.errors import RigError
from rig_core.model.run_config import TrainConfig


def shipped_recipes() -> dict[str, Path]:
    """The recipes that ship inside the package (rig_core/resources/recipes), by name: the product's recipes,
    then those in ``experiments/`` (each says what it tested and what it measured)."""
    folder = Path(str(resources.files("rig_core.resources").joinpath("recipes")))
    return {f.stem: f for f in sorted(folder.glob("*.yaml")) + sorted(folder.glob("experiments/*.yaml"))}


def experiment_recipes() -> list[str]:
    """The names of the shipped recipes that reproduce an experiment rather than make a product."""
    return [name for name, path in shipped_recipes().items() if path.parent.name == "experiments"]


def recipe_path(name: str) -> Path:
    """A user's YAML file, or a shipped recipe by name."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise RigError(f"recipe file {p} not found", "give the path of a YAML recipe, or a shipped recipe's name")
        return p
    shipped = shipped_recipes()
    if name in shipped:
        return shipped[name]
    raise RigError(f"unknown recipe '{name}'", f"choose one of: {', '.join(shipped)}, or pass a YAML file")


def load_recipe(name: str) -> dict[str, Any]:
    path = recipe_path(name)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RigError(f"recipe {path} is not valid YAML", "fix the file") from exc
    return doc


def train_config(recipe: str, overrides: dict[str, Any], *, in_pipeline: bool = False) -> TrainConfig:
    """Recipe defaults, then every override that is not None. A pipeline recipe (``stages:``, no ``train:``)
    sets nothing for ``rig train`` and is refused there; a pipeline's train stage may name its own file."""
    recipe_doc = load_recipe(recipe)
    if "stages" in recipe_doc and "train" not in recipe_doc and not in_pipeline:
        runnable = [n for n in shipped_recipes() if "train" in load_recipe(n)]
        raise RigError(f"recipe '{recipe}' is a pipeline (rig pipeline {recipe}) and has no train: section",
                       f"rig train takes one of: {', '.join(runnable)}, or a YAML file with a train: section")
    doc = dict(recipe_doc.get("train", {}))
    if overrides.get("stage") == "lookahead":  # a recipe's lookahead section refines its train section
        doc.update(recipe_doc.get("lookahead", {}))
    doc.update({k: v for k, v in overrides.items() if v is not None})
    doc["recipe"] = recipe
    if doc.get("base"):
        doc["model"] = "base"
    return TrainConfig.from_dict(doc).validate()


# Set by the command itself (its own options), never through --set.
NOT_SETTABLE = ("data", "more_data", "out", "recipe", "stage", "init", "init_checkpoint")


def parse_sets(pairs: list[str], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs as recipe-field overrides; values are read as YAML (0.3, true, real).
    ``given``: the command's own options; setting one of them (not None) twice is refused."""
    from dataclasses import fields

    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    known = set(types) - set(NOT_SETTABLE)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise RigError(f"--set {pair!r} is not key=value", "pass e.g. --set mix_review=0.3")
        if key not in known:
            raise RigError(f"--set {key}: no such recipe field", f"choose one of: {', '.join(sorted(known))}")
        if (given or {}).get(key) is not None:
            raise RigError(f"{key} is given twice (its own option and --set)", "pass it once")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RigError(f"--set {pair!r}: the value is not valid YAML", "quote strings, e.g. --set base=/models/x") from exc
        if isinstance(value, (bool, int, float)) and types[key].split("|")[0].strip() == "str":
            value = text.strip()  # a text field keeps the words: mixed_precision=no is "no", not YAML's false
        out[key] = value
    return out

