"""`rig train`: the training loop on Accelerate, with held-out evaluation, checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig_core.model.build import training_dtypes
from rig_core.model.run_config import TrainConfig
from rig_core.train.data import SequenceDataset, batches, batches_per_epoch, collate
from rig_core.train.distributed import Sync, share
from rig_core.tokenize.sequence import SPAN_NAMES
from rig_core.train.losses import action_accuracy, token_losses
from rig_core.train.setup import Prepared
from rig_core.ui import progress

SPANS = sorted(SPAN_NAMES.values())  # every span's loss is summed over processes in this order


def lr_lambda(warmup: int, total: int):
    """Linear warm-up, then cosine decay to 10% of the peak."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    return f


def _add_spans(parts: dict[str, list[float]], spans: dict[str, tuple[float, int]]) -> None:
    """Accumulate per-span (loss sum, token count) pairs."""
    for k, (total, count) in spans.items():
        acc = parts.setdefault(k, [0.0, 0])
        acc[0] += total
        acc[1] += count


def _span_means(parts: dict[str, list[float]]) -> dict[str, float]:
    return {f"loss_{k}": total / count for k, (total, count) in parts.items()}


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, prepared: Prepared, model, accelerator, quiet: bool):
        self.cfg, self.run, self.p, self.quiet = cfg, Path(run_dir), prepared, quiet
        self.acc = accelerator
        self.sync = Sync(accelerator)
        self.model = model
        training_dtypes(model, autocast=accelerator.mixed_precision in ("bf16", "fp16"))
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                                           betas=(0.9, 0.95), eps=1e-8)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg.warmup_steps, cfg.max_steps))
        self.model, self.optimizer = self.acc.prepare(self.model, self.optimizer)
        codes = self.run / "cache" / "image_codes.h5"
        self.train_set = prepared.train_set if prepared.train_set is not None else SequenceDataset(Path(cfg.data), codes, prepared.builder,
                                                               prepared.train_windows, cfg.context)
        self.val_set = prepared.val_set if prepared.val_set is not None else SequenceDataset(Path(cfg.data), codes, prepared.builder,
                                                           prepared.val_windows, cfg.context)
        self.action_ids = torch.as_tensor(prepared.tokenizer.action_ids, device=self.acc.device)
        self.step, self.epoch, self.batch, self.tokens_seen = 0, 0, 0, 0
        self.best: dict[str, Any] | None = None  # with keep_best: {"step", "value"} of the lowest held-out figure
        self.stale = 0  # held-out evaluations since the best
        self.gpu_peak: float | None = None  # GiB, on a GPU: the most this process held while training

    # -- data -------------------------------------------------------------------------
    def _loader(self, dataset, index_lists):
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=index_lists, num_workers=self.cfg.num_workers,
            collate_fn=lambda s: collate(s, self.p.tokenizer.pad_id), persistent_workers=False)

    def _micro_batches(self):
        """Batches from the saved position on, epoch after epoch; yields (epoch, next batch index, batch)."""
        n = len(self.train_set)
        while True:
            plan = list(batches(n, self.cfg.batch_size, self.cfg.seed, self.epoch, self.batch,
                                self.acc.process_index, self.acc.num_processes))
            for (b, _), batch in zip(plan, self._loader(self.train_set, [idx for _, idx in plan])):
                yield self.epoch, b + 1, batch
            self.epoch, self.batch = self.epoch + 1, 0

    def _forward(self, batch: dict[str, torch.Tensor]):
        """Logits of a batch and its mean token loss (with the token count and per-span sums)."""
        with self.acc.autocast():
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                position_ids=batch["position_ids"]).logits
        return (logits, *token_losses(logits, batch["labels"], batch["spans"]))

    # -- evaluation -------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        if not len(self.val_set):
            return {}
        self.model.eval()
        total = count = 0.0
        parts: dict[str, list[float]] = {}
        correct = acts = 0
        picked = eval_indices(len(self.val_set), self.cfg.eval_samples)
        order = [picked[i:i + self.cfg.batch_size] for i in range(0, len(picked), self.cfg.batch_size)]
        for batch in self._loader(self.val_set, share(order, self.sync)):  # each process its share of batches
            batch = {k: v.to(self.acc.device) for k, v in batch.items()}
            logits, loss, n, sp = self._forward(batch)
            total += float(loss) * n
            count += n
            _add_spans(parts, sp)
            c_, a_ = action_accuracy(logits, batch["labels"], self.action_ids)
            correct, acts = correct + c_, acts + a_
        (total, count, correct, acts), parts = self.sync.sum_with_parts([total, count, correct, acts], parts,
                                                                        SPANS)
        self.model.train()
        out = {"split": "val", "step": self.step, "loss": total / max(count, 1), "samples": len(picked)}
        out.update(_span_means(parts))
        out["action_acc"] = correct / acts if acts else None
        return out

    # -- the loop ---------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        if self.acc.is_main_process:
            with open(self.run / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def train(self, save) -> dict[str, Any]:
        cfg = self.cfg
        self.model.train()
        stream = self._micro_batches()
        last_eval: dict[str, Any] = {}
        rec: dict[str, Any] | None = None  # stays None when a resumed run has no step left
        with progress("train", cfg.max_steps, done=self.step, quiet=self.quiet or not self.acc.is_main_process,
                      rate_field="tokens", rate_unit="tok/s") as rep:
            while self.step < cfg.max_steps and not self.stopped_early:
                t0 = time.perf_counter()
                data_s = compute_s = 0.0
                loss_sum = tokens = 0
                parts: dict[str, list[float]] = {}
                for _ in range(cfg.grad_accum):
                    td = time.perf_counter()
                    epoch, next_batch, batch = next(stream)
                    batch = {k: v.to(self.acc.device) for k, v in batch.items()}
                    tc = time.perf_counter()
                    data_s += tc - td
                    _, loss, n, sp = self._forward(batch)
                    self.acc.backward(loss * self.sync.loss_scale(n) / cfg.grad_accum)
                    compute_s += time.perf_counter() - tc
                    loss_sum += float(loss.detach()) * n
                    tokens += int(batch["attention_mask"].sum())
                    _add_spans(parts, sp)
                    self.epoch, self.batch = epoch, next_batch
                tc = time.perf_counter()
                if cfg.max_grad_norm:
                    self.acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                compute_s += time.perf_counter() - tc
                self.step += 1
                (tokens, loss_sum), parts = self.sync.sum_with_parts([tokens, loss_sum], parts, SPANS)
                tokens = int(tokens)
                self.tokens_seen += tokens
                n_lab = sum(c for _, c in parts.values()) or 1
                rec = {"split": "train", "step": self.step, "epoch": self.epoch,
                       "loss": loss_sum / n_lab, "lr": self.scheduler.get_last_lr()[0], "tokens": tokens,
                       "tokens_per_s": tokens / max(time.perf_counter() - t0, 1e-9),
                       "data_s": data_s, "compute_s": compute_s}
                rec.update(_span_means(parts))
                if self.acc.device.type == "cuda":  # the most this process has held on its GPU so far
                    rec["gpu_peak_gib"] = self.gpu_peak = torch.cuda.max_memory_allocated(self.acc.device) / 2**30
                self.log(rec)
                rep.add("tokens", tokens)
                rep.advance(1)
                rep.note(f"loss {rec['loss']:.3f}  data {data_s:.2f}s / compute {compute_s:.2f}s")
                improved = False
                if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps:
                    last_eval = self.evaluate()
                    if last_eval:
                        self.log(last_eval)
                        improved = self._track_best(last_eval)
                if (improved or self.stopped_early or self.step % cfg.save_every == 0
                        or self.step == cfg.max_steps):
                    save(self, best=improved)
        return {"step": self.step, "train_loss": rec["loss"] if rec else None, "val": last_eval,
                "tokens_seen": self.tokens_seen, "best": self.best, "stopped_early": self.stopped_early,
                "gpu_peak_gib": self.gpu_peak}

    # -- the best checkpoint (keep_best, patience) --------------------------------------
    @property
    def stopped_early(self) -> bool:
        return bool(self.cfg.patience) and self.stale >= self.cfg.patience

    def _track_best(self, record: dict[str, Any]) -> bool:
        """Whether this held-out evaluation set a new best of ``keep_best`` (its checkpoint is then kept)."""
        value = record.get(self.cfg.keep_best) if self.cfg.keep_best else None
        if value is None:
            return False
        if self.best is None or value < self.best["value"]:
            self.best, self.stale = {"step": self.step, "value": value}, 0
            return True
        self.stale += 1
        if self.stopped_early:
            self.log({"split": "early_stop", "step": self.step, "best_step": self.best["step"],
                      self.cfg.keep_best: self.best["value"]})
        return False

    # -- state ------------------------------------------------------------------------
    def position(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batch": self.batch, "tokens_seen": self.tokens_seen,
                "best": self.best, "stale": self.stale}

    def set_position(self, pos: dict[str, Any]) -> None:
        self.step, self.epoch, self.batch = int(pos["step"]), int(pos["epoch"]), int(pos["batch"])
        self.tokens_seen = int(pos.get("tokens_seen", 0))
        self.best, self.stale = pos.get("best"), int(pos.get("stale", 0))
        if self.batch >= batches_per_epoch(len(self.train_set), self.cfg.batch_size):
            self.epoch, self.batch = self.epoch + 1, 0


def eval_indices(n: int, limit: int) -> list[int]:
    """The held-out samples an evaluation scores: all ``n``, or ``limit`` of them spread evenly over the set
    (the same ones every time, so successive evaluations compare)."""
    if limit <= 0 or limit >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, limit)})
