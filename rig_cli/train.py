"""`rig train`: train the unified RIG model (think, act, imagine) on a reasoned dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rig_cli.common import command_line, handle_errors, print_json
from rig_core.errors import RigError
from rig_core.viz.tables import print_train_summary


@handle_errors
def train(
    stage: str = typer.Option("basic", help="basic (think, act, imagine) or lookahead (review data on a basic run)."),
    data: Optional[list[Path]] = typer.Option(
        None, "--data", metavar="PATH", help="basic: a dataset with reasoning (rig augment --stage reason); "
                                             "lookahead: a review dataset (rig augment --stage review); repeat to "
                                             "mix several."),
    init: Optional[Path] = typer.Option(None, "--init", help="[lookahead] The RIG-basic run (or checkpoint) to fine-tune."),
    finetune: Optional[str] = typer.Option(None, help="[lookahead] lora (default: an adapter on the basic model) or full."),
    basic_data: Optional[Path] = typer.Option(None, help="[lookahead] Basic data to mix in (default: the review input)."),
    mix_review: Optional[float] = typer.Option(None, help="[lookahead] Share of review samples (default 0.5)."),
    mix_align: Optional[float] = typer.Option(None, help="[lookahead] Share of imagined-vs-real alignment samples."),
    mix_basic: Optional[float] = typer.Option(None, help="[lookahead] Share of basic samples."),
    mix_relabel: Optional[float] = typer.Option(
        None, help="[lookahead] Share of relabelled (DAgger) samples: states the basic policy visited in its review "
                   "rollouts, its own steps as history, the expert's reasoning and action as targets (default 0)."),
    review_cue: Optional[bool] = typer.Option(None, "--review-cue/--no-review-cue",
                                              help="[lookahead] Write the proposed action after <review> (default on)."),
    chain_thought_loss: Optional[bool] = typer.Option(
        None, "--chain-thought-loss/--no-chain-thought-loss",
        help="[lookahead] Loss on the thoughts after imagined frames in review samples (default on)."),
    review_frames: Optional[str] = typer.Option(
        None, help="[lookahead] Frames a review sample reads: imagined (the proposer's, default), real (the fork's "
                   "true outcome) or both (each sample twice)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory, e.g. runs/basic."),
    recipe: str = typer.Option("tiny", help="Named config in recipes/ (tiny, cpu-small, gpu-lora, gpu-qlora) or a YAML file."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory exactly."),
    size: Optional[str] = typer.Option(None, help="Scratch model size: tiny, small, base."),
    base: Optional[str] = typer.Option(None, help="Local Hugging Face causal LM to start from."),
    lora: Optional[bool] = typer.Option(None, "--lora/--no-lora", help="Train LoRA adapters (peft)."),
    qlora: Optional[bool] = typer.Option(None, "--qlora/--no-qlora", help="4-bit NF4 base + LoRA (bitsandbytes)."),
    context: Optional[int] = typer.Option(None, help="Context length in tokens."),
    think_positions: Optional[int] = typer.Option(
        None, help="Position ids per think/review text (0: one per token; e.g. 64 puts each imagined frame at a "
                   "fixed offset from its observation)."),
    image_row_stride: Optional[int] = typer.Option(
        None, help="Position ids per frame row (0: one per image token; e.g. 16 tells vertical from horizontal "
                   "neighbours by offset)."),
    batch_size: Optional[int] = typer.Option(None, help="Samples per micro-batch."),
    grad_accum: Optional[int] = typer.Option(None, help="Micro-batches per optimizer step."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps."),
    warmup_steps: Optional[int] = typer.Option(None, help="Linear warm-up steps."),
    eval_every: Optional[int] = typer.Option(None, help="Held-out evaluation every N steps."),
    save_every: Optional[int] = typer.Option(None, help="Checkpoint every N steps."),
    seed: Optional[int] = typer.Option(None, help="Seed (data split, order, initialisation)."),
    codebook_size: Optional[int] = typer.Option(None, help="Image codebook entries (<= 4096)."),
    text_vocab: Optional[int] = typer.Option(None, help="BPE vocabulary of the text part (scratch models)."),
    num_workers: Optional[int] = typer.Option(None, help="DataLoader worker processes."),
    mixed_precision: Optional[str] = typer.Option(
        None, help="auto (bf16 on a GPU that has it, else fp32), no (fp32), bf16 (GPU, or a CPU with native bf16) "
                   "or fp16 (GPU)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Train RIG-basic (reasoning, action and the imagined next frame as next-token prediction), or
    RIG-lookahead on review data (--stage lookahead --init BASIC)."""
    from rig_core.train.config import train_config
    from rig_core.train.run import resume_train, run_train

    overrides = dict(stage=stage if stage != "basic" else None, size=size, base=base, lora=lora, qlora=qlora,
                     context=context, think_positions=think_positions, image_row_stride=image_row_stride,
                     batch_size=batch_size, grad_accum=grad_accum, lr=lr, max_steps=max_steps,
                     warmup_steps=warmup_steps, eval_every=eval_every, save_every=save_every, seed=seed,
                     codebook_size=codebook_size, text_vocab=text_vocab, num_workers=num_workers,
                     mixed_precision=mixed_precision, init=str(init) if init else None, finetune=finetune,
                     basic_data=str(basic_data) if basic_data else None, mix_review=mix_review,
                     mix_align=mix_align, mix_basic=mix_basic, mix_relabel=mix_relabel, review_cue=review_cue,
                     chain_thought_loss=chain_thought_loss, review_frames=review_frames)
    quiet = quiet or json_output
    if resume is not None:
        given = [k for k, v in overrides.items() if v is not None] + (["--data"] if data else []) + (["--out"] if out else [])
        if given:
            raise RigError(f"--resume continues a run exactly and takes no other options (got {', '.join(given)})",
                           f"run: rig train --resume {resume}")
        summary = resume_train(resume, quiet=quiet)
    else:
        if not data or out is None:
            raise RigError("rig train needs --data and --out (or --resume RUN)",
                           "e.g. rig train --data datasets/basic-reason --recipe tiny --out runs/tiny")
        cfg = train_config(recipe, {**overrides, "data": str(data[0]), "more_data": [str(d) for d in data[1:]],
                                    "out": str(out)})
        summary = run_train(cfg, command=command_line(), quiet=quiet)
    if json_output:
        print_json(summary)
    elif not quiet:
        print_train_summary(summary)
