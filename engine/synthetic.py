"""Synthetic focus brackets with ground truth: the project's yardstick for alignment and fusion.

A textured scene lies on a known depth map (tilted plane, sphere before a tilted background, steps). Frame k
is focused at depth k / (N - 1): each pixel is blurred, in linear light as a lens blurs, by a Gaussian whose
sigma grows linearly with its distance from that depth (a thin-lens circle of confusion, no occlusion). The frame is then moved as
real brackets move (magnification change from focus breathing, shake, rotation), its exposure flickers,
and sensor noise and quantisation are added. The middle frame (index N // 2) is the untouched reference,
so the true all-in-focus image and depth map are in its pixel grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import skimage.data

from engine import geometry
from engine.exposure import GAMMA

SCENES = ("tilted", "sphere", "steps")


@dataclass(frozen=True)
class BracketSpec:
    """What to render. Distances in pixels, angles in degrees, fractions as 0.02 for 2 %."""

    width: int = 1200
    height: int = 800
    frames: int = 9
    scene: str = "sphere"
    max_blur: float = 8.0      # blur sigma, px, of a point one full bracket depth away from focus
    breathing: float = 0.02    # magnification change from the first frame to the last
    shake: float = 5.0         # largest shift of a frame, px, in x and in y
    rotation: float = 0.3      # largest rotation of a frame, degrees
    flicker: float = 0.04      # largest exposure change of a frame, linear light
    noise: float = 0.003       # sensor noise sigma, in units of full scale
    bit_depth: int = 16        # 8 or 16
    seed: int = 0


@dataclass(frozen=True)
class Truth:
    """Ground truth of a rendered bracket, in the reference frame's pixel grid.

    image: (H, W, 3) float32 in [0, 1], the all-in-focus scene.
    depth: (H, W) float32 in [0, 1], 0 where frame 0 is in focus, 1 where the last frame is.
    transforms: (N, 3, 3) float64, reference pixel -> frame k pixel.
    gains: (N, 3) float64, linear-light exposure of frame k relative to the reference.
    """

    image: np.ndarray
    depth: np.ndarray
    transforms: np.ndarray
    gains: np.ndarray

    @property
    def reference(self) -> int:
        return len(self.transforms) // 2


def scene_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photograph (scikit-image's coffee) with added fine texture. Returns (H, W, 3) float32 in [0, 1].

    The texture gives every region detail down to the pixel scale, so every region has a frame in which
    it is measurably sharp, as a real subject under a macro lens has.
    """
    rng = np.random.default_rng(seed)
    base = cv2.resize(skimage.data.coffee().astype(np.float32) / 255.0, (width, height),
                      interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.standard_normal((height, width, 3), dtype=np.float32), (0, 0), 0.8)
    mid = cv2.GaussianBlur(rng.standard_normal((height, width, 3), dtype=np.float32), (0, 0), 3.0)
    image = 0.05 + 0.85 * base + 0.10 * fine / fine.std() + 0.05 * mid / mid.std()
    return np.clip(image, 0.0, 1.0)


def depth_map(scene: str, width: int, height: int) -> np.ndarray:
    """Depth of every pixel, 0 nearest, 1 farthest. Returns (H, W) float32 in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = x / max(width - 1, 1), y / max(height - 1, 1)
    if scene == "tilted":
        return (0.8 * x + 0.2 * y).astype(np.float32)
    if scene == "sphere":
        background = 0.6 + 0.4 * x
        r = 0.35 * min(width, height)
        dx, dy = (x - 0.5) * (width - 1), (y - 0.5) * (height - 1)
        inside = np.clip(1.0 - (dx * dx + dy * dy) / (r * r), 0.0, 1.0)
        sphere = 0.45 * (1.0 - np.sqrt(inside))
        return np.where(inside > 0, sphere, background).astype(np.float32)
    if scene == "steps":
        bands = np.array([0.33, 1.0, 0.0, 0.67], dtype=np.float32)
        return bands[np.minimum((x * 4).astype(int), 3)]
    raise ValueError(f"unknown scene {scene!r}; choose one of {', '.join(SCENES)}")


def _blur_levels(max_blur: float) -> np.ndarray:
    """Blur sigmas, px, between which each pixel's blur is interpolated."""
    steps = [0.0, 0.4, 0.8, 1.2]
    while steps[-1] < max_blur:
        steps.append(steps[-1] * 1.35)
    return np.array(steps, dtype=np.float32)


def _random_motion(spec: BracketSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame transforms (N, 3, 3), reference -> frame, and linear gains (N, 3)."""
    n, ref = spec.frames, spec.frames // 2
    centre = ((spec.width - 1) / 2, (spec.height - 1) / 2)
    transforms, gains = [], []
    for k in range(n):
        if k == ref:
            transforms.append(np.eye(3))
            gains.append(np.ones(3))
            continue
        scale = 1.0 + spec.breathing * (k - ref) / max(n - 1, 1)
        angle = rng.uniform(-spec.rotation, spec.rotation)
        shift = tuple(rng.uniform(-spec.shake, spec.shake, 2))
        transforms.append(geometry.similarity(scale, angle, shift, centre))
        exposure = 1.0 + rng.uniform(-spec.flicker, spec.flicker)
        gains.append(exposure * (1.0 + rng.uniform(-0.005, 0.005, 3)))
    return np.array(transforms), np.array(gains)


def render_bracket(spec: BracketSpec) -> tuple[Truth, Iterator[np.ndarray]]:
    """Render a focus bracket lazily.

    Returns the ground truth and an iterator over the N frames in focus order, each (H, W, 3) uint8 or
    uint16 as ``spec.bit_depth`` says. Memory: the scene at a dozen blur levels plus one frame.
    """
    if spec.frames < 2:
        raise ValueError("a bracket needs at least 2 frames")
    if spec.bit_depth not in (8, 16):
        raise ValueError("bit_depth must be 8 or 16")
    rng = np.random.default_rng(spec.seed)
    image = scene_image(spec.width, spec.height, spec.seed)
    depth = depth_map(spec.scene, spec.width, spec.height)
    transforms, gains = _random_motion(spec, rng)
    truth = Truth(image, depth, transforms, gains)
    return truth, _frames(spec, truth, rng)


def _frames(spec: BracketSpec, truth: Truth, rng: np.random.Generator) -> Iterator[np.ndarray]:
    levels = _blur_levels(spec.max_blur)
    linear = truth.image ** GAMMA
    blurred = [linear if s == 0 else cv2.GaussianBlur(linear, (0, 0), float(s),
                                                      borderType=cv2.BORDER_REFLECT101)
               for s in levels]
    del linear
    full_scale = 255.0 if spec.bit_depth == 8 else 65535.0
    dtype = np.uint8 if spec.bit_depth == 8 else np.uint16
    for k in range(spec.frames):
        focus = k / (spec.frames - 1)
        sigma = np.minimum(spec.max_blur * np.abs(truth.depth - focus), levels[-1])
        frame = np.zeros_like(truth.image)
        for j, level in enumerate(blurred):
            lo = levels[j - 1] if j > 0 else levels[0] - 1.0
            hi = levels[j + 1] if j + 1 < len(levels) else levels[-1] + 1.0
            weight = np.where(sigma <= levels[j], (sigma - lo) / (levels[j] - lo),
                              (hi - sigma) / (hi - levels[j]))
            weight = np.clip(weight, 0.0, 1.0, out=weight).astype(np.float32)
            if weight.any():
                frame += weight[..., None] * level
        frame **= 1.0 / GAMMA
        frame = cv2.warpAffine(frame, truth.transforms[k][:2], (spec.width, spec.height),
                               flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        frame *= (truth.gains[k] ** (1.0 / GAMMA)).astype(np.float32)
        frame += spec.noise * rng.standard_normal(frame.shape, dtype=np.float32)
        np.clip(frame * full_scale + 0.5, 0, full_scale, out=frame)
        yield frame.astype(dtype)
