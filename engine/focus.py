"""Focus measure: how sharp each pixel of a frame is, as locally averaged Laplacian energy.

The Laplacian responds to the fine detail that defocus removes (Nayar & Nakagawa 1994). A light blur first
(sigma 0.7 px) keeps sensor noise from reading as detail; a wider blur after (sigma 3 px) spreads each
edge's energy over its neighbourhood so the choice of frame is coherent; a local minimum over a 9 px disc
then cuts back the energy that the spread carried across a depth step, and a 2 px blur softens its
shoulders. Measurements: docs/measurements.md.
"""
from __future__ import annotations

import cv2
import numpy as np

LUMA = (0.299, 0.587, 0.114)
NEARBY_FRACTION = 1 / 40  # sigma of the wide focus spread, as a fraction of the width
NEARBY_SIGMA_STEPS = 6.0  # grid steps to that sigma where it is made (a bilinear rise from there is smooth)
_DISC9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
SHOULDER_SIGMA = 2.0  # px, the blur after the local minimum
FOCUS_BAND = 512  # rows measured at a time by frame_focus: on 6 MP frames 0.037 s where the whole frame took
# 0.051 s (256 rows: 0.059 s); on 24 MP frames 0.23 s where the whole took 0.19 s


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W, 1) float32 -> (H, W) float32 luma, a new array."""
    if image.shape[2] == 1:
        return image[..., 0].copy()
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def focus_measure(grey: np.ndarray, noise_sigma: float = 0.7, spread_sigma: float = 3.0,
                  in_place: bool = False) -> np.ndarray:
    """Local Laplacian energy. grey: (H, W) float32 in [0, 1], overwritten if ``in_place`` (one frame-sized
    buffer fewer: 93 MB at 24 MP). Returns (H, W) float32 >= 0."""
    if grey.ndim != 2:
        raise ValueError(f"focus_measure takes a (H, W) image, got shape {grey.shape}")
    a = cv2.GaussianBlur(grey, (0, 0), noise_sigma, dst=grey if in_place else None,  # two frame-sized
                         borderType=cv2.BORDER_REFLECT101)
    b = cv2.Laplacian(a, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT101)         # buffers, reused
    np.multiply(b, b, out=b)
    cv2.GaussianBlur(b, (0, 0), spread_sigma, dst=a, borderType=cv2.BORDER_REFLECT101)
    cv2.erode(a, _DISC9, dst=b)
    return cv2.GaussianBlur(b, (0, 0), SHOULDER_SIGMA, dst=a, borderType=cv2.BORDER_REFLECT101)


def frame_focus(image: np.ndarray, noise_sigma: float = 0.7, spread_sigma: float = 3.0) -> np.ndarray:
    """focus_measure of the image's luminance, measured FOCUS_BAND rows at a time, each band with the rows
    around it that reach it through the filters: the same values as on the whole frame, without holding
    the frame's luminance and the measure's second plane (184 MB at 24 MP, where this holds 92 MB and two
    bands of 14 MB). image: (H, W, C) float32 in [0, 1]. Returns (H, W) float32 >= 0."""
    height = image.shape[0]
    reach = _radius(noise_sigma) + 1 + _radius(spread_sigma) + _DISC9.shape[0] // 2 + _radius(SHOULDER_SIGMA)
    focus = np.empty(image.shape[:2], np.float32)
    for top in range(0, height, FOCUS_BAND):
        bottom = min(height, top + FOCUS_BAND)
        start, stop = max(0, top - reach), min(height, bottom + reach)
        band = focus_measure(luminance(image[start:stop]), noise_sigma, spread_sigma, in_place=True)
        focus[top:bottom] = band[top - start:bottom - start]
    return focus


def _radius(sigma: float) -> int:
    """Rows each side that cv2.GaussianBlur's kernel reaches for float images at ``sigma``."""
    return (round(sigma * 8 + 1) | 1) // 2


def nearby_focus(focus: np.ndarray) -> np.ndarray:
    """The focus measure spread wide (Gaussian, sigma 1/40 of the width), as depth-map fusion uses it on
    plain areas: which frame is sharp at the edges nearby. Returned at a quarter of the size (it is that
    smooth; engine.depthmap brings it back to full size as it blends). The spread itself is made on a grid
    NEARBY_SIGMA_STEPS steps to the sigma (at least a quarter of the size), then brought to the quarter
    size: at 24 MP, blurring the quarter-size map (a 220-tap kernel) took 100 ms a frame.
    focus: (H, W) float32. Returns (H // 4, W // 4) float32, at least 1x1."""
    h, w = focus.shape
    quarter_size = (max(1, w // 4), max(1, h // 4))
    quarter = cv2.resize(focus, quarter_size, interpolation=cv2.INTER_AREA)
    sigma = w * NEARBY_FRACTION
    factor = min(1.0, 4 * NEARBY_SIGMA_STEPS / sigma)  # of the quarter size
    small_size = (max(1, round(quarter_size[0] * factor)), max(1, round(quarter_size[1] * factor)))
    small = quarter if factor == 1.0 else cv2.resize(quarter, small_size, interpolation=cv2.INTER_AREA)
    spread = cv2.GaussianBlur(small, (0, 0), max(1.0, sigma * small.shape[1] / w),
                              borderType=cv2.BORDER_REFLECT101)
    return spread if small is quarter else cv2.resize(spread, quarter_size, interpolation=cv2.INTER_LINEAR)
