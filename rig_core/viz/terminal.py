"""Frames in the terminal: true-colour half-block pixels (works over SSH in any modern terminal)."""

from __future__ import annotations

import numpy as np
from rich.text import Text


def halfblock(frame: np.ndarray, scale: int = 1) -> Text:
    """One character per pixel column and two pixel rows: '▀' with the top pixel as foreground
    colour and the bottom one as background. ``scale`` > 1 shrinks the frame by that factor."""
    img = np.asarray(frame, dtype=np.uint8)
    if scale > 1:
        img = img[::scale, ::scale]
    if img.shape[0] % 2:
        img = np.concatenate([img, np.zeros_like(img[:1])], axis=0)
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, img.shape[0], 2):
        top, bottom = img[r], img[r + 1]
        for (r1, g1, b1), (r2, g2, b2) in zip(top.tolist(), bottom.tolist()):
            text.append("▀", style=f"#{r1:02x}{g1:02x}{b1:02x} on #{r2:02x}{g2:02x}{b2:02x}")
        if r + 2 < img.shape[0]:
            text.append("\n")
    return text
