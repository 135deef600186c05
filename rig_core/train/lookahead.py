"""The lookahead stage: a RIG-basic checkpoint fine-tuned (LoRA by default) on review + alignment + basic data.

The run keeps the basic checkpoint's tokenizers (same vocabulary); its checkpoints hold a LoRA
adapter over the basic model (``PeftModel.from_pretrained(basic, adapter)`` loads it with no rig
code) or, with ``--finetune full``, whole weights. ``rig export --merge`` folds an adapter in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig_core.data.reader import Dataset
from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json, ensure_writable_dir
from rig_core.review.texts import data_opening_tokens
from rig_core.model.run_config import TrainConfig
from rig_core.train.data import SequenceDataset, check_training_data, encode_dataset, split_episodes
from rig_core.train.lookahead_data import (ALIGN, BASIC, BLOCKED, RELABEL, REVIEW, REVIEW_REAL, VERIFY,
                                           LookaheadDataset, ReviewSource, basic_windows_items, candidate_items,
                                           check_review_data, mix, review_items)
from rig_core.model.load import init_run, load_init_model, load_tokenizers, sequence_builder
from rig_core.train.setup import Prepared, plan_windows, save_tokenizers
from rig_core.versions import versions


def build_lookahead_model(cfg: TrainConfig):
    from rig_core.model import build

    model = load_init_model(cfg)
    if cfg.finetune == "lora":
        return build.wrap_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, save_embeddings=False)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _basic_dir(cfg: TrainConfig, review: Dataset) -> str:
    if cfg.basic_data:
        return cfg.basic_data
    src = review.manifest.get("source", {}).get("data")
    if not src:
        raise RigError(f"dataset {review.root} does not name its input dataset", "pass --basic-data DIR")
    return src


def review_dirs(cfg: TrainConfig) -> list[Path]:
    """The review datasets of a lookahead run: ``--data``, then each further ``--data`` in order."""
    return [Path(d) for d in (cfg.data, *cfg.more_data)]


def _cache_names(k: int) -> tuple[str, str]:
    """Image-code caches of review dataset ``k`` (the first keeps the names of single-dataset runs)."""
    return ("image_codes.h5", "real_codes.h5") if k == 0 else (f"image_codes.{k}.h5", f"real_codes.{k}.h5")


def prepare_lookahead(cfg: TrainConfig, run: Path, tok, image_tok, meta: dict, progress=None) -> Prepared:
    """Tokenizer-dependent data of a lookahead run: image codes, the mixed item lists, the datasets.
    Each review dataset is split into training and held-out episodes on its own (same seed)."""
    builder = sequence_builder(tok, image_tok, meta)
    cache = run / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    sources: list[ReviewSource] = []
    pools = {name: {REVIEW: [], ALIGN: [], RELABEL: [], BLOCKED: [], VERIFY: []} for name in ("train", "val")}
    for k, root in enumerate(review_dirs(cfg)):
        codes, real = (cache / n for n in _cache_names(k))
        with Dataset(root) as review:
            check_review_data(review)
            if list(review.action_names) != list(tok.action_names):
                raise RigError(f"the basic checkpoint's actions do not match dataset {root}",
                               "review and train with the same environment")
            encode_dataset(review, image_tok, codes, progress=progress)
            encode_dataset(review, image_tok, real, name="review/real")
            for name, eps in zip(("train", "val"), split_episodes(review.indices(), cfg.val_fraction, cfg.seed)):
                rev, ali, rel, blo = review_items(review, eps, k, cfg.review_frames, blocked=cfg.mix_blocked > 0)
                pools[name][REVIEW] += rev
                pools[name][ALIGN] += ali
                pools[name][RELABEL] += rel
                pools[name][BLOCKED] += blo
                if cfg.mix_verify > 0:
                    pools[name][VERIFY] += candidate_items(review, eps, k)
        sources.append(ReviewSource(root, codes, real))
    with Dataset(Path(cfg.basic_data)) as basic:
        check_training_data(basic, tok.action_names)
        encode_dataset(basic, image_tok, cache / "basic_codes.h5", progress=progress)
        b_train, b_val = split_episodes(basic.indices(), cfg.val_fraction, cfg.seed)
        w_train, w_val, steps = plan_windows(basic, builder, cfg, b_train, b_val)
    pools["train"][BASIC], pools["val"][BASIC] = basic_windows_items(w_train), basic_windows_items(w_val)
    if not pools["train"][REVIEW] and cfg.mix_review > 0:
        raise RigError(f"dataset {', '.join(map(str, review_dirs(cfg)))} has no selected review samples",
                       "review more episodes (rig augment --stage review --episodes N), or pass --mix-review 0")
    if cfg.mix_blocked > 0 and not pools["train"][BLOCKED]:
        raise RigError(f"dataset {', '.join(map(str, review_dirs(cfg)))} holds no blocked moves to draw on",
                       "review with --follow policy (the policy walks into things), or pass --set mix_blocked=0")
    if cfg.mix_verify > 0 and not pools["train"][VERIFY]:
        raise RigError(f"dataset {', '.join(map(str, review_dirs(cfg)))} holds no candidate samples",
                       "make them with rig augment --stage review --candidates 4, or pass --set mix_verify=0")
    shares = {REVIEW: cfg.mix_review, ALIGN: cfg.mix_align, BASIC: cfg.mix_basic, RELABEL: cfg.mix_relabel,
              BLOCKED: cfg.mix_blocked, VERIFY: cfg.mix_verify}
    train_items = mix(pools["train"], shares, cfg.seed)
    val_items = mix(pools["val"], shares, cfg.seed + 1)
    basic_train = SequenceDataset(Path(cfg.basic_data), cache / "basic_codes.h5", builder, w_train, cfg.context)
    basic_val = SequenceDataset(Path(cfg.basic_data), cache / "basic_codes.h5", builder, w_val, cfg.context)
    p = Prepared(tok, image_tok, builder, w_train, w_val, steps)
    p.train_set = LookaheadDataset(sources, basic_train, builder, train_items, cfg.context, cfg.chain_thought_loss,
                                   image_tok.canonicalize)
    p.val_set = LookaheadDataset(sources, basic_val, builder, val_items, cfg.context, cfg.chain_thought_loss,
                                 image_tok.canonicalize)
    p.mix_counts = {k: sum(1 for it in train_items if it[0] in codes)
                    for k, codes in (("review", (REVIEW, REVIEW_REAL)), ("align", (ALIGN,)), ("basic", (BASIC,)))}
    if cfg.mix_relabel > 0:
        p.mix_counts["relabel"] = sum(1 for it in train_items if it[0] == RELABEL)
    if cfg.mix_blocked > 0:
        p.mix_counts["blocked"] = sum(1 for it in train_items if it[0] == BLOCKED)
    if cfg.mix_verify > 0:
        p.mix_counts["verify"] = sum(1 for it in train_items if it[0] == VERIFY)
    if cfg.review_frames != "imagined":
        p.mix_counts["review_real_frames"] = sum(1 for it in train_items if it[0] == REVIEW_REAL)
    return p


def review_openings(cfg: TrainConfig, tok) -> dict[str, list[int]]:
    """The verdict words of all review datasets of the run (what the policy reads P(worse) from)."""
    openings: dict[str, set[int]] = {"correct": set(), "confirm": set()}
    for root in review_dirs(cfg):
        with Dataset(root) as review:
            for kind, ids in data_opening_tokens(review, tok).items():
                openings[kind] |= set(ids)
    if openings["correct"] & openings["confirm"]:
        raise RigError(f"the review datasets {', '.join(map(str, review_dirs(cfg)))} open a correction and a "
                       "confirmation with the same token", "train on review datasets made with one review.yaml")
    return {kind: sorted(ids) for kind, ids in openings.items()}


def setup_lookahead(cfg: TrainConfig, run: Path, command: str, progress=None) -> tuple[Any, Prepared, dict]:
    """A new lookahead run: resolve the basic checkpoint, write the config, prepare data, build the model."""
    for k, root in enumerate(review_dirs(cfg)):  # every review dataset is checked before anything is written
        with Dataset(root) as review:
            check_review_data(review)
            if k == 0:
                cfg.basic_data = str(Path(_basic_dir(cfg, review)))
    _, ckpt = init_run(cfg)
    cfg.init_checkpoint = str(ckpt.resolve())
    tok, image_tok, meta = load_tokenizers(ckpt / "tokenizer")
    image_tok = image_tok.merged(cfg.merge_codes)  # the basic model knows every code already
    if meta.get("spans", "think,act,imagine") != "think,act,imagine":
        raise RigError(f"--init {cfg.init} was trained with --spans {meta['spans']}: it does not think and imagine, "
                       "so it has nothing to review", "start the lookahead stage from a RIG-basic model with every span")
    cfg.think_positions = int(meta.get("think_positions", 0))  # the sequence format is the basic run's
    cfg.image_row_stride = int(meta.get("image_row_stride", 0))
    meta = {**meta, "review_cue": bool(cfg.review_cue), "review_openings": review_openings(cfg, tok)}
    ensure_writable_dir(run, "run")
    atomic_write_json(run / "config.json", {**cfg.to_dict(), "command": command})
    atomic_write_json(run / "versions.json", versions())
    prepared = prepare_lookahead(cfg, run, tok, image_tok, meta, progress)
    save_tokenizers(run / "tokenizer", tok, image_tok, meta)
    return build_lookahead_model(cfg), prepared, meta
