"""A run's configuration (config.json): how its model was built and trained, which a checkpoint is loaded with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.tokenize.sequence import SPAN_NAMES, parse_spans

# the held-out losses a run can keep its best checkpoint by (lower is better)
BEST_METRICS = ("loss", *(f"loss_{name}" for name in SPAN_NAMES.values()))

REVIEW_FRAMES = ("imagined", "real", "both")


# Fields that did not pay in play and that only the experiment recipes that tested them set
# (rig_core/resources/recipes/experiments/; findings in docs/experiments.md).
EXPERIMENT_FIELDS = ("image_row_stride", "merge_codes", "mix_blocked", "review_frames")


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    stage: str = "basic"
    recipe: str = "tiny"
    model: str = "scratch"  # scratch (trained from nothing) | base (a local Hugging Face model, set by --base)
    size: str = "tiny"  # scratch model size: tiny, mini, small, base (layers and width in rig_core/model/build.py)
    base: str | None = None  # local path of a Hugging Face causal LM
    lora: bool = False  # train LoRA adapters on the base (peft)
    qlora: bool = False  # load the base in 4-bit NF4 (bitsandbytes) and train LoRA adapters on it
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling numerator (alpha / r)
    context: int = 640  # tokens per training sample (and the policy's context at play time)
    think_positions: int = 0  # position ids reserved per think/review text (0: one per token); see tokenize/positions.py
    image_row_stride: int = 0  # position ids per frame row (0: one per image token); see tokenize/positions.py
    spans: str = "think,act,imagine"  # what each step holds and learns: act | think,act | act,imagine | think,act,imagine
    batch_size: int = 4  # samples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 3e-3  # peak learning rate (linear warm-up, then cosine decay)
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_steps: int = 10  # linear warm-up steps
    max_steps: int = 60  # optimizer steps
    eval_every: int = 30  # held-out evaluation every N steps
    eval_samples: int = 0  # held-out samples per evaluation, spread evenly over the set, the same each time (0: all)
    save_every: int = 30  # checkpoint every N steps
    keep_checkpoints: int = 3  # newest checkpoints kept on disk (0: all)
    keep_best: str = ""  # held-out loss whose lowest value's checkpoint is kept as checkpoints/best: loss, loss_act, ...
    patience: int = 0  # with keep_best: stop after this many held-out evaluations without a new best (0: never)
    seed: int = 0  # data split, order and initialisation
    codebook_size: int = 256  # image codebook entries (at most 4096)
    text_vocab: int = 384  # byte-level BPE vocabulary of the text (scratch models)
    tokenizer_iters: int = 6  # k-means iterations fitting the image codebook
    fit_frames: int = 20000  # frames sampled to fit the image codebook
    merge_codes: float = 0.0  # merge image codes whose cells differ by less than this (mean abs., 0-255); 0: none
    val_fraction: float = 0.1  # share of episodes held out for evaluation
    data_fraction: float = 1.0  # share of the other episodes trained on (nested: a smaller share is inside a larger)
    num_workers: int = 0  # DataLoader worker processes
    mixed_precision: str = "auto"  # auto | no | bf16 | fp16
    max_grad_norm: float = 1.0  # gradient clipping
    # -- lookahead stage: fine-tune a basic checkpoint on review data --------------------------------
    init: str | None = None  # the run, checkpoint or shipped model to start from (lookahead: the RIG-basic model)
    init_checkpoint: str | None = None  # the exact checkpoint directory it resolved to (set when the run starts)
    finetune: str = "lora"  # lora | full
    more_data: list[str] = field(default_factory=list)  # further review datasets (--data given again), mixed in
    basic_data: str | None = None  # basic sequences to mix in (default: the first review dataset's input)
    mix_review: float = 0.5  # share of review samples (the review text and the action to take) in an epoch
    mix_align: float = 0.25  # share of alignment samples (the fork's real frames as imagination targets)
    mix_basic: float = 0.25  # share of ordinary basic windows
    mix_relabel: float = 0.0  # share of relabelled (DAgger) samples: visited states, expert thought and action
    mix_blocked: float = 0.0  # share of align samples drawn again from the moves the world blocked (view held)
    mix_verify: float = 0.0  # share of candidate samples (review/candidates: a candidate, 0..H imagined steps, verdict)
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
            shares = (self.mix_review, self.mix_align, self.mix_basic, self.mix_relabel, self.mix_blocked,
                      self.mix_verify)
            if min(shares) < 0 or sum(shares) - self.mix_basic <= 0:
                raise RigError(f"impossible mix (review {self.mix_review}, align {self.mix_align}, "
                               f"basic {self.mix_basic}, relabel {self.mix_relabel}, blocked {self.mix_blocked}, "
                               f"verify {self.mix_verify})",
                               "pass shares of 0 or more with review, align, relabel, blocked or verify above 0")
            if self.review_frames not in REVIEW_FRAMES:
                raise RigError(f"unknown review_frames '{self.review_frames}'",
                               "set review_frames to imagined, real or both (recipe, or --set review_frames=real)")
        elif self.more_data:
            raise RigError("--stage basic trains on one dataset (got several --data)",
                           "pass one --data, or --stage lookahead to mix several review datasets")
        self.spans = ",".join(parse_spans(self.spans))
        if self.stage == "lookahead" and self.spans != "think,act,imagine":
            raise RigError(f"--stage lookahead reviews imagined steps, which --spans {self.spans} leaves out",
                           "train the lookahead stage with every span (--spans think,act,imagine)")
        if self.model not in ("scratch", "base"):
            raise RigError(f"unknown model kind '{self.model}'", "use --model scratch, or --base PATH")
        if self.model == "base" and not self.base:
            raise RigError("a base-model recipe needs --base PATH", "pass the directory of a local Hugging Face model")
        if self.lora and self.qlora:
            raise RigError("--lora and --qlora are exclusive", "QLoRA already includes LoRA: pass only --qlora")
        for name in ("batch_size", "grad_accum", "max_steps", "eval_every", "save_every", "codebook_size", "lora_r",
                     "tokenizer_iters", "fit_frames"):
            if getattr(self, name) < 1:
                raise RigError(f"{name} must be at least 1", "pass a positive number")
        for name in ("lr", "lora_alpha"):
            if not getattr(self, name) > 0:
                raise RigError(f"{name} {getattr(self, name)} must be above 0", "pass a positive number")
        for name in ("weight_decay", "warmup_steps", "seed", "num_workers", "max_grad_norm", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise RigError(f"{name} {getattr(self, name)} is negative", "pass 0 or more")
        if self.eval_samples < 0:
            raise RigError(f"eval_samples {self.eval_samples} is negative",
                           "set 0 (every held-out sample) or how many to score, e.g. --set eval_samples=2000")
        if not 0 <= self.think_positions <= 1024:
            raise RigError(f"think_positions {self.think_positions} is out of range",
                           "set 0 (positions count tokens) or the thought budget, e.g. --set think_positions=64")
        if not 0 <= self.image_row_stride <= 64:
            raise RigError(f"image_row_stride {self.image_row_stride} is out of range",
                           "set 0 (one position per image token) or the positions per frame row, e.g. "
                           "--set image_row_stride=16")
        if self.context < 64:
            raise RigError(f"--context {self.context} is too short", "use at least a few hundred tokens")
        if not 0 < self.data_fraction <= 1:
            raise RigError(f"data_fraction {self.data_fraction} is outside (0, 1]",
                           "set a share of the training episodes, e.g. --set data_fraction=0.25")
        if not 0 <= self.val_fraction < 1:
            raise RigError("--val-fraction must be in [0, 1)", "pass e.g. 0.1")
        if self.keep_best and self.keep_best not in BEST_METRICS:
            raise RigError(f"keep_best '{self.keep_best}' is not a held-out loss",
                           f"choose one of: {', '.join(BEST_METRICS)}")
        if self.patience < 0 or (self.patience and not self.keep_best):
            raise RigError(f"patience {self.patience} needs keep_best and a count of evaluations",
                           "set e.g. --set keep_best=loss_act --set patience=3")
        span = self.keep_best.removeprefix("loss_") if self.keep_best.startswith("loss_") else None
        if span is not None and span != "review" and span not in parse_spans(self.spans):
            raise RigError(f"keep_best {self.keep_best}: --spans {self.spans} has no {span} span",
                           "keep the best by loss, or by the loss of a span the model learns")
        if span == "review" and self.stage != "lookahead":
            raise RigError("keep_best loss_review needs --stage lookahead", "keep the best by loss or loss_act")
        if self.keep_best and not self.val_fraction:
            raise RigError("keep_best needs held-out episodes (val_fraction is 0)", "set e.g. --val-fraction 0.1")
        if not 0.0 <= self.merge_codes <= 64.0:
            raise RigError(f"merge_codes {self.merge_codes} is outside 0..64", "pass e.g. --set merge_codes=2 (0: no merging)")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise RigError(f"unknown --mixed-precision {self.mixed_precision}", "use auto, no, bf16 or fp16")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "TrainConfig":
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(doc) - set(known)
        if unknown:
            raise RigError(f"unknown training options {sorted(unknown)}", "fix the recipe or config.json")
        for name, value in doc.items():
            if not _fits(value, known[name]):
                raise RigError(f"training option {name} = {value!r} is not of type {known[name]}",
                               "fix the recipe, its --set value or config.json")
        return cls(**doc)


_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "None": type(None)}


def _fits(value: Any, annotation: str) -> bool:
    """Does ``value`` (from YAML or JSON) fit a field annotated ``annotation`` (e.g. ``int``, ``str | None``)?"""
    if annotation.startswith("list"):
        return isinstance(value, list)
    kinds = [_TYPES[t.strip()] for t in annotation.split("|")]
    if isinstance(value, bool) and bool not in kinds:  # YAML's true is no number
        return False
    return any(isinstance(value, k) for k in kinds)


def load_run_config(run: Path) -> TrainConfig:
    """The configuration a run was started with (its config.json)."""
    from rig_core.fsutil import read_json

    run = Path(run)
    if not (run / "config.json").exists():
        raise RigError(f"{run} is not a rig run (no config.json)", "pass the --out directory of an earlier rig train")
    doc = read_json(run / "config.json", "restore it, or start a new run")
    if not isinstance(doc, dict):
        raise RigError(f"{run / 'config.json'} is not a run configuration (a JSON object)",
                       "restore it, or start a new run")
    for provenance in ("command", "merged_from"):  # recorded beside the options, not options themselves
        doc.pop(provenance, None)
    return TrainConfig.from_dict(doc).validate()
