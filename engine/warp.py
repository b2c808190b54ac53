"""Resampling: move a frame onto the reference grid and bring it to the reference exposure and shading.

Bicubic interpolation (sharper than bilinear, which blurs every sub-pixel shift), done by OpenCV on the
frame's own integer samples, then multiplies convert to float32 in [0, 1] with the exposure gain and the
frame's smooth shading field (engine.shading), stretched bilinearly from its coarse grid onto the box.
Lanczos (8x8) was measured too: +0.85 dB on the 12 x 3000x2000 benchmark, but the warp took 4.9 s instead
of 1.3 s and the whole stack 75 % longer, past the speed budget (0.6x focus-stack's time).
"""
from __future__ import annotations

import cv2
import numpy as np

from focusdrop.engine import geometry

NO_SHADING = 0.001  # a shading field this close to 1 everywhere changes no output level: skip it
BAND_ROWS = 256     # rows resampled at a time


def warp_to_reference(pixels: np.ndarray, to_ref: np.ndarray, box: tuple[int, int, int, int],
                      gain: np.ndarray, full_scale: float, shading: np.ndarray | None = None,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Resample a frame into the output box of the reference grid.

    pixels: (H, W, C) uint8/uint16; to_ref: (3, 3) frame -> reference; box: (x0, y0, x1, y1);
    gain: (C,) encoded-value gain; shading: (gh, gw, C) encoded-value gain field over the whole reference
    frame, or None; out: the (y1 - y0, x1 - x0, C) float32 array to write into (None: a new one).
    Returns (y1 - y0, x1 - x0, C) float32 in [0, 1]: a gain above 1 clips at white, as the frame would
    have, so that layers written from it composite to the fused image.
    Made a band of BAND_ROWS rows at a time: no frame-sized integer copy besides ``pixels``.
    """
    x0, y0, x1, y1 = box
    height, width, channels = pixels.shape
    out_to_frame = np.linalg.inv(to_ref) @ geometry.translation(x0, y0)
    moves = not np.allclose(out_to_frame, geometry.translation(x0, y0))
    scale = np.asarray(gain, np.float32) / np.float32(full_scale)
    flat = shading is None or np.abs(shading - 1.0).max() < NO_SHADING
    field = None if flat else shading * scale  # the gain folded into the field: one multiply
    image = np.empty((y1 - y0, x1 - x0, channels), np.float32) if out is None else out
    for top in range(0, y1 - y0, BAND_ROWS):
        rows = image[top:top + BAND_ROWS]
        count = len(rows)
        if moves:
            band = cv2.warpAffine(pixels, (out_to_frame @ geometry.translation(0, top))[:2], (x1 - x0, count),
                                  flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        else:
            band = pixels[y0 + top:y0 + top + count, x0:x1]
        np.copyto(rows, band.reshape(rows.shape))
        if field is None:  # OpenCV's multiply by a scalar per channel: numpy's broadcast is 12x slower
            cv2.multiply(rows, tuple(scale.tolist()) + (0.0,) * (4 - channels), dst=rows)
        else:
            band_to_grid = geometry.resize_matrix(field.shape[1] / width, field.shape[0] / height) @ \
                geometry.translation(x0, y0 + top)
            rows *= cv2.warpAffine(field, band_to_grid[:2], (x1 - x0, count), flags=cv2.INTER_LINEAR
                                   | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE).reshape(rows.shape)
        cv2.min(rows, (1.0, 1.0, 1.0, 1.0), dst=rows)  # a scalar per channel: 1.0 alone would be (1, 0, 0, 0)
    return image


def coverage(to_ref: np.ndarray, box: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Where a frame of size (width, height) has pixels in the output box: (h, w) bool."""
    x0, y0, x1, y1 = box
    out_to_frame = (np.linalg.inv(to_ref) @ geometry.translation(x0, y0))[:2]
    ones = np.ones((height, width), np.uint8)
    return cv2.warpAffine(ones, out_to_frame, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0
