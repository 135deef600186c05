"""A pipeline recipe: its stages in order, with variables filled in and every setting checked before
anything runs.

    description: ...
    vars: {episodes: 960}             # sizes, referenced as "${episodes}", overridden by --set episodes=...
    train: {...}                      # what train stages start from (as in any rig train recipe)
    lookahead: {...}                  # refines train for stage: lookahead
    stages:
      data:   {run: collect, agent: expert, task: basic, episodes: "${episodes}"}
      reason: {run: reason, data: data}
      basic:  {run: train, data: reason}
      eval:   {run: evaluate, players: [basic, expert], suite: basic}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rig_core.errors import RigError
from rig_core.pipeline.stages import AGENTS, KINDS, Kind

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED = {"pipeline.json", "report.md", "versions.json"}


@dataclass
class Stage:
    name: str
    kind: Kind
    settings: dict[str, Any]  # every setting of the kind, defaults filled in (inputs excluded)
    inputs: dict[str, list[str]]  # input key -> the stages / paths / names it reads
    given: dict[str, Any] = field(default_factory=dict)  # what the recipe wrote (after variables)


@dataclass
class Recipe:
    path: Path
    description: str
    vars: dict[str, Any]
    stages: dict[str, Stage]  # in declaration order (each reads only stages before it)
    sweeps: dict[str, list[str]] = field(default_factory=dict)  # a sweep's name -> the stages it expanded to


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(value)).strip("-") or "x"


def expand_sweeps(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A stage with ``sweep: {key: [v1, v2], ...}`` becomes one stage per combination, named
    ``NAME-v1-...`` (in the order the keys and values are written); later stages name them all by NAME."""
    from itertools import product

    out: dict[str, Any] = {}
    sweeps: dict[str, list[str]] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or "sweep" not in spec:
            out[name] = spec
            continue
        grid = spec["sweep"]
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise RigError(f"stage '{name}': sweep must map settings to non-empty lists",
                           "e.g. sweep: {spans: [act, think-act], data_fraction: [0.25, 1.0]}")
        base = {k: v for k, v in spec.items() if k != "sweep"}
        sweeps[str(name)] = []
        for values in product(*grid.values()):
            member = f"{name}-" + "-".join(_slug(v) for v in values)
            out[member] = {**base, **dict(zip(grid, values))}
            sweeps[str(name)].append(member)
    return out, sweeps


def _substitute(value: Any, variables: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        for name in _VAR.findall(value):
            if name not in variables:
                raise RigError(f"{where} uses ${{{name}}}, which the recipe's vars do not define",
                               f"add {name} to vars:, or pass --set {name}=VALUE")
        if whole:
            return variables[whole.group(1)]
        return _VAR.sub(lambda m: str(variables[m.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, where) for k, v in value.items()}
    return value


def parse_sets(pairs: list[str], variables: dict[str, Any], stages: dict[str, dict]) -> tuple[dict, dict]:
    """``--set NAME=VALUE`` (a variable) and ``--set STAGE.KEY=VALUE`` (one stage's setting); values are YAML."""
    var_sets: dict[str, Any] = {}
    stage_sets: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RigError(f"--set {pair!r} is not key=value", "pass e.g. --set episodes=100 or --set basic.max_steps=500")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RigError(f"--set {pair!r}: the value is not valid YAML", "quote strings") from exc
        if "." in key:
            stage, _, setting = key.partition(".")
            if stage not in stages:
                raise RigError(f"--set {key}: the recipe has no stage '{stage}'", f"stages: {', '.join(stages)}")
            stage_sets.setdefault(stage, {})[setting.replace("-", "_")] = value
        elif key in variables:
            var_sets[key] = value
        else:
            raise RigError(f"--set {key}: the recipe defines no such variable",
                           f"variables: {', '.join(variables) or '(none)'}; or set one stage's setting: "
                           "--set STAGE.KEY=VALUE")
    return var_sets, stage_sets


def _inputs(name: str, kind: Kind, given: dict[str, Any], earlier: dict[str, Stage]) -> dict[str, list[str]]:
    from rig_core.model.shipped import shipped_models

    out: dict[str, list[str]] = {}
    for key in kind.inputs:
        value = given.get(key)
        if value is None:
            if key in kind.required and not (kind.name == "play" and given.get("agent")):
                raise RigError(f"stage '{name}' ({kind.name}) needs '{key}'",
                               f"name an earlier stage or a path, e.g. {key}: <stage>")
            continue
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        if not values:
            raise RigError(f"stage '{name}': '{key}' is an empty list", f"name at least one stage or path in {key}")
        for v in values:
            if v == name:
                raise RigError(f"stage '{name}' reads itself ({key}: {v})", "name an earlier stage")
            if v in earlier or (key == "players" and v in AGENTS) or v in shipped_models():
                continue
            if not Path(v).exists():
                raise RigError(f"stage '{name}': {key} '{v}' is neither an earlier stage of this recipe nor an "
                               "existing path", "declare that stage before this one, or fix the path")
        out[key] = values
    return out


def load_pipeline(recipe: str | Path, sets: list[str] | None = None) -> Recipe:
    """The recipe's stages with variables and ``--set`` applied; one clear error for anything wrong in it."""
    from rig_core.train.config import recipe_path

    path = recipe_path(str(recipe))
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RigError(f"recipe {path} is not valid YAML", "fix the file") from exc
    raw = doc.get("stages")
    if not isinstance(raw, dict) or not raw:
        raise RigError(f"recipe {path} declares no stages", "add a stages: section (see docs/pipeline.md)")
    variables = dict(doc.get("vars") or {})
    raw, sweeps = expand_sweeps(raw)
    var_sets, stage_sets = parse_sets(list(sets or []), variables, raw)
    variables.update(var_sets)
    stages: dict[str, Stage] = {}
    for name, spec in raw.items():
        name = str(name)
        if not _NAME.match(name) or name in RESERVED:
            raise RigError(f"stage name '{name}' cannot be a folder name", "use letters, digits, '-', '_' and '.'")
        if not isinstance(spec, dict) or "run" not in spec:
            raise RigError(f"stage '{name}' says nothing to run", f"add run: one of {', '.join(KINDS)}")
        kind = KINDS.get(str(spec["run"]))
        if kind is None:
            raise RigError(f"stage '{name}': unknown run '{spec['run']}'", f"choose one of: {', '.join(KINDS)}")
        given = _substitute({k: v for k, v in spec.items() if k != "run"}, variables, f"stage '{name}'")
        given.update(stage_sets.get(name, {}))
        allowed = set(kind.settings) | set(kind.inputs)
        unknown = sorted(set(given) - allowed)
        if unknown:
            raise RigError(f"stage '{name}' ({kind.name}): unknown setting '{unknown[0]}'",
                           f"choose from: {', '.join(sorted(allowed))}")
        settings = {**kind.settings, **{k: v for k, v in given.items() if k in kind.settings}}
        for key, values in kind.choices.items():
            if settings[key] not in values:
                raise RigError(f"stage '{name}' ({kind.name}): {key} '{settings[key]}' is not one of "
                               f"{', '.join(values)}", f"set {key}: {values[0]} or another of them")
        given = _expand_members(given, kind, sweeps)
        stages[name] = Stage(name, kind, settings, _inputs(name, kind, given, stages), given)
    return Recipe(path, str(doc.get("description", "")), variables, stages, sweeps)


def _expand_members(given: dict[str, Any], kind: Kind, sweeps: dict[str, list[str]]) -> dict[str, Any]:
    """A list input naming a sweep names every stage of it."""
    out = dict(given)
    for key in kind.inputs:
        value = given.get(key)
        if isinstance(value, list):
            out[key] = [m for v in value for m in sweeps.get(str(v), [v])]
    return out
