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
    init: Optional[str] = typer.Option(None, "--init", help="Start from these weights: a run, a checkpoint or a shipped model (rig models). basic: continue training on --data; lookahead: the RIG-basic model to fine-tune."),
    finetune: Optional[str] = typer.Option(None, help="[lookahead] lora (default: an adapter on the basic model) or full."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory, e.g. runs/basic."),
    recipe: str = typer.Option("tiny", help="A shipped recipe (tiny, cpu-2m, cpu-15m, gpu-lora, gpu-qlora) or a YAML file."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory exactly."),
    size: Optional[str] = typer.Option(None, help="Scratch model size: tiny, mini, small, base."),
    base: Optional[str] = typer.Option(None, help="Local Hugging Face causal LM to start from."),
    lora: Optional[bool] = typer.Option(None, "--lora/--no-lora", help="Train LoRA adapters (peft)."),
    qlora: Optional[bool] = typer.Option(None, "--qlora/--no-qlora", help="4-bit NF4 base + LoRA (bitsandbytes)."),
    spans: Optional[str] = typer.Option(None, help="What each step holds and learns: act (behaviour cloning), "
                                        "think,act, act,imagine or think,act,imagine (RIG-basic, the default). "
                                        "Omitted spans are absent from the sequence."),
    context: Optional[int] = typer.Option(None, help="Context length in tokens."),
    batch_size: Optional[int] = typer.Option(None, help="Samples per micro-batch."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps."),
    eval_every: Optional[int] = typer.Option(None, help="Held-out evaluation every N steps."),
    save_every: Optional[int] = typer.Option(None, help="Checkpoint every N steps."),
    seed: Optional[int] = typer.Option(None, help="Seed (data split, order, initialisation)."),
    mixed_precision: Optional[str] = typer.Option(
        None, help="auto (bf16 on a GPU that has it, else fp32), no (fp32), bf16 (GPU, or a CPU with native bf16) "
                   "or fp16 (GPU)."),
    set_: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Set any recipe field, e.g. --set mix_review=0.3 --set "
        "think_positions=64 (repeatable; the fields are listed in docs/cli.md)."),
    processes: int = typer.Option(1, "--processes", help="Data-parallel processes on this machine (accelerate "
                                  "launch: one per GPU, or CPU processes over gloo); the batch is the global batch."),
    threads: Optional[int] = typer.Option(None, "--threads", help="With --processes: CPU threads per process "
                                          "(default: the cores shared out evenly)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Train RIG-basic (reasoning, action and the imagined next frame as next-token prediction), or
    RIG-lookahead on review data (--stage lookahead --init BASIC)."""
    from rig_core.train.config import parse_sets, train_config
    from rig_core.train.run import resume_train, run_train

    if processes != 1:
        import sys

        from rig_core.train.launch import launch

        raise typer.Exit(code=launch(processes, sys.argv, threads))

    overrides = dict(stage=stage if stage != "basic" else None, spans=spans, size=size, base=base, lora=lora, qlora=qlora,
                     context=context, batch_size=batch_size, lr=lr, max_steps=max_steps, eval_every=eval_every,
                     save_every=save_every, seed=seed, mixed_precision=mixed_precision,
                     init=str(init) if init else None, finetune=finetune)
    overrides.update(parse_sets(set_ or [], given=overrides))
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
    if summary is None:  # a process other than the first of a data-parallel run: the first one reports
        return
    if json_output:
        print_json(summary)
    elif not quiet:
        print_train_summary(summary)
