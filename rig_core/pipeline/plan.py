"""The plan of a pipeline run: for every stage, keep, resume, run or redo, and why, with an estimated time.

A stage's identity (its fingerprint) is a hash of the settings its command runs with and the identities of its
inputs: an earlier stage's fingerprint, or a path's content (a dataset's manifest, a checkpoint's weights).
Changing a stage's settings therefore changes every stage that reads it, directly or not. ``DIR/pipeline.json``
records each stage's fingerprint and whether it finished.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rig_core.errors import RigError
from rig_core.fsutil import read_json
from rig_core.pipeline.commands import check_stage, effective_settings, resolve_inputs
from rig_core.pipeline.recipe import Recipe, Stage, load_pipeline
from rig_core.pipeline.stages import AGENTS

STATE = "pipeline.json"
STATE_FORMAT = "rig-pipeline"
CONTENT_HASH_LIMIT = 256 * 2**20  # checkpoints up to this size are identified by their weights' bytes
EXECUTION = ("backend", "address")  # settings of where a stage runs, never of what it makes


@dataclass
class Step:
    stage: Stage
    action: str  # keep | resume | run | redo
    why: str
    fingerprint: str
    settings: dict[str, Any]
    inputs: dict[str, list[str]]  # resolved paths
    identities: dict[str, list[str]]
    estimate_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_checked(recipe: str | Path, sets: list[str] | None = None) -> Recipe:
    doc = load_pipeline(recipe, sets)
    for stage in doc.stages.values():
        check_stage(doc, stage)
    return doc


def read_state(out: Path) -> dict[str, Any]:
    if not (out / STATE).exists():
        return {"format": STATE_FORMAT, "version": 1, "stages": {}}
    doc = read_json(out / STATE, "remove it to rebuild every stage, or restore it")
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise RigError(f"{out / STATE} is not a rig pipeline state", "choose another --out")
    return doc


def _json_or_none(path: Path) -> Any:
    """A JSON file for an estimate, or None where it is missing or unreadable (the estimate does without)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def path_identity(value: str) -> str:
    """What a path input is, by content: a dataset's manifest, a checkpoint's weights, else its name."""
    if value in AGENTS:
        return f"agent:{value}"
    from rig_core.model.shipped import resolve_model

    p = resolve_model(value)
    if (p / "dataset.json").is_file():
        return "dataset:" + _hash((p / "dataset.json").read_text())
    try:
        from rig_core.model.checkpoint import find_checkpoint

        ckpt = find_checkpoint(p)
    except RigError:
        return f"path:{p.resolve()}"
    weights = sorted((ckpt / "model").glob("*.safetensors"))
    if sum(w.stat().st_size for w in weights) <= CONTENT_HASH_LIMIT:  # by content: a reinstall keeps it
        digest = hashlib.sha256()
        for w in weights:
            with open(w, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        return "checkpoint:" + digest.hexdigest()[:16]
    return "checkpoint:" + _hash([(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in weights])


def plan(recipe: Recipe, out: Path, until: str | None = None, workers: int = 1) -> list[Step]:
    """Every stage up to ``until`` (all by default) with what a run would do to it."""
    if until is not None and until not in recipe.stages:
        raise RigError(f"--until {until}: the recipe has no such stage", f"stages: {', '.join(recipe.stages)}")
    state = read_state(out)["stages"]
    rates = load_rates(state)
    by_folder: dict[str, dict] = {}
    fingerprints: dict[str, str] = {}
    known: dict[str, str] = {}  # path identities (a shipped model read by several stages is hashed once)
    changed: set[str] = set()
    steps: list[Step] = []
    for name, stage in recipe.stages.items():
        folder = out / name
        settings = effective_settings(recipe, stage, folder)
        for v in {v for vals in stage.inputs.values() for v in vals} - set(recipe.stages) - set(known):
            known[v] = path_identity(v)
        identities = {k: [f"stage:{fingerprints[v]}" if v in recipe.stages else known[v] for v in vals]
                      for k, vals in stage.inputs.items()}
        fp = _hash({"run": stage.kind.name, "settings": _non_default(stage, settings), "inputs": identities})
        fingerprints[name] = fp
        rec = state.get(name)
        action, why = _decide(stage, folder, rec, fp, settings, changed, identities)
        if action in ("run", "redo"):
            changed.add(name)
        step = Step(stage, action, why, fp, settings, resolve_inputs(recipe, stage, out), identities)
        step.estimate_s = 0.0 if action == "keep" else estimate(step, folder, rates, by_folder, workers)
        by_folder[str(folder)] = settings
        steps.append(step)
        if name == until:
            break
    return steps


def _non_default(stage: Stage, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that differ from the command's defaults: what identifies a stage, so that a setting a later
    version of rig adds (at its default) leaves every finished stage kept. Where it runs (``EXECUTION``) is not
    part of it: a stage collected with processes is kept when the recipe switches to Ray."""
    if stage.kind.name == "train":
        from dataclasses import asdict

        from rig_core.model.run_config import TrainConfig

        defaults = asdict(TrainConfig())
    else:
        defaults = stage.kind.settings
    return {k: v for k, v in settings.items() if k not in EXECUTION and (k not in defaults or defaults[k] != v)}


def _decide(stage: Stage, folder: Path, rec: dict | None, fp: str, settings: dict, changed: set[str],
            identities: dict[str, list[str]]):
    exists = folder.exists()
    if rec is None:
        if exists and any(folder.iterdir()):
            raise RigError(f"{folder} exists but this pipeline did not make it",
                           "move it away, or choose another --out")
        return "run", "new"
    if rec.get("fingerprint") != fp:
        if not exists:
            return "run", "changed, and its folder is gone"
        return "redo", _what_changed(stage, rec, settings, changed, identities)
    if not exists:
        return "run", "its folder is gone"
    if rec.get("status") == "complete":
        return "keep", "complete, unchanged"
    if stage.kind.resumable and _has_progress(stage, folder):
        return "resume", "interrupted"
    return "redo", "interrupted (starts over)"


def _what_changed(stage: Stage, rec: dict, settings: dict, changed: set[str], identities: dict[str, list[str]]) -> str:
    old = rec.get("settings", {})
    diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.items() if k in old and old[k] != v]
    diffs += [f"{k} removed" for k in old if k not in settings]
    ups = [v for vals in stage.inputs.values() for v in vals if v in changed]
    if ups:
        diffs.append(f"input {', '.join(ups)} is rebuilt")
    else:
        old_ids = rec.get("identities", {})
        diffs += [f"input {key} ({', '.join(stage.inputs.get(key, []))}) changed" for key in identities
                  if old_ids.get(key) != identities[key]]
    return "changed: " + ("; ".join(diffs) if diffs else "an input changed")


def _has_progress(stage: Stage, folder: Path) -> bool:
    """Whether an interrupted stage left something to resume from (else it starts over)."""
    if stage.kind.name == "train":
        return (folder / "config.json").is_file() and (folder / "checkpoints" / "last").exists()
    return (folder / "dataset.json").is_file()


# -- time estimates --------------------------------------------------------------------------------------
OPEN_LIMIT = 10_000  # Crafter's step limit of a whole game


@functools.lru_cache(maxsize=1)
def default_rates() -> dict[str, float]:
    """Seconds per unit measured on 2 CPU cores (rig_core/resources/pipeline_rates.yaml)."""
    from importlib import resources

    text = resources.files("rig_core.resources").joinpath("pipeline_rates.yaml").read_text()
    doc = yaml.safe_load(text) or {}
    return {f"{kind}:{key}": float(v) for kind, per in doc.items() for key, v in per.items()}


def load_rates(state: dict[str, Any]) -> dict[str, float]:
    """Default rates, replaced by what this folder's finished stages measured (mean over stages). Rates are
    per worker: a stage measured with W workers counts its wall time W times."""
    rates = dict(default_rates())  # a copy: the defaults are cached
    seen: dict[str, list[float]] = {}
    for rec in state.values():
        key, units, wall = rec.get("rate_key"), rec.get("units"), rec.get("wall_s")
        if rec.get("status") == "complete" and key and units and wall:
            seen.setdefault(key, []).append(float(wall) * parallelism(rec.get("run", ""), rec.get("workers", 1))
                                            / float(units))
    rates.update({k: sum(v) / len(v) for k, v in seen.items()})
    return rates


def _model_size(value: str, steps_by_folder: dict[str, dict]) -> str:
    """A checkpoint input's model size (scratch size, or 'base' for a Hugging Face base model)."""
    if value in AGENTS:
        return value
    settings = steps_by_folder.get(value)
    if settings is None:
        from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint

        try:
            settings = _json_or_none(run_of_checkpoint(find_checkpoint(Path(value))) / "config.json") or {}
        except RigError:
            settings = {}
    return "base" if settings.get("model") == "base" else str(settings.get("size", "tiny"))


def _episodes_of(value: str, steps_by_folder: dict[str, dict]) -> int:
    settings = steps_by_folder.get(value)
    if settings is not None:
        return int(settings.get("episodes", 0))
    manifest = _json_or_none(Path(value) / "dataset.json") or {}
    return int(manifest.get("episodes", 0) or len(manifest.get("episode_index", []) or []))


def _game_steps(player: str, max_steps: int | None) -> float:
    """Steps of one whole game (task open) of ``player`` (an agent, or "model"), for estimates."""
    length = default_rates().get(f"game_length:{player}", default_rates()["game_length:model"])
    return float(min(length, max_steps or OPEN_LIMIT))


def work_units(step: Step, steps_by_folder: dict[str, dict]) -> tuple[str, float] | None:
    """(rate key, units of work) of a stage, or None where nothing measured applies. Whole games (task open)
    count steps, at each player's usual game length."""
    s, kind = step.settings, step.stage.kind.name
    if kind == "collect":
        if s.get("task") == "open":
            return f"collect_step:{s['agent']}", float(s["episodes"]) * _game_steps(s["agent"], s.get("max_steps"))
        return f"collect_episode:{s['agent']}", float(s["episodes"])
    if kind == "reason":
        source = steps_by_folder.get(step.inputs["data"][0]) or {}
        episodes = float(_episodes_of(step.inputs["data"][0], steps_by_folder))
        if source.get("task") == "open":
            return "reason_step:rules", episodes * _game_steps(str(source.get("agent")), source.get("max_steps"))
        return "reason_episode:rules", episodes
    if kind == "train":
        size = "base" if s.get("model") == "base" else str(s.get("size"))
        return f"train_step:{size}", float(s["max_steps"])
    if kind == "review":  # with candidates: K + 1 more chains decoded per state (a guess until measured)
        rows = 2 + int(s["candidates"]) if s.get("candidates") else 1
        return (f"review_episode:{_model_size(step.inputs['checkpoint'][0], steps_by_folder)}",
                float(s["episodes"]) * rows)
    from rig_core.evaluate.runner import parse_steps, resolve_suite

    if kind == "evaluate":
        tasks = len(resolve_suite(str(s["suite"])))
        steps = parse_steps(str(s["test_time_steps"]))
        total = 0.0
        for p in step.inputs["players"]:
            size = _model_size(p, steps_by_folder)
            k = int(s.get("candidates") or 1)  # candidates: K rows imagine each further step
            looks = sum(1 + 2 * k * n for n in steps) if p not in AGENTS else 1
            horizon = (_game_steps(p if p in AGENTS else "model", s["max_steps"]) if s["suite"] == "open"
                       else s["max_steps"] or 100)
            total += tasks * int(s["episodes"]) * horizon * looks * _relative(size)
        return "env_step:mini", total
    if kind == "ablation":
        return "env_step:mini", 0.0
    size = _model_size(step.inputs["checkpoint"][0], steps_by_folder) if step.inputs.get("checkpoint") else s["agent"]
    return "env_step:mini", float(s["max_steps"] or 100) * _relative(size)


# Cost of one environment step of a player relative to the mini model (decoding dominates).
_RELATIVE = {"expert": 0.05, "random": 0.01, "tiny": 0.5, "mini": 1.0, "small": 3.0, "base": 10.0}


def _relative(size: str) -> float:
    return _RELATIVE.get(size, 1.0)


def estimate(step: Step, folder: Path, rates: dict[str, float], steps_by_folder: dict[str, dict],
             workers: int = 1) -> float | None:
    """Seconds the stage should take (its remaining part when resumed)."""
    units = work_units(step, steps_by_folder)
    if units is None or units[0] not in rates:
        return None
    key, n = units
    step.extra.update(rate_key=key, units=n)
    if step.action == "resume" and step.stage.kind.name == "train":
        from rig_core.model.checkpoint import last_step

        n = max(0.0, n - (last_step(folder) or 0))
    return n * rates[key] / parallelism(step.stage.kind.name, workers)


PARALLEL_KINDS = ("collect", "reason", "review", "evaluate")  # stages that spread their work over --workers


def parallelism(kind: str, workers: int) -> int:
    """How many worker processes share a stage's work."""
    return max(1, workers) if kind in PARALLEL_KINDS else 1
