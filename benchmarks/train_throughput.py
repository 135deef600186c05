"""Training throughput: `rig train`'s loop next to a bare PyTorch loop on the same model and batches.

    python benchmarks/train_throughput.py --data datasets/basic-reason [--size tiny] [--steps 30]

Both loops run in this process on identical weights and identical collated batches
(rig's DataLoader output, collected once): the bare loop is forward, cross-entropy,
backward, AdamW step, nothing else; rig's is the real Trainer (Accelerate, span losses,
metrics, progress, and building its samples from HDF5 as it goes) with checkpoints and
evaluation pushed past the end. The first 5 steps of each are warm-up and not counted. Prints tokens/s
of each, their ratio (target >= 0.9) and the peak memory (max RSS, and CUDA if present).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from rig_core.data.reader import Dataset
from rig_core.tokenize.sequence import SequenceBuilder
from rig_core.train.config import train_config
from rig_core.train.data import check_training_data
from rig_core.train.loop import Trainer
from rig_core.train.models import build_model
from rig_core.train.run import _accelerator, _encode, _seed_all
from rig_core.train.setup import finish_windows, prepare
from rig_core.results import write_section

out = Console()


WARMUP = 5  # steps left out of both measurements (allocator and thread-pool warm-up)
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def bare_loop(model, batches: list[dict], lr: float, mixed_precision: str = "no") -> tuple[int, float]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    tokens = 0
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        if i == WARMUP:
            tokens, start = 0, time.perf_counter()
        with torch.autocast(batch["input_ids"].device.type, dtype=AUTOCAST.get(mixed_precision),
                            enabled=mixed_precision in AUTOCAST):  # the precision rig's loop runs in
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           position_ids=batch["position_ids"]).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                 batch["labels"][:, 1:].reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens, time.perf_counter() - start


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--recipe", default="tiny")
    p.add_argument("--size", default=None)
    p.add_argument("--steps", type=int, default=30, help=f"optimizer steps (the first {5} are warm-up)")
    p.add_argument("--mixed-precision", default=None, help="no, bf16 or fp16 (default: the recipe's)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the --json results file it replaces (the others are kept)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rig-tp-") as tmp:
        run = Path(tmp) / "run"
        cfg = train_config(a.recipe, {"data": str(a.data), "out": str(run), "size": a.size, "max_steps": a.steps,
                                      "eval_every": 10**9, "save_every": 10**9,
                                      "mixed_precision": a.mixed_precision})
        _seed_all(cfg.seed)
        with Dataset(a.data) as ds:
            check_training_data(ds)
            prep = prepare(ds, cfg)
            model, tok = build_model(cfg, prep.tokenizer, ds.action_names, prep.image_tokenizer.codebook_size)
            prep.tokenizer = tok
            prep.builder = SequenceBuilder(tok, prep.image_tokenizer.tokens_per_frame, cfg.think_positions)
            finish_windows(prep, ds, cfg)
            _encode(ds, prep.image_tokenizer, run, quiet=True)
        twin = copy.deepcopy(model)
        acc, mp = _accelerator(cfg)
        trainer = Trainer(cfg, run, prep, model, acc, quiet=True)
        stream = trainer._micro_batches()
        batches = [next(stream)[2] for _ in range(a.steps * cfg.grad_accum)]
        trainer.epoch, trainer.batch = 0, 0  # replay the same batches in rig's loop
        trainer.train(save=lambda tr: None)
        steps = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [m for m in steps if m["split"] == "train"][WARMUP:]
        rig_tokens = sum(m["tokens"] for m in steps)
        rig_s = sum(m["tokens"] / m["tokens_per_s"] for m in steps)  # each step's wall time, all overheads in
        bare_tokens, bare_s = bare_loop(twin, batches, cfg.lr, mp)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    res = {"recipe": a.recipe, "size": cfg.size, "steps": a.steps, "mixed_precision": mp, "batch_size": cfg.batch_size,
           "context": cfg.context, "rig_tokens_per_s": rig_tokens / rig_s, "bare_tokens_per_s": bare_tokens / bare_s,
           "ratio": (rig_tokens / rig_s) / (bare_tokens / bare_s), "same_tokens": rig_tokens == bare_tokens,
           "peak_rss_bytes": peak_rss, "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None}
    t = Table(title=f"training throughput (same model, same batches; {mp if mp != 'no' else 'fp32'})",
              title_justify="left")
    for col in ("loop", "tokens/s", "ratio", "peak memory"):
        t.add_column(col, justify="right" if col != "loop" else "left")
    t.add_row("bare PyTorch", f"{res['bare_tokens_per_s']:,.0f}", "1.00", "")
    t.add_row("rig train", f"{res['rig_tokens_per_s']:,.0f}", f"{res['ratio']:.2f}", f"{peak_rss / 2**20:,.0f} MiB RSS")
    out.print(t)
    write_section(a.json, "benchmarks/train_throughput.py", a.section, res, sys.argv[1:] if argv is None else argv)
    return res


if __name__ == "__main__":
    main()
