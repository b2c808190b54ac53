"""Small pictures of a stack for its report: previews of the result and the frames, each frame's mask, its
share of the result, and the window of the result with the most fine detail (where a 100 % crop shows
what stacking bought). Display only: area-averaged, encoded values, 8 bits.
"""
from __future__ import annotations

import cv2
import numpy as np

from focusdrop.engine.focus import luminance

DETAIL_SCALE = 4  # the detail map is made at a quarter size each way: a window's sum needs no more


def _unit(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 or float32 in [0, 1] -> float32 in [0, 1] (float32 as it is)."""
    if pixels.dtype == np.float32:
        return pixels
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8, uint16 or float32 pixels, got {pixels.dtype}")
    return pixels.astype(np.float32) * np.float32(1.0 / np.iinfo(pixels.dtype).max)


def _reduced(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) area-averaged to size (w, h), float32 in [0, 1], still (h, w, C)."""
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return _unit(small).reshape(size[1], size[0], image.shape[2])


def preview(image: np.ndarray, side: int) -> np.ndarray:
    """Area-averaged preview of ``image`` whose long side is at most ``side`` px.

    image: (H, W, C) uint8, uint16 or float32 in [0, 1] (C 1 or 3). Returns (h, w, C) uint8.
    """
    height, width = image.shape[:2]
    factor = min(1.0, side / max(height, width))
    small = _reduced(image, (max(1, round(width * factor)), max(1, round(height * factor))))
    return np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)


def sharpest_window(image: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner (x, y) of the ``side`` x ``side`` window of ``image`` with the most fine detail (the
    energy of the Laplacian of its luminance, at a quarter size), wholly inside it (clipped to the image
    where it is smaller than the window).

    image: (H, W, C) uint8, uint16 or float32 in [0, 1].
    """
    height, width, _ = image.shape
    small = luminance(_reduced(image, (max(1, width // DETAIL_SCALE), max(1, height // DETAIL_SCALE))))
    energy = cv2.Laplacian(small, cv2.CV_32F) ** 2
    span = max(1, side // DETAIL_SCALE)
    sums = cv2.boxFilter(energy, -1, (span, span), anchor=(0, 0), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)
    rows = max(1, small.shape[0] - span + 1)
    cols = max(1, small.shape[1] - span + 1)
    y, x = np.unravel_index(int(np.argmax(sums[:rows, :cols])), (rows, cols))
    return (int(min(x * DETAIL_SCALE, max(0, width - side))), int(min(y * DETAIL_SCALE, max(0, height - side))))


def frame_shares(depth: np.ndarray, count: int) -> np.ndarray:
    """The share of the result's pixels each frame supplies. depth: (H, W) uint8 frame index (the depth
    map); returns (count,) float64 summing to 1."""
    return np.bincount(depth.ravel(), minlength=count)[:count] / depth.size


def mask_previews(depth: np.ndarray, count: int, side: int) -> np.ndarray:
    """Each frame's mask (white where it supplies the pixel), area-averaged to a long side of at most
    ``side`` px from every k-th pixel (each preview pixel still averages 16 or more).
    depth: (H, W) uint8 frame index; returns (count, h, w) uint8."""
    step = max(1, max(depth.shape) // (4 * side))
    sampled = depth[::step, ::step]
    return np.stack([preview((sampled == k).astype(np.float32)[..., None], side)[..., 0] for k in range(count)])
