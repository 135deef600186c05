"""`rig pipeline`: stages run in order into their own folders; a finished stage with unchanged settings and
inputs is kept, an interrupted one resumes, a changed one is redone with everything downstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli_helpers import one_line_error, rig

SMALL = ["--set", "episodes=4", "--set", "basic_steps=6", "--set", "look_steps=4"]


def _plan(out: Path, *args) -> dict[str, str]:
    r = rig("pipeline", "tiny-pipeline", "--out", out, *SMALL, *args, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    return {s["stage"]: s["action"] for s in json.loads(r.stdout)["stages"]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipe") / "run"
    r = rig("pipeline", "tiny-pipeline", "--out", out, *SMALL, "--workers", 2, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert [s["action"] for s in summary["stages"]] == ["run"] * 6
    return out


def test_a_pipeline_runs_every_stage_and_reports_the_paired_comparison(finished):
    for stage in ("data", "reason"):
        assert json.loads((finished / stage / "dataset.json").read_text())["complete"]
    assert (finished / "basic" / "checkpoints" / "last" / "model" / "model.safetensors").is_file()
    assert json.loads((finished / "lookahead" / "config.json").read_text())["init"] == str(finished / "basic")
    report = (finished / "report.md").read_text()
    assert "| basic | train | run |" in report and "paired" in report and "(eval/players.png)" in report
    assert (finished / "eval" / "players.png").is_file()
    state = json.loads((finished / "pipeline.json").read_text())
    assert all(s["status"] == "complete" for s in state["stages"].values())
    recipe = yaml.safe_load((finished / "recipe.yaml").read_text())
    assert recipe["vars"]["episodes"] == 4 and (finished / "versions.json").is_file()


def test_a_finished_pipeline_reruns_nothing(finished):
    before = (finished / "basic" / "metrics.jsonl").stat().st_mtime_ns
    r = rig("pipeline", "tiny-pipeline", "--out", finished, *SMALL, "--json")
    assert r.exit_code == 0, r.output
    assert [s["action"] for s in json.loads(r.stdout)["stages"]] == ["keep"] * 6
    assert (finished / "basic" / "metrics.jsonl").stat().st_mtime_ns == before


def test_a_finished_pipeline_ends_with_how_to_view_it_and_is_viewed(finished, tmp_path):
    r = rig("pipeline", "tiny-pipeline", "--out", finished, *SMALL)
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].endswith(f"see it all: rig view {finished}")
    v = rig("view", finished, "--out", tmp_path / "site", "--json")
    assert v.exit_code == 0, v.output
    info = json.loads(v.stdout)
    assert info["kind"] == "pipeline" and info["steps"] > 0
    for stage in ("data", "reason", "review", "eval"):  # every dataset and evaluation stage has its own page
        assert (tmp_path / "site" / stage / "index.html").is_file()
    assert not (tmp_path / "site" / "basic").exists()  # a training run has none


def test_changing_one_stage_redoes_it_and_only_what_reads_it(finished):
    plan = _plan(finished, "--set", "review.confirm_share=0.4")
    assert plan == {"data": "keep", "reason": "keep", "basic": "keep", "review": "redo", "lookahead": "redo",
                    "eval": "redo"}
    assert _plan(finished, "--set", "eval.seed_start=5") == {**{s: "keep" for s in plan}, "eval": "redo"}
    assert _plan(finished, "--until", "basic", "--set", "episodes=5") == {"data": "redo", "reason": "redo",
                                                                         "basic": "redo"}
    r = rig("pipeline", "tiny-pipeline", "--out", finished, *SMALL, "--set", "eval.seed_start=5", "--json")
    assert r.exit_code == 0, r.output
    ran = {s["stage"]: s["action"] for s in json.loads(r.stdout)["stages"]}
    assert ran["eval"] == "redo" and ran["basic"] == "keep"
    seeds = json.loads((finished / "eval" / "basic" / "eval.json").read_text())["seeds"]
    assert seeds == [5]


KILL_RECIPE = """
vars: {steps: 40}
stages:
  data: {run: collect, agent: expert, task: collect_wood, episodes: 2, max_steps: 30, seed: 0}
  reason: {run: reason, data: data}
  basic: {run: train, recipe: tiny, data: reason, max_steps: "${steps}", save_every: 2, eval_every: 40}
"""


def test_a_killed_stage_resumes_and_the_rest_is_kept(tmp_path):
    recipe = tmp_path / "kill.yaml"
    recipe.write_text(KILL_RECIPE)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rig_cli.main", "pipeline", str(recipe), "--out", str(out),
                             "--quiet"], cwd=tmp_path, start_new_session=True)
    last = out / "basic" / "checkpoints" / "last"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9, mid-training
    proc.wait()
    assert last.exists(), "training never saved a checkpoint"
    r = rig("pipeline", recipe, "--out", out, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    assert {s["stage"]: s["action"] for s in json.loads(r.stdout)["stages"]} == {
        "data": "keep", "reason": "keep", "basic": "resume"}
    r = rig("pipeline", recipe, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    steps = [json.loads(x)["step"] for x in (out / "basic" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["split"] == "train"]
    assert steps == list(range(1, 41))  # continued where the last checkpoint left it, no step twice
    r = rig("pipeline", recipe, "--out", out, "--json")
    assert [s["action"] for s in json.loads(r.stdout)["stages"]] == ["keep"] * 3


@pytest.mark.parametrize("text, expected", [
    ("stages: {a: {run: cook}}", "unknown run 'cook'"),
    ("stages: {a: {run: collect, episode: 3}}", "unknown setting 'episode'"),
    ("stages: {a: {run: reason, data: /no/such/dataset}}", "neither an earlier stage"),
    ("stages: {a: {run: reason, data: b}, b: {run: collect}}", "neither an earlier stage"),
    ("stages: {a: {run: collect, episodes: '${n}'}}", "vars do not define"),
    ("stages: {a: {run: collect, episodes: 0}}", "--episodes 0 must be at least 1"),
    ("stages: {a: {run: evaluate, players: [expert], suite: cooking}}", "stage 'a' (evaluate)"),
    ("description: no stages", "declares no stages"),
    ("stages: {a: {run: train, recipe: tiny, data: /tmp, lr: fast}}", "stage 'a' (train)"),
])
def test_a_bad_recipe_is_one_line_before_anything_runs(tmp_path, text, expected):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    line = one_line_error(rig("pipeline", recipe, "--out", tmp_path / "out"))
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_bad_options_are_one_line(tmp_path):
    assert "no such variable" in one_line_error(rig("pipeline", "tiny-pipeline", "--out", tmp_path / "o",
                                                    "--set", "nonsense=1"))
    assert "no stage 'x'" in one_line_error(rig("pipeline", "tiny-pipeline", "--out", tmp_path / "o",
                                                "--set", "x.lr=1"))
    assert "--until nope" in one_line_error(rig("pipeline", "tiny-pipeline", "--out", tmp_path / "o",
                                                "--until", "nope"))
    assert "unknown recipe" in one_line_error(rig("pipeline", "no-such-recipe", "--out", tmp_path / "o"))
    (tmp_path / "taken" / "data").mkdir(parents=True)
    (tmp_path / "taken" / "data" / "x").write_text("mine")
    assert "did not make it" in one_line_error(rig("pipeline", "tiny-pipeline", "--out", tmp_path / "taken"))
    assert (tmp_path / "taken" / "data" / "x").read_text() == "mine"


def test_every_shipped_pipeline_recipe_plans(tmp_path):
    from rig_core.train.config import shipped_recipes

    for name, path in shipped_recipes().items():
        if "stages" in (yaml.safe_load(path.read_text()) or {}):
            r = rig("pipeline", name, "--out", tmp_path / name, "--dry-run", "--json")
            assert r.exit_code == 0, (name, r.output)
            assert all(s["action"] == "run" and s["estimate_s"] is not None for s in json.loads(r.stdout)["stages"])


def test_the_quickstart_runs_at_a_small_size(tmp_path):
    """The quickstart's stages end to end (fewer episodes and steps): the shipped model played and compared with
    the expert and random, then a tiny model trained and evaluated."""
    out = tmp_path / "qs"
    r = rig("pipeline", "quickstart", "--out", out, "--set", "eval_episodes=1", "--set", "episodes=2",
            "--set", "watch.max_steps=5", "--set", "compare.max_steps=5", "--set", "tiny.max_steps=4",
            "--set", "tiny-eval.max_steps=5", "--set", "tiny-eval.episodes=1", "--quiet", "--json")
    assert r.exit_code == 0, r.output
    assert (out / "watch" / "play.gif").is_file() and json.loads((out / "watch" / "play.json").read_text())["steps"] == 5
    compare = json.loads((out / "compare" / "compare.json").read_text())
    assert {row["player"] for row in compare["rows"]} == {"expert", "random"} and all(
        row["paired"] for row in compare["rows"])
    report = (out / "report.md").read_text()
    assert "(watch/play.gif)" in report and "(compare/players.png)" in report and "(tiny-eval/players.png)" in report


def test_a_sweep_trains_every_layout_and_fraction_and_the_ablation_reports_them(tmp_path):
    out = tmp_path / "abl"
    r = rig("pipeline", "tiny-ablation", "--out", out, "--set", "steps=3", "--set", "episodes=6", "--json",
            "--quiet", "--workers", 2)
    assert r.exit_code == 0, r.output
    stages = [s["stage"] for s in json.loads(r.stdout)["stages"]]
    assert stages == ["data", "reason", "model-act-0.5", "model-act-1.0", "model-think-act-imagine-0.5",
                      "model-think-act-imagine-1.0", "eval", "ablation"]
    for name, spans, fraction in (("model-act-0.5", "act", 0.5), ("model-think-act-imagine-1.0",
                                                                   "think,act,imagine", 1.0)):
        cfg = json.loads((out / name / "config.json").read_text())
        assert cfg["spans"] == spans and cfg["data_fraction"] == fraction and cfg["max_steps"] == 3
    result = json.loads((out / "ablation" / "ablation.json").read_text())
    assert {(p["spans"], p["fraction"]) for p in result["points"]} == {
        (s, f) for s in ("act", "think,act,imagine") for f in (0.5, 1.0)}
    small = {p["episodes"] for p in result["points"] if p["fraction"] == 0.5}
    large = {p["episodes"] for p in result["points"] if p["fraction"] == 1.0}
    assert len(small) == len(large) == 1 and small.pop() < large.pop()
    assert [r["fraction"] for r in result["paired"]] == [0.5, 1.0] and all(r["paired"] for r in result["paired"])
    assert (out / "ablation" / "ablation.png").is_file() and "Data multiple" in (out / "report.md").read_text()
    played = {json.loads(f.read_text())["player"]["checkpoint"] for f in (out / "eval").glob("*/eval.json")}
    assert len(played) == 4 and all(p.endswith("checkpoints/best") for p in played)  # checkpoint: best


def test_the_data_multiple_reads_the_baseline_curve_in_log_episodes():
    from rig_core.pipeline.ablation import data_multiple

    curve = [(100, 0.1), (400, 0.3), (800, 0.5)]
    assert data_multiple(curve, 0.3, 100)[0] == pytest.approx(4.0)
    assert data_multiple(curve, 0.4, 100)[0] == pytest.approx(400 * 2 ** 0.5 / 100)  # halfway in log episodes
    assert data_multiple(curve, 0.05, 100)[0] == 1.0
    multiple, why = data_multiple(curve, 0.6, 100)
    assert multiple is None and "more than 8x" in why


def test_a_checkpoint_input_is_known_by_its_weights_not_its_file_times(tiny_checkpoint, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model, symlinks=True)
    recipe = tmp_path / "watch.yaml"
    recipe.write_text(f"stages:\n  watch: {{run: play, checkpoint: {model}, max_steps: 2, temperature: 0}}\n")
    out = tmp_path / "run"
    r = rig("pipeline", recipe, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output

    def plan():
        r = rig("pipeline", recipe, "--out", out, "--dry-run", "--json")
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["stages"][0]

    shutil.rmtree(model)
    shutil.copytree(tiny_checkpoint, model, symlinks=True)  # the same bytes, new file times (a reinstall)
    assert plan()["action"] == "keep"
    weights = next(model.rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")  # other weights
    step = plan()
    assert step["action"] == "redo" and "input checkpoint" in step["why"]


def test_evaluating_the_best_checkpoint_needs_one(tmp_path):
    from rig_core.errors import RigError
    from rig_core.pipeline.commands import _which_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert _which_checkpoint(run, "last") == run
    with pytest.raises(RigError, match="no checkpoints/best"):
        _which_checkpoint(run, "best")
    (run / "checkpoints" / "000010").mkdir()
    (run / "checkpoints" / "best").symlink_to("000010")
    assert _which_checkpoint(run, "best") == run / "checkpoints" / "best"
    # any other value is refused when the recipe is read, before a stage runs
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  eval: {run: evaluate, players: [expert], checkpoint: newest}\n")
    line = one_line_error(rig("pipeline", recipe, "--out", tmp_path / "out", "--dry-run"))
    assert "checkpoint 'newest' is not one of last, best" in line and not (tmp_path / "out").exists()


def test_measured_rates_count_every_worker_so_estimates_divide_by_workers_once():
    from rig_core.pipeline.plan import load_rates, parallelism

    state = {"review": {"run": "review", "status": "complete", "rate_key": "review_episode:mini", "units": 10,
                        "wall_s": 100.0, "workers": 2},
             "basic": {"run": "train", "status": "complete", "rate_key": "train_step:mini", "units": 50,
                       "wall_s": 100.0, "workers": 2}}
    rates = load_rates(state)
    assert rates["review_episode:mini"] == 20.0  # 10 episodes on 2 workers in 100 s: 20 s per episode and worker
    assert rates["train_step:mini"] == 2.0  # training does not spread over workers
    assert 10 * rates["review_episode:mini"] / parallelism("review", 2) == 100.0  # the same run estimates its time
    state["review"].pop("workers")  # recorded before workers were: counted as one
    assert load_rates(state)["review_episode:mini"] == 10.0


def test_whole_game_stages_are_estimated_by_game_length(tmp_path):
    """Collecting, reasoning and evaluating whole games (task open) count each player's usual game length, not
    a basic task's episode nor the 10,000-step limit."""
    r = rig("pipeline", "crafter-open", "--out", tmp_path / "o", "--dry-run", "--json", "--workers", 2)
    assert r.exit_code == 0, r.output
    est = {s["stage"]: s["estimate_s"] for s in json.loads(r.stdout)["stages"]}
    assert 120 < est["data"] < 600  # 240 expert games of ~860 steps at ~0.0024 s a step on 2 workers
    assert 60 < est["reason"] < 600
    assert est["eval"] < 4 * 3600  # a whole game stops at death: far below 100 games x 10,000 steps each
