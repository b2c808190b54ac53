"""Depth-map fusion: a soft per-pixel choice of the sharpest frames, streamed one frame at a time.

Every frame k weighs w_k = (F_k / S + floor) ** p at each pixel (F_k its focus measure, engine.focus; S a
scale fixed by the first frame; p = 8), and the result is sum(w_k I_k) / sum(w_k): the 2-4 sharpest
frames blend, which averages noise. Where no frame is sharper than the floor, or none stands out from the
others in focus (plain background, where the first blend would average every frame), a second
blend weights each frame by its focus spread wide (engine.focus.nearby_focus), so beside an edge the frame
sharp at that edge supplies the background rather than the frames that smear the edge's blur over it:
depth-map inpainting in spirit (as focus-stack's). ``depth`` says which frame supplies each pixel
(engine.masks). Measurements and what was tried: docs/measurements.md.
"""
from __future__ import annotations

from statistics import NormalDist

import cv2
import numpy as np

from focusdrop.engine.masks import owner_map

NOISE_PERCENTILE, NOISE_FACTOR, MAX_FLOOR = 10.0, 50.0, 0.05
CONFIDENCE_SIGMA = 2.0  # px
PLAIN_BELOW = 0.25  # sharpness (focus / floor) below which a pixel is plain: the second blend, full
MAX_RATIO = 1000.0  # focus / S beyond which S is raised: 1000 ** 8 is far below float32's 3e38
NEARBY_POWER = 8  # the second blend's: the frame sharp at the nearest edges takes the plain area beside them
CLEAR_BELOW, CLEAR_ABOVE = 1.4, 1.8  # focus contrast (best frame's over the frames' mean) below which a pixel
# is plain whatever its sharpness, above which the first blend may take it: for CLEAR_FRAMES frames. The
# largest of N noisy values stands further above their mean as N grows, so the ramp's distance from 1 is
# scaled by the expected largest of N normal draws (_expected_largest) over that of CLEAR_FRAMES
CLEAR_FRAMES = 6  # the bracket the ramp was measured on (docs/measurements.md)
CONTRAST_SIGMAS = (CONFIDENCE_SIGMA, 6.0)  # px: windows of the contrast; the smaller contrast counts
BAND_ROWS = 64  # rows blended at a time: the weight spread over the channels stays in the cache, and no
# frame-sized copy of it is kept (280 MB at 24 MP); 1.6x faster than one pass over the whole frame


class DepthmapFusion:
    """Running soft depth-map fusion of frames on one pixel grid.

    shape: (H, W, C) of the frames; power: p, the sharpness of the choice (higher: closer to arg-max).
    """

    def __init__(self, shape: tuple[int, int, int], power: float = 8.0):
        h, w, channels = shape
        self.power = np.float32(power)
        self._floor = np.float32(10.0 ** (-30.0 / power))
        self._scale: np.float32 | None = None
        self._sum = np.zeros((h, w, channels), np.float32)    # sum of w_k * I_k
        self._weight = np.zeros((h, w), np.float32)            # sum of w_k
        self._best = np.zeros((h, w), np.float32)              # largest focus so far
        self._focus_sum = np.zeros((h // 2 or 1, w // 2 or 1), np.float32)  # sum of the frames' focus, at half
        # size: only its blur at CONTRAST_SIGMAS is used (69 MB less at 24 MP)
        self._count = 0
        self._depth = np.zeros((h, w), np.uint8)               # index of the frame that had it
        self._band = np.empty((BAND_ROWS, w, channels), np.float32)  # a band of the weight, once per channel
        self._flat_sum = np.zeros((h, w, channels), np.float32)   # the second blend, for plain areas
        self._flat_weight = np.zeros((h, w), np.float32)
        self._sharp: np.ndarray | None = None  # _sharpness(), once the frames are in
        self._result: np.ndarray | None = None  # result(), made in the running sums' memory
        for plane in (self._sum, self._weight, self._best, self._focus_sum, self._depth, self._flat_sum,
                      self._flat_weight):
            plane.fill(0)  # the pages mapped now, not in the first add, where the next frame's reading and
            # resampling fault pages in at the same time: that first add took 0.3-0.6 s instead of 0.06

    def add(self, image: np.ndarray, focus: np.ndarray, nearby: np.ndarray, index: int) -> None:
        """Blend in one frame.

        image: (H, W, C) float32, values in [0, 1]; focus: (H, W) float32 >= 0, zero where the frame has
        no pixels; nearby: the focus spread wide, at a quarter of the size (engine.focus.nearby_focus);
        index: the frame's position in the stack, up to 255. ``focus`` is consumed (overwritten).
        """
        if self._result is not None:
            raise RuntimeError("the fusion's result was taken; a frame cannot be added after it")
        self._sharp = None
        if self._scale is None:
            noise, high = np.percentile(focus[::4, ::4], (NOISE_PERCENTILE, 99.9))
            self._scale = np.float32(max(high, 1e-12))
            self._floor = np.float32(max(self._floor, min(NOISE_FACTOR * noise / self._scale, MAX_FLOOR)))
        if index > 255:
            raise ValueError("depth-map fusion takes up to 256 frames")
        np.copyto(self._depth, np.uint8(index), where=focus > self._best)
        self._focus_sum += cv2.resize(focus, self._focus_sum.shape[::-1], interpolation=cv2.INTER_AREA)
        self._count += 1
        np.maximum(self._best, focus, out=self._best)
        weight = focus
        weight *= 1.0 / self._scale
        peak = float(weight.max())
        if peak > MAX_RATIO:
            weight *= 1.0 / peak
            self._scale = np.float32(self._scale * peak)
            shrink = np.float32(peak ** -float(self.power))
            self._weight *= shrink
            self._sum *= shrink
            shrink = np.float32(peak ** -float(NEARBY_POWER))
            self._flat_weight *= shrink
            self._flat_sum *= shrink
        weight += self._floor
        self._accumulate(self._sum, self._weight, image, _power(weight, self.power))
        nearby = cv2.resize(nearby, focus.shape[::-1], dst=focus, interpolation=cv2.INTER_LINEAR)  # its memory
        nearby *= 1.0 / self._scale
        nearby += self._floor
        self._accumulate(self._flat_sum, self._flat_weight, image, _power(nearby, NEARBY_POWER))

    def _accumulate(self, total: np.ndarray, weights: np.ndarray, image: np.ndarray, weight: np.ndarray) -> None:
        weights += weight
        if image.shape[2] != 3:
            total += image * weight[..., None]
            return
        for top in range(0, len(image), BAND_ROWS):  # OpenCV: 3x faster than a broadcast multiply-add
            rows = slice(top, top + BAND_ROWS)
            spread = cv2.cvtColor(weight[rows], cv2.COLOR_GRAY2RGB, dst=self._band[:len(weight[rows])])
            cv2.accumulateProduct(image[rows], spread, total[rows])

    def _sharpness(self) -> np.ndarray:
        """(H, W) float32: the largest focus over a few pixels, in units of the floor (1: as sharp as the
        floor). An edge is above 1; a speck of noise above the floor is not, once blurred. Computed once
        for ``result`` and ``depth`` together."""
        if self._sharp is None:
            best = cv2.GaussianBlur(self._best, (0, 0), CONFIDENCE_SIGMA)
            self._sharp = best * np.float32(1.0 / (self._floor * self._scale))
        return self._sharp

    def _clarity(self) -> np.ndarray:
        """(H, W) float32 in [0, 1]: whether one frame stands out in focus here (1) or none does (0), from
        the best frame's focus over the frames' mean, in two windows (CONTRAST_SIGMAS), the lower. Where the
        frames are all near the noise floor, the first blend's weights are nearly equal and it averages every
        frame, blurred skirts of nearby edges included: such pixels go to the second blend however sharp.
        With many frames the best of them stands out by chance alone; there the first blend's choice would
        be a patchwork of frames whose brightness differs (a bright surrounding's blur spreads into some),
        hence the ramp's stretch with the frame count."""
        contrast = None
        for sigma in CONTRAST_SIGMAS:
            best = (self._sharpness() * (self._floor * self._scale) if sigma == CONFIDENCE_SIGMA  # blurred once
                    else cv2.GaussianBlur(self._best, (0, 0), sigma))
            half = cv2.GaussianBlur(self._focus_sum, (0, 0), sigma * self._focus_sum.shape[1] / best.shape[1])
            mean = cv2.resize(half, best.shape[::-1], interpolation=cv2.INTER_LINEAR)
            mean *= np.float32(1.0 / self._count)
            ratio = np.divide(best, np.maximum(mean, np.float32(1e-30), out=mean), out=mean)  # in place: each
            # frame-sized temporary costs the kernel fresh pages (0.07 s per 100 MB)
            contrast = ratio if contrast is None else np.minimum(contrast, ratio, out=contrast)
        stretch = _expected_largest(self._count) / _expected_largest(CLEAR_FRAMES)
        below, above = 1.0 + (CLEAR_BELOW - 1.0) * stretch, 1.0 + (CLEAR_ABOVE - 1.0) * stretch
        contrast -= np.float32(below)
        contrast *= np.float32(1.0 / (above - below))
        return np.clip(contrast, 0.0, 1.0, out=contrast)

    def result(self) -> np.ndarray:
        """The fused image, (H, W, C) float32, once every frame is in: the focus blend where a frame is
        sharp, the blend by focus nearby where none is. It is made in the running sums' memory (no frame
        can be added after it)."""
        if self._result is not None:
            return self._result
        sharp = np.divide(self._sum, self._weight[..., None], out=self._sum)
        plain = np.divide(self._flat_sum, self._flat_weight[..., None], out=self._flat_sum)
        trust = np.subtract(self._sharpness(), np.float32(PLAIN_BELOW))
        trust *= np.float32(1.0 / PLAIN_BELOW)
        np.clip(trust, 0.0, 1.0, out=trust)
        trust *= self._clarity()
        trust = trust[..., None]
        sharp -= plain
        sharp *= trust
        sharp += plain
        self._result = sharp
        return sharp

    def depth(self) -> np.ndarray:
        """Which frame supplies each pixel, (H, W) uint8 (``engine.masks.owner_map``): the sharpest, where
        a frame is sharper than the noise floor (``_sharpness``); elsewhere the frame of the nearest pixel
        where one is."""
        return owner_map(self._depth, self._sharpness() > 1.0)


def _expected_largest(count: int) -> float:
    """Expected largest of ``count`` (at least 2) standard normal draws, by Blom's approximation."""
    count = max(count, 2)
    return NormalDist().inv_cdf((count - 0.375) / (count + 0.25))


def _power(values: np.ndarray, power: float) -> np.ndarray:
    """values ** power, in place; repeated squaring for 2, 4, 8, 16 (10x faster than np.power)."""
    if power in (2, 4, 8, 16):
        for _ in range(int(power).bit_length() - 1):
            np.multiply(values, values, out=values)
        return values
    return np.power(values, power, out=values)
