"""The stacking pipeline: check, align (pass 1), fuse (pass 2), one frame in memory at a time.

Pass 1 reads each frame once and keeps only its keypoints, a reduced grey image and a thumbnail; it finds
the focus order and which frame to register to which (engine.order), registers them (frames near in file
order are matched, and neighbours registered, while frames are being read: the common case), chains the
transforms to the reference frame, and measures exposure gains and the common area. Pass 2 reads each frame
again, warps it onto the output box and adds it to the running fusion. Peak memory is the fusion state plus
one frame and its temporaries, whatever the number of frames. Live stacking feeds both passes frame by
frame as the frames arrive (FrameAligner, AheadFusion).
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from focusdrop.engine import geometry
from focusdrop.engine.align import (REFINE_SIDE, AlignmentError, FrameKey, ecc_alone, featureless, frame_key,
                                    key_image, match_features, register_pair)
from focusdrop.engine.buffers import BufferPool
from focusdrop.engine.crop import NoCommonArea, common_area
from focusdrop.engine.depthmap import DepthmapFusion
from focusdrop.engine.exposure import exposure_gains, onto_reference, thumbnail, thumbnail_factor, thumbnail_size
from focusdrop.engine.focus import frame_focus, nearby_focus
from focusdrop.engine.frameinfo import MAX_MEGAPIXELS, FrameError, FrameInfo, Hint
from focusdrop.engine.frames import check_stack, probe_frame, read_frame
from focusdrop.engine.order import (BAND, Matched, all_pairs, band_pairs, clearly_better, components,
                                    file_order_holds, focus_order, loop_residuals, registration_tree,
                                    strength_matrix)
from focusdrop.engine.prefetch import ordered_map
from focusdrop.engine.pyramid import PyramidFusion
from focusdrop.engine.raw import WhiteBalance, same_settings
from focusdrop.engine.save import to_integer
from focusdrop.engine.shading import shading_fields
from focusdrop.engine.warp import coverage, warp_to_reference

log = logging.getLogger("focusdrop")

METHODS = ("depthmap", "pyramid")
MAX_LOOP = 1.5  # px: a frame whose pairs disagree with the chained transforms by more is called uncertain
LOOP_ECC_SCALE = 0.5  # the loop check's ECC runs at half the resolution of the registration's
EARLY_SCALES = {1: 1.0, 2: LOOP_ECC_SCALE}  # frames this far apart in file order are registered while read
AHEAD_TOLERANCE = 0.01  # px: the final transforms may move a frame's corners this far from those fused ahead

SKIP_HINT = Hint("skip_unaligned", True, "to leave such frames out")

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): step is "align" or "fuse"."""

LayerSink = Callable[[FrameInfo, np.ndarray], None]
"""on_layer(frame, image): an aligned frame (h, w, C) float32 in [0, 1], in focus order, as it is fused; with
the depth-map method, its layer mask is drawn from the result's depth map once every frame is in
(engine.masks)."""


@dataclass(frozen=True)
class StackOptions:
    """How to stack. reference: index into the frames (None: the middle one); power, noise_sigma and
    spread_sigma tune the depth-map method (see engine.depthmap and engine.focus); pyramid_layer: with the
    depth-map method, fuse by the pyramid method too, in the same pass; order: "auto" (the focus order found
    from the frames where clearly better than the order given) or "given"; max_megapixels: the largest
    frame taken."""

    method: str = "depthmap"
    reference: int | None = None
    crop: bool = True
    power: float = 8.0
    noise_sigma: float = 0.7
    spread_sigma: float = 3.0
    skip_unaligned: bool = False
    pyramid_layer: bool = False
    order: str = "auto"
    white_balance: WhiteBalance = "as-shot"  # raw frames' (engine.raw.same_settings)
    max_megapixels: float = MAX_MEGAPIXELS


@dataclass
class Alignment:
    """Pass 1's result. frames: the frames kept, in focus order; to_ref: (N, 3, 3) frame -> reference
    pixels; gains: (N, C) encoded-value gains; shading: (N, gh, gw, C) smooth encoded-value gain fields
    over the reference frame, on top of ``gains`` (engine.shading); box: output area (x0, y0, x1, y1) in
    reference pixels; matches: inlier matches with the frame each was registered to (0 for the reference
    and frames registered by correlation); skipped: frames left out; loops: per frame, how far its pairs
    outside the registration tree disagree with the chained transforms, px (None: no such pair)."""

    frames: list[FrameInfo]
    to_ref: np.ndarray
    gains: np.ndarray
    shading: np.ndarray
    reference: int
    box: tuple[int, int, int, int]
    matches: list[int]
    skipped: list[FrameInfo] = field(default_factory=list)
    loops: list[float | None] = field(default_factory=list)


@dataclass
class StackResult:
    """image: (h, w, C) at the frames' bit depth; depth: (h, w) uint8 index into alignment.frames of the
    frame that supplies each pixel (depth-map method only; engine.masks.owner_map); pyramid: the pyramid
    method's image when asked for with pyramid_layer, else None; timings: seconds per step; layers_box: the
    area (x0, y0, x1, y1) of the reference frame's grid that the aligned frames given to on_layer cover: the
    output box, or the whole frame where pass 2 ran as the frames arrived (AheadFusion)."""

    image: np.ndarray
    depth: np.ndarray | None
    alignment: Alignment
    timings: dict[str, float]
    pyramid: np.ndarray | None = None
    layers_box: tuple[int, int, int, int] | None = None


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
          on_layer: LayerSink | None = None, taken: FrameAligner | None = None) -> StackResult:
    """Align and fuse a focus bracket given in focus order. Raises FrameError for any bad frame.

    taken: pass 1 already fed these very frames as they arrived, in any order (live stacking, with these
    options); it is finished here instead of reading the frames again. Otherwise (or if it took other
    frames) pass 1 runs. Where ``taken`` ran pass 2 ahead too and it holds (AheadFusion), its result is used
    and ``on_layer`` is not called: its own sink had the frames (``StackResult.layers_box`` says where).
    """
    if options.method not in METHODS:
        raise ValueError(f"unknown method {options.method!r}; choose one of {', '.join(METHODS)}")
    if options.reference is not None and not 0 <= options.reference < len(paths):
        raise ValueError(f"reference frame {options.reference} is outside the stack of {len(paths)} frames")
    fused = None
    if taken is not None and sorted(info.path for info in taken.infos) == sorted(paths) and \
            _balanced_as_batch(taken.infos, paths, options):
        alignment = taken.finish(list(paths))
        timings = taken.timings
        infos = alignment.frames
        fused = None if taken.ahead is None else taken.ahead.result(alignment)
    else:
        if taken is not None:
            taken.close()
        timings = Timings()
        with timings("probe"):
            infos = [probe_frame(p, options.max_megapixels) for p in paths]
            check_stack(infos)
            infos = same_settings(infos, len(infos) // 2 if options.reference is None else options.reference,
                                  options.white_balance)
        alignment = align_frames(infos, options, progress, timings)
    layers_box = alignment.box
    if fused is None:
        fused = fuse_frames(alignment, options, progress, timings, on_layer)
    else:
        height, width, _ = infos[0].shape
        layers_box = (0, 0, width, height)
        progress("fuse", len(infos), len(infos))
    image, depth, pyramid = fused
    del fused
    with timings("convert"):
        pixels = to_integer(image, infos[0].dtype)
        del image
        pyramid = None if pyramid is None else to_integer(pyramid, infos[0].dtype)
    return StackResult(pixels, depth, alignment, timings, pyramid, layers_box)


def _balanced_as_batch(infos: list[FrameInfo], paths: list[Path], options: StackOptions) -> bool:
    """Whether frames taken in as they arrived were decoded with the white balance the batch gives them:
    images always; raw frames if the balance they were taken with is the one engine.raw.same_settings takes
    from the reference file (live raw frames are taken with the first frame's)."""
    if infos[0].kind != "raw":
        return True
    reference = paths[len(paths) // 2 if options.reference is None else options.reference]
    [expected] = same_settings([probe_frame(reference, options.max_megapixels)], 0, options.white_balance)
    return all(info.white_balance == expected.white_balance for info in infos)


def _describe(info: FrameInfo, thumb_factor: float, timings: Timings, pool: BufferPool
              ) -> tuple[FrameKey, np.ndarray]:
    """Pass 1's work on one frame: its registration key and a (h, w, C) float32 thumbnail in [0, 1]. A raw
    frame large enough is decoded at half size (registration works on 1024 px), five times faster."""
    height, width, _ = info.shape
    with timings("read"):
        pixels = read_frame(info, preview=max(height, width) >= 2 * REFINE_SIDE,
                            out=pool.take(info.shape, info.dtype) if info.kind == "tiff" else None)
    with timings("features"):
        scale = pixels.shape[1] / width
        thumb = thumbnail(pixels, thumb_factor / scale, thumbnail_size(width, height, thumb_factor))
        reduced, k = key_image(pixels)
        grey = reduced[..., 0] if reduced.shape[2] == 1 else cv2.cvtColor(reduced, cv2.COLOR_RGB2GRAY)
        pool.give(pixels)
        key = frame_key(grey, (width, height), scale / k)
    return key, thumb


@dataclass
class _Shown:
    """FrameAligner.preview's state: the thumbnails fused so far, the last one's transform to the first,
    how many, and whether the chain of registrations still holds."""

    fusion: DepthmapFusion
    to_first: np.ndarray
    count: int = 0
    chained: bool = True


class FrameAligner:
    """Pass 1 fed one frame at a time: each frame added is described (its registration key and thumbnail)
    and matched, on two threads, with the BAND frames added before it; ``finish`` registers them all. The
    frames may be added as they arrive (live stacking), in any order: the order they are added in is the
    order given (``options.order``). All frames must have the first frame's size, channels and bit depth.
    """

    def __init__(self, options: StackOptions, timings: Timings | None = None):
        self.options = options
        self.timings = timings if timings is not None else Timings()
        self.infos: list[FrameInfo] = []
        self._keys: list[FrameKey] = []
        self._thumbs: list[np.ndarray] = []
        self._jobs: dict[tuple[int, int], Future] = {}  # frames near in arrival order, matched as they come
        self._pairs = ThreadPoolExecutor(max_workers=2)
        self._buffers = BufferPool()  # each frame is decoded into the memory of one decoded before
        self._shown: _Shown | None = None  # the preview's running fusion
        self.ahead: AheadFusion | None = None  # pass 2 as the frames arrive, where their count is known

    def describe(self, info: FrameInfo) -> tuple[FrameKey, np.ndarray]:
        """Read a frame and make its key and thumbnail (safe on any thread: add's first half, to overlap
        reading the next frame with matching this one)."""
        height, width, _ = info.shape
        return _describe(info, thumbnail_factor(width, height), self.timings, self._buffers)

    def add(self, info: FrameInfo, described: tuple[FrameKey, np.ndarray] | None = None) -> None:
        """Take in a frame (``described``: what ``describe`` made of it, if already made). Raises
        FrameError for a frame that does not match the first."""
        if self.infos:
            check_stack([self.infos[0], info])
        key, thumb = described if described is not None else self.describe(info)
        i = len(self._keys)
        self.infos.append(info)
        self._keys.append(key)
        self._thumbs.append(thumb)
        for j in range(max(0, i - BAND), i):
            self._jobs[i, j] = self._pairs.submit(_early_pair, self._keys, (i, j))

    def preview(self) -> np.ndarray | None:
        """The frames taken in so far fused at thumbnail size (engine.exposure.THUMB_SIDE), on the first
        frame's grid: what the stack will look like, while it is shot. Each frame is placed by its
        registration to the frame before it (those still being made are waited for) and fused once, into
        running sums that each preview copies; a frame that did not register ends the chain there.
        Returns (h, w, C) float32 in [0, 1], or None before two frames."""
        if len(self._keys) < 2:
            return None
        height, width, _ = self.infos[0].shape
        factor = thumbnail_factor(width, height)
        first = self._thumbs[0]
        if self._shown is None:
            self._shown = _Shown(DepthmapFusion(first.shape, self.options.power), np.eye(3))
        shown = self._shown
        while shown.count < len(self._thumbs) and shown.chained:
            k = shown.count
            if k:
                step = self.neighbour_step(k)
                if step is None:
                    shown.chained = False
                    break
                shown.to_first = shown.to_first @ step
            moved, seen = onto_reference(self._thumbs[k], shown.to_first, factor, first.shape)
            moved[~seen] = first[~seen]  # where the frame does not reach: the first frame, not black
            focus = frame_focus(moved)
            focus *= seen
            shown.fusion.add(moved, focus, nearby_focus(focus), k)
            shown.count += 1
        return np.clip(copy.deepcopy(shown.fusion).result(), 0.0, 1.0)

    def neighbour_step(self, k: int) -> np.ndarray | None:
        """Frame k's (3, 3) transform to the frame added before it, registered as it arrived (waited for),
        or None where the two did not register."""
        _, registered = self._jobs[k, k - 1].result()
        return None if registered is None else registered[0]

    def moved(self, folder: Path) -> None:
        """The frames taken in were moved, under the same names, into ``folder``."""
        self.infos = [replace(info, path=folder / info.path.name) for info in self.infos]

    def fuse_ahead(self, count: int, on_layer: LayerSink | None = None) -> None:
        """Run pass 2 too as the frames arrive (AheadFusion), for a bracket of ``count`` frames added in the
        order given; ``on_layer`` takes its aligned frames, on the reference frame's whole grid."""
        self.ahead = AheadFusion(self, count, on_layer)

    def close(self) -> None:
        """Let go of the matching threads, for frames that will not be finished, and of pass 2 run ahead."""
        self._pairs.shutdown(cancel_futures=True)
        if self.ahead is not None:
            self.ahead.stop("the bracket was not finished as it arrived")

    def finish(self, given: list[Path] | None = None) -> Alignment:
        """Register the frames taken in: the focus order, the reference, the transforms, the loop check,
        exposure and the common area. ``given``: the same frames' paths in the order given, where they were
        added in another (frames that landed out of order); the pairs matched as they came are kept, and
        those near in the order given that were not are matched now. Raises FrameError (fewer than 2
        frames, no common area)."""
        if self.ahead is not None:
            self.ahead.advance()  # its last frames, while the thumbnails are still here
        matched, early = {}, {}
        try:
            check_stack(self.infos)
            for pair, job in self._jobs.items():
                matched[pair], registered = job.result()
                if registered is not None:
                    early[pair] = registered
        finally:
            self._pairs.shutdown(cancel_futures=True)
            self._jobs = {}
        if given is not None and given != [info.path for info in self.infos]:
            matched, early = self._reorder(given, matched, early)
        return _register(self.infos, self._keys, self._thumbs, matched, early, self.options, self.timings)

    def _reorder(self, given: list[Path], matched: dict, early: dict) -> tuple[dict, dict]:
        """Put the frames in the order ``given``; returns the pairs' matches and early registrations keyed by
        the new positions (i > j, a pair whose frames swapped sides inverted), the given order's near pairs
        matched where they were not."""
        at = {info.path: k for k, info in enumerate(self.infos)}
        old = [at[path] for path in given]  # new position -> old
        new = {k: n for n, k in enumerate(old)}
        self.infos = [self.infos[k] for k in old]
        self._keys = [self._keys[k] for k in old]
        self._thumbs = [self._thumbs[k] for k in old]

        def moved(pair: tuple[int, int], value, inverted):
            i, j = new[pair[0]], new[pair[1]]
            return ((i, j), value) if i > j else ((j, i), None if value is None else inverted(value))
        matched = dict(moved(pair, m, lambda m: (np.linalg.inv(m[0]), m[1])) for pair, m in matched.items())
        early = dict(moved(pair, e, lambda e: (np.linalg.inv(e[0]), e[1], e[2])) for pair, e in early.items())
        missing = [pair for pair in band_pairs(len(given)) if pair not in matched]
        matched.update(zip(missing, ordered_map(partial(_match, self._keys), missing)))
        return matched, early


class AheadFusion:
    """Pass 2 run as the frames of a bracket of known ``count`` arrive (live stacking), so that only the last
    frame, the crop and the write remain when it is in.

    The frames, added to ``aligner`` in the order given, are fused in that order on the whole grid of the
    reference frame (the batch's: ``options.reference``, else the middle one) once it is in: each placed by the
    chain of neighbour registrations made as it arrived, brought to the reference's exposure and shading as the
    batch does. ``result`` checks the finished pass 1 against what was used (the order given is the focus
    order, the same reference, transforms, gains and shading), crops to the common area, and says None where
    they differ: the batch's pass 2 then runs. The result equals the batch's but near the crop's edges, where
    the focus measure sees past them.
    """

    def __init__(self, aligner: FrameAligner, count: int, on_layer: LayerSink | None):
        self.aligner, self.count, self.on_layer = aligner, count, on_layer
        options = aligner.options
        self.reference = count // 2 if options.reference is None else options.reference
        self.names: list[str] = []  # the frames placed, in order
        self.to_ref: list[np.ndarray] = []
        self.gains: list[np.ndarray] = []
        self.shading: list[np.ndarray] = []
        self.fused = 0
        self.stopped: str | None = None  # why it gave up
        self._fusion: _Fusion | None = None
        self._pool = BufferPool()
        self._reads = BufferPool()

    def stop(self, why: str) -> None:
        """Give up (the batch's pass 2 will run), letting go of the fusion's memory."""
        if self.stopped is None:
            self.stopped = why
        self._fusion = None
        self._pool.clear()
        self._reads.clear()

    def advance(self) -> None:
        """Fuse the frames added so far that can be placed: called after each frame is added, on the thread
        that adds them."""
        infos = self.aligner.infos
        if self.stopped is not None or len(infos) <= self.reference:
            return
        if len(infos) > self.count:
            self.stop(f"more than the {self.count} frames counted arrived")
            return
        try:
            self._place()
        except AlignmentError as e:
            self.stop(str(e))
            return
        if self._fusion is None:
            height, width, channels = infos[0].shape
            self._fusion = _Fusion((height, width, channels), self.aligner.options)
        box = (0, 0, infos[0].shape[1], infos[0].shape[0])

        def prepare(k: int) -> tuple:
            return _prepare(infos[k], self.to_ref[k], self.gains[k], self.shading[k], box, False,
                            self.aligner.options, self.aligner.timings, self._pool, self._reads)
        frames = list(range(self.fused, len(self.to_ref)))
        _fuse_each(self._fusion, frames, prepare, infos, self._pool, self.aligner.timings, self.on_layer)
        self.fused = len(self.to_ref)

    def _place(self) -> None:
        """Each frame's transform to the reference, gain and shading, as far as the neighbour registrations
        reach: the frames before the reference once it is in, then each one after it. Raises AlignmentError
        where a neighbour pair did not register."""
        infos, thumbs = self.aligner.infos, self.aligner._thumbs
        ref = self.reference
        height, width, _ = infos[0].shape
        factor = thumbnail_factor(width, height)

        def step(i: int) -> np.ndarray:  # frame i -> frame i - 1
            matrix = self.aligner.neighbour_step(i)
            if matrix is None:
                raise AlignmentError(f"{infos[i].path.name} did not register to the frame before it as it arrived")
            return matrix
        if not self.to_ref:
            chain = {ref: np.eye(3)}
            for k in range(ref - 1, -1, -1):
                chain[k] = chain[k + 1] @ np.linalg.inv(step(k + 1))
            placed = [chain[k] for k in range(ref + 1)]
        else:
            placed = []
        for k in range(len(self.to_ref) + len(placed), len(infos)):
            placed.append((placed[-1] if placed else self.to_ref[-1]) @ step(k))
        for matrix in placed:
            k = len(self.to_ref)
            if k == ref:  # as the batch: the reference's gain and shading are 1
                gain = np.ones(infos[0].shape[2], np.float32)
                field = shading_fields([thumbs[ref]], np.eye(3)[None], 0, factor, gain[None])[0]
            else:
                pair, moves = [thumbs[ref], thumbs[k]], np.array([np.eye(3), matrix])
                gains = exposure_gains(pair, moves, 0, factor)
                gain, field = gains[1], shading_fields(pair, moves, 0, factor, gains)[1]
            self.to_ref.append(matrix)
            self.gains.append(gain)
            self.shading.append(field)
            self.names.append(infos[k].path.name)

    def result(self, alignment: Alignment) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
        """fuse_frames' result for the finished pass 1 ``alignment``, cropped from the fusion run ahead; None
        (the reason logged) where the alignment is not the one it used."""
        why = self.stopped or self._differs(alignment)
        if why:
            log.info("live: pass 2 runs again at the end: %s", why)
            self.stop(why)
            return None
        self._pool.clear()  # the result's own arrays need the memory now
        self._reads.clear()
        image, depth, pyramid = self._fusion.result()
        self._fusion = None
        x0, y0, x1, y1 = alignment.box
        return (image[y0:y1, x0:x1], None if depth is None else np.ascontiguousarray(depth[y0:y1, x0:x1]),
                None if pyramid is None else pyramid[y0:y1, x0:x1])

    def _differs(self, alignment: Alignment) -> str:
        """How ``alignment`` differs from what the fusion used, or "" where it does not."""
        if self.fused != len(alignment.frames) or [i.path.name for i in alignment.frames] != self.names:
            return "the frames fused as they came are not the focus order found"
        if alignment.reference != self.reference:
            return "the reference frame is not the one fused on"
        height, width, _ = alignment.frames[0].shape
        corners = geometry.corners(width, height)
        moved = max(np.abs(geometry.apply(a, corners) - geometry.apply(b, corners)).max()
                    for a, b in zip(alignment.to_ref, self.to_ref))
        if moved > AHEAD_TOLERANCE:
            return f"the final transforms move a corner {moved:.3f} px from the ones fused with"
        if not (np.allclose(alignment.gains, self.gains, atol=1e-5)
                and np.allclose(alignment.shading, self.shading, atol=1e-4)):
            return "the final exposure is not the one fused with"
        return ""


def align_frames(infos: list[FrameInfo], options: StackOptions, progress: Progress = _no_progress,
                 timings: Timings | None = None) -> Alignment:
    """Pass 1: register every frame to the reference, find the focus order, measure exposure gains and
    the common area. The frames come back in focus order (``options.order``)."""
    aligner = FrameAligner(options, timings)
    try:
        for i, (info, described) in enumerate(zip(infos, ordered_map(aligner.describe, infos))):
            aligner.add(info, described)
            progress("align", i + 1, len(infos))
    except BaseException:  # a frame that cannot be read: the matching threads end with the stack
        aligner.close()
        raise
    return aligner.finish()


def _register(infos: list[FrameInfo], keys: list[FrameKey], thumbs: list[np.ndarray],
              matched: dict[tuple[int, int], Matched], early: dict[tuple[int, int], tuple],
              options: StackOptions, timings: Timings) -> Alignment:
    """Pass 1 once every frame is described: FrameAligner.finish's work. matched: the pairs' keypoint
    matches so far (i > j); early: the registrations made as frames came. Empties ``keys`` and ``thumbs``
    as soon as they are used."""
    height, width, _ = infos[0].shape
    thumb_factor = thumbnail_factor(width, height)
    with timings("register"):
        strength = strength_matrix(len(keys), matched)
        if options.order == "auto" and len(keys) > BAND + 1 and not file_order_holds(strength):
            rest = [pair for pair in all_pairs(len(keys)) if pair not in matched]
            matched.update(zip(rest, ordered_map(partial(_match, keys), rest)))
            strength = strength_matrix(len(keys), matched)
        linked = components(strength)[0]
        attached = _attach_unlinked(infos, keys, linked, options)  # {frame: (frame it registers to, matrix)}
        order = _focus_order(infos, strength, linked, attached, options)
        reference = _reference_frame(infos, order, options.reference)
        to_ref, matches, residuals = _chain(keys, matched, early, strength, order, attached, reference)
    order = _check_loops(infos, order, reference, residuals, options)
    skipped = [infos[k] for k in range(len(infos)) if k not in order]
    keys.clear()
    kept = [infos[k] for k in order]
    ordered = [thumbs[k] for k in order]
    thumbs.clear()
    to_ref_list = np.array([to_ref[k] for k in order])
    ref_index = order.index(reference)
    with timings("exposure"):
        gains = exposure_gains(ordered, to_ref_list, ref_index, thumb_factor)
        shading = shading_fields(ordered, to_ref_list, ref_index, thumb_factor, gains)
        del ordered
    try:
        box = common_area(to_ref_list, width, height) if options.crop else (0, 0, width, height)
    except NoCommonArea as e:
        raise FrameError(kept[0].path, f"{e}; check that every frame shows the same subject") from None
    alignment = Alignment(kept, to_ref_list, gains, shading, ref_index, box, [matches[k] for k in order],
                          skipped, [residuals.get(k) for k in order])
    _log_alignment(alignment)
    return alignment


def _match(keys: list[FrameKey], pair: tuple[int, int]) -> Matched:
    """match_features for frames i -> j (pair: (i, j)), None where they do not match."""
    try:
        return match_features(keys[pair[0]], keys[pair[1]])
    except AlignmentError:
        return None


def _early_pair(keys: list[FrameKey], pair: tuple[int, int]
                ) -> tuple[Matched, tuple[np.ndarray, int, float] | None]:
    """A pair near in file order, while frames are being read: its match and, for neighbours (one apart) and
    the loop check's pairs (two apart), its registration at the scale they need (else None), with that
    scale."""
    matched = _match(keys, pair)
    scale = EARLY_SCALES.get(pair[0] - pair[1])
    if matched is None or scale is None:
        return matched, None
    return matched, (*register_pair(keys[pair[0]], keys[pair[1]], scale, matched), scale)


def _chain(keys: list[FrameKey], matched: dict[tuple[int, int], Matched], early: dict[tuple[int, int], tuple],
           strength: np.ndarray, order: list[int], attached: dict[int, tuple[int, np.ndarray]],
           reference: int) -> tuple[dict, dict, dict]:
    """Register the linked frames (those of ``order``, the focus order, not in ``attached``) along
    engine.order.registration_tree, add the frames registered by correlation, and close loops over every
    pair two apart in ``order`` not registered already. matched: the pairs' keypoint matches (i > j); early:
    the registrations made while frames were read. Returns, per frame: its (3, 3) transform to the
    reference, its keypoint matches, its loop residual (px; frames on a loop that registered)."""
    chain = [k for k in order if k not in attached]
    root = reference if reference in chain else attached[reference][0]
    tree = registration_tree(strength, chain, root)
    register = partial(_registered, keys, matched, early)
    registered = dict(zip(tree, ordered_map(register, [(pair, 1.0) for pair in tree])))
    edges = set(tree) | {(child, parent) for child, (parent, _) in attached.items()}
    loops = [(a, c) for a, c in zip(order, order[2:]) if (a, c) not in edges and (c, a) not in edges]
    direct = dict(zip(loops, ordered_map(partial(_loop_registered, register), loops)))
    to_root, matches = {root: np.eye(3)}, {root: 0}
    for child, parent in tree:
        step, matches[child] = registered[child, parent]
        to_root[child] = to_root[parent] @ step
    for child, (parent, step) in attached.items():  # each registered to a frame of the chain
        to_root[child], matches[child] = to_root[parent] @ step, 0
    rebase = np.linalg.inv(to_root[reference])
    to_ref = {k: rebase @ matrix for k, matrix in to_root.items()}
    closed = {pair: matrix for pair, matrix in direct.items() if matrix is not None}
    return to_ref, matches, loop_residuals(to_ref, closed, keys[0].size)


def _loop_registered(register: Callable, pair: tuple[int, int]) -> np.ndarray | None:
    """The loop check's registration of a pair two apart (at LOOP_ECC_SCALE), or None if it fails."""
    try:
        return register((pair, LOOP_ECC_SCALE))[0]
    except AlignmentError:
        return None


def _registered(keys: list[FrameKey], matched: dict[tuple[int, int], Matched], early: dict[tuple[int, int], tuple],
                job: tuple[tuple[int, int], float]) -> tuple[np.ndarray, int]:
    """register_pair for frames a -> b with ECC at ``ecc_scale`` (job: ((a, b), ecc_scale)): taken from the
    early registrations when they made it at that scale (early: {(i, j): (matrix, count, scale)}), else from
    the pair's keypoint match if known."""
    (a, b), ecc_scale = job
    inverse = a < b
    pair = (b, a) if inverse else (a, b)
    if pair in early and early[pair][2] == ecc_scale:
        matrix, count, _ = early[pair]
    else:
        matrix, count = register_pair(keys[pair[0]], keys[pair[1]], ecc_scale, matched.get(pair))
    return (np.linalg.inv(matrix) if inverse else matrix), count


def _attach_unlinked(infos: list[FrameInfo], keys: list[FrameKey], linked: list[int],
                     options: StackOptions) -> dict[int, tuple[int, np.ndarray]]:
    """Frames outside the largest group of matching frames: registered by correlation alone (a shift) to
    the linked frame they correlate with best, or left out with a warning if blurred past recognition.
    Returns {frame: (the frame it is registered to, (3, 3) frame -> that frame)}. Raises FrameError for a
    frame with detail that matches nothing (another subject), unless ``options.skip_unaligned``."""
    attached = {}
    for k in (k for k in range(len(infos)) if k not in linked):
        candidates = sorted(linked, key=lambda j: -_similarity(keys[k], keys[j]))[:3]
        why = AlignmentError(f"only {len(keys[k].points)} features found" if featureless(keys[k])
                             else "no keypoints in common with any")
        for j in candidates:
            try:
                attached[k] = (j, ecc_alone(keys[k], keys[j], why))
                break
            except AlignmentError as e:
                error = e
        else:
            if featureless(keys[k]):
                log.warning("skipped %s: blurred past recognition (%d features) and unlike the other frames; "
                            "it has no detail to add", infos[k].path.name, len(keys[k].points))
                continue
            problem = (f"cannot be aligned to any other frame ({error}); is it the same subject, or blurred "
                       f"beyond recognition?")
            if not options.skip_unaligned:
                raise FrameError(infos[k].path, problem, SKIP_HINT)
            log.warning("skipped %s: %s", infos[k].path.name, problem)
    if len(linked) + len(attached) < 2:
        height, width, _ = infos[0].shape
        raise FrameError(infos[linked[0]].path, f"none of the other {len(infos) - 1} frames could be aligned "
                                                f"to it: at {width}x{height} the frames are too small or too "
                                                f"featureless to align")
    return attached


def _similarity(a: FrameKey, b: FrameKey) -> float:
    """Correlation of two frames' reduced grey images, blurred (which frame a blurred frame is closest to)."""
    small = [cv2.GaussianBlur(cv2.resize(k.grey, (64, 48), interpolation=cv2.INTER_AREA), (0, 0), 2)
             for k in (a, b)]
    return float(np.corrcoef(small[0].ravel(), small[1].ravel())[0, 1])


def _focus_order(infos: list[FrameInfo], strength: np.ndarray, linked: list[int],
                 attached: dict[int, tuple[int, np.ndarray]], options: StackOptions) -> list[int]:
    """The frames kept, in focus order: as given if ``options.order`` is "given" or the estimate is not
    clearly better (engine.order.clearly_better); else the estimate, each frame registered by correlation
    placed beside its partner, toward the nearer end."""
    given = sorted(set(linked) | set(attached))
    if options.order == "given" or len(linked) < 3:
        return given
    estimate = focus_order(strength, linked)
    if not clearly_better(strength, estimate, [k for k in given if k in linked]):
        return given
    for k, (partner, _) in sorted(attached.items()):
        at = estimate.index(partner)
        estimate.insert(at if at < len(estimate) / 2 else at + 1, k)
    log.warning("focus order estimated from the frames, not their file order: %s",
                ", ".join(infos[k].path.name for k in estimate),
                extra={"hint": Hint("order", "name", "to keep the file order")})
    return estimate


def _reference_frame(infos: list[FrameInfo], order: list[int], wanted: int | None) -> int:
    if wanted is None:
        return order[len(order) // 2]
    if wanted not in order:
        raise FrameError(infos[wanted].path, "was chosen as the reference but could not be aligned")
    return wanted


def _check_loops(infos: list[FrameInfo], order: list[int], reference: int, residuals: dict[int, float],
                 options: StackOptions) -> list[int]:
    """Warn about each frame whose registration disagrees with its loops by more than MAX_LOOP px; with
    ``options.skip_unaligned``, leave it out (never the reference). Returns the frames kept, in order."""
    uncertain = [k for k in order if residuals.get(k, 0.0) > MAX_LOOP]
    for k in uncertain:
        left_out = options.skip_unaligned and k != reference
        log.warning("%s: alignment uncertain: registered two ways, it lands %.1f px apart%s", infos[k].path.name,
                    residuals[k], "; left out" if left_out else "", extra={"hint": None if left_out else SKIP_HINT})
    kept = [k for k in order if k not in uncertain or k == reference or not options.skip_unaligned]
    if len(kept) < 2:
        raise FrameError(infos[reference].path, "no other frame could be aligned to it with certainty")
    return kept


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


def _prepare(info: FrameInfo, to_ref: np.ndarray, gain: np.ndarray, shading: np.ndarray,
             box: tuple[int, int, int, int], covered: bool, options: StackOptions, timings: Timings,
             pool: BufferPool, reads: BufferPool | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pass 2's per-frame work before fusion: the frame on ``box`` of the reference grid, (h, w, C) float32
    (to_ref, gain, shading: its Alignment entries) and, for the depth-map method, its focus measure and that
    measure spread wide, (h, w) and (h // 4, w // 4) float32; ``covered``: whether the frame covers the box
    (else its focus is zero where it has no pixels). The frame is in a buffer from ``pool``, for the caller to
    give back; ``reads``: where the frame is decoded into, if pooled (the batch does not: between frames it sat
    free beside the rest, +140 MB at 24 MP; live, its fresh pages cost the kernel 0.09 s a frame)."""
    x0, y0, x1, y1 = box
    with timings("read"):
        pixels = read_frame(info, out=None if reads is None or info.kind != "tiff" else
                            reads.take(info.shape, info.dtype))
    with timings("warp"):
        image = warp_to_reference(pixels, to_ref, box, gain, info.full_scale, shading,
                                  out=pool.take((y1 - y0, x1 - x0, info.shape[2]), np.float32))
        if reads is not None:
            reads.give(pixels)
        del pixels
    if options.method != "depthmap":
        return image, None, None
    with timings("focus"):
        focus = frame_focus(image, options.noise_sigma, options.spread_sigma)
        if not covered:
            height, width, _ = info.shape
            focus *= coverage(to_ref, box, width, height)
        nearby = nearby_focus(focus)
    return image, focus, nearby


class _Fusion:
    """Pass 2's running fusions on one box, as ``options`` asks (the depth-map method, the pyramid method or
    both), fed frames in focus order."""

    def __init__(self, shape: tuple[int, int, int], options: StackOptions):
        self.depthmap = DepthmapFusion(shape, options.power) if options.method == "depthmap" else None
        self.pyramid = PyramidFusion(shape) if options.method == "pyramid" or options.pyramid_layer else None

    def add(self, k: int, image: np.ndarray, focus: np.ndarray | None, nearby: np.ndarray | None) -> None:
        if self.pyramid is not None:
            self.pyramid.add(image)
        if self.depthmap is not None:
            self.depthmap.add(image, focus, nearby, k)

    def result(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """fuse_frames' result."""
        if self.depthmap is None:
            return self.pyramid.result(), None, None
        return self.depthmap.result(), self.depthmap.depth(), None if self.pyramid is None else self.pyramid.result()


def _fuse_each(fusion: _Fusion, frames: list[int], prepare: Callable[[int], tuple], infos: list[FrameInfo],
               pool: BufferPool, timings: Timings, on_layer: LayerSink | None,
               progress: Callable[[int], None] = lambda k: None) -> None:
    """Fuse ``frames`` (positions in focus order, ascending) into ``fusion``, each prepared by ``prepare``
    while the one before it is fused, handed to ``on_layer``, its buffers given back to ``pool``."""
    for k, (image, focus, nearby) in zip(frames, ordered_map(prepare, frames, ahead=1)):
        with timings("fuse"):
            fusion.add(k, image, focus, nearby)
        if on_layer is not None:
            with timings("layers"):
                on_layer(infos[k], image)
        pool.give(image)
        del image, focus, nearby
        progress(k)


def fuse_frames(alignment: Alignment, options: StackOptions, progress: Progress = _no_progress,
                timings: Timings | None = None, on_layer: LayerSink | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pass 2: warp each frame onto the output box and fuse. Returns the fused (h, w, C) float32 image
    in [0, 1]; for the depth-map method the (h, w) uint8 index of the frame supplying each pixel (else None);
    the pyramid method's image if ``options.pyramid_layer`` (else None)."""
    timings = timings if timings is not None else Timings()
    pool = BufferPool()  # each frame is warped into the memory of the frame before the one being fused
    x0, y0, x1, y1 = box = alignment.box
    fusion = _Fusion((y1 - y0, x1 - x0, alignment.frames[0].shape[2]), options)
    a = alignment

    def prepare(k: int) -> tuple:
        return _prepare(a.frames[k], a.to_ref[k], a.gains[k], a.shading[k], box, options.crop, options, timings,
                        pool)
    total = len(a.frames)
    _fuse_each(fusion, list(range(total)), prepare, a.frames, pool, timings, on_layer,
               lambda k: progress("fuse", k + 1, total))
    pool.clear()  # the result's own arrays need the memory now
    with timings("fuse"):
        return fusion.result()
