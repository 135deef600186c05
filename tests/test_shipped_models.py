"""The pretrained models that ship inside the package: usable by name, loadable without rig, and described by
a card whose figures are the README's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_helpers import one_line_error, rig
from rig_core.model.shipped import model_card, shipped_models

REPO = Path(__file__).resolve().parents[1]


def test_crafter_basic_ships_with_its_card():
    models = shipped_models()
    assert "crafter-basic" in models
    folder = models["crafter-basic"]
    assert (folder / "model" / "model.safetensors").stat().st_size <= 16e6
    assert not list(folder.rglob("state"))  # no optimizer state in the package
    card = model_card("crafter-basic")
    assert card["stage"] == "basic" and card["training_steps"] and card["held_out"]["action_acc"] > 0.9
    assert card["reproduce"].startswith("rig pipeline crafter-basic")
    r = rig("models", "--json")
    assert r.exit_code == 0, r.output
    assert [m["name"] for m in json.loads(r.stdout)] == list(models)


def test_the_shipped_model_loads_with_plain_transformers():
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(shipped_models()["crafter-basic"] / "model", local_files_only=True)
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


def test_the_shipped_model_plays_by_name_at_its_own_temperature():
    r = rig("play", "--checkpoint", "crafter-basic", "--task", "collect_wood", "--max-steps", 3, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["steps"] == 3 and out["temperature"] == model_card("crafter-basic")["temperature"]
    r = rig("play", "--checkpoint", "crafter-basic", "--max-steps", 2, "--temperature", 0, "--json")
    assert json.loads(r.stdout)["temperature"] == 0


def test_a_basic_run_continues_from_the_shipped_weights(reasoned_dataset, tmp_path):
    out = tmp_path / "more"
    r = rig("train", "--init", "crafter-basic", "--data", reasoned_dataset, "--recipe", "cpu-2m",
            "--max-steps", 2, "--eval-every", 2, "--save-every", 2, "--json")
    assert "needs --data and --out" in r.output  # --out is required
    r = rig("train", "--init", "crafter-basic", "--data", reasoned_dataset, "--recipe", "cpu-2m",
            "--max-steps", 2, "--eval-every", 2, "--save-every", 2, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    shipped = shipped_models()["crafter-basic"]
    assert cfg["init_checkpoint"] == str(shipped.resolve()) and cfg["size"] == model_card("crafter-basic")["size"]
    assert (out / "tokenizer" / "tokenizer.json").read_text() == (shipped / "tokenizer" / "tokenizer.json").read_text()
    r = rig("play", "--checkpoint", out, "--max-steps", 2, "--json")
    assert r.exit_code == 0, r.output


def test_a_basic_run_cannot_continue_a_lookahead_run(lookahead_run, reasoned_dataset, tmp_path):
    line = one_line_error(rig("train", "--init", lookahead_run, "--data", reasoned_dataset, "--out", tmp_path / "x"))
    assert "continues from full RIG-basic weights" in line and not (tmp_path / "x").exists()


def test_an_unknown_model_name_says_where_names_come_from(tmp_path):
    line = one_line_error(rig("play", "--checkpoint", "crafter-nothing", "--max-steps", 1))
    assert "rig models" in line


def test_the_readme_quotes_the_card():
    card = model_card("crafter-basic")
    ev = card["evaluation"]
    if ev is None:
        pytest.fail("crafter-basic has no evaluation on its card")
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `crafter-basic`"))
    lo, hi = (round(100 * x) for x in ev["success_ci95"])
    assert f"**{round(100 * ev['success'])} %** [{lo}, {hi}]" in row
    assert f"{ev['episodes']} episodes" in row
    expert = card["baselines"]["expert"]["success"]
    assert re.search(rf"expert {round(100 * expert)} %", row)


def test_review_rollouts_take_the_shipped_model_by_name(reasoned_dataset, tmp_path):
    out = tmp_path / "review"
    r = rig("augment", "--stage", "review", "--checkpoint", "crafter-basic", "--data", reasoned_dataset, "--out", out,
            "--episodes", 1, "--batch", 1, "--max-steps", 3, "--horizon", 1, "--json")
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["complete"] and manifest["source"]["checkpoint"] == str(shipped_models()["crafter-basic"].resolve())


def test_crafter_open_plays_the_whole_game_by_name_and_its_card_is_the_scoreboard():
    """The whole-game model: listed with its Crafter score, playable on the open task, and the README's
    scoreboard row is its card's figure."""
    folder = shipped_models()["crafter-open"]
    assert (folder / "model" / "model.safetensors").stat().st_size <= 16e6 and not list(folder.rglob("state"))
    card = model_card("crafter-open")
    whole = card["evaluation"]["open"]
    assert card["evaluation"]["suite"] == "open" and card["evaluation"]["max_steps"] == 10000
    assert card["reproduce"].startswith("rig pipeline crafter-open") and card["limits"]
    r = rig("models")
    assert r.exit_code == 0 and f"Crafter score {whole['crafter_score']:.1f}" in r.output.replace("\n", " ")
    r = rig("play", "--checkpoint", "crafter-open", "--task", "open", "--max-steps", 3, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["steps"] == 3
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `crafter-open`"))
    lo, hi = whole["crafter_score_ci95"]
    assert f"{whole['crafter_score']:.1f} [{lo:.1f}, {hi:.1f}]" in row
