"""Live stacking: pass 1 run on a live job folder's frames as they arrive, handed to the job that claims it.

A NAME.partial/ folder whose manifest gives the bracket's frame ``count`` is live (bridge.hotfolder.inbox).
Each of its frames is taken into an engine.pipeline.FrameAligner as soon as it opens complete, on a thread
of its own per folder, so that when the last frame lands only registration, pass 2 and the write remain.
Nothing here is journaled: a service stopped mid-bracket finds the folder still in the hot folder at its
next start and takes its frames in again, and a claimed job whose live work is lost runs from its files.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from focusdrop.engine.frameinfo import FrameInfo

if TYPE_CHECKING:  # the engine's heavy imports wait for a live folder
    from focusdrop.engine.pipeline import FrameAligner, StackOptions

log = logging.getLogger("focusdrop")


@dataclass
class _Live:
    aligner: FrameAligner
    thread: ThreadPoolExecutor
    taken: set[Path] = field(default_factory=set)
    pending: list[Future] = field(default_factory=list)


class LiveStacks:
    """The live folders being taken in, and the claimed jobs their work waits for."""

    def __init__(self) -> None:
        self._folders: dict[Path, _Live] = {}
        self._jobs: dict[int, _Live] = {}

    def feed(self, folder: Path, frames: list[FrameInfo], options: StackOptions) -> None:
        """Take in the frames of ``folder`` not taken yet, in the order given (a new folder starts a
        FrameAligner with ``options``)."""
        live = self._folders.get(folder)
        if live is None:
            from focusdrop.engine.pipeline import FrameAligner
            live = self._folders[folder] = _Live(FrameAligner(options), ThreadPoolExecutor(1, "live"))
        for info in frames:
            if info.path not in live.taken:
                live.taken.add(info.path)
                live.pending.append(live.thread.submit(live.aligner.add, info))

    def keep_only(self, folders: set[Path]) -> None:
        """Let go of folders no longer live (removed, or renamed by their exporter) that no job claimed."""
        for folder in [f for f in self._folders if f not in folders]:
            _close(self._folders.pop(folder))

    def drain(self, folder: Path) -> None:
        """Wait until the frames of ``folder`` handed in so far are taken in (read), before it is moved."""
        live = self._folders.get(folder)
        for future in live.pending if live is not None else []:
            future.exception()

    def claimed(self, folder: Path, job_id: int) -> None:
        """The job ``job_id`` took ``folder`` (its frames moved into the job's folder)."""
        if folder in self._folders:
            self._jobs[job_id] = self._folders.pop(folder)

    def take(self, job_id: int, folder: Path, options: StackOptions) -> FrameAligner | None:
        """The pass 1 done for job ``job_id`` as its frames arrived, its frames now in ``folder``; None if there
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
        log.info("live: %d frames were aligned as they arrived", len(live.taken))
        return live.aligner


def _close(live: _Live) -> None:
    live.thread.shutdown(wait=True, cancel_futures=True)
    live.aligner.close()
