"""Halo metrics against ground truth: bands beside near objects and around depth steps.

A halo is a band, a few to tens of pixels wide, that follows an edge. Sensor noise is not a halo, so the
error against the true all-in-focus image is low-passed first (Gaussian, sigma 4 px): what remains is
the slowly varying error that reads as a band. Both metrics take float images in [0, 1] on the same grid.
"""
from __future__ import annotations

import cv2
import numpy as np

from focusdrop.bridge.demo import psnr
from focusdrop.engine.frames import read_frame
from focusdrop.engine.pipeline import StackResult
from focusdrop.engine.warp import warp_to_reference

LOWPASS_SIGMA = 4.0


def distance_from(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 distance, px, of every pixel from the nearest True pixel of ``mask``."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


def lowpassed_error(result: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, C) error in 8-bit levels, low-passed so that only bands remain."""
    error = (result.astype(np.float32) - truth.astype(np.float32)) * 255.0
    return cv2.GaussianBlur(error, (0, 0), LOWPASS_SIGMA).reshape(error.shape)


def ring_errors(result: np.ndarray, truth: np.ndarray, near: np.ndarray, inner: float = 3.0,
                outer: float = 20.0, far: float = 40.0) -> tuple[float, float]:
    """RMS low-passed error, 8-bit levels, in the ring ``inner`` to ``outer`` px beside the ``near``
    objects ((H, W) bool), and farther than ``far`` px from them: (ring, far)."""
    distance = distance_from(near)
    error = lowpassed_error(result, truth)
    ring = (distance > inner) & (distance <= outer)
    away = distance > far
    return float(np.sqrt(np.mean(error[ring] ** 2))), float(np.sqrt(np.mean(error[away] ** 2)))


def parallel_lines(result: np.ndarray, truth: np.ndarray, near: np.ndarray, inner: float = 5.0,
                   outer: float = 20.0) -> float:
    """RMS, 8-bit levels, of the error band-passed between 1 and 4 px (a difference of Gaussians) in the
    ring ``inner`` to ``outer`` px beside the ``near`` objects: thin edges that run beside them, as where
    the frame choice flips at the rim of a blurred frame's defocus disc. The low-passed ring error misses
    them."""
    error = (result.astype(np.float32) - truth.astype(np.float32)).mean(axis=2) * 255.0
    band = cv2.GaussianBlur(error, (0, 0), 1.0) - cv2.GaussianBlur(error, (0, 0), LOWPASS_SIGMA)
    distance = distance_from(near)
    ring = (distance > inner) & (distance <= outer)
    return float(np.sqrt(np.mean(band[ring] ** 2)))


def step_edges(depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels where the true depth jumps by more than 0.1 from the neighbour before them."""
    jump = np.zeros(depth.shape, bool)
    jump[:, 1:] |= np.abs(np.diff(depth, axis=1)) > 0.1
    jump[1:, :] |= np.abs(np.diff(depth, axis=0)) > 0.1
    return jump


def step_band_gap(result: np.ndarray, truth: np.ndarray, depth: np.ndarray, width: float = 12.0) -> float:
    """How much worse, dB of PSNR, the band within ``width`` px of a depth step is than the rest of the
    image. depth: (H, W) true depth; a step is a jump of more than 0.1 between neighbouring pixels."""
    band = distance_from(step_edges(depth)) <= width
    return psnr(result[~band], truth[~band]) - psnr(result[band], truth[band])


def best_frame_oracle(result: StackResult, truth: np.ndarray) -> np.ndarray:
    """The best-frame oracle, (h, w, 3) float32: each pixel from the aligned frame closest to ``truth`` there
    (truth: (h, w, 3) float32 in [0, 1] on the result's grid). No stacker can know it; beside an occluding
    edge it is the floor."""
    alignment = result.alignment
    best, oracle = None, None
    for k, info in enumerate(alignment.frames):
        frame = warp_to_reference(read_frame(info), alignment.to_ref[k], alignment.box, alignment.gains[k],
                                  info.full_scale, alignment.shading[k])
        error = ((frame - truth) ** 2).sum(axis=2)
        if best is None:
            best, oracle = error, frame
            continue
        closer = error < best
        best[closer] = error[closer]
        oracle[closer] = frame[closer]
    return oracle
