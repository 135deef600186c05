"""The training configuration: recipe defaults, then command-line overrides; saved as config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

import rig_core
from rig_core.errors import RigError

RECIPE_DIRS = (Path(rig_core.__file__).resolve().parents[1] / "recipes",)


REVIEW_FRAMES = ("imagined", "real", "both")


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    stage: str = "basic"
    recipe: str = "tiny"
    model: str = "scratch"  # scratch | base
    size: str = "tiny"
    base: str | None = None  # local path of a Hugging Face causal LM
    lora: bool = False
    qlora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    context: int = 640
    think_positions: int = 0  # position ids reserved per think/review text (0: one per token); see tokenize/positions.py
    image_row_stride: int = 0  # position ids per frame row (0: one per image token); see tokenize/positions.py
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 10
    max_steps: int = 60
    eval_every: int = 30
    save_every: int = 30
    keep_checkpoints: int = 3
    seed: int = 0
    codebook_size: int = 256
    text_vocab: int = 384
    tokenizer_iters: int = 6
    fit_frames: int = 20000
    val_fraction: float = 0.1
    num_workers: int = 0
    mixed_precision: str = "auto"  # auto | no | bf16 | fp16
    max_grad_norm: float = 1.0
    # -- lookahead stage: fine-tune a basic checkpoint on review data --------------------------------
    init: str | None = None  # the RIG-basic run (or checkpoint) to start from
    init_checkpoint: str | None = None  # the exact checkpoint directory it resolved to (set when the run starts)
    finetune: str = "lora"  # lora | full
    more_data: list[str] = field(default_factory=list)  # further review datasets (--data given again), mixed in
    basic_data: str | None = None  # basic sequences to mix in (default: the first review dataset's input)
    mix_review: float = 0.5  # shares of review, alignment and basic samples in an epoch
    mix_align: float = 0.25
    mix_basic: float = 0.25
    mix_relabel: float = 0.0  # share of relabelled (DAgger) samples: visited states, expert thought and action
    review_cue: bool = True  # the system writes the proposed action after <review> (recorded in rig.json)
    chain_thought_loss: bool = True  # loss on the thoughts written after an imagined frame in review samples
    review_frames: str = "imagined"  # the frames a review sample reads: imagined | real (the fork's) | both

    def validate(self) -> "TrainConfig":
        if self.stage not in ("basic", "lookahead"):
            raise RigError(f"unknown stage '{self.stage}'", "use --stage basic or --stage lookahead")
        if self.stage == "lookahead":
            if not self.init:
                raise RigError("--stage lookahead needs --init", "pass the RIG-basic run: --init runs/<basic>")
            if self.finetune not in ("lora", "full"):
                raise RigError(f"unknown --finetune '{self.finetune}'", "use --finetune lora or --finetune full")
            shares = (self.mix_review, self.mix_align, self.mix_basic, self.mix_relabel)
            if min(shares) < 0 or self.mix_review + self.mix_align + self.mix_relabel <= 0:
                raise RigError(f"impossible mix (review {self.mix_review}, align {self.mix_align}, "
                               f"basic {self.mix_basic}, relabel {self.mix_relabel})",
                               "pass shares of 0 or more with review, align or relabel above 0")
            if self.review_frames not in REVIEW_FRAMES:
                raise RigError(f"unknown --review-frames '{self.review_frames}'",
                               "use --review-frames imagined, real or both")
        elif self.init:
            raise RigError("--init applies to --stage lookahead", "drop --init, or pass --stage lookahead")
        elif self.more_data:
            raise RigError("--stage basic trains on one dataset (got several --data)",
                           "pass one --data, or --stage lookahead to mix several review datasets")
        if self.model not in ("scratch", "base"):
            raise RigError(f"unknown model kind '{self.model}'", "use --model scratch, or --base PATH")
        if self.model == "base" and not self.base:
            raise RigError("a base-model recipe needs --base PATH", "pass the directory of a local Hugging Face model")
        if self.lora and self.qlora:
            raise RigError("--lora and --qlora are exclusive", "QLoRA already includes LoRA: pass only --qlora")
        for name in ("batch_size", "grad_accum", "max_steps", "eval_every", "save_every", "codebook_size"):
            if getattr(self, name) < 1:
                raise RigError(f"--{name.replace('_', '-')} must be at least 1", "pass a positive number")
        if not 0 <= self.think_positions <= 1024:
            raise RigError(f"--think-positions {self.think_positions} is out of range",
                           "pass 0 (positions count tokens) or the thought budget, e.g. 64")
        if not 0 <= self.image_row_stride <= 64:
            raise RigError(f"--image-row-stride {self.image_row_stride} is out of range",
                           "pass 0 (one position per image token) or the positions per frame row, e.g. 16")
        if self.context < 64:
            raise RigError(f"--context {self.context} is too short", "use at least a few hundred tokens")
        if not 0 <= self.val_fraction < 1:
            raise RigError("--val-fraction must be in [0, 1)", "pass e.g. 0.1")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise RigError(f"unknown --mixed-precision {self.mixed_precision}", "use auto, no, bf16 or fp16")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(doc) - known
        if unknown:
            raise RigError(f"unknown training options {sorted(unknown)}", "fix the recipe or config.json")
        return cls(**doc)


def recipe_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    for d in RECIPE_DIRS:
        if (d / f"{name}.yaml").exists():
            return d / f"{name}.yaml"
    known = sorted(f.stem for d in RECIPE_DIRS if d.exists() for f in d.glob("*.yaml"))
    raise RigError(f"unknown recipe '{name}'", f"choose one of: {', '.join(known)}, or pass a YAML file")


def load_recipe(name: str) -> dict[str, Any]:
    path = recipe_path(name)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RigError(f"recipe {path} is not valid YAML", "fix the file") from exc
    return doc


def train_config(recipe: str, overrides: dict[str, Any]) -> TrainConfig:
    """Recipe defaults, then every override that is not None."""
    doc = dict(load_recipe(recipe).get("train", {}))
    if overrides.get("stage") == "lookahead":  # a recipe's lookahead section refines its train section
        doc.update(load_recipe(recipe).get("lookahead", {}))
    doc.update({k: v for k, v in overrides.items() if v is not None})
    doc["recipe"] = recipe
    if doc.get("base"):
        doc["model"] = "base"
    return TrainConfig.from_dict(doc).validate()


def load_run_config(run: Path) -> TrainConfig:
    """The configuration a run was started with (its config.json)."""
    from rig_core.fsutil import read_json

    run = Path(run)
    if not (run / "config.json").exists():
        raise RigError(f"{run} is not a rig run (no config.json)", "pass the --out directory of an earlier rig train")
    doc = read_json(run / "config.json", "restore it, or start a new run")
    for provenance in ("command", "merged_from"):  # recorded beside the options, not options themselves
        doc.pop(provenance, None)
    return TrainConfig.from_dict(doc).validate()
