"""The model: build (scratch, local base, LoRA, QLoRA), constrained decoding, checkpoints."""
