"""Inference: the RIG step loop (reason, act, imagine) used by play, imagine and evaluate."""
