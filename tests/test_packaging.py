"""rig works as an installed package, not only from its checkout: the wheel carries the recipes and the rules
it reads at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, cwd=out)
    (path,) = out.glob("rig-*.whl")
    return path


def test_the_wheel_carries_recipes_and_rules(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in ("tiny", "cpu-lookahead", "cpu-small", "gpu-lora", "gpu-qlora"):
        assert f"rig_core/resources/recipes/{recipe}.yaml" in names
    for rules in ("crafter_tasks", "crafter_expert", "reasoning", "review"):
        assert f"rig_core/resources/{rules}.yaml" in names


@pytest.mark.slow
def test_an_installed_wheel_trains_a_shipped_recipe_from_an_empty_folder(wheel, reasoned_dataset, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import rig_core; print(rig_core.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(target), where  # the installed copy, not the checkout
    r = subprocess.run([sys.executable, "-m", "rig_cli.main", "train", "--data", str(reasoned_dataset),
                        "--recipe", "tiny", "--out", "run", "--max-steps", "2", "--eval-every", "2",
                        "--save-every", "2", "--set", "codebook_size=32", "--set", "text_vocab=280", "--quiet"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (work / "run" / "checkpoints" / "last" / "model" / "model.safetensors").exists()
