"""The GPU recipes at full size: measured memory and speed of `gpu-lora` and `gpu-qlora` beside rig's estimate.

    python benchmarks/gpu_recipes.py --data datasets/all-reason --out runs/gpu-bench [--base PATH] [--steps 6]

Without ``--base`` it first writes a randomly initialised Llama-class base of about 1.3B parameters
(hidden 2048, 24 layers, 16 heads, 8 key-value heads, MLP 5632, a 32,000-entry word-level tokenizer) into
OUT/base: memory and speed depend on the shapes, not on the weights, so nothing is downloaded. Each recipe
then trains through `rig train` (its own process, so each peak is its own) for ``--steps`` optimizer
steps, and the trained adapter plays through `rig evaluate --device cuda` (``--play-episodes`` per basic
task). Prints one row per recipe: parameters, trainable, tokens per optimizer step, training tokens/s
(steps after the first two), the estimate `rig train` printed, the measured peak (torch's
max_memory_allocated) and the play rate; OUT/gpu_recipes.json holds every figure (with --update also the section
--section of benchmarks/results/gpu_recipes.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig_core.results import publish

out = Console()
RESULTS = Path(__file__).parent / "results" / "gpu_recipes.json"

LLAMA_1B3 = dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8,
                 intermediate_size=5632, max_position_embeddings=4096, tie_word_embeddings=False)
VOCAB = 32000


def make_base(path: Path, vocab: int = VOCAB) -> int:
    """A random Llama-class base and a word-level tokenizer of ``vocab`` entries, saved in bf16; its size."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = {"<unk>": 0, "<s>": 1, "</s>": 2}
    words.update({f"w{i}": i for i in range(3, vocab)})
    t = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, bos_token_id=1, eos_token_id=2, **LLAMA_1B3))
    model.to(torch.bfloat16).save_pretrained(path)
    tok.save_pretrained(path)
    n = sum(p.numel() for p in model.parameters())
    del model
    return n


class Failed(Exception):
    """A rig command that exited with an error (its output tail is the message)."""


def _rig(*args: str) -> dict:
    cmd = [sys.executable, "-m", "rig_cli.main", *args, "--json", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if r.returncode != 0:
        raise Failed(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}{r.stdout[-2000:]}")
    return json.loads(r.stdout)


def train_rate(run: Path, skip: int = 2) -> tuple[float | None, float | None, int | None]:
    """(tokens/s over the steps after the first ``skip``, the largest GPU peak logged, tokens per step)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train"]
    timed = train[skip:] or train
    secs = sum(r["tokens"] / r["tokens_per_s"] for r in timed if r["tokens_per_s"])
    rate = sum(r["tokens"] for r in timed) / secs if secs else None
    peaks = [r["gpu_peak_gib"] for r in train if "gpu_peak_gib" in r]
    return rate, (max(peaks) if peaks else None), (timed[-1]["tokens"] if timed else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a reasoned dataset (rig augment --stage reason)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=None, help="a local Hugging Face causal LM (default: a random 1.3B Llama)")
    ap.add_argument("--recipes", default="gpu-lora,gpu-qlora")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per recipe")
    ap.add_argument("--play-episodes", type=int, default=1, help="episodes per basic task played (0: none)")
    ap.add_argument("--play-steps", type=int, default=10)
    ap.add_argument("--device", default="auto", help="where the trained adapter plays (rig evaluate --device)")
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE for every recipe (rig train --set)")
    ap.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                    "of the results file it writes")
    ap.add_argument("--update", action="store_true", help=f"also write the section of {RESULTS}")
    args = ap.parse_args()
    save = lambda: publish(doc, "benchmarks/gpu_recipes.py", args.section, sys.argv[1:],  # noqa: E731
                           root / "gpu_recipes.json", RESULTS if args.update else None)
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    doc: dict = {"steps": args.steps, "rows": []}
    base = Path(args.base) if args.base else root / "base"
    if not args.base and not (base / "config.json").exists():
        t0 = time.perf_counter()
        doc["base_parameters"] = make_base(base)
        doc["base_seconds"] = round(time.perf_counter() - t0, 1)
    doc["base"] = str(base)
    for recipe in [r for r in args.recipes.split(",") if r]:
        run = root / recipe
        sets = [x for s in [f"eval_every={10**9}", f"save_every={10**9}", *args.set] for x in ("--set", s)]
        t0 = time.perf_counter()
        try:
            summary = _rig("train", "--data", args.data, "--recipe", recipe, "--base", str(base), "--out", str(run),
                           "--max-steps", str(args.steps), *sets)
        except Failed as exc:
            out.print(str(exc), markup=False)
            doc["rows"].append({"recipe": recipe, "error": str(exc)[-2000:]})
            save()
            continue
        wall = time.perf_counter() - t0
        rate, peak, per_step = train_rate(run)
        cfg = json.loads((run / "config.json").read_text())
        row = {"recipe": recipe, "context": cfg.get("context"), "batch_size": cfg.get("batch_size"),
               "grad_accum": cfg.get("grad_accum"), "tokens_per_step": per_step, "train_tokens_per_s": rate,
               "estimate_gib": summary.get("memory_estimate_gib"), "peak_gib": summary.get("gpu_peak_gib", peak),
               "train_wall_s": round(wall, 1), "train_loss": summary.get("train_loss")}
        if args.play_episodes:
            try:
                ev = _rig("evaluate", "--checkpoint", str(run), "--suite", "basic", "--episodes", str(args.play_episodes),
                          "--max-steps", str(args.play_steps), "--batch", "8", "--device", args.device,
                          "--imagination-episodes", "1", "--gifs", "0", "--out", str(root / f"eval-{recipe}"))
            except Failed as exc:
                out.print(str(exc), markup=False)
                ev = {"sweep": [{"overall": {}}], "error": str(exc)[-2000:]}
                row["play_error"] = ev["error"]
            sweep = ev["sweep"][0]
            horizons = ev.get("imagination", {}).get("horizons") or [{}]
            row.update(play_actions_per_s=sweep.get("actions_per_s"), play_success=sweep["overall"].get("rate"),
                       play_device=ev.get("device"), imagination_psnr_1step=horizons[0].get("psnr_model"))
        doc["rows"].append(row)
        save()
    tab = Table(title=f"GPU recipes, {args.steps} optimizer steps each")
    for c in ("recipe", "context x batch x accum", "tokens/step", "train tok/s", "estimate GiB", "peak GiB",
              "play actions/s"):
        tab.add_column(c, justify="right")
    f = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    for r in doc["rows"]:
        if "error" in r:
            tab.add_row(r["recipe"], "failed", *["" for _ in range(5)])
            continue
        tab.add_row(r["recipe"], f"{r['context']} x {r['batch_size']} x {r['grad_accum']}",
                    f(r["tokens_per_step"], ","), f(r["train_tokens_per_s"], ",.0f"), f(r["estimate_gib"], ".1f"),
                    f(r["peak_gib"], ".1f"), f(r.get("play_actions_per_s"), ".1f"))
    out.print(tab)
    out.print(f"wrote {root / 'gpu_recipes.json'}" + (f" and the section '{args.section}' of {RESULTS}"
                                                      if args.update else ""))


if __name__ == "__main__":
    main()
