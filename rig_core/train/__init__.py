"""Training: data, loop, checkpoints and exact resume."""
