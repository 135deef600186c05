"""Preparing a run: tokenizers fitted on the dataset, image codes, windows, the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.tokenize.image import GridImageTokenizer, psnr
from rig_core.tokenize.sequence import SequenceBuilder, parse_spans
from rig_core.tokenize.vocab import RigTokenizer, train_text_tokenizer
from rig_core.model.run_config import TrainConfig
from rig_core.train.data import Window, make_windows, nested_subset, split_episodes


@dataclass
class Prepared:
    tokenizer: RigTokenizer
    image_tokenizer: GridImageTokenizer
    builder: SequenceBuilder
    train_windows: list[Window]
    val_windows: list[Window]
    steps_per_sample: int
    tokenizer_psnr: float | None = None
    train_set: Any = None  # set by the lookahead stage (mixed samples); None: windows of the basic data
    val_set: Any = None
    mix_counts: dict | None = None


def _evenly(indices: list[int], lengths: dict[int, int], budget: int) -> list[tuple[int, np.ndarray]]:
    """(episode, frame indices) spread evenly over episodes so that about ``budget`` frames are read."""
    total = sum(lengths[i] + 1 for i in indices) or 1
    stride = max(1, total // max(budget, 1))
    return [(i, np.arange(0, lengths[i] + 1, stride)) for i in indices]


def training_split(ds: Dataset, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(training episodes, held-out episodes): the held-out split, then the run's nested ``data_fraction`` of
    the rest (the held-out episodes are the same whatever the fraction)."""
    train_eps, val_eps = split_episodes(ds.indices(), cfg.val_fraction, cfg.seed)
    return nested_subset(train_eps, cfg.data_fraction, cfg.seed), val_eps


def fit_image_tokenizer(ds: Dataset, cfg: TrainConfig, train_eps: list[int], val_eps: list[int],
                        log=None) -> tuple[GridImageTokenizer, float | None]:
    lengths = {i: ds.episode(i).length for i in ds.indices()}
    frames = [ds.episode(i)["frames"][()][idx] for i, idx in _evenly(train_eps, lengths, cfg.fit_frames)]
    shape = tuple(ds.manifest["frame_shape"])
    tok = GridImageTokenizer.fit(frames, cfg.codebook_size, frame_shape=shape, iters=cfg.tokenizer_iters,
                                 seed=cfg.seed, log=log).merged(cfg.merge_codes)  # scored as it will encode
    held = [ds.episode(i)["frames"][()][idx] for i, idx in _evenly(val_eps, lengths, 2000)] if val_eps else []
    score = None
    if held:
        test = np.concatenate(held)
        score = psnr(test, tok.decode(tok.encode(test)))
    return tok, score


def texts_of(ds: Dataset, episodes: list[int]) -> list[str]:
    out = []
    for i in episodes:
        ep = ds.episode(i)
        out.extend(ep.texts("reasoning"))
        out.append(str(ep.attrs.get("instruction", "")))
    return out


def plan_windows(ds: Dataset, builder: SequenceBuilder, cfg: TrainConfig, train_eps: list[int],
                 val_eps: list[int]) -> tuple[list[Window], list[Window], int]:
    """How many steps fit the context (by the 95th-percentile text length) and the resulting windows."""
    sample_texts = texts_of(ds, train_eps[:50])
    lens = [len(builder.tok.text(t)) for t in sample_texts] or [0]
    prefix = max(len(builder.prefix(str(ds.episode(i).attrs.get("instruction", "")))) for i in train_eps[:50])
    per_step = builder.step_length(int(np.percentile(lens, 95)))
    steps = (cfg.context - prefix) // per_step
    if steps < 1:
        raise RigError(f"--context {cfg.context} is too short for one step (a step takes about {per_step} tokens "
                       f"plus {prefix} for the task)", f"pass --context {prefix + per_step + 16} or more")
    lengths = {i: ds.episode(i).length for i in ds.indices()}
    return (make_windows({i: lengths[i] for i in train_eps}, steps),
            make_windows({i: lengths[i] for i in val_eps}, steps), steps)


def prepare(ds: Dataset, cfg: TrainConfig, log=None) -> Prepared:
    """A new run's tokenizers: the image codebook and (from scratch) the BPE, fitted on training episodes.

    With a base model the text tokenizer comes from the base (``build_model``); the caller sets it."""
    train_eps, val_eps = training_split(ds, cfg)
    image_tok, score = fit_image_tokenizer(ds, cfg, train_eps, val_eps, log=log)
    tokenizer = None
    if cfg.model == "scratch":
        tokenizer = train_text_tokenizer(texts_of(ds, train_eps), ds.action_names, image_tok.codebook_size,
                                         vocab_size=cfg.text_vocab)
    builder = (SequenceBuilder(tokenizer, image_tok.tokens_per_frame, cfg.think_positions, cfg.image_row_stride,
                               spans=cfg.spans) if tokenizer else None)
    return Prepared(tokenizer, image_tok, builder, [], [], 0, score)


def finish_windows(prepared: Prepared, ds: Dataset, cfg: TrainConfig) -> Prepared:
    train_eps, val_eps = training_split(ds, cfg)
    prepared.train_windows, prepared.val_windows, prepared.steps_per_sample = plan_windows(
        ds, prepared.builder, cfg, train_eps, val_eps)
    return prepared


def tokenizer_meta(ds: Dataset, image_tok: GridImageTokenizer, think_positions: int = 0,
                   image_row_stride: int = 0, spans: str = "think,act,imagine") -> dict[str, Any]:
    """What the tokenizer directory records of the sequence format (a lookahead run copies it)."""
    return {"env": ds.manifest["env"], "frame_shape": ds.manifest["frame_shape"],
            "image_tokenizer": {"kind": image_tok.kind, "grid": image_tok.grid, "cell": image_tok.cell,
                                "tokens_per_frame": image_tok.tokens_per_frame},
            "think_positions": int(think_positions), "image_row_stride": int(image_row_stride),
            "spans": ",".join(parse_spans(spans))}


def save_tokenizers(directory: Path, tok: RigTokenizer, image_tok: GridImageTokenizer, meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(directory, extra=meta)
    image_tok.save(directory)
