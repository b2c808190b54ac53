"""Live stacking: pass 1 run on a bracket's frames as they arrive, handed to the job that claims them.

Live are a NAME.partial/ folder whose manifest gives the bracket's frame ``count``, and each burst of loose
frames (bridge.hotfolder.inbox), each known by its folder or its first frame. Each of its frames is taken
into an engine.pipeline.FrameAligner as soon as the inbox reports it (a live folder's as it opens complete,
a loose frame once settled), on a thread of its own per bracket, so that when the bracket ends only
registration, pass 2 and the write remain. Where the count is known (a live folder's), pass 2 runs as the
frames arrive too (engine.pipeline.AheadFusion), the layered document's layers spooled in ``folder`` (those
of the frames before the reference, fused all at once when it arrives, uncompressed where the PSD stays under
2 GB that way, so that the work keeps up): then only the last frame, the crop and the write remain. After each frame, a preview of the stack so far (fused
at thumbnail size) is written to ``folder``/KEY.jpg, KEY the bracket's folder or first frame's name, for the
status page; it is removed when the bracket is claimed or dropped.
Nothing here is journaled: a service stopped mid-bracket finds the folder still in the hot folder at its
next start and takes its frames in again, and a claimed job whose live work is lost runs from its files.
"""
from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from focusdrop.engine.frameinfo import FrameError, FrameInfo

if TYPE_CHECKING:  # the engine's heavy imports wait for a live folder
    from focusdrop.bridge.stacking import Taken
    from focusdrop.engine.pipeline import FrameAligner, StackOptions

log = logging.getLogger("focusdrop")


@dataclass
class _Live:
    taken: Taken
    thread: ThreadPoolExecutor
    first: FrameInfo  # as probed: the white balance of raw frames comes from it
    preview: Path | None
    frames: set[Path] = field(default_factory=set)
    pending: list[Future] = field(default_factory=list)

    @property
    def aligner(self) -> FrameAligner:
        return self.taken.aligner

    def write_preview(self) -> None:
        """The preview of the frames taken in so far (none once the bracket is claimed; a failed one is logged,
        the frames still count)."""
        target = self.preview
        if target is None:
            return
        try:
            picture = self.aligner.preview()
            if picture is None:
                return
            from focusdrop.bridge.report.pictures import encoded
            from focusdrop.engine.preview import preview
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(encoded(preview(picture, max(picture.shape[:2]))))
            os.replace(partial, target)
            if self.preview is None:  # claimed or dropped meanwhile
                target.unlink(missing_ok=True)
        except Exception as e:  # noqa: BLE001 (a preview is for show: it never stops a stack)
            log.warning("live: no preview for %s: %s", target.stem, e)

    def fuse_ahead(self) -> None:
        """Pass 2 on the frames taken in so far; where it fails, the stack's own pass 2 runs at the end."""
        try:
            self.aligner.ahead.advance()
        except Exception as e:  # noqa: BLE001 (a frame that cannot be read again is the stack's to name)
            self.aligner.ahead.stop(f"{type(e).__name__}: {e}")


class LiveStacks:
    """The brackets being taken in (by their folder, or their first loose frame), and the claimed jobs their
    work waits for."""

    def __init__(self, folder: Path) -> None:
        self._brackets: dict[Path, _Live] = {}
        self._jobs: dict[int, _Live] = {}
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)  # a stopped service's previews are of brackets it no longer holds
        folder.mkdir(parents=True)

    def feed(self, bracket: Path, frames: list[FrameInfo], options: StackOptions, count: int | None = None,
             layered: bool = False) -> None:
        """Take in the frames of ``bracket`` not taken yet, in the order given (a new bracket starts a
        FrameAligner with ``options``; with its ``count``, pass 2 runs ahead, for a result with a layered
        document if ``layered``, and a report page). Raw frames are taken with the first frame's white
        balance: the stack checks that it is the reference's, as it is in a bracket shot with one, and reads
        them again where it is not. Frames that cannot go together (raw and images, two cameras) are left to
        the stack to name."""
        from focusdrop.engine.raw import same_settings
        live = self._brackets.get(bracket)
        new = [info for info in frames if live is None or info.path not in live.frames]
        if not new:
            return
        try:  # a new bracket's frames begin with its first; a known one's are checked against it
            new = same_settings(new, 0, options.white_balance) if live is None else \
                same_settings([live.first] + new, 0, options.white_balance)[1:]
        except FrameError:
            return
        if live is None:
            from focusdrop.bridge.stacking import FrameSinks, Taken
            from focusdrop.engine.pipeline import FrameAligner
            taken = Taken(FrameAligner(options))
            if count is not None:
                taken.sinks = FrameSinks(self.folder if layered else None, page=True)
                taken.aligner.fuse_ahead(count, taken.sinks)
                if layered and _raw_fits(frames[0], count):
                    taken.sinks.layers.raw_first = taken.aligner.ahead.reference
            live = self._brackets[bracket] = _Live(taken, ThreadPoolExecutor(1, "live"), frames[0],
                                                   self.folder / f"{bracket.name}.jpg")
        for info in new:
            live.frames.add(info.path)
            live.pending.append(live.thread.submit(live.aligner.add, info))
            live.thread.submit(live.write_preview)
            if live.aligner.ahead is not None:  # it reads the frame again: drained too
                live.pending.append(live.thread.submit(live.fuse_ahead))

    def keep_only(self, brackets: set[Path]) -> None:
        """Let go of brackets no longer live (removed, renamed by their exporter, a burst regrouped) that no
        job claimed."""
        for bracket in [b for b in self._brackets if b not in brackets]:
            _close(self._brackets.pop(bracket))

    def drain(self, bracket: Path) -> None:
        """Wait until the frames of ``bracket`` handed in so far are taken in (read, and fused where pass 2
        runs ahead), before they move."""
        live = self._brackets.get(bracket)
        for future in live.pending if live is not None else []:
            future.exception()

    def claimed(self, bracket: Path, job_id: int) -> None:
        """The job ``job_id`` took ``bracket`` (its frames moved into the job's folder)."""
        if bracket in self._brackets:
            self._jobs[job_id] = live = self._brackets.pop(bracket)
            _drop_preview(live)

    def take(self, job_id: int, folder: Path, options: StackOptions) -> Taken | None:
        """The work done for job ``job_id`` as its frames arrived, its frames now in ``folder``; None if there
        is none, or it was made with other options, or a frame failed in it (the job then reads its frames
        again, and says what is wrong with them)."""
        live = self._jobs.pop(job_id, None)
        if live is None:
            return None
        live.thread.shutdown(wait=True)
        failed = [f.exception() for f in live.pending if f.exception() is not None]
        if failed or live.aligner.options != options:
            _close(live)
            return None
        live.aligner.moved(folder)
        ahead = live.aligner.ahead
        fused = "" if ahead is None or ahead.stopped else f", {ahead.fused} fused"
        log.info("live: %d frames were aligned as they arrived%s", len(live.frames), fused)
        return live.taken


def _raw_fits(first: FrameInfo, count: int) -> bool:
    """Whether a bracket's PSD stays a PSD (GIMP opens it) with every layer stored uncompressed: the frames
    fused at once when the reference arrives may then skip compression, half of their work."""
    from focusdrop.engine.psd import needs_psb
    height, width, channels = first.shape
    layer = height * width * channels * np.dtype(first.dtype).itemsize
    return not needs_psb(width, height, (count + 2) * layer)  # + the blend layer and composite (the masks and
    # the depth layer compress to little)


def _close(live: _Live) -> None:
    live.thread.shutdown(wait=True, cancel_futures=True)
    live.aligner.close()
    if live.taken.sinks is not None:
        live.taken.sinks.close()
    _drop_preview(live)


def _drop_preview(live: _Live) -> None:
    """No more previews of ``live``, and none left on disk."""
    preview, live.preview = live.preview, None
    if preview is not None:
        preview.unlink(missing_ok=True)
