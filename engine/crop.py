"""The output area: the largest axis-aligned box of the reference grid that every aligned frame covers.

Each frame's footprint in the reference grid is its corner quadrilateral mapped by its transform. For the
near-axis-aligned footprints of a bracket (rotation of a degree or less), the box bounded by the innermost
corner on each side lies inside every footprint, so no output pixel is ever extrapolated.
"""
from __future__ import annotations

import math

import numpy as np

from focusdrop.engine import geometry


class NoCommonArea(ValueError):
    """The aligned frames do not overlap."""


def common_area(to_ref: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1), end exclusive, in reference pixels, seen by every frame.

    to_ref: (N, 3, 3) frame pixel -> reference pixel; width, height: frame size, px.
    """
    left, top, right, bottom = 0.0, 0.0, width - 1.0, height - 1.0
    for matrix in to_ref:
        tl, tr, br, bl = geometry.apply(matrix, geometry.corners(width, height))
        left, right = max(left, tl[0], bl[0]), min(right, tr[0], br[0])
        top, bottom = max(top, tl[1], tr[1]), min(bottom, bl[1], br[1])
    x0, y0 = math.ceil(left - 1e-6), math.ceil(top - 1e-6)
    x1, y1 = math.floor(right + 1e-6) + 1, math.floor(bottom + 1e-6) + 1
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise NoCommonArea("the aligned frames share no usable common area")
    return x0, y0, x1, y1
