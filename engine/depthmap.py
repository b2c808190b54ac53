"""Depth-map fusion: a soft per-pixel choice of the sharpest frames, streamed one frame at a time.

Every frame k gets the weight w_k = F_k ** p at each pixel, F_k its focus measure (p = 4 by default), and
the output is sum(w_k I_k) / sum(w_k). Soft weights beat a hard arg-max by 1.3-2.3 dB in the shared/notes
calibration: neighbouring frames differ little in blur, and blending the 2-4 sharpest averages out noise.

Streaming keeps a running maximum M of F and sums scaled by it, (F_k / M) ** p, rescaled whenever M grows
(the log-sum-exp trick), so p-th powers never underflow in flat regions and never overflow at edges.
Each ``add`` also returns that frame's layer mask w_k / (w_1 + ... + w_k): stacking the frames bottom-up
in a layered document, each over the ones before it through its mask, reproduces the fused image.
"""
from __future__ import annotations

import numpy as np

TINY = np.float32(1e-12)  # focus floor: where every frame is flat, every frame weighs the same


def _power(values: np.ndarray, p: float) -> np.ndarray:
    """values ** p in place; p = 4 and 2 take the fast path of repeated squaring."""
    if p == 4:
        np.multiply(values, values, out=values)
        return np.multiply(values, values, out=values)
    if p == 2:
        return np.multiply(values, values, out=values)
    return np.power(values, np.float32(p), out=values)


class DepthmapFusion:
    """Running soft depth-map fusion of frames on one pixel grid.

    shape: (H, W, C) of the frames; power: p, the sharpness of the choice (higher: closer to arg-max).
    """

    def __init__(self, shape: tuple[int, int, int], power: float = 4.0):
        h, w, channels = shape
        self.power = power
        self._sum = np.zeros((h, w, channels), np.float32)    # sum of (F_k / M) ** p * I_k
        self._weight = np.zeros((h, w), np.float32)            # sum of (F_k / M) ** p
        self._max = np.zeros((h, w), np.float32)               # M, the largest focus so far
        self._depth = np.zeros((h, w), np.uint16)              # index of the frame that set M

    def add(self, image: np.ndarray, focus: np.ndarray, index: int) -> np.ndarray:
        """Blend in one frame.

        image: (H, W, C) float32 in [0, 1]; focus: (H, W) float32 >= 0, zero where the frame has no
        pixels; index: the frame's position in the stack. Returns this frame's layer mask, (H, W) float32
        in [0, 1]. ``focus`` is consumed (overwritten).
        """
        focus += TINY
        sharper = focus > self._max
        self._depth[sharper] = index
        rescale = np.divide(self._max, focus, out=np.ones_like(focus), where=sharper)
        np.maximum(self._max, focus, out=self._max)
        weight = _power(np.divide(focus, self._max, out=focus), self.power)
        _power(rescale, self.power)
        self._weight *= rescale
        self._weight += weight
        self._sum *= rescale[..., None]
        self._sum += weight[..., None] * image
        return np.divide(weight, self._weight, out=weight)

    def result(self) -> np.ndarray:
        """The fused image so far, (H, W, C) float32 in [0, 1]."""
        return self._sum / self._weight[..., None]

    def depth(self) -> np.ndarray:
        """Index of the sharpest frame at each pixel, (H, W) uint16."""
        return self._depth
