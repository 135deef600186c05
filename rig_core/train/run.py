"""Starting and resuming runs: the run directory of docs/model.md."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.model.build import quiet_transformers
from rig_core.fsutil import atomic_write_json, atomic_write_text, ensure_writable_dir
from rig_core.tokenize.sequence import SequenceBuilder
from rig_core.model.run_config import TrainConfig, load_run_config
from rig_core.train.data import check_training_data, encode_dataset
from rig_core.train.distributed import Sync
from rig_core.train.loop import Trainer
from rig_core.model.load import init_run, load_init_model, load_tokenizers, load_trained, sequence_builder
from rig_core.train.models import build_model, memory_report
from rig_core.train.setup import Prepared, finish_windows, prepare, save_tokenizers, tokenizer_meta
from rig_core.ui import console, progress
from rig_core.versions import versions


def _accelerator(cfg: TrainConfig):
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    if not cuda and mp == "fp16":
        raise RigError("--mixed-precision fp16 needs a GPU", "use bf16 or no (fp32) on the CPU")
    if not cuda and mp == "bf16" and not cpu_bf16_supported():
        raise RigError("--mixed-precision bf16: this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX)",
                       "use --mixed-precision no (fp32) on it")
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state.get("_mixed_precision") not in (None, mp):
        # Accelerate keeps one precision per process; a later run in the same process (a notebook, a test,
        # a benchmark) that asks for another one starts it afresh. The process (distributed) state is kept.
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mp, cpu=not cuda), mp


def cpu_bf16_supported() -> bool:
    """Whether this CPU computes in bf16 natively (oneDNN's check: AVX512-BF16 or AMX), where bf16 autocast
    is faster than fp32 instead of emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _seed_all(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _saver(ds_meta: dict, image_tok):
    from rig_core.model.checkpoint import save_checkpoint

    def save(tr: Trainer, best: bool = False) -> None:
        if not tr.acc.is_main_process:
            return
        state = {"optimizer": tr.optimizer.state_dict(), "scheduler": tr.scheduler.state_dict(),
                 "position": tr.position(), "config": tr.cfg.to_dict()}
        save_checkpoint(tr.run, tr.step, tr.acc.unwrap_model(tr.model),
                        lambda d: save_tokenizers(d, tr.p.tokenizer, image_tok, ds_meta), state,
                        keep_last=tr.cfg.keep_checkpoints, best=best)

    return save


def _print_plan(cfg: TrainConfig, mem: dict[str, Any], prepared, mp: str, quiet: bool, processes: int = 1) -> None:
    if quiet:
        return
    gb = 1024**3
    console.print(
        f"[bold]model[/] {mem['parameters'] / 1e6:.2f}M parameters ({mem['trainable'] / 1e6:.2f}M trainable), "
        f"precision {'fp32' if mp == 'no' else mp}; [bold]memory estimate[/] {mem['total_bytes'] / gb:.2f} GiB "
        f"{'per process ' if processes > 1 else ''}"
        f"(weights {mem['weights_bytes'] / gb:.2f}, optimizer {mem['optimizer_bytes'] / gb:.2f}, "
        f"activations {mem['activations_bytes'] / gb:.2f})")
    if prepared.mix_counts is not None:
        console.print(f"[bold]data[/] {len(prepared.train_set)} training samples per epoch ("
                      + ", ".join(f"{k} {v}" for k, v in prepared.mix_counts.items())
                      + f"), {len(prepared.val_set)} held out; vocabulary {prepared.tokenizer.vocab_size}")
        return
    console.print(f"[bold]data[/] {len(prepared.train_windows)} training samples of up to "
                  f"{prepared.steps_per_sample} steps, {len(prepared.val_windows)} held out; "
                  f"vocabulary {prepared.tokenizer.vocab_size}")


def run_train(cfg: TrainConfig, *, command: str = "rig train", quiet: bool = False) -> dict[str, Any] | None:
    """Train a new run. Under several processes (accelerate launch) the first sets the run up while the
    others wait, then each builds the same model and data plan from what it wrote; only the first writes
    checkpoints and metrics and returns the summary (the others return None)."""
    cfg.validate()
    quiet_transformers()
    run = Path(cfg.out)
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise RigError(f"run directory {run} already exists", f"continue it with: rig train --resume {run}, "
                       "or choose another --out")
    acc, mp = _accelerator(cfg)  # a precision this machine cannot do stops before anything is written
    sync = Sync(acc)
    sync.barrier()  # every process has looked at the run directory before the first one writes it
    if sync.main:
        created = not run.exists()
        try:
            model, prepared, meta, start = _new_run(cfg, run, command, quiet)
        except BaseException:
            if created:  # a run that failed while being set up leaves nothing behind
                shutil.rmtree(run, ignore_errors=True)
            sync.barrier()
            raise
        sync.barrier()
        per_device = dataclasses.replace(cfg, batch_size=-(-cfg.batch_size // sync.world))  # each its share
    else:
        sync.barrier()
        cfg, model, prepared, meta, start = _replica(run)
    trainer = Trainer(cfg, run, prepared, model, acc, quiet)  # sets the training dtypes the estimate counts
    if sync.main:
        mem = memory_report(model, per_device, mp)
        _print_plan(cfg, mem, prepared, mp, quiet, sync.world)
    result = trainer.train(_saver(meta, prepared.image_tokenizer))
    sync.close()
    if not sync.main:
        return None
    return {**_summary(run, cfg, result, time.perf_counter() - start, prepared, mp, sync.world),
            "memory_estimate_gib": round(mem["total_bytes"] / 2**30, 3)}


def _replica(run: Path):
    """What a process other than the first trains with: the run's config and tokenizers as the first one
    wrote them, the same data plan, and a model of the same shape (its weights are replaced by the first
    process's when Accelerate wraps it for data parallelism)."""
    if not (run / "config.json").exists() or not (run / "tokenizer").exists():
        raise RigError(f"the first process could not set up {run}", "see its error above")
    start = time.perf_counter()
    cfg = load_run_config(run)
    tok, image_tok, meta = load_tokenizers(run / "tokenizer")
    _seed_all(cfg.seed)
    if cfg.stage == "lookahead":
        from rig_core.train.lookahead import build_lookahead_model, prepare_lookahead

        return cfg, build_lookahead_model(cfg), prepare_lookahead(cfg, run, tok, image_tok, meta), meta, start
    with Dataset(Path(cfg.data)) as ds:
        prepared = _planned(ds, cfg, tok, image_tok, meta)
        model = _init_model(cfg) if cfg.init else build_model(cfg, tok, ds.action_names, image_tok.codebook_size)[0]
    return cfg, model, prepared, meta, start


def _planned(ds: Dataset, cfg: TrainConfig, tok, image_tok, meta: dict) -> Prepared:
    """A basic run's data plan from its saved tokenizers (the windows are a pure function of the config)."""
    prepared = Prepared(tok, image_tok, sequence_builder(tok, image_tok, meta), [], [], 0)
    finish_windows(prepared, ds, cfg)
    return prepared


def _init_model(cfg: TrainConfig):
    """The weights ``--init`` names, every parameter trainable."""
    model = load_init_model(cfg)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _new_run(cfg: TrainConfig, run: Path, command: str, quiet: bool):
    if cfg.stage == "lookahead":
        from rig_core.train.lookahead import setup_lookahead

        _seed_all(cfg.seed)
        start = time.perf_counter()
        model, prepared, meta = setup_lookahead(cfg, run, command)
        return model, prepared, meta, start
    with Dataset(Path(cfg.data)) as ds:
        return _setup(ds, cfg, run, command, quiet)


def _setup(ds: Dataset, cfg: TrainConfig, run: Path, command: str, quiet: bool):
    if cfg.init:
        return _setup_from_init(ds, cfg, run, command, quiet)
    check_training_data(ds)
    ensure_writable_dir(run, "run")
    _seed_all(cfg.seed)
    atomic_write_json(run / "config.json", {**cfg.to_dict(), "command": command})
    atomic_write_json(run / "versions.json", versions())
    start = time.perf_counter()
    prepared = prepare(ds, cfg)
    model, tok = build_model(cfg, prepared.tokenizer, ds.action_names, prepared.image_tokenizer.codebook_size)
    prepared.tokenizer = tok
    prepared.builder = SequenceBuilder(tok, prepared.image_tokenizer.tokens_per_frame, cfg.think_positions,
                                       cfg.image_row_stride, spans=cfg.spans)
    finish_windows(prepared, ds, cfg)
    meta = tokenizer_meta(ds, prepared.image_tokenizer, cfg.think_positions, cfg.image_row_stride, cfg.spans)
    save_tokenizers(run / "tokenizer", tok, prepared.image_tokenizer, meta)
    _encode(ds, prepared.image_tokenizer, run, quiet)
    atomic_write_json(run / "tokenizer_report.json",
                      {"psnr_db_heldout": prepared.tokenizer_psnr, "codebook_size": prepared.image_tokenizer.codebook_size})
    return model, prepared, meta, start


# What a basic run started from other weights takes from them: the model and the sequence format.
INHERITED = ("model", "size", "base", "think_positions", "image_row_stride", "codebook_size", "text_vocab", "spans")


def _setup_from_init(ds: Dataset, cfg: TrainConfig, run: Path, command: str, quiet: bool):
    """A basic run that continues from a trained model's weights and tokenizers (``--init``: a run, a
    checkpoint or a shipped model) on this dataset, with a fresh optimizer and schedule."""
    init_cfg, ckpt = init_run(cfg)
    if init_cfg.stage != "basic" or init_cfg.lora or init_cfg.qlora:
        raise RigError(f"--init {cfg.init} is a {init_cfg.stage} run{' with LoRA' if init_cfg.lora or init_cfg.qlora else ''}; "
                       "a basic run continues from full RIG-basic weights",
                       "pass a basic run trained without LoRA (or rig export --merge it first)")
    tok, image_tok, meta = load_tokenizers(ckpt / "tokenizer")
    image_tok = image_tok.merged(cfg.merge_codes)
    check_training_data(ds, tok.action_names)
    if list(meta.get("frame_shape", ds.manifest["frame_shape"])) != list(ds.manifest["frame_shape"]):
        raise RigError(f"dataset {ds.root} has frames of another shape than --init {cfg.init} was trained on",
                       "collect the data with the same environment settings")
    cfg.init_checkpoint = str(ckpt.resolve())
    for name in INHERITED:
        setattr(cfg, name, getattr(init_cfg, name))
    ensure_writable_dir(run, "run")
    _seed_all(cfg.seed)
    atomic_write_json(run / "config.json", {**cfg.to_dict(), "command": command})
    atomic_write_json(run / "versions.json", versions())
    start = time.perf_counter()
    prepared = _planned(ds, cfg, tok, image_tok, meta)
    save_tokenizers(run / "tokenizer", tok, image_tok, meta)
    _encode(ds, image_tok, run, quiet)
    return _init_model(cfg), prepared, meta, start


def _encode(ds: Dataset, image_tok, run: Path, quiet: bool) -> None:
    frames = sum(ds.episode(i).length + 1 for i in ds.indices())
    with progress("encode frames", frames, quiet=quiet, rate_field="frames", rate_unit="frames/s") as rep:
        def step(n):
            rep.advance(n)
            rep.add("frames", n)

        encode_dataset(ds, image_tok, run / "cache" / "image_codes.h5", progress=step)


def resume_train(run_dir: Path, *, quiet: bool = False) -> dict[str, Any]:
    from rig_core.model.checkpoint import (clean_partial, load_checkpoint, restore_optimizer, restore_rng,
                                           restore_scheduler)

    quiet_transformers()
    run = Path(run_dir)
    cfg = load_run_config(run)
    acc, mp = _accelerator(cfg)
    sync = Sync(acc)
    if sync.main:
        clean_partial(run)
    sync.barrier()
    ckpt = load_checkpoint(run)
    tok, image_tok, meta = load_tokenizers(ckpt["tokenizer_dir"])
    start = time.perf_counter()
    if cfg.stage == "lookahead":
        from rig_core.train.lookahead import prepare_lookahead

        prepared = prepare_lookahead(cfg, run, tok, image_tok, meta)
    else:
        with Dataset(Path(cfg.data)) as ds:
            check_training_data(ds, tok.action_names)
            prepared = _planned(ds, cfg, tok, image_tok, meta)
            if sync.main:
                _encode(ds, image_tok, run, quiet)
            sync.barrier()
    model = load_trained(cfg, ckpt["model_dir"], trainable=True)
    trainer = Trainer(cfg, run, prepared, model, acc, quiet)
    state = ckpt["state"]
    restore_optimizer(trainer.optimizer, state)
    restore_scheduler(trainer.scheduler, state)
    trainer.set_position(state["position"])
    restore_rng(state)
    if sync.main:
        _truncate_metrics(run / "metrics.jsonl", trainer.step)
    if not quiet and sync.main:
        console.print(f"resuming {run} at step {trainer.step} of {cfg.max_steps}")
    result = trainer.train(_saver(meta, image_tok))
    sync.close()
    if not sync.main:
        return None
    return _summary(run, cfg, result, time.perf_counter() - start, prepared, mp, sync.world)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics logged after the checkpoint a resumed run continues from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    atomic_write_text(path, "".join(ln + "\n" for ln in keep))


def _summary(run: Path, cfg: TrainConfig, result: dict, elapsed: float, prepared, mp: str,
             processes: int = 1) -> dict[str, Any]:
    extra = {"mix": prepared.mix_counts} if prepared.mix_counts is not None else {}
    return {**extra, "run": str(run), "stage": cfg.stage, "precision": "fp32" if mp == "no" else mp,
            "processes": processes, "steps": result["step"], "train_loss": result["train_loss"],
            "val": result["val"], "tokens_seen": result["tokens_seen"], "elapsed_s": round(elapsed, 2),
            "tokenizer_psnr_db": prepared.tokenizer_psnr, "checkpoint": str(run / "checkpoints" / "last"),
            **({"gpu_peak_gib": round(result["gpu_peak_gib"], 3)} if result.get("gpu_peak_gib") is not None else {}),
            **_best_summary(run, cfg, result)}


def _best_summary(run: Path, cfg: TrainConfig, result: dict) -> dict[str, Any]:
    """With keep_best: the best held-out figure, its step and checkpoint, and whether patience stopped the run."""
    if not cfg.keep_best or not result.get("best"):
        return {}
    return {"best": {"metric": cfg.keep_best, **result["best"], "checkpoint": str(run / "checkpoints" / "best")},
            "stopped_early": result["stopped_early"]}
