"""`rig train` at tiny size: loss falls, exact resume, kill -9, open formats, LoRA/QLoRA, errors."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import one_line_error as _err
from cli_helpers import rig

FAST = ["--recipe", "tiny", "--quiet", "--set", "codebook_size=64", "--set", "text_vocab=300"]



def metrics(run):
    return [json.loads(ln) for ln in (Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(reasoned_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--max-steps", 40, "--save-every", 20,
            "--eval-every", 20, "--json")
    assert r.exit_code == 0, r.output
    return run, json.loads(r.stdout)


def test_loss_falls_and_run_layout(tiny_run):
    run, summary = tiny_run
    train = [m for m in metrics(run) if m["split"] == "train"]
    assert len(train) == 40
    first = sum(m["loss"] for m in train[:5]) / 5
    last = sum(m["loss"] for m in train[-5:]) / 5
    assert last < first - 0.5, (first, last)
    val = [m for m in metrics(run) if m["split"] == "val"]
    assert {"loss_think", "loss_act", "loss_imagine", "action_acc"} <= set(val[-1])
    for name in ("config.json", "versions.json", "tokenizer_report.json"):
        assert (run / name).exists()
    last_ckpt = run / "checkpoints" / "last"
    assert last_ckpt.is_symlink() and last_ckpt.resolve().name == "000040"
    for sub in ("model/config.json", "model/model.safetensors", "tokenizer/rig.json",
                "tokenizer/image_tokenizer.safetensors", "tokenizer/tokenizer.json", "state/tensors.safetensors"):
        assert (last_ckpt / sub).exists(), sub
    assert not [p for p in run.rglob("*") if p.suffix in (".bin", ".pt", ".pkl", ".pickle")], "nothing pickled"
    assert summary["steps"] == 40 and summary["tokenizer_psnr_db"] > 20


def test_plain_transformers_loads_the_checkpoint(tiny_run):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    run, _ = tiny_run
    ckpt = run / "checkpoints" / "last"
    model = AutoModelForCausalLM.from_pretrained(ckpt / "model", local_files_only=True).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(ckpt / "tokenizer", local_files_only=True)
    ids = tok("<bos><task>Collect wood.</task><obs><img_1><img_2>", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(logits).all()


def test_resume_matches_an_uninterrupted_run(tiny_run, tmp_path):
    run, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, symlinks=True)
    shutil.rmtree(copy / "checkpoints" / "000040")
    (copy / "checkpoints" / "last").unlink()
    os.symlink("000020", copy / "checkpoints" / "last")
    r = rig("train", "--resume", copy, "--quiet")
    assert r.exit_code == 0, r.output
    a = [(m["split"], m["step"], m["loss"]) for m in metrics(run)]
    b = [(m["split"], m["step"], m["loss"]) for m in metrics(copy)]
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for (_, _, la), (_, _, lb) in zip(a, b):
        assert abs(la - lb) < 1e-5
    again = rig("train", "--resume", copy, "--json")  # a finished run resumes to nothing left to do
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["steps"] == 40 and len(metrics(copy)) == len(b)


def test_kill_minus_9_then_resume(reasoned_dataset, tmp_path):
    run = tmp_path / "k"
    cmd = [sys.executable, "-m", "rig_cli.main", "train", "--data", str(reasoned_dataset), "--out", str(run), *FAST,
           "--max-steps", "150", "--save-every", "5", "--eval-every", "150"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model trains fastest on one thread, even on a busy machine
    proc = subprocess.Popen(cmd, start_new_session=True, env=env)
    deadline = time.time() + 180
    while time.time() < deadline and not (run / "checkpoints" / "last").exists():
        time.sleep(0.2)
    assert (run / "checkpoints" / "last").exists()
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    r = subprocess.run([sys.executable, "-m", "rig_cli.main", "train", "--resume", str(run), "--quiet", "--json"],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 150
    steps = [m["step"] for m in metrics(run) if m["split"] == "train"]
    assert steps == list(range(1, 151)), "no step missing or repeated after the resume"
    leftovers = list(run.glob(".*.tmp")) + list((run / "checkpoints").glob(".*.tmp"))
    assert not leftovers, leftovers


def test_lora_on_a_local_base_loads_with_peft(reasoned_dataset, base_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "lora"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--base", base_model_dir, "--lora",
            "--max-steps", 3, "--save-every", 3, "--eval-every", 3, "--context", 700)
    assert r.exit_code == 0, r.output
    ckpt = run / "checkpoints" / "last"
    assert (ckpt / "model" / "adapter_model.safetensors").exists()
    tok = AutoTokenizer.from_pretrained(ckpt / "tokenizer")
    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    base.resize_token_embeddings(len(tok))
    model = PeftModel.from_pretrained(base, ckpt / "model")
    ids = tok("<obs><img_3></obs><think>", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == len(tok)


def test_qlora_trains_on_the_cpu(reasoned_dataset, base_model_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    run = tmp_path / "qlora"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--base", base_model_dir, "--qlora",
            "--max-steps", 2, "--save-every", 2, "--eval-every", 2, "--context", 700, "--json")
    assert r.exit_code == 0, r.output
    assert (run / "checkpoints" / "last" / "model" / "adapter_model.safetensors").exists()
    losses = [m["loss"] for m in metrics(run) if m["split"] == "train"]
    assert len(losses) == 2 and all(l == l for l in losses)



def test_bad_inputs(random_dataset, reasoned_dataset, tiny_run, tmp_path):
    run, _ = tiny_run
    line = _err(rig("train", "--data", random_dataset, "--out", tmp_path / "a", *FAST))
    assert "no reasoning" in line and "rig augment --stage reason" in line
    assert "too short for one step" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "b", *FAST,
                                                "--context", 100))
    assert "already exists" in _err(rig("train", "--data", reasoned_dataset, "--out", run, *FAST))
    assert "not a rig run" in _err(rig("train", "--resume", tmp_path))
    for opt, value, says in (("--lr", -1, "lr -1.0 must be above 0"), ("--seed", -3, "seed -3 is negative")):
        assert says in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "d", *FAST, opt, value))
    assert "lora_r must be at least 1" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "d",
                                                   *FAST, "--set", "lora_r=0"))
    assert not (tmp_path / "d").exists()
    listed = tmp_path / "listed"  # a run whose config.json holds JSON, but not an object
    shutil.copytree(run, listed, symlinks=True)
    (listed / "config.json").write_text("[1, 2]")
    assert "is not a run configuration" in _err(rig("train", "--resume", listed))
    assert "is not a run configuration" in _err(rig("play", "--checkpoint", listed, "--max-steps", 1))
    assert "unknown recipe" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", "--recipe", "huge"))
    line = _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", "--recipe", "quickstart"))
    assert "is a pipeline" in line and "tiny" in line and "quickstart," not in line and not (tmp_path / "c").exists()
    assert "image_row_stride 99 is out of range" in _err(rig("train", "--data", reasoned_dataset, "--out",
                                                            tmp_path / "c", *FAST, "--set", "image_row_stride=99"))
    assert "eval_samples -1 is negative" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", *FAST,
                                                      "--set", "eval_samples=-1"))
    assert "no such recipe field" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", *FAST,
                                              "--set", "colour=blue"))
    assert "is not of type int" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", *FAST,
                                            "--set", "warmup_steps=many"))
    assert "given twice" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", *FAST,
                                     "--lr", "0.1", "--set", "lr=0.2"))
    assert "not key=value" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "c", *FAST,
                                       "--set", "lr"))
    from rig_core.train.config import parse_sets  # a text field keeps YAML's booleans and numbers as words
    assert parse_sets(["mixed_precision=no", "spans=act", "lr=0.1", "lora=no"]) == {
        "mixed_precision": "no", "spans": "act", "lr": 0.1, "lora": False}
    assert "takes no other options" in _err(rig("train", "--resume", run, "--lr", "0.1"))
    assert "not a local Hugging Face model" in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "d",
                                                        *FAST, "--base", tmp_path))
    # a run directory without a checkpoint, and a corrupt checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(run / "config.json", empty / "config.json")
    assert "no checkpoint" in _err(rig("train", "--resume", empty))
    broken = tmp_path / "broken"
    shutil.copytree(run, broken, symlinks=True)
    (broken / "checkpoints" / "last" / "state" / "tensors.safetensors").write_bytes(b"junk")
    assert "corrupt" in _err(rig("train", "--resume", broken))
    # a tokenizer that does not match the dataset
    other = tmp_path / "other-data"
    shutil.copytree(reasoned_dataset, other)
    doc = json.loads((other / "dataset.json").read_text())
    doc["action_names"] = list(reversed(doc["action_names"]))
    (other / "dataset.json").write_text(json.dumps(doc))
    moved = tmp_path / "moved"
    shutil.copytree(run, moved, symlinks=True)
    cfg = json.loads((moved / "config.json").read_text())
    cfg["data"] = str(other)
    (moved / "config.json").write_text(json.dumps(cfg))
    assert "do not match" in _err(rig("train", "--resume", moved))
    for name in "abcd":
        assert not (tmp_path / name).exists(), "a rejected run leaves nothing behind"


def test_every_recipe_parses_for_both_stages():
    from rig_core.train.config import shipped_recipes, train_config

    recipes = shipped_recipes()
    assert {"tiny", "cpu-2m", "cpu-15m", "gpu-lora", "gpu-qlora"} <= set(recipes)
    for path in recipes.values():
        pipeline = "train:" not in path.read_text()  # its train stages name their own settings
        base = {"base": "/models/x"} if path.stem.startswith("gpu") else {}
        basic = train_config(path.stem, dict(base), in_pipeline=pipeline)
        look = train_config(path.stem, {**base, "stage": "lookahead", "init": "runs/basic"}, in_pipeline=pipeline)
        assert basic.max_steps > 0 and look.stage == "lookahead", path


def _fields_set(doc) -> set[str]:
    """Every key a recipe sets: in its train/lookahead sections and in its pipeline stages."""
    keys = set((doc.get("train") or {})) | set((doc.get("lookahead") or {}))
    for stage in (doc.get("stages") or {}).values():
        keys |= set(stage) | set((stage.get("sweep") or {}))
    return keys


def test_experiment_fields_live_only_in_experiment_recipes():
    """A field that did not pay is set by an experiment recipe that tested it and by no product recipe; every
    experiment recipe says what it tested and whether (and how long) it was measured."""
    from rig_core.model.run_config import EXPERIMENT_FIELDS
    from rig_core.train.config import experiment_recipes, shipped_recipes

    experiments = set(experiment_recipes())
    assert {"ablation", "ablation-best", "world-model", "row-stride"} <= experiments
    used_by = {f: set() for f in EXPERIMENT_FIELDS}
    for name, path in shipped_recipes().items():
        for field in _fields_set(yaml.safe_load(path.read_text())) & set(EXPERIMENT_FIELDS):
            used_by[field].add(name)
        if name in experiments:
            text = path.read_text()
            assert "Tested:" in text and ("Measured" in text or "Unmeasured" in text), name
    for field, names in used_by.items():
        assert names and names <= experiments, (field, names)


def test_image_row_stride_trains_and_plays(reasoned_dataset, tmp_path):
    from rig_core.inference.policy import RigPolicy

    run = tmp_path / "strided"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--max-steps", 3, "--eval-every", 3,
            "--save-every", 3, "--set", "think_positions=8", "--set", "image_row_stride=16")
    assert r.exit_code == 0, r.output
    meta = json.loads((run / "checkpoints" / "last" / "tokenizer" / "rig.json").read_text())
    assert meta["image_row_stride"] == 16 and meta["think_positions"] == 8
    policy = RigPolicy.from_checkpoint(run, max_think=4)
    assert policy.builder.layout.row_stride == 16
    play = rig("play", "--checkpoint", run, "--task", "collect_wood", "--max-steps", 3, "--quiet", "--json")
    assert play.exit_code == 0, play.output


def _cpu_bf16() -> bool:
    from rig_core.train.run import cpu_bf16_supported

    return not torch.cuda.is_available() and cpu_bf16_supported()


@pytest.mark.skipif(not _cpu_bf16(), reason="needs a CPU with native bf16 (AVX512-BF16 or AMX) and no GPU")
def test_bf16_autocast_on_a_bf16_cpu_trains_and_saves_fp32_weights(reasoned_dataset, tmp_path):
    from safetensors import safe_open

    run = tmp_path / "bf16"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--max-steps", 3, "--eval-every", 3,
            "--save-every", 3, "--mixed-precision", "bf16", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["precision"] == "bf16" and torch.isfinite(torch.tensor(summary["train_loss"]))
    with safe_open(str(run / "checkpoints" / "last" / "model" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}  # autocast: fp32 master weights
    assert summary["val"]["loss"] > 0
    r = rig("train", "--data", reasoned_dataset, "--out", tmp_path / "fp32", *FAST, "--max-steps", 2, "--eval-every", 2,
            "--save-every", 2, "--mixed-precision", "no", "--json")  # another precision in the same process
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "fp32"


def test_mixed_precision_the_cpu_cannot_do_is_one_line(reasoned_dataset, tmp_path, monkeypatch):
    import rig_core.train.run as train_run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "a", *FAST, "--mixed-precision", "fp16"))
    assert "fp16 needs a GPU" in line and not (tmp_path / "a").exists()
    monkeypatch.setattr(train_run, "cpu_bf16_supported", lambda: False)
    line = _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "b", *FAST, "--mixed-precision", "bf16"))
    assert "no native bf16" in line and "--mixed-precision no" in line


def test_eval_samples_scores_the_same_spread_subset_each_time(reasoned_dataset, tmp_path):
    from rig_core.train.loop import eval_indices

    assert eval_indices(10, 0) == list(range(10)) and eval_indices(3, 5) == [0, 1, 2]
    picked = eval_indices(100, 7)
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 99 and picked == eval_indices(100, 7)
    run = tmp_path / "few"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--max-steps", 4, "--eval-every", 2,
            "--set", "eval_samples=3", "--json")
    assert r.exit_code == 0, r.output
    assert [m["samples"] for m in metrics(run) if m["split"] == "val"] == [3, 3]


def test_keep_best_and_patience(reasoned_dataset, tmp_path):
    """The checkpoint of the lowest held-out loss is kept as checkpoints/best (through pruning), patience stops
    a run whose held-out loss stopped improving, and a resumed stopped run has nothing left to do."""
    run = tmp_path / "best"
    r = rig("train", "--data", reasoned_dataset, "--out", run, *FAST, "--max-steps", 60, "--eval-every", 2,
            "--save-every", 50, "--lr", "0.05", "--set", "keep_best=loss_act", "--set", "patience=2",
            "--set", "keep_checkpoints=1", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    val = [m for m in metrics(run) if m["split"] == "val"]
    best = min(val, key=lambda m: m["loss_act"])
    assert out["best"]["step"] == best["step"] and out["best"]["value"] == pytest.approx(best["loss_act"])
    assert os.readlink(run / "checkpoints" / "best") == f"{best['step']:06d}"
    assert (run / "checkpoints" / "best" / "model" / "model.safetensors").is_file()  # kept through pruning
    later = [m["loss_act"] for m in val if m["step"] > best["step"]]
    assert out["stopped_early"] and len(later) == 2 and out["steps"] == val[-1]["step"] < 60
    assert metrics(run)[-1] == {"split": "early_stop", "step": out["steps"], "best_step": best["step"],
                                "loss_act": best["loss_act"]}
    again = rig("train", "--resume", run, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["steps"] == out["steps"]
    shown = rig("train", "--resume", run)  # the table names the best checkpoint and why the run stopped
    assert f"at step {best['step']}" in shown.stdout and "stopped early (patience)" in shown.stdout
    # the checkpoint plays like any other
    assert rig("evaluate", "--checkpoint", run / "checkpoints" / "best", "--suite", "basic", "--episodes", 1,
               "--max-steps", 2, "--imagination-episodes", 0, "--gifs", 0, "--quiet", "--out", tmp_path / "eval").exit_code == 0
    for bad, words in ((["--set", "keep_best=accuracy"], "not a held-out loss"),
                       (["--set", "patience=2"], "needs keep_best"),
                       (["--spans", "act", "--set", "keep_best=loss_think"], "has no think span")):
        assert words in _err(rig("train", "--data", reasoned_dataset, "--out", tmp_path / "x", *FAST, *bad))
