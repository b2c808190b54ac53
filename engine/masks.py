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


def region_masks(owners: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """The layer masks of ``count`` frames stacked bottom (frame 0) to top, each over the ones below.

    owners: (H, W) frame indices (``owner_map``). Yields (H, W) float32 masks in [0, 1], bottom first:
    the bottom one white, each other white where its frame owns, black elsewhere, feathered at the seams
    so that the masks composited bottom-up give each pixel a weight summing to 1 over the frames.
    """
    below = np.zeros(owners.shape, np.float32)  # the feathered ownership of the frames below so far
    for k in range(count):
        share = cv2.GaussianBlur((owners == k).astype(np.float32), (0, 0), FEATHER_SIGMA)
        below += share
        if k == 0:
            yield np.ones(owners.shape, np.float32)
            continue
        yield np.divide(share, below, out=np.zeros_like(share), where=below > 1e-6)
