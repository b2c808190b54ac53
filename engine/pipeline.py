"""The stacking pipeline: check, align (pass 1), fuse (pass 2), one frame in memory at a time.

Pass 1 reads each frame once and keeps only its keypoints and a thumbnail; it matches each frame to the
one before, then chains the transforms to the reference frame, measures exposure gains and the common
area. Pass 2 reads each frame again, warps it onto the output box and adds it to the running fusion. Peak
memory is the fusion state plus one frame and its temporaries, whatever the number of frames.
"""
from __future__ import annotations

import logging
import threading
import time
from functools import partial
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from engine import geometry
from engine.align import AlignmentError, FrameKey, chain_to_reference, featureless, frame_key, register_pair
from engine.crop import NoCommonArea, common_area
from engine.depthmap import DepthmapFusion
from engine.exposure import exposure_gains, thumbnail, thumbnail_factor
from engine.focus import focus_measure, luminance, nearby_focus
from engine.frames import FrameError, FrameInfo, check_stack, probe_frame, read_frame
from engine.prefetch import ordered_map
from engine.pyramid import PyramidFusion
from engine.save import to_integer
from engine.shading import shading_fields
from engine.warp import coverage, warp_to_reference

log = logging.getLogger("focusdrop")

METHODS = ("depthmap", "pyramid")

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): step is "align" or "fuse"."""

LayerSink = Callable[[FrameInfo, np.ndarray], None]
"""on_layer(frame, image): an aligned frame (h, w, C) float32 in [0, 1], in focus order (depth-map method);
its layer mask is drawn from the result's depth map once every frame is in (engine.masks)."""


@dataclass(frozen=True)
class StackOptions:
    """How to stack. reference: index into the frames (None: the middle one); power, noise_sigma and
    spread_sigma tune the depth-map method (see engine.depthmap and engine.focus); also_pyramid: with the
    depth-map method, fuse by the pyramid method too, in the same pass."""

    method: str = "depthmap"
    reference: int | None = None
    crop: bool = True
    power: float = 8.0
    noise_sigma: float = 0.7
    spread_sigma: float = 3.0
    skip_unaligned: bool = False
    also_pyramid: bool = False


@dataclass
class Alignment:
    """Pass 1's result. frames: the frames kept, in focus order; to_ref: (N, 3, 3) frame -> reference
    pixels; gains: (N, C) encoded-value gains; shading: (N, gh, gw, C) smooth encoded-value gain fields
    over the reference frame, on top of ``gains`` (engine.shading); box: output area (x0, y0, x1, y1) in
    reference pixels; matches: inlier matches with the previous kept frame (0 for the first); skipped:
    frames left out."""

    frames: list[FrameInfo]
    to_ref: np.ndarray
    gains: np.ndarray
    shading: np.ndarray
    reference: int
    box: tuple[int, int, int, int]
    matches: list[int]
    skipped: list[FrameInfo] = field(default_factory=list)


@dataclass
class StackResult:
    """image: (h, w, C) at the frames' bit depth; depth: (h, w) uint8 index into alignment.frames of the
    frame that supplies each pixel (depth-map method only; engine.masks.owner_map); pyramid: the pyramid
    method's image when asked for with also_pyramid, else None; timings: seconds per step."""

    image: np.ndarray
    depth: np.ndarray | None
    alignment: Alignment
    timings: dict[str, float]
    pyramid: np.ndarray | None = None


class Timings(dict):
    """Seconds spent per named step, summed over frames and threads."""

    _lock = threading.Lock()

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self[step] = self.get(step, 0.0) + time.perf_counter() - start


def _no_progress(step: str, done: int, total: int) -> None:
    pass


def stack(paths: list[Path], options: StackOptions = StackOptions(), progress: Progress = _no_progress,
          on_layer: LayerSink | None = None) -> StackResult:
    """Align and fuse a focus bracket given in focus order. Raises FrameError for any bad frame."""
    if options.method not in METHODS:
        raise ValueError(f"unknown method {options.method!r}; choose one of {', '.join(METHODS)}")
    if options.reference is not None and not 0 <= options.reference < len(paths):
        raise ValueError(f"reference frame {options.reference} is outside the stack of {len(paths)} frames")
    timings = Timings()
    with timings("probe"):
        infos = [probe_frame(p) for p in paths]
        check_stack(infos)
    alignment = align_frames(infos, options, progress, timings)
    image, depth, pyramid = fuse_frames(alignment, options, progress, timings, on_layer)
    with timings("convert"):
        pixels = to_integer(image, infos[0].dtype)
        del image
        pyramid = None if pyramid is None else to_integer(pyramid, infos[0].dtype)
    return StackResult(pixels, depth, alignment, timings, pyramid)


def _describe(info: FrameInfo, thumb_factor: float, timings: Timings) -> tuple[FrameKey, np.ndarray]:
    """Pass 1's work on one frame: its registration key and a (h, w, C) float32 thumbnail in [0, 1]."""
    with timings("read"):
        pixels = read_frame(info)
    with timings("features"):
        to_unit = np.float32(1.0 / info.full_scale)
        grey = pixels[..., 0] if pixels.shape[2] == 1 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        thumb = thumbnail(pixels, thumb_factor)
        del pixels
        key = frame_key(grey.astype(np.float32) * to_unit)
    return key, thumb


def align_frames(infos: list[FrameInfo], options: StackOptions, progress: Progress = _no_progress,
                 timings: Timings | None = None) -> Alignment:
    """Pass 1: register every frame to the reference, measure exposure gains and the common area."""
    timings = timings if timings is not None else Timings()
    height, width, _ = infos[0].shape
    thumb_factor = thumbnail_factor(width, height)
    kept: list[FrameInfo] = []
    steps, thumbs, matches, skipped = [], [], [], []
    previous = None
    described = ordered_map(partial(_describe, thumb_factor=thumb_factor, timings=timings), infos)
    for i, (info, (key, thumb)) in enumerate(zip(infos, described)):
        progress("align", i + 1, len(infos))
        count = 0
        if kept:
            with timings("register"):
                try:
                    step, count = register_pair(key, previous)
                    steps.append(step)
                except AlignmentError as e:
                    if _leave_out(info, key, kept, previous, e, options) == "this":
                        skipped.append(info)
                        continue
                    skipped.append(kept.pop())
                    thumbs.pop()
                    matches.pop()
        kept.append(info)
        thumbs.append(thumb)
        matches.append(count)
        previous = key
    if len(kept) < 2:
        raise FrameError(kept[0].path, f"none of the other {len(infos) - 1} frames could be aligned to it: "
                                       f"at {width}x{height} the frames are too small or too featureless to align")
    check_stack(kept)
    reference = _reference_index(infos, kept, options.reference)
    to_ref = chain_to_reference(steps, reference)
    with timings("exposure"):
        gains = exposure_gains(thumbs, to_ref, reference, thumb_factor)
        shading = shading_fields(thumbs, to_ref, reference, thumb_factor, gains)
        del thumbs
    try:
        box = common_area(to_ref, width, height) if options.crop else (0, 0, width, height)
    except NoCommonArea as e:
        raise FrameError(kept[0].path, f"{e}; check that every frame shows the same subject") from None
    alignment = Alignment(kept, to_ref, gains, shading, reference, box, matches, skipped)
    _log_alignment(alignment)
    return alignment


def _leave_out(info: FrameInfo, key: FrameKey, kept: list[FrameInfo], previous: FrameKey,
               error: AlignmentError, options: StackOptions) -> str:
    """Which frame to leave out when ``info`` does not register to the last kept frame: "this" one, or
    the "previous" (only ever the first frame: a blank or hopelessly blurred start of the bracket).
    Raises FrameError when the stack should fail instead."""
    if featureless(key):
        log.warning("skipped %s: blurred past recognition (%d features) and unlike %s; it has no detail to add",
                    info.path.name, len(key.points), kept[-1].path.name)
        return "this"
    if len(kept) == 1 and featureless(previous):
        log.warning("skipped %s: blurred past recognition and unlike %s; it has no detail to add",
                    kept[0].path.name, info.path.name)
        return "previous"
    problem = (f"cannot be aligned to {kept[-1].path.name}: {error}; is it the same subject, or blurred "
               f"beyond recognition?")
    if not options.skip_unaligned:
        raise FrameError(info.path, problem)
    if len(kept) == 1:
        log.warning("skipped %s: %s cannot be aligned to it (%s)", kept[0].path.name, info.path.name, error)
        return "previous"
    log.warning("skipped %s: %s", info.path.name, problem)
    return "this"


def _reference_index(infos: list[FrameInfo], kept: list[FrameInfo], wanted: int | None) -> int:
    if wanted is None:
        return len(kept) // 2
    if infos[wanted] not in kept:
        raise FrameError(infos[wanted].path, "was chosen as the reference but could not be aligned")
    return kept.index(infos[wanted])


def _log_alignment(alignment: Alignment) -> None:
    height, width, _ = alignment.frames[0].shape
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    for info, matrix, gain, count in zip(alignment.frames, alignment.to_ref, alignment.gains,
                                         alignment.matches):
        dx, dy = (geometry.apply(matrix, centre) - centre)[0]
        scale, angle = geometry.scale_and_angle(matrix)
        gains = " ".join(f"{g:.3f}" for g in gain)
        log.debug("%s: shift %+.2f %+.2f px, scale %.4f, rotation %+.3f deg, gain %s, %d matches",
                 info.path.name, dx, dy, scale, angle, gains, count)
    x0, y0, x1, y1 = alignment.box
    log.debug("reference %s; output area %dx%d at (%d, %d)", alignment.frames[alignment.reference].path.name,
             x1 - x0, y1 - y0, x0, y0)


def _prepare(k: int, alignment: Alignment, options: StackOptions,
             timings: Timings) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pass 2's per-frame work before fusion: frame k on the output box (h, w, C) float32 and, for the
    depth-map method, its focus measure and that measure spread wide, both (h, w) float32."""
    info = alignment.frames[k]
    with timings("read"):
        pixels = read_frame(info)
    with timings("warp"):
        image = warp_to_reference(pixels, alignment.to_ref[k], alignment.box, alignment.gains[k],
                                  info.full_scale, alignment.shading[k])
        del pixels
    if options.method != "depthmap":
        return image, None, None
    with timings("focus"):
        focus = focus_measure(luminance(image), options.noise_sigma, options.spread_sigma)
        if not options.crop:
            height, width, _ = info.shape
            focus *= coverage(alignment.to_ref[k], alignment.box, width, height)
        nearby = nearby_focus(focus)
    return image, focus, nearby


def fuse_frames(alignment: Alignment, options: StackOptions, progress: Progress = _no_progress,
                timings: Timings | None = None, on_layer: LayerSink | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pass 2: warp each frame onto the output box and fuse. Returns the fused (h, w, C) float32 image
    in [0, 1]; for the depth-map method the (h, w) uint8 index of the frame supplying each pixel (else None);
    the pyramid method's image if ``options.also_pyramid`` (else None)."""
    timings = timings if timings is not None else Timings()
    x0, y0, x1, y1 = alignment.box
    shape = (y1 - y0, x1 - x0, alignment.frames[0].shape[2])
    depthmap = DepthmapFusion(shape, options.power) if options.method == "depthmap" else None
    pyramid = PyramidFusion(shape) if options.method == "pyramid" or options.also_pyramid else None
    total = len(alignment.frames)
    prepared = ordered_map(partial(_prepare, alignment=alignment, options=options, timings=timings),
                           range(total), ahead=1)
    for k, (image, focus, nearby) in enumerate(prepared):
        with timings("fuse"):
            if pyramid is not None:
                pyramid.add(image)
            if depthmap is not None:
                depthmap.add(image, focus, nearby, k)
        if on_layer is not None and depthmap is not None:
            with timings("layers"):
                on_layer(alignment.frames[k], image)
        del image, focus, nearby
        progress("fuse", k + 1, total)
    with timings("fuse"):
        if depthmap is None:
            return pyramid.result(), None, None
        return depthmap.result(), depthmap.depth(), None if pyramid is None else pyramid.result()
