"""Shared fixtures: tiny datasets made by the project itself (nothing downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COLUMNS", "160")


@pytest.fixture(scope="session")
def random_dataset(tmp_path_factory) -> Path:
    """Four short random-agent episodes over the basic tasks, in two shards."""
    from rig_core.collect.runner import run_collect
    from rig_core.config import CollectConfig

    out = tmp_path_factory.mktemp("data") / "random"
    run_collect(CollectConfig(out=str(out), agent="random", task="basic", episodes=4, seed=3,
                              max_steps=40, episodes_per_shard=2), quiet=True)
    return out


@pytest.fixture(scope="session")
def reasoned_dataset(random_dataset, tmp_path_factory) -> Path:
    """The random dataset with rule reasoning added."""
    from rig_core.annotate.augment import ReasonConfig, run_reason

    out = tmp_path_factory.mktemp("data") / "random-reason"
    run_reason(ReasonConfig(data=str(random_dataset), out=str(out)), quiet=True)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(reasoned_dataset, tmp_path_factory) -> Path:
    """A tiny RIG-basic run trained here for a few steps (enough to exercise every code path)."""
    from rig_core.train.config import train_config
    from rig_core.train.run import run_train

    out = tmp_path_factory.mktemp("runs") / "basic"
    cfg = train_config("tiny", {"data": str(reasoned_dataset), "out": str(out), "max_steps": 12, "save_every": 12,
                                "eval_every": 12, "codebook_size": 64, "text_vocab": 300})
    run_train(cfg, quiet=True)
    return out
