"""`rig augment --stage review`: plan, resume, run workers, write a dataset of policy rollouts with review samples.

The output is a dataset (docs/data-format.md) of RIG-basic rollouts: frames, the actions taken, the
policy's own thoughts as ``reasoning``, and per visited state the ``review/*`` arrays of
``rollout.ReviewLog``. Its manifest names the input dataset (``source``), whose episodes are the
basic sequences ``rig train --stage lookahead`` mixes in. Shards are atomic; ``--resume`` continues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rig_core.collect.runner import Collection, backend_flags
from rig_core.collect.worker import serve_chunks
from rig_core.config import ReviewConfig
from rig_core.data.reader import Dataset
from rig_core.data.writer import ShardWriter
from rig_core.errors import RigError
from rig_core.tasks import load_suite

META_KEYS = ("env", "action_names", "item_names", "achievement_names", "semantic_names", "frame_shape")


def episode_tasks(ds: Dataset) -> list[str]:
    """Task ids of the input dataset's episodes, in order: the review rollouts cycle through them."""
    return [str(ref.attrs.get("task", "open")) for ref in ds.refs().values()]


class ReviewCollection(Collection):
    stages = ("review",)
    lock_name = ".review.lock"

    def check(self, cfg: ReviewConfig) -> dict[str, Any]:
        from rig_core.model.checkpoint import find_checkpoint
        from rig_core.model.load import load_tokenizers

        with Dataset(Path(cfg.data)) as ds:
            if not ds.complete:
                raise RigError(f"dataset {ds.root} is incomplete", f"finish it: rig collect --out {ds.root} --resume")
            if len(ds) == 0:
                raise RigError(f"dataset {ds.root} has no episodes", "collect some with rig collect")
            meta = {k: ds.manifest[k] for k in META_KEYS if k in ds.manifest}
            tasks = set(episode_tasks(ds))
        if Path(cfg.out).resolve() == Path(cfg.data).resolve():
            raise RigError("--out is the input dataset", "augment never edits its input: choose another --out")
        ckpt = find_checkpoint(Path(cfg.checkpoint))
        tok, _, _ = load_tokenizers(ckpt / "tokenizer")
        if list(tok.action_names) != list(meta["action_names"]):
            raise RigError(f"the checkpoint's actions do not match dataset {cfg.data}",
                           "review with a checkpoint trained on this dataset's environment")
        suite = load_suite(cfg.env)
        for task in tasks:
            suite.get(task)
        self.extra = {"source": {"data": str(Path(cfg.data).resolve()), "checkpoint": str(ckpt.resolve())},
                      "review": {"horizon": cfg.horizon, "confirm_share": cfg.confirm_share,
                                 "confirm_floor": cfg.confirm_floor, "follow": cfg.follow,
                                 "candidates": cfg.candidates}}
        return meta


def review_chunks(cfg: ReviewConfig, chunks, emit) -> None:
    """Roll out the policy over every chunk (in batches of ``cfg.batch``); each chunk becomes one shard."""
    import torch

    from rig_core.inference.policy import RigPolicy
    from rig_core.review.rollout import review_episodes

    if cfg.workers > 1:
        torch.set_num_threads(1)
    policy = RigPolicy.from_checkpoint(Path(cfg.checkpoint), seed=cfg.seed, device=cfg.device, draft=cfg.draft)
    suite = load_suite(cfg.env)
    with Dataset(Path(cfg.data)) as ds:
        tasks = episode_tasks(ds)
    root = Path(cfg.out)
    for chunk in chunks:
        writer = ShardWriter(root, chunk[0])
        try:
            for b in range(0, len(chunk), cfg.batch):
                idx = chunk[b : b + cfg.batch]
                plan = [suite.get(tasks[i % len(tasks)]) for i in idx]
                out = review_episodes(policy, plan, [cfg.seed + i for i in idx], idx, horizon=cfg.horizon,
                                      follow=cfg.follow, max_steps=cfg.max_steps, seed=cfg.seed,
                                      on_steps=lambda n: emit(("steps", n)), candidates=cfg.candidates)
                for index, (record, log) in zip(idx, out):
                    rng = np.random.default_rng([cfg.seed, index])
                    record.extra.update(log.arrays(cfg.confirm_share, rng, cfg.confirm_floor))
                    record.attrs["index"] = index
                    writer.write_episode(index, record)
                    v = np.asarray(log.verdict, np.int8).reshape(-1, cfg.horizon)
                    emit(("episode", {"index": index, "task": record.attrs["task"], "steps": record.length,
                                      "success": record.attrs.get("success", False),
                                      "corrections": int((v[:, -1] == 2).sum())}))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        emit(("shard", writer.info()))


def review_worker_main(cfg_doc: dict, chunk_queue, event_queue, parent_pid: int) -> None:
    serve_chunks(review_chunks, ReviewConfig.from_dict(cfg_doc), chunk_queue, event_queue, parent_pid)


def run_review(cfg: ReviewConfig, *, command: str = "rig augment --stage review", resume: bool = False,
               quiet: bool = False) -> dict[str, Any]:
    from rig_core.review.summary import review_summary

    col = ReviewCollection(cfg, command, resume)
    cfg = col.cfg
    _, elapsed = col.run(review_chunks, review_worker_main, "review",
                         lambda p: f"last: {p['task']} {p['corrections']} corrections",
                         f"rig augment --stage review --checkpoint {cfg.checkpoint} --data {cfg.data} "
                         f"--out {cfg.out} --resume{backend_flags(cfg)}", quiet)
    summary = review_summary(cfg.out)
    summary["elapsed_s"] = round(elapsed, 2)
    return summary
