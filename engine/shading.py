"""Shading: a smooth gain field per frame, against brightness and colour that drift unevenly across the frame.

Vignetting that changes with focus distance, or a medium's tint that changes with depth, puts a band
beside every edge where frames sharp at the edge meet a background taken from others. The drift is
measured where defocus moves no light: on plain areas (flat in both frames, nothing clipped), as the ratio
of the reference's linear light to the frame's, low-passed by normalised convolution (Gaussian, 1/40 of
the width); it fades to the global gain (engine.exposure) away from them.
"""
from __future__ import annotations

import cv2
import numpy as np

from focusdrop.engine.exposure import CLIP_HIGH, GAMMA, onto_reference

SIGMA_FRACTION = 1 / 40   # low-pass sigma, as a fraction of the frame's width
FLAT_STD = 0.01           # encoded values: a 5x5 thumbnail window flatter than this is plain
FULL_SUPPORT = 0.25       # share of plain pixels under the low-pass at which the field takes full effect
MAX_CORRECTION = 1.25     # linear gain, either way: more than this is not shading
GRID_FACTOR = 0.25        # the field is kept at a quarter of the thumbnail's size: it is that smooth


def _flat(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: where a (h, w, C) encoded thumbnail is plain (5x5 local std of its mean below FLAT_STD)."""
    grey = image.mean(axis=2)
    mean = cv2.blur(grey, (5, 5))
    variance = cv2.blur(grey * grey, (5, 5)) - mean * mean
    return variance < FLAT_STD ** 2


def shading_fields(thumbs: list[np.ndarray], to_ref: np.ndarray, reference: int, factor: float,
                   gains: np.ndarray) -> np.ndarray:
    """Per-frame gain fields that bring each frame's slow brightness and colour to the reference's.

    thumbs: N thumbnails (h, w, C) float32 in [0, 1], encoded values averaged in linear light; to_ref:
    (N, 3, 3) frame -> reference, full-resolution px; factor: thumbnail size / full size; gains: (N, C)
    global encoded-value gains. Returns (N, gh, gw, C) float32 encoded-value multipliers on top of
    ``gains``, over the reference frame, on a grid ``GRID_FACTOR`` of the thumbnail's; the reference's is 1.
    """
    ref = thumbs[reference]
    h, w, channels = ref.shape
    grid = (max(2, round(w * GRID_FACTOR)), max(2, round(h * GRID_FACTOR)))
    fields = np.ones((len(thumbs), grid[1], grid[0], channels), np.float32)
    ref_linear = cv2.pow(ref, GAMMA).reshape(ref.shape)
    ref_plain = _flat(ref) & np.all(ref < CLIP_HIGH, axis=2)
    sigma = SIGMA_FRACTION * grid[0]  # low-passed on the grid: the low-pass is that wide, and it is 16 times smaller

    def lowpass(values: np.ndarray) -> np.ndarray:
        """(h, w, ...) on the thumbnail -> (gh, gw, ...) low-passed on the grid."""
        small = cv2.resize(values, grid, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REFLECT101).reshape(
            grid[1], grid[0], *values.shape[2:])

    for k, thumb in enumerate(thumbs):
        if k == reference:
            continue
        moved, seen = onto_reference(thumb, to_ref[k], factor, ref.shape)
        moved = np.minimum(moved * gains[k], 1.0)
        plain = (seen & ref_plain & _flat(moved) & np.all(moved < CLIP_HIGH, axis=2)).astype(np.float32)
        moved_linear = cv2.pow(moved, GAMMA).reshape(moved.shape)
        ratio = lowpass(ref_linear * plain[..., None]) / np.maximum(lowpass(moved_linear * plain[..., None]), 1e-6)
        ratio = np.clip(ratio, 1 / MAX_CORRECTION, MAX_CORRECTION) ** (1.0 / GAMMA)
        strength = np.clip(lowpass(plain) / FULL_SUPPORT, 0.0, 1.0)[..., None]
        fields[k] = 1.0 + (ratio - 1.0) * strength
    return fields
