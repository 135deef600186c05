"""rig works as an installed package, not only from its checkout: the wheel carries the recipes and the rules
it reads at run time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# What the build reads, copied to a clean folder: a local build/ folder would add modules that no longer exist.
BUILD_INPUTS = ("pyproject.toml", "README.md", "rig_core", "rig_cli")


def _package_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for pkg in ("rig_core", "rig_cli") for p in (root / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "rig"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, cwd=out)
    (path,) = out.glob("rig-*.whl")
    return path


def test_the_wheel_carries_recipes_and_rules(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in ("tiny", "cpu-2m", "cpu-15m", "gpu-lora", "gpu-qlora"):
        assert f"rig_core/resources/recipes/{recipe}.yaml" in names
    assert "rig_core/resources/recipes/experiments/ablation.yaml" in names  # experiment recipes too
    for rules in ("crafter_tasks", "crafter_expert", "reasoning", "review", "pipeline_rates"):
        assert f"rig_core/resources/{rules}.yaml" in names
    for part in ("model/model.safetensors", "model/config.json", "tokenizer/tokenizer.json", "card.json", "README.md"):
        assert f"rig_core/resources/models/crafter-basic/{part}" in names
    # every file of the two packages, and nothing else: no data file left behind, no stale module
    assert {n for n in names if not n.startswith("rig-")} == _package_files(REPO)


@pytest.mark.slow
def test_an_installed_wheel_trains_a_shipped_recipe_from_an_empty_folder(wheel, reasoned_dataset, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import rig_cli, rig_core; print(rig_cli.__file__); "
                            "print(rig_core.__file__)"], cwd=work, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(where) == 2 and all(Path(w).is_relative_to(target) for w in where), where  # not the checkout
    r = subprocess.run([sys.executable, "-m", "rig_cli.main", "train", "--data", str(reasoned_dataset),
                        "--recipe", "tiny", "--out", "run", "--max-steps", "2", "--eval-every", "2",
                        "--save-every", "2", "--set", "codebook_size=32", "--set", "text_vocab=280", "--quiet"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (work / "run" / "checkpoints" / "last" / "model" / "model.safetensors").exists()
    r = subprocess.run([sys.executable, "-m", "rig_cli.main", "models", "--json"], cwd=work, env=env,
                       capture_output=True, text=True, check=True)
    (model,) = [m for m in json.loads(r.stdout) if m["name"] == "crafter-basic"]
    assert Path(model["path"]).is_relative_to(target)  # the wheel's copy, usable by name


def test_a_recipe_is_a_shipped_name_or_a_users_file(tmp_path, monkeypatch):
    """``--recipe NAME`` finds a recipe inside the package wherever rig runs; ``--recipe FILE.yaml`` reads the user's
    file; a missing file is named as such, not as an unknown recipe."""
    from rig_core.errors import RigError
    from rig_core.train.config import recipe_path, shipped_recipes, train_config

    monkeypatch.chdir(tmp_path)  # no recipes/ folder here
    shipped = recipe_path("tiny")
    assert shipped == shipped_recipes()["tiny"] and shipped.is_file()
    assert shipped.parent.parent.name == "resources" and shipped.parent.name == "recipes"
    mine = tmp_path / "mine.yaml"
    mine.write_text(shipped.read_text().replace("max_steps: 60", "max_steps: 7", 1))
    assert train_config(str(mine), {}).max_steps == 7
    assert train_config("tiny", {}).max_steps != 7
    with pytest.raises(RigError, match="recipe file missing.yaml not found"):
        recipe_path("missing.yaml")
    with pytest.raises(RigError, match="unknown recipe 'huge'"):
        recipe_path("huge")
