"""One vocabulary: text tokens + special tokens + one token per action + one per image code.

From scratch, the text part is a byte-level BPE trained with ``tokenizers`` on the
dataset's texts; with a base model, the special/action/image tokens are added to its
tokenizer. Either way the result is a ``PreTrainedTokenizerFast`` saved in the Hugging
Face layout, and the rig-specific ids are found by token string, never by position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from rig_core.errors import RigError
from rig_core.fsutil import read_json

SEQUENCE_FORMAT = 1
SPECIALS = ("<pad>", "<bos>", "<eos>", "<task>", "</task>", "<obs>", "</obs>", "<think>", "</think>",
            "<act>", "</act>", "<imagine>", "</imagine>", "<review>", "</review>")
RIG_JSON = "rig.json"


def action_token(name: str) -> str:
    return f"<act_{name}>"


def image_token(code: int) -> str:
    return f"<img_{code}>"


@dataclass
class RigTokenizer:
    """The text tokenizer with rig's added tokens, and the id ranges decoding is constrained to."""

    hf: "object"  # transformers.PreTrainedTokenizerFast
    action_names: list[str]
    codebook_size: int

    def __post_init__(self) -> None:
        tid = self.hf.convert_tokens_to_ids
        self.special = {s: tid(s) for s in SPECIALS}
        self.action_ids = np.array([tid(action_token(a)) for a in self.action_names], np.int64)
        self.image_ids = np.array([tid(image_token(i)) for i in range(self.codebook_size)], np.int64)
        unk = getattr(self.hf, "unk_token_id", None)
        bad = [s for s, i in self.special.items() if i is None or i == unk]
        if bad or (self.action_ids == unk).any() or (self.image_ids == unk).any():
            raise RigError("the tokenizer lacks rig's special, action or image tokens",
                           "use a tokenizer written by rig train (tokenizer/ of a checkpoint)")
        self._image_base = int(self.image_ids[0])
        self.image_contiguous = bool((np.diff(self.image_ids) == 1).all())
        self._id_to_action = {int(i): k for k, i in enumerate(self.action_ids)}
        self.rig_ids = set(self.special.values()) | set(self.action_ids.tolist()) | set(self.image_ids.tolist())

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def pad_id(self) -> int:
        return self.special["<pad>"]

    def text(self, s: str) -> list[int]:
        return list(self.hf.encode(s, add_special_tokens=False))

    def decode_text(self, ids: Iterable[int]) -> str:
        return self.hf.decode([i for i in ids if i not in self.rig_ids], skip_special_tokens=True).strip()

    def images(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, np.int64)
        return codes + self._image_base if self.image_contiguous else self.image_ids[codes]

    def codes(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        if self.image_contiguous:
            return ids - self._image_base
        lookup = {int(t): c for c, t in enumerate(self.image_ids)}
        return np.array([lookup[int(i)] for i in ids], np.int64)

    def action(self, index: int) -> int:
        return int(self.action_ids[index])

    def action_index(self, token_id: int) -> int | None:
        return self._id_to_action.get(int(token_id))

    # -- files ------------------------------------------------------------------------
    def save(self, directory: Path, extra: dict | None = None) -> None:
        directory = Path(directory)
        self.hf.save_pretrained(str(directory))
        meta = {"sequence_format": SEQUENCE_FORMAT, "action_names": self.action_names,
                "codebook_size": self.codebook_size, **(extra or {})}
        (directory / RIG_JSON).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> tuple["RigTokenizer", dict]:
        from transformers import PreTrainedTokenizerFast

        directory = Path(directory)
        meta_path = directory / RIG_JSON
        if not meta_path.exists():
            raise RigError(f"{directory} has no {RIG_JSON}: not a rig tokenizer", "point at a checkpoint's tokenizer/")
        meta = read_json(meta_path, "re-create the checkpoint with rig train")
        if meta.get("sequence_format") != SEQUENCE_FORMAT:
            raise RigError(f"{directory} uses sequence format {meta.get('sequence_format')}, this rig reads "
                           f"{SEQUENCE_FORMAT}", "use the rig version that trained it, or retrain")
        try:
            hf = PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)
        except Exception as exc:
            raise RigError(f"cannot load the tokenizer in {directory} ({exc.__class__.__name__})",
                           "re-create the checkpoint with rig train") from exc
        return cls(hf, list(meta["action_names"]), int(meta["codebook_size"])), meta


def added_tokens(action_names: list[str], codebook_size: int) -> list[str]:
    """rig's tokens in id order: specials, actions, images (contiguous ranges when added in one go)."""
    return list(SPECIALS) + [action_token(a) for a in action_names] + [image_token(i) for i in range(codebook_size)]


def train_text_tokenizer(texts: Iterable[str], action_names: list[str], codebook_size: int,
                         vocab_size: int = 1024) -> RigTokenizer:
    """A byte-level BPE on ``texts`` plus rig's tokens, as a PreTrainedTokenizerFast (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    hf.add_special_tokens({"additional_special_tokens": [t for t in added_tokens(action_names, codebook_size)
                                                         if t not in ("<pad>", "<bos>", "<eos>")]})
    return RigTokenizer(hf, list(action_names), codebook_size)
