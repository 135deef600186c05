"""What each kind of stage runs: the command's own configuration built from the stage's settings, and the
call that runs (or resumes) it into the stage's folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.pipeline.recipe import Recipe, Stage
from rig_core.pipeline.stages import AGENTS

TRAIN_PATHS = ("data", "more_data", "out", "recipe", "init", "init_checkpoint")


def resolve_inputs(recipe: Recipe, stage: Stage, out: Path) -> dict[str, list[str]]:
    """Each input as a path: an earlier stage's folder under ``out``, else the value as given."""
    return {k: [str(out / v) if v in recipe.stages else v for v in values] for k, values in stage.inputs.items()}


def check_stage(recipe: Recipe, stage: Stage) -> None:
    """Build the stage's command configuration (placeholder paths): a bad setting fails before anything runs."""
    try:
        command_config(recipe, stage, {k: [f"<{k}>"] * len(v) for k, v in stage.inputs.items()}, Path("<out>"))
    except RigError as exc:
        raise RigError(f"stage '{stage.name}' ({stage.kind.name}): {exc.problem}", exc.fix) from exc
    except (TypeError, ValueError) as exc:
        raise RigError(f"stage '{stage.name}' ({stage.kind.name}): a setting has the wrong type ({exc})",
                       "fix the value in the recipe") from exc


def _one(inputs: dict[str, list[str]], key: str) -> str | None:
    values = inputs.get(key)
    return values[0] if values else None


def train_config(recipe: Recipe, stage: Stage, inputs: dict[str, list[str]], folder: Path):
    from rig_core.train.config import train_config as from_recipe

    data = inputs.get("data") or [""]
    overrides = {k: v for k, v in stage.given.items() if k not in stage.kind.inputs and k != "recipe"}
    overrides.update(data=data[0], more_data=data[1:], out=str(folder), init=_one(inputs, "init"))
    return from_recipe(str(stage.settings.get("recipe") or recipe.path), overrides, in_pipeline=True)


def command_config(recipe: Recipe, stage: Stage, inputs: dict[str, list[str]], folder: Path, workers: int = 1):
    """The configuration object of the stage's command (validated): what it will run with."""
    from rig_core.annotate.augment import ReasonConfig
    from rig_core.config import CollectConfig, ReviewConfig, check_backend

    s, kind = stage.settings, stage.kind.name
    if kind == "collect":
        return CollectConfig(out=str(folder), workers=workers, **s).validate()
    if kind == "reason":
        return ReasonConfig(data=_one(inputs, "data"), out=str(folder), workers=workers, **s).validate()
    if kind == "review":
        return ReviewConfig(out=str(folder), data=_one(inputs, "data"), checkpoint=_one(inputs, "checkpoint"),
                            workers=workers, **s).validate()
    if kind == "train":
        return train_config(recipe, stage, inputs, folder)
    if kind == "evaluate":
        from rig_core.evaluate.runner import parse_steps, resolve_suite

        resolve_suite(str(s["suite"]))
        parse_steps(str(s["test_time_steps"]))
        if int(s["episodes"]) < 1 or int(s["batch"]) < 1:
            raise RigError(f"stage '{stage.name}': episodes and batch must be at least 1", "pass positive numbers")
        check_backend(str(s.get("backend", "process")), s.get("address"))
        from rig_core.config import EvalConfig

        EvalConfig.from_dict({**s, "test_time_steps": str(s["test_time_steps"])}).validate()  # e.g. candidates
        return dict(s)
    if kind == "ablation":
        from rig_core.tokenize.sequence import parse_spans

        for key in ("baseline", "target"):
            parse_spans(str(s[key]))
        return dict(s)
    if kind == "play":
        from rig_core.tasks import load_suite

        load_suite("crafter").get(str(s["task"]))
        if s.get("agent") is not None and s["agent"] not in AGENTS:
            raise RigError(f"stage '{stage.name}': unknown agent '{s['agent']}'", f"choose one of: {', '.join(AGENTS)}")
        return dict(s)
    raise RigError(f"unknown stage kind '{kind}'", "see docs/pipeline.md")  # pragma: no cover


def effective_settings(recipe: Recipe, stage: Stage, folder: Path) -> dict[str, Any]:
    """What a stage's output depends on, besides its inputs: the settings its command really runs with
    (for a train stage, the whole resolved training configuration, recipe sections included)."""
    if stage.kind.name == "train":
        cfg = train_config(recipe, stage, {k: ["<input>"] * len(v) for k, v in stage.inputs.items()}, folder)
        return {k: v for k, v in cfg.to_dict().items() if k not in TRAIN_PATHS}
    return dict(stage.settings)


def run_stage(recipe: Recipe, stage: Stage, inputs: dict[str, list[str]], folder: Path, *, resume: bool,
              workers: int, quiet: bool) -> dict[str, Any]:
    """Run (or resume) one stage into ``folder``; returns the command's summary."""
    s, kind = stage.settings, stage.kind.name
    command = f"rig pipeline {recipe.path} (stage {stage.name})"
    if kind == "collect":
        from rig_core.collect.runner import run_collect

        return run_collect(command_config(recipe, stage, inputs, folder, workers), command=command, resume=resume,
                           quiet=quiet)
    if kind == "reason":
        from rig_core.annotate.augment import run_reason

        return run_reason(command_config(recipe, stage, inputs, folder, workers), command=command, resume=resume,
                          quiet=quiet)
    if kind == "review":
        from rig_core.review.runner import run_review

        return run_review(command_config(recipe, stage, inputs, folder, workers), command=command, resume=resume,
                          quiet=quiet)
    if kind == "train":
        from rig_core.train.run import resume_train, run_train

        if resume:
            return resume_train(folder, quiet=quiet)
        return run_train(command_config(recipe, stage, inputs, folder), command=command, quiet=quiet)
    if kind == "evaluate":
        return _evaluate(s, inputs, folder, workers, command, quiet)
    if kind == "ablation":
        from rig_core.pipeline.ablation import run_ablation
        from rig_core.tokenize.sequence import parse_spans

        norm = lambda x: ",".join(parse_spans(str(x)))
        return run_ablation(Path(_one(inputs, "evaluation")), folder, norm(s["baseline"]), norm(s["target"]))
    return _play(s, inputs, folder, quiet)


def _evaluate(s: dict[str, Any], inputs: dict[str, list[str]], folder: Path, workers: int, command: str,
              quiet: bool) -> dict[str, Any]:
    from rig_core.config import EvalConfig
    from rig_core.evaluate.players import evaluate

    players = inputs["players"]
    checkpoints = [_which_checkpoint(Path(p), s["checkpoint"]) for p in players if p not in AGENTS]
    agents = [p for p in players if p in AGENTS]
    cfg = EvalConfig.from_dict({**s, "test_time_steps": str(s["test_time_steps"]), "workers": workers,
                                "command": command})
    several, result = evaluate(checkpoints, agents, cfg, folder, quiet=quiet)
    return result if several else {"success_rate": [e.get("success_rate") for e in result["sweep"]]}


def _which_checkpoint(player: Path, which: str) -> Path:
    """A trained player's checkpoint to evaluate: its last (the run itself) or its best (``keep_best``; the
    recipe allows only these two)."""
    if which == "last" or not (player / "config.json").is_file():  # shipped models have one checkpoint
        return player
    best = player / "checkpoints" / "best"
    if not best.exists():
        raise RigError(f"{player} has no checkpoints/best", "train it with keep_best (e.g. keep_best: loss_act)")
    return best


def _play(s: dict[str, Any], inputs: dict[str, list[str]], folder: Path, quiet: bool) -> dict[str, Any]:
    from rig_core.fsutil import atomic_write_json
    from rig_core.inference.play_session import run_play

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _one(inputs, "checkpoint")
    result = run_play(checkpoint=Path(checkpoint) if checkpoint else None, agent=s["agent"], task=s["task"],
                      seed=int(s["seed"]), test_time_steps=int(s["test_time_steps"]), record=folder / "play.gif",
                      live=bool(s["live"]) and not quiet,
                      max_steps=s["max_steps"], temperature=s["temperature"], max_think=int(s["max_think"]),
                      review_threshold=s["review_threshold"], history=s["history"], draft=bool(s["draft"]),
                      quiet=True, candidates=s["candidates"], candidate_margin=float(s["candidate_margin"]))
    atomic_write_json(folder / "play.json", result)
    if not quiet:
        print(f"{result['task']} seed {result['seed']}: {'success' if result['success'] else 'no success'} in "
              f"{result['steps']} steps; recorded {folder / 'play.gif'}")
    return result


def clear(folder: Path) -> None:
    """Remove a stage's folder before it is run again from the start."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)

