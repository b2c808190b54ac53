"""One stack from frames on disk to result files on disk: the command's, the service's and a cluster
worker's job. Progress goes to the caller's callback; nothing is printed here."""
from __future__ import annotations

import json
import logging
import os
import resource
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focusdrop.bridge import release_freed_memory
from focusdrop.bridge.report.pictures import FramePreviews
from focusdrop.bridge.settings import FLAT_ONLY
from focusdrop.engine.frameinfo import FrameInfo
from focusdrop.engine.masks import region_masks
from focusdrop.engine.pipeline import FrameAligner, Progress, StackOptions, StackResult, stack
from focusdrop.engine.psd import LayeredDocument
from focusdrop.engine.save import FLAT_SUFFIXES, to_integer, write_durably, write_image
from focusdrop.engine.xmp import capture_properties, result_xmp

log = logging.getLogger("focusdrop")

LAYERED_SUFFIXES = (".psd", ".psb")
OUTPUT_SUFFIXES = LAYERED_SUFFIXES + FLAT_SUFFIXES
DEPTHMAP_SUFFIXES = (".png", ".tif", ".tiff")
PAGE_SUFFIXES = (".html", ".htm")
PYRAMID_LAYER_NAME = "pyramid detail (FocusDrop)"
BLEND_LAYER_NAME = "blend (FocusDrop): paint its mask black to show the frames"
DEPTH_LAYER_NAME = "depth map (FocusDrop): dark = first frame, light = last"


class LayerCollector:
    """Builds the layered document as the aligned frames arrive, created at the first frame, its spool in
    the folder ``spool``; the first ``raw_first`` frames' layers are stored uncompressed (live stacking: so
    that the frames fused all at once when the reference arrives keep up with the camera).

    Bottom to top: one layer per frame, its mask white where that frame supplies the pixel (as Photoshop's
    Auto-Blend draws them; engine.masks); the exact soft blend, visible, with a white mask, so that the
    document looks exactly like the fused result; the pyramid result if asked for, hidden; the depth map,
    hidden. To refine a spot: paint the blend layer's mask black there, then the frames' masks.
    """

    def __init__(self, spool: Path, raw_first: int = 0):
        self.spool, self.raw_first = spool, raw_first
        self.added = 0
        self.document: LayeredDocument | None = None

    def __call__(self, frame: FrameInfo, image: np.ndarray) -> None:
        if self.document is None:
            height, width, channels = image.shape
            self.document = LayeredDocument(self.spool / "unnamed.psd", width, height, channels, frame.dtype,
                                            frame.icc, spool=self.spool)
        self.document.add_layer(frame.path.stem, to_integer(image, frame.dtype), mask_later=True,
                                raw=self.added < self.raw_first)
        self.added += 1

    def write(self, result: StackResult, xmp: bytes, path: Path) -> Path:
        """Finish the document as ``path``: cropped to the result where the frames covered more
        (result.layers_box), the blend, pyramid and depth layers, the frames' masks, the XMP packet, the
        composite."""
        self.document.path = path
        (lx0, ly0, _, _), (x0, y0, x1, y1) = result.layers_box, result.alignment.box
        if result.layers_box != result.alignment.box:
            self.document.crop(x0 - lx0, y0 - ly0, x1 - lx0, y1 - ly0)
        frames = result.alignment.frames
        dtype = frames[0].dtype
        white = np.full(result.image.shape[:2], np.iinfo(dtype).max, dtype)
        self.document.add_layer(BLEND_LAYER_NAME, result.image, white, late=True)
        if result.pyramid is not None:
            self.document.add_layer(PYRAMID_LAYER_NAME, result.pyramid, visible=False, late=True)
        depth = depth_image(result, dtype)
        self.document.add_layer(DEPTH_LAYER_NAME, np.repeat(depth, result.image.shape[2], axis=2), visible=False,
                                late=True)
        self.document.xmp = xmp
        written = self.document.write(result.image, region_masks(result.depth, len(frames), dtype))
        if written != path:
            log.warning("the document is over PSD's 2 GB or 30,000 px limit: wrote %s as PSB (large document "
                        "format; Photoshop opens it, GIMP 2.10 does not)", written.name)
        return written


class FrameSinks:
    """Where a stack's aligned frames go as they are fused (an engine.pipeline.LayerSink): the layers of
    its layered document, spooled in the folder ``spool`` (None: no layered document), and the previews of
    its report page (if ``page``)."""

    def __init__(self, spool: Path | None, page: bool):
        self.layers = None if spool is None else LayerCollector(spool)
        self.previews = FramePreviews() if page else None

    def __call__(self, frame: FrameInfo, image: np.ndarray) -> None:
        for sink in (self.layers, self.previews):
            if sink is not None:
                sink(frame, image)

    def fits(self, layered: bool, page: bool) -> bool:
        """Whether these are the sinks a stack with (or without) a layered document and a page needs."""
        return (self.layers is not None) == layered and (self.previews is not None) == page

    def close(self) -> None:
        """Let go of the document's spool, for frames that will not be written."""
        if self.layers is not None and self.layers.document is not None:
            self.layers.document.close()


@dataclass
class Taken:
    """The work done on a bracket's frames as they arrived (live stacking): pass 1, with pass 2 run ahead
    where the count was known (engine.pipeline.AheadFusion), its aligned frames given to ``sinks``."""

    aligner: FrameAligner
    sinks: FrameSinks | None = None


class StackWarnings(logging.Handler):
    """Collects, as ``messages``, the warnings logged on this thread while it is entered: one stack's, where
    the service stacks several at once in its threads."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())

    def __enter__(self) -> StackWarnings:
        log.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        log.removeHandler(self)


def check_outputs(paths: list[tuple[Path, tuple[str, ...]]], inputs: list[Path], overwrite: bool) -> None:
    """Raise ValueError, before any work, for an output the run could not or must not write: each
    (path, suffixes it may have). Never an input frame; an existing file only with ``overwrite``; one
    path once; its folder must exist and take a new file."""
    for k, (path, suffixes) in enumerate(paths):
        if path.suffix.lower() not in suffixes:
            raise ValueError(f"{path.name}: unknown output format; use one of {', '.join(suffixes)}")
        if not path.parent.is_dir():
            raise ValueError(f"{path}: the output folder {path.parent} does not exist")
        if any(_same(path, other) for other, _ in paths[:k]):
            raise ValueError(f"{path}: named twice among the outputs")
        if path.exists():
            if any(_same(path, frame) for frame in inputs):
                raise ValueError(f"{path}: is one of the input frames; FocusDrop never writes over a frame")
            if not overwrite:
                raise ValueError(f"{path}: already exists; give --overwrite to replace it")
        try:
            tempfile.TemporaryFile(dir=path.parent).close()
        except OSError as e:
            raise ValueError(f"{path.parent}: cannot write in this folder ({e.strerror or e})") from None


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (the same inode, or the same real path if neither exists yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def depth_image(result: StackResult, dtype: np.dtype = np.uint8) -> np.ndarray:
    """Which frame supplies each pixel as (h, w, 1) grey of ``dtype``: black for the first frame, white
    for the last."""
    last = max(len(result.alignment.frames) - 1, 1)
    full = np.iinfo(dtype).max
    return np.round(result.depth.astype(np.float32) * (full / last)).astype(dtype)[..., None]


def provenance(result: StackResult, options: StackOptions) -> dict[str, str | list[str]]:
    """FocusDrop's XMP properties for a result: how many frames, which files (in focus order), the method."""
    frames = result.alignment.frames
    return {"focusdrop:Frames": str(len(frames)), "focusdrop:Method": options.method,
            "focusdrop:Sources": [info.path.name for info in frames]}


def peak_memory_mb() -> float:
    """This process's peak resident memory, MB: VmHWM on Linux (not inherited across exec, unlike
    ru_maxrss, which a child started by a large parent inherits), ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(result: StackResult, outputs: list[Path]) -> dict:
    """What a run did, as JSON-ready data: the frames in the focus order used, each with its transform to
    the reference, gain, keypoint matches with the frame it was registered to, and loop_px, how far
    registering it otherwise (to the frames two away in focus order) lands from its chained transform (px;
    over 1.5 it is warned about as uncertain; null where there is no such loop)."""
    a = result.alignment
    return {
        "outputs": [str(p) for p in outputs],
        "reference": a.frames[a.reference].path.name,
        "box": list(a.box),
        "frames": [{"file": info.path.name, "to_reference": matrix[:2].round(6).tolist(),
                    "gain": gain.round(5).tolist(), "matches": count,
                    "loop_px": None if loop is None else round(loop, 3)}
                   for info, matrix, gain, count, loop in zip(a.frames, a.to_ref, a.gains, a.matches, a.loops)],
        "skipped": [info.path.name for info in a.skipped],
        "seconds": {step: round(t, 3) for step, t in result.timings.items()},
        "peak_memory_mb": round(peak_memory_mb()),
    }


def stack_to_file(paths: list[Path], outputs: list[Path], options: StackOptions, depthmap: Path | None = None,
                  report_path: Path | None = None, overwrite: bool = False, progress: Progress | None = None,
                  page: Path | None = None, taken: Taken | None = None) -> tuple[StackResult, list[Path]]:
    """Stack ``paths`` (in focus order) into each of ``outputs`` (one layered document at most, and flat
    files); optionally write the depth map, a JSON report and the report ``page`` (bridge.report, with the
    result's preview beside it, named as the page with .jpg); existing files are replaced only with
    ``overwrite``. Every file is written durably under a temporary name and renamed into place.
    ``progress``: the engine's progress callback; ``taken``: the work done as the frames arrived (live
    stacking), finished instead of reading them again where it holds. Returns the result and the paths
    written."""
    checks = [(p, OUTPUT_SUFFIXES) for p in outputs] + [(depthmap, DEPTHMAP_SUFFIXES)] * bool(depthmap)
    checks += [(report_path, (".json",))] * bool(report_path)
    checks += [(page, PAGE_SUFFIXES), (page.with_suffix(".jpg"), (".jpg",))] if page else []
    check_outputs(checks, paths, overwrite)
    layered = [p for p in outputs if p.suffix.lower() in LAYERED_SUFFIXES]
    if len(layered) > 1:
        raise ValueError("one layered document per stack")
    if (depthmap is not None or layered) and options.method != "depthmap":
        raise ValueError(f"{(layered or [depthmap])[0].name}: {FLAT_ONLY} (a layered document and a depth map "
                         f"come from the depthmap method)")
    sinks = FrameSinks(layered[0].parent if layered else None, page is not None)
    ahead = None if taken is None else taken.aligner.ahead
    if ahead is not None and not (taken.sinks is not None and taken.sinks.fits(bool(layered), page is not None)):
        ahead.stop("its frames did not go where this stack's go")
    try:
        with StackWarnings() as warnings:
            result = stack(paths, options, progress or (lambda step, done, total: None), on_layer=sinks,
                           taken=None if taken is None else taken.aligner)
    except BaseException:
        for unused in (sinks, None if taken is None else taken.sinks):
            if unused is not None:
                unused.close()
        raise
    if ahead is not None and ahead.stopped is None:  # the frames went to the sinks as they arrived
        sinks.close()
        sinks = taken.sinks
    elif taken is not None and taken.sinks is not None:
        taken.sinks.close()
    reference = result.alignment.frames[result.alignment.reference]
    xmp = result_xmp(reference.xmp, capture_properties(reference.path) | provenance(result, options))
    written = []
    with result.timings("write"):
        for output in outputs:
            if output.suffix.lower() in LAYERED_SUFFIXES:
                written.append(sinks.layers.write(result, xmp, output))
            else:
                write_image(output, result.image, reference.icc, xmp)
                written.append(output)
        if depthmap is not None:
            write_image(depthmap, depth_image(result))
    if report_path is not None or page is not None:
        data = report(result, written)
    if report_path is not None:
        write_durably(report_path, json.dumps(data, indent=1).encode())
    if page is not None:
        from focusdrop.bridge.report.page import page_title, render  # here: matplotlib and Jinja2 load only for it
        from focusdrop.bridge.report.pictures import make_pictures
        pictures = make_pictures(result, sinks.previews)
        write_durably(page, render(page_title(written), result, data, pictures, warnings.messages).encode("utf-8"))
        write_durably(page.with_suffix(".jpg"), pictures.result_jpeg)
    return result, written


def stack_record(paths: list[Path], outputs: list[Path], options: StackOptions, worker: str,
                 page: Path | None = None, progress: Progress | None = None, taken: Taken | None = None
                 ) -> dict:
    """A hot-folder job's stack: ``stack_to_file`` with ``overwrite`` (its report page at ``page``, its
    progress to ``progress``, the work ``taken`` as its frames arrived), reduced to what the service
    keeps: {"written": the paths written, "report": ``report``, "worker": ``worker``}. The result's pixels
    are released before returning (a cluster task sends only this record back)."""
    result, written = stack_to_file(paths, outputs, options, overwrite=True, progress=progress, page=page,
                                    taken=taken)
    data = report(result, written)
    del result
    release_freed_memory()
    return {"written": data["outputs"], "report": data, "worker": worker}
