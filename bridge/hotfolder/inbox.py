"""What has landed in the hot folder: which files are complete, and which stacks are ready to take.

Every scan notes each candidate's size and modification time; a file whose size and time have not
changed for SETTLE seconds and that opens as a complete frame (engine.frames.probe_frame: header, every
strip present, end marker) is settled (exporters write progressively, sometimes under temporary names,
which are not image names and so are never candidates). Then:
- loose frames in the folder itself are split into bursts (bridge.hotfolder.grouping); a burst is ready once
  nothing in it has changed for the quiet period, and it is not the newest burst while frames are still
  arriving;
- a loose file that does not open as a complete frame is waited for: one whose data stops short (an
  export stalled on a network share) holds back the newest burst until ``give_up``; one that is empty or
  not a readable image, for the quiet period only. Once unchanged for ``give_up`` seconds it is returned
  as a stack of its own with its problem, which the service sends to failed/ with an error.txt;
- a job folder NAME/ is ready when it was renamed from NAME.partial/ or carries a manifest.json and its
  files are settled, or otherwise once it has been quiet for the quiet period and every frame in it opens
  complete (or ``give_up`` has passed: it then fails, naming the frame);
- a NAME.partial/ folder is left alone unless its manifest gives the bracket's frame ``count`` (live
  stacking): then each frame in it is reported in ``live`` as soon as it opens complete (no settling: the
  service aligns it at once), and the folder is ready once ``count`` frames are complete, or fails once it
  has not changed for ``give_up`` seconds with fewer.
Each burst of loose frames is reported in ``live`` too, with its settled frames, so that the service aligns
them while the quiet period runs.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from focusdrop.bridge.hotfolder.grouping import LooseFrame, split_bursts
from focusdrop.bridge.hotfolder.layout import PARTIAL, RESERVED
from focusdrop.bridge.hotfolder.manifest import MANIFEST, Manifest, read_manifest
from focusdrop.engine.frameinfo import MAX_MEGAPIXELS, FrameError, FrameInfo, IncompleteFrame
from focusdrop.engine.frames import IMAGE_SUFFIXES, capture_time, list_frames, probe_frame

log = logging.getLogger("focusdrop")

SETTLE = 2.0            # seconds a file's size and time must hold still
GIVE_UP = 60.0          # default seconds an unusable file may sit unchanged before it is sent to failed/
SIDECAR = ".xmp"


@dataclass(frozen=True)
class ReadyStack:
    """A stack to take. frames: in the order found (capture time, or as the manifest lists them);
    sidecars: files that travel with them; folder: the job folder to move whole (None for loose frames);
    manifest: what its manifest.json says; problem: why it cannot be stacked (a bad manifest, a file that
    never became a frame), "" if nothing is known against it."""

    name: str
    frames: list[Path]
    sidecars: list[Path] = field(default_factory=list)
    folder: Path | None = None
    manifest: Manifest = field(default_factory=Manifest)
    how: str = ""
    problem: str = ""


@dataclass
class _Seen:
    signature: tuple
    changed: float
    frame: LooseFrame | None = None
    info: FrameInfo | None = None  # its header, once it opens complete
    problem: str = ""  # why it does not open as a complete frame (loose files), "" if it does
    cut_short: bool = False  # its header opens but its data stops short


def is_frame_name(path: Path) -> bool:
    """Whether a file in the hot folder is a frame candidate: an image suffix, not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


class Inbox:
    """The hot folder ``hot_folder``; quiet, gap and give_up in seconds; clock: monotonic seconds (tests may
    replace it); ignore: more folder names to leave alone (the output folder, when it lies inside);
    max_megapixels: the largest frame taken (engine.frames.probe_frame)."""

    def __init__(self, hot_folder: Path, quiet: float, gap: float, clock: Callable[[], float] = time.monotonic,
                 ignore: tuple[str, ...] = (), give_up: float = GIVE_UP, max_megapixels: float = MAX_MEGAPIXELS):
        self.hot_folder = hot_folder
        self.ignore = RESERVED | set(ignore)  # folder names that are never job folders
        self.max_megapixels = max_megapixels
        self.quiet, self.gap, self.give_up, self.clock = quiet, gap, max(give_up, quiet), clock
        self._seen: dict[Path, _Seen] = {}
        self._renamed: set[Path] = set()
        self.due = math.inf  # the clock time at which a scan may next find a file settled or a bracket quiet
        self._now = clock()
        self.live: dict[Path, tuple[Manifest, list[FrameInfo]]] = {}  # a live folder, or a burst of loose
        # frames by its first frame: its complete frames, as they came

    def renamed_from_partial(self, folder: Path) -> None:
        """Note that ``folder`` appeared by renaming NAME.partial/: the exporter's completion signal."""
        self._renamed.add(folder)

    def scan(self) -> list[ReadyStack]:
        """Look at the folder once; return the stacks that are ready, oldest first."""
        now = self._now = self.clock()
        self.due = math.inf
        loose, folders, partials = [], [], []
        with os.scandir(self.hot_folder) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    if not (entry.name.startswith(".") or entry.name in self.ignore):
                        (partials if entry.name.endswith(PARTIAL) else folders).append(path)
                elif is_frame_name(path):
                    loose.append(path)
        self._renamed &= set(folders)
        self.live = {}
        ready = self._ready_loose(loose, now) + [s for s in (self._ready_folder(f, now) for f in folders) if s]
        ready += [s for s in (self._ready_live(f, now) for f in partials) if s]
        present = set(loose) | set(folders) | set(partials) | {p for p in self._seen if p.parent in partials}
        for gone in [p for p in self._seen if p not in present]:
            del self._seen[gone]
        return ready

    def _track(self, path: Path, signature: tuple, now: float) -> _Seen:
        seen = self._seen.get(path)
        if seen is None or seen.signature != signature:
            seen = self._seen[path] = _Seen(signature, now)
        return seen

    def _track_file(self, path: Path, now: float) -> _Seen | None:
        """A file's record, its size and modification time (ns) as its signature; None if it is gone."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return self._track(path, (stat.st_size, stat.st_mtime_ns), now)

    def _ready_loose(self, paths: list[Path], now: float) -> list[ReadyStack]:
        settled, arriving, ready = [], False, []
        for path in paths:
            seen = self._track_file(path, now)
            if seen is None:
                continue
            still = now - seen.changed
            if still < SETTLE:
                arriving = True
                self._due(seen.changed + SETTLE)
                continue
            if seen.frame is None:
                self._describe(path, seen.signature[1] / 1e9, seen)
            if seen.frame is not None:
                settled.append(seen.frame)
            elif still >= self.give_up:
                ready.append(ReadyStack(path.stem, [path], self._sidecars([path]),
                                        how=f"unusable for {self.give_up:g} s",
                                        problem=f"{path.name}: {seen.problem}; unchanged for {self.give_up:g} s"))
            elif still < (self.give_up if seen.cut_short else self.quiet):
                arriving = True  # perhaps an export stalled: wait for it, for a while
        bursts = split_bursts(settled, self.gap)
        for i, burst in enumerate(bursts):
            self.live[burst.frames[0].path] = (Manifest(), [self._seen[f.path].info for f in burst.frames])
            last_change = max(self._seen[f.path].changed for f in burst.frames)
            newest = i == len(bursts) - 1
            if now - last_change < self.quiet or (newest and arriving):
                self._due(last_change + self.quiet)
                continue
            how = burst.split or f"no new frame for {self.quiet:g} s"
            frames = [f.path for f in burst.frames]
            ready.append(ReadyStack(frames[0].stem, frames, self._sidecars(frames), how=how))
        return ready

    def _due(self, at: float) -> None:
        """Note a time at which something may become ready (times already past wait for a change)."""
        if at > self._now:
            self.due = min(self.due, at)

    def _describe(self, path: Path, mtime: float, seen: _Seen) -> None:
        """Note a settled file's header and capture time as ``seen.frame``, or its problem as
        ``seen.problem`` (logged once per change of the file)."""
        try:
            info = probe_frame(path, self.max_megapixels)
        except FrameError as e:
            if e.problem != seen.problem:
                log.warning("waiting for %s: %s", path.name, e.problem)
            seen.problem, seen.cut_short = e.problem, isinstance(e, IncompleteFrame)
            return
        size = (info.shape[1], info.shape[0])
        log.info("frame arrived: %s (%dx%d, %d-bit)", path.name, *size, info.dtype.itemsize * 8)
        seen.frame, seen.info, seen.problem = LooseFrame(path, capture_time(path) or mtime, size), info, ""

    def _sidecars(self, frames: list[Path]) -> list[Path]:
        """IMG_1.xmp or IMG_1.tif.xmp beside IMG_1.tif, any case."""
        names = {(f.stem + SIDECAR).lower() for f in frames} | {(f.name + SIDECAR).lower() for f in frames}
        return sorted(p for p in self.hot_folder.iterdir() if p.name.lower() in names)

    def _ready_folder(self, folder: Path, now: float) -> ReadyStack | None:
        try:
            stats = [(p.name, p.stat()) for p in folder.iterdir() if p.is_file()]
        except FileNotFoundError:
            return None
        files = sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats)
        seen = self._track(folder, tuple(files), now)
        quiet_for = now - seen.changed
        has_manifest = (folder / MANIFEST).exists()
        if folder in self._renamed and quiet_for >= min(SETTLE, self.quiet):
            how = "job folder renamed from .partial"
        elif has_manifest and quiet_for >= min(SETTLE, self.quiet):
            how = "job folder with a manifest"
        elif quiet_for >= self.quiet and (quiet_for >= self.give_up or self._all_open(folder, seen)):
            how = f"job folder quiet for {self.quiet:g} s"
        else:
            self._due(seen.changed + (min(SETTLE, self.quiet) if has_manifest or folder in self._renamed
                                      else self.quiet))
            return None
        manifest, problem = Manifest(), ""
        if has_manifest:
            try:
                manifest = read_manifest(folder)
            except ValueError as e:
                problem = str(e)
        frames = list_frames(folder) if manifest.frames is None else [folder / f for f in manifest.frames]
        return ReadyStack(manifest.name or folder.name, frames, folder=folder, manifest=manifest, how=how,
                          problem=problem)


    def _ready_live(self, folder: Path, now: float) -> ReadyStack | None:
        """A NAME.partial/ folder whose manifest gives a frame ``count``: its complete frames go to ``live``;
        ready with ``count`` of them, failed when unchanged for ``give_up`` seconds with fewer."""
        try:
            manifest = read_manifest(folder)
        except (FileNotFoundError, ValueError):
            return None  # not live (a manifest being written, or a bad one, is read again at the rename)
        if manifest.count is None:
            return None
        frames = list_frames(folder)
        complete, problems, last_change = [], [], self._track(folder, (), now).changed
        for frame in frames:
            seen = self._track_file(frame, now)
            if seen is None:
                continue
            last_change = max(last_change, seen.changed)
            if seen.info is None and not seen.problem:  # once per change of the file
                try:
                    seen.info, seen.problem = probe_frame(frame, self.max_megapixels), ""
                    log.info("live: %s: %s complete", folder.name, frame.name)
                except FrameError as e:
                    seen.problem = e.problem
            if seen.info is not None:
                complete.append((seen.changed, seen.info))
            else:
                problems.append(f"{frame.name}: {seen.problem}")
        complete.sort(key=lambda item: item[0])  # as they came (the order a stable sort keeps: by name)
        infos = [info for _, info in complete]
        self.live[folder] = (manifest, infos)
        name = manifest.name or folder.name[:-len(PARTIAL)]
        if len(infos) >= manifest.count:  # a file still being written beside them goes along, unstacked
            taken = {info.path for info in infos}
            return ReadyStack(name, [f for f in frames if f in taken] if manifest.frames is None else
                              [folder / f for f in manifest.frames], folder=folder, manifest=manifest,
                              how=f"all {manifest.count} frames in (live)")
        if now - last_change >= self.give_up:
            del self.live[folder]
            why = f"only {len(infos)} of {manifest.count} frames complete, unchanged for {self.give_up:g} s"
            return ReadyStack(name, frames, folder=folder, manifest=manifest, how="live bracket cut short",
                              problem="; ".join([why] + problems[:1]))
        return None

    def _all_open(self, folder: Path, seen: _Seen) -> bool:
        """Whether every frame in a quiet job folder opens complete; the first that does not is logged
        (once per change of the folder)."""
        for frame in list_frames(folder):
            try:
                probe_frame(frame, self.max_megapixels)
            except FrameError as e:
                if e.problem != seen.problem:
                    log.warning("waiting for %s/%s: %s", folder.name, frame.name, e.problem)
                seen.problem = e.problem
                return False
        return True
