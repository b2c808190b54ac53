"""Synthetic focus brackets with ground truth: the project's yardstick for alignment and fusion.

Two ways of rendering defocus. The continuous scenes (tilted plane, sphere before a tilted background,
steps) lie on a known depth map: each pixel is blurred, in linear light as a lens blurs, by a Gaussian whose
sigma grows linearly with its distance from the frame's focus depth (a thin-lens circle of confusion, no
occlusion). The "strands" scene is layered, the way halos arise in real brackets: thin dark strands (legs,
ring prongs, hairs, wires) near the lens over a bright, plain far background. Each surface is blurred
by a disc (the lens aperture) whose radius grows with |depth - focus depth|, and the surfaces are composited
far to near with premultiplied "over" (Porter & Duff 1984), so a blurred strand spreads a dark skirt over
the background and a sharp one hides the blurred background behind it. The "ledges" scene is the steps
scene layered the same way: each band an opaque surface that continues behind the nearer ones, so that at
every step the near edge's blur spreads over the far band, as at a real step, and no frame shows the far
band sharp right up to the edge.

Frame k is focused at depth k / (N - 1). It is then moved as real brackets move (magnification change from
focus breathing, shake, rotation), its exposure flickers, an optional colour cast that depends on the focus
and varies smoothly across the frame (vignetting that changes with focus distance, the tint of resin or
water) is applied, and sensor noise and quantisation are added. The middle frame (index N // 2) is the
untouched reference, so the true all-in-focus image and depth map are in its pixel grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np
import skimage.data

from focusdrop.engine import geometry
from focusdrop.engine.exposure import GAMMA

SCENES = ("tilted", "sphere", "steps", "strands", "ledges")
STRANDS = 14  # strands in the "strands" scene


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
    cast: float = 0.0          # largest focus-dependent colour and brightness change across the frame
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


@dataclass(frozen=True)
class Surface:
    """One flat surface of a layered scene, inside its box (x0, y0, x1, y1) of the reference grid.

    colour: (h, w, 3) float32, linear light premultiplied by alpha; alpha: (h, w) float32 coverage in
    [0, 1]; depth: in [0, 1], as for the depth maps.
    """

    box: tuple[int, int, int, int]
    colour: np.ndarray
    alpha: np.ndarray
    depth: float


def strand_surfaces(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, list[Surface]]:
    """The "strands" scene: a plain pale background (linear (H, W, 3) float32, depth 1) and thin dark
    textured strands, 1.5 to 6 px wide, at depths 0 to 0.45, nearest last (the order to composite in)."""
    rng = np.random.default_rng(seed + 7919)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    tint = np.array([0.86, 0.82, 0.72], np.float32) ** GAMMA
    shade = 1.0 + 0.03 * (x / width - 0.5) - 0.02 * (y / height - 0.5)  # a slight, smooth light fall-off
    background = (tint * shade[..., None]).astype(np.float32)
    surfaces = []
    for _ in range(STRANDS):
        ends = rng.uniform((0.05 * width, 0.05 * height), (0.95 * width, 0.95 * height), (4, 2))
        t = np.linspace(0.0, 1.0, 400)[:, None]
        curve = ((1 - t) ** 3 * ends[0] + 3 * (1 - t) ** 2 * t * ends[1] + 3 * (1 - t) * t ** 2 * ends[2]
                 + t ** 3 * ends[3])  # a cubic Bezier: a leg, a hair, a prong
        thickness = rng.uniform(1.5, 6.0)
        pad = int(thickness) + 3
        x0, y0 = np.floor(curve.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(curve.max(axis=0)).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        supersample = 4
        canvas = np.zeros(((y1 - y0) * supersample, (x1 - x0) * supersample), np.uint8)
        points = np.round((curve - (x0, y0) + 0.5) * supersample - 0.5).astype(np.int32)
        cv2.polylines(canvas, [points], False, 255, int(round(thickness * supersample)), cv2.LINE_AA)
        alpha = cv2.resize(canvas.astype(np.float32) / 255.0, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        texture = cv2.GaussianBlur(rng.standard_normal((y1 - y0, x1 - x0), dtype=np.float32), (0, 0), 0.7)
        base = rng.uniform(0.04, 0.12) * np.array([1.0, 0.8, 0.6], np.float32)
        colour = base * np.clip(1.0 + 0.6 * texture / texture.std(), 0.2, 2.5)[..., None]
        surfaces.append(Surface((x0, y0, x1, y1), (colour ** GAMMA * alpha[..., None]).astype(np.float32),
                                alpha, float(rng.uniform(0.0, 0.45))))
    surfaces.sort(key=lambda s: -s.depth)
    return background, surfaces


def ledge_surfaces(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, list[Surface]]:
    """The "ledges" scene: the steps scene's four bands as opaque surfaces. The farthest band is the
    background (linear (H, W, 3) float32, depth 1); each nearer band is a surface that also covers the bands
    nearer than it (it continues behind them), farthest first. All show the same textured photograph."""
    linear = (scene_image(width, height, seed) ** GAMMA).astype(np.float32)
    depth = depth_map("steps", width, height)
    surfaces = []
    for level in sorted(set(np.unique(depth).tolist()) - {1.0}, reverse=True):
        alpha = (depth <= level).astype(np.float32)
        surfaces.append(Surface((0, 0, width, height), linear * alpha[..., None], alpha, float(level)))
    return linear, surfaces


def disc_kernel(radius: float) -> np.ndarray | None:
    """A lens aperture's blur: an anti-aliased disc of ``radius`` px, summing to 1 ((2n+1, 2n+1) float32),
    or None below half a pixel."""
    if radius < 0.5:
        return None
    n = int(np.ceil(radius))
    y, x = np.mgrid[-n:n + 1, -n:n + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0).astype(np.float32)
    return kernel / kernel.sum()


def composite_layers(background: np.ndarray, surfaces: list[Surface], radius_of: Callable[[float], float]) -> np.ndarray:
    """Render the layered scene: background, then each surface over it far to near, each blurred by a disc
    of radius ``radius_of(depth)`` px. Returns (H, W, 3) float32 linear light."""
    height, width, _ = background.shape
    kernel = disc_kernel(radius_of(1.0))
    out = background.copy() if kernel is None else cv2.filter2D(background, -1, kernel,
                                                                 borderType=cv2.BORDER_REFLECT101)
    for surface in surfaces:
        kernel = disc_kernel(radius_of(surface.depth))
        pad = 0 if kernel is None else kernel.shape[0] // 2 + 1
        x0, y0, x1, y1 = surface.box
        bx0, by0, bx1, by1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, width), min(y1 + pad, height)
        rgba = np.zeros((by1 - by0, bx1 - bx0, 4), np.float32)
        rgba[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0, :3] = surface.colour
        rgba[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0, 3] = surface.alpha
        if kernel is not None:
            rgba = cv2.filter2D(rgba, -1, kernel, borderType=cv2.BORDER_REFLECT101)  # a ledge goes on past the frame
        below = out[by0:by1, bx0:bx1]
        below *= 1.0 - rgba[..., 3:]
        below += rgba[..., :3]
    return out


def cast_field(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colour and brightness field across the frame, (H, W, 3) float32 in [-1, 1]: a tilt and a
    radial fall-off per channel, as vignetting and a medium's tint make."""
    rng = np.random.default_rng(seed + 104729)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = 2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1
    radial = x * x + y * y - 0.67
    field = np.empty((height, width, 3), np.float32)
    common = rng.uniform(-1, 1, 3)
    for c in range(3):
        a, b, e = 0.5 * common + 0.5 * rng.uniform(-1, 1, 3)
        field[..., c] = a * x + b * y + e * radial
    return field / np.abs(field).max()


def render_bracket(spec: BracketSpec) -> tuple[Truth, Iterator[np.ndarray]]:
    """Render a focus bracket lazily.

    Returns the ground truth and an iterator over the N frames in focus order, each (H, W, 3) uint8 or
    uint16 as ``spec.bit_depth`` says. Memory: the scene at a dozen blur levels plus one frame.
    """
    if spec.frames < 2:
        raise ValueError("a bracket needs at least 2 frames")
    if spec.bit_depth not in (8, 16):
        raise ValueError("bit_depth must be 8 or 16")
    if spec.scene not in SCENES:
        raise ValueError(f"unknown scene {spec.scene!r}; choose one of {', '.join(SCENES)}")
    rng = np.random.default_rng(spec.seed)
    if spec.scene in ("strands", "ledges"):
        layered = strand_surfaces if spec.scene == "strands" else ledge_surfaces
        background, surfaces = layered(spec.width, spec.height, spec.seed)
        image = composite_layers(background, surfaces, lambda depth: 0.0) ** (1.0 / GAMMA)
        depth = np.ones((spec.height, spec.width), np.float32)
        for s in surfaces:  # far to near: the nearest surface that covers a pixel is its depth
            x0, y0, x1, y1 = s.box
            np.copyto(depth[y0:y1, x0:x1], np.float32(s.depth), where=s.alpha > 0.5)
        linear = _layered_defocus(spec, background, surfaces)
    else:
        image = scene_image(spec.width, spec.height, spec.seed)
        depth = depth_map(spec.scene, spec.width, spec.height)
        linear = _gaussian_defocus(spec, image, depth)
    transforms, gains = _random_motion(spec, rng)
    truth = Truth(image.astype(np.float32), depth, transforms, gains)
    return truth, _camera(spec, truth, linear, rng)


def _focus_depth(spec: BracketSpec, k: int) -> float:
    return k / (spec.frames - 1)


def _layered_defocus(spec: BracketSpec, background: np.ndarray, surfaces: list[Surface]) -> Iterator[np.ndarray]:
    """Linear-light frames of a layered scene, in focus order. A disc of radius R has a standard deviation
    of R / 2, so R = 2 max_blur |depth - focus| blurs about as much as the continuous scenes."""
    for k in range(spec.frames):
        focus = _focus_depth(spec, k)
        yield composite_layers(background, surfaces, lambda depth: 2.0 * spec.max_blur * abs(depth - focus))


def _gaussian_defocus(spec: BracketSpec, image: np.ndarray, depth: np.ndarray) -> Iterator[np.ndarray]:
    """Linear-light frames of a continuous scene, in focus order: per-pixel Gaussian blur, interpolated
    between a dozen blur levels of the whole image."""
    levels = _blur_levels(spec.max_blur)
    linear = image ** GAMMA
    blurred = [linear if s == 0 else cv2.GaussianBlur(linear, (0, 0), float(s),
                                                      borderType=cv2.BORDER_REFLECT101)
               for s in levels]
    del linear
    for k in range(spec.frames):
        sigma = np.minimum(spec.max_blur * np.abs(depth - _focus_depth(spec, k)), levels[-1])
        frame = np.zeros_like(image)
        for j, level in enumerate(blurred):
            lo = levels[j - 1] if j > 0 else levels[0] - 1.0
            hi = levels[j + 1] if j + 1 < len(levels) else levels[-1] + 1.0
            weight = np.where(sigma <= levels[j], (sigma - lo) / (levels[j] - lo),
                              (hi - sigma) / (hi - levels[j]))
            weight = np.clip(weight, 0.0, 1.0, out=weight).astype(np.float32)
            if weight.any():
                frame += weight[..., None] * level
        yield frame


def _camera(spec: BracketSpec, truth: Truth, linear: Iterator[np.ndarray],
            rng: np.random.Generator) -> Iterator[np.ndarray]:
    """What the camera makes of each linear frame: the colour cast, gamma, the frame's motion and
    exposure, noise, and quantisation. The cast is (k - ref) / (the farthest frame's k - ref) times
    ``spec.cast`` times a smooth field, so the reference frame has none."""
    full_scale = 255.0 if spec.bit_depth == 8 else 65535.0
    dtype = np.uint8 if spec.bit_depth == 8 else np.uint16
    ref = truth.reference
    field = cast_field(spec.width, spec.height, spec.seed) if spec.cast else None
    for k, frame in enumerate(linear):
        if field is not None:
            frame *= 1.0 + (spec.cast * (k - ref) / max(ref, spec.frames - 1 - ref)) * field
        np.maximum(frame, 0.0, out=frame)  # compositing can leave -1e-16 where a surface is black: no NaN
        frame **= 1.0 / GAMMA
        frame = cv2.warpAffine(frame, truth.transforms[k][:2], (spec.width, spec.height),
                               flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        frame *= (truth.gains[k] ** (1.0 / GAMMA)).astype(np.float32)
        frame += spec.noise * rng.standard_normal(frame.shape, dtype=np.float32)
        np.clip(frame * full_scale + 0.5, 0, full_scale, out=frame)
        yield frame.astype(dtype)
