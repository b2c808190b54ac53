"""Brightness and colour balance: a per-channel gain that matches every frame to the reference.

Defocus blur moves light around but keeps its mean, so the ratio of the means of two aligned frames is
their exposure ratio (the shared/notes finding: within 0.7 %). The ratio is taken in linear light
(encoded ** GAMMA), on small aligned thumbnails, over the area both frames see, leaving out clipped and
near-black pixels, and applied to the encoded values as gain ** (1 / GAMMA).
"""
from __future__ import annotations

import cv2
import numpy as np

from focusdrop.engine import geometry

GAMMA = 2.2  # encoded value = linear light ** (1 / GAMMA), near enough for sRGB and camera TIFFs
THUMB_SIDE = 384
CLIP_LOW, CLIP_HIGH = 0.02, 0.97


def thumbnail_factor(width: int, height: int) -> float:
    """Resize factor of the thumbnails that gains are measured on."""
    return min(1.0, THUMB_SIDE / max(width, height))


def thumbnail_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """(w, h) of the thumbnail of a width x height frame."""
    return max(1, round(width * factor)), max(1, round(height * factor))


def thumbnail(pixels: np.ndarray, factor: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, C) uint8/uint16 -> (h, w, C) float32 thumbnail in [0, 1], encoded values, area-averaged in
    linear light. Averaged in encoded values, sharp texture reads darker than the same texture blurred
    (the mean of a concave curve is below the curve of the mean): 2 % in linear light on the sphere bracket,
    enough to bias the gains and shading measured on thumbnails against the sharpest frames. A subsample is
    enough (its mean is unbiased): every k-th pixel each way, k = 1 / (4 factor) but at least 2 where the
    thumbnail is at most half size, so that each thumbnail pixel still averages 16 or more (a 24 MP frame:
    every 3rd, twice as cheap as every 2nd).
    size: (w, h) of the thumbnail, if not ``factor`` times the image's."""
    full_scale = np.iinfo(pixels.dtype).max
    to_linear = ((np.arange(full_scale + 1, dtype=np.float32) / full_scale) ** GAMMA).astype(np.float32)
    step = max(int(0.25 / factor), 2 if factor <= 0.5 else 1)
    sampled = pixels[::step, ::step]
    size = size or thumbnail_size(pixels.shape[1], pixels.shape[0], factor)
    small = cv2.resize(to_linear[sampled], size, interpolation=cv2.INTER_AREA)
    return small.reshape(*small.shape[:2], pixels.shape[2]) ** np.float32(1.0 / GAMMA)


def onto_reference(thumb: np.ndarray, to_ref: np.ndarray, factor: float,
                   shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A frame's thumbnail moved onto the reference thumbnail's grid.

    thumb: (h, w, C) float32; to_ref: (3, 3) frame -> reference, full-resolution px; factor: thumbnail
    size / full size; shape: the reference thumbnail's (h, w, C). Returns the moved thumbnail (h, w, C)
    float32 and where the frame covers it, (h, w) bool (2 px in from its edges, clear of resampling).
    """
    h, w, channels = shape
    to_thumb = geometry.resize_matrix(factor)
    matrix = (to_thumb @ to_ref @ np.linalg.inv(to_thumb))[:2]
    moved = cv2.warpAffine(thumb, matrix, (w, h), flags=cv2.INTER_LINEAR).reshape(h, w, channels)
    inner = np.zeros(thumb.shape[:2], np.uint8)
    inner[2:-2, 2:-2] = 1
    seen = cv2.warpAffine(inner, matrix, (w, h), flags=cv2.INTER_NEAREST) > 0
    return moved, seen


def exposure_gains(thumbs: list[np.ndarray], to_ref: np.ndarray, reference: int,
                   factor: float) -> np.ndarray:
    """Per-channel gains, encoded values, that bring each frame to the reference's exposure.

    thumbs: N thumbnails (h, w, C) float32 in [0, 1]; to_ref: (N, 3, 3) frame -> reference, full-res px.
    Returns (N, C) float32; the reference row is 1.
    """
    ref = thumbs[reference]
    h, w, channels = ref.shape
    gains = np.ones((len(thumbs), channels), dtype=np.float32)
    ref_usable = _unclipped(ref)
    ref_linear = cv2.pow(ref, GAMMA)
    for k, thumb in enumerate(thumbs):
        if k == reference:
            continue
        moved, seen = onto_reference(thumb, to_ref[k], factor, ref.shape)
        usable = (seen & ref_usable & _unclipped(moved)).view(np.uint8)
        if cv2.countNonZero(usable) < 0.05 * h * w:
            continue  # nearly everything clipped: leave this frame's exposure as it is
        ref_mean = np.array(cv2.mean(ref_linear, usable)[:channels])
        frame_mean = np.array(cv2.mean(cv2.pow(moved, GAMMA), usable)[:channels])
        gains[k] = (ref_mean / frame_mean) ** (1.0 / GAMMA)
    return gains


def _unclipped(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: where no channel of a (h, w, C) encoded image is near black or clipped."""
    return np.all((image > CLIP_LOW) & (image < CLIP_HIGH), axis=2)
