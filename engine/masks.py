"""Layer masks a retoucher can read: which frame supplies each pixel, as Photoshop's Auto-Blend shows it.

The fused image is a soft blend of the 2-4 sharpest frames at each pixel; written as exact blend weights,
every plain-background pixel is mid-grey speckle in every mask, and no mask says which frame supplies a
pixel. So the masks show ownership instead: each pixel belongs to the frame that is sharpest there
(the arg-max of the focus measure), where that frame is clearly sharp; flat areas, where no frame is,
belong to the nearest pixel that is (depth-map inpainting by nearest neighbour, so a plain background takes
the frame of the edge beside it rather than noise), and a median filter removes single-pixel islands.
Each frame's mask is then white where it owns, black elsewhere, feathered over a pixel where frames meet.
The layered document shows the exact blend on a layer above these (engine.psd, bridge.stacking).
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

MEDIAN_SIZE = 5    # px: islands smaller than about half of this go
FEATHER_SIGMA = 1.0


def owner_map(sharpest: np.ndarray, confident: np.ndarray) -> np.ndarray:
    """Which frame supplies each pixel.

    sharpest: (H, W) integer index of the frame with the highest focus measure; confident: (H, W) bool,
    where that frame is clearly sharp. Returns (H, W) uint8 frame indices (stacks of up to 256 frames).
    """
    if sharpest.shape != confident.shape:
        raise ValueError(f"owner_map: shapes {sharpest.shape} and {confident.shape} differ")
    if sharpest.max(initial=0) > 255:
        raise ValueError("owner_map: more than 256 frames")
    owners = sharpest.astype(np.uint8)
    if confident.any() and not confident.all():
        unsure = (~confident).astype(np.uint8)
        _, labels = cv2.distanceTransformWithLabels(unsure, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        owners = owners[confident][labels - 1]  # labels number the confident pixels in raster order, from 1
    return cv2.medianBlur(owners, MEDIAN_SIZE)


def region_masks(owners: np.ndarray, count: int, dtype: np.dtype = np.uint16) -> Iterator[np.ndarray]:
    """The layer masks of ``count`` frames stacked bottom (frame 0) to top, each over the ones below.

    owners: (H, W) frame indices (``owner_map``); dtype: uint8 or uint16, the document's depth. Yields
    (H, W) masks of ``dtype``, bottom first: the bottom one white, each other white where its frame owns,
    black elsewhere, feathered at the seams (its ownership blurred, a_k, over that of the frames so far,
    a_0 + ... + a_k), so that the masks composited bottom-up weigh each pixel's frames to a sum of 1.
    The blur works on 8-bit ownership (255 levels across a one-pixel seam are plenty), the division
    saturates to ``dtype``: at 24 MP, 0.1 s a mask against 0.35 s in float.
    """
    white = np.iinfo(dtype).max
    depth = cv2.CV_8U if np.dtype(dtype) == np.uint8 else cv2.CV_16U
    below = np.zeros(owners.shape, np.uint16)  # the feathered ownership of the frames so far, 0-255 each
    share = np.empty(owners.shape, np.uint8)
    for k in range(count):
        np.equal(owners, k, out=share.view(bool))
        share *= 255
        cv2.GaussianBlur(share, (0, 0), FEATHER_SIGMA, dst=share)
        cv2.add(below, share, dst=below, dtype=cv2.CV_16U)
        if k == 0:
            yield np.full(owners.shape, white, dtype)
            continue
        yield cv2.divide(share, below, scale=float(white), dtype=depth)
