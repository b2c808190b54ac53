"""``focusdrop watch``: the hot-folder service.

watchdog's observer (or its polling observer, for SMB/NFS shares, where events get lost) wakes the loop
as soon as something changes in the hot folder; a rescan every few seconds is the safety net for events
lost on network shares and while the service was down. Each pass of the loop claims the stacks the inbox
says are ready and hands waiting jobs, oldest first, to up to ``workers`` threads; with a cluster
(bridge.cluster), to as many threads as its workers can take, each waiting on its stack's task. A first SIGINT or
SIGTERM stops taking new stacks and lets running ones finish; a second one leaves at once, and the
interrupted stacks run again at the next start.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from watchdog.events import DirMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from focusdrop.bridge.hotfolder.inbox import Inbox
from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.layout import PARTIAL, Layout, Workspace
from focusdrop.bridge.hotfolder.lifecycle import claim, run_job
from focusdrop.bridge.hotfolder.live import LiveStacks
from focusdrop.bridge.hotfolder.manifest import MANIFEST
from focusdrop.bridge.hotfolder.recovery import recover
from focusdrop.bridge.hotfolder.runner import LocalRunner, Runner
from focusdrop.bridge.settings import Fallback, Settings

log = logging.getLogger("focusdrop")
MAX_THREADS = 64  # with a cluster: stacks waited on at once (the cluster's capacity sets how many run)
RESCAN = 2.0  # seconds between safety-net rescans of the hot folder


def open_in_default_app(path: Path) -> None:
    """Open ``path`` in the system's default application for its type; a failure is logged, not raised."""
    try:
        if sys.platform == "win32":
            os.startfile(path)  # exists on Windows only
        else:
            subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log.info("opened %s", path.name)
    except OSError as e:
        log.warning("could not open %s: %s", path.name, e.strerror or e)


def _runner(settings: Settings, live: LiveStacks | None) -> Runner:
    """This machine's runner (finishing ``live``'s work), or a cluster's (with this machine's as its fallback
    if asked for)."""
    local = LocalRunner(settings.workers, live)
    if not settings.cluster:
        return local
    from focusdrop.bridge.cluster.runner import ClusterRunner, needs_cluster_extra, security
    needs_cluster_extra()
    fallback = local if settings.cluster_fallback is Fallback.LOCAL else None
    return ClusterRunner(settings.cluster, security(settings.cluster_ca, settings.cluster_cert, settings.insecure,
                                                    settings.cluster), fallback)


class _Wake(FileSystemEventHandler):
    def __init__(self, service: "Service"):
        self.service = service

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirMovedEvent) and str(event.src_path).endswith(PARTIAL):
            self.service.inbox.renamed_from_partial(Path(os.fsdecode(event.dest_path)))
        self.service.wake.set()


class Service:
    """One hot folder being watched, as ``settings`` say; ``rescan``: seconds between rescans. ``run`` blocks
    until ``stop`` (or a signal) ends it."""

    def __init__(self, settings: Settings, rescan: float = RESCAN):
        self.settings, self.rescan = settings, rescan
        layout = Layout(settings.hot_folder, settings.out)
        self.live = None if settings.cluster else LiveStacks(layout.live)  # a cluster reads frames on its workers
        self.runner = _runner(settings, self.live)  # before the workspace: nothing is made for a bad cluster setting
        self.workspace = Workspace(layout)
        self.inbox = Inbox(settings.hot_folder, settings.quiet, settings.gap, ignore=layout.ignored,
                           give_up=settings.give_up, max_megapixels=settings.max_megapixels)
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._running: dict[int, Future] = {}
        self._observer: BaseObserver | None = None
        self._watched: dict[Path, ObservedWatch] = {}  # live folders: a frame landing wakes the loop at once

    def stop(self) -> None:
        """Take no new stacks; ``run`` returns once the running ones are finished."""
        self._stopping.set()
        self.wake.set()

    def _on_signal(self, signum: int, frame) -> None:
        if self._stopping.is_set():
            log.warning("stopping now; %d interrupted stack(s) will run again at the next start",
                        len(self._running))
            os._exit(1)
        log.info("stopping after the running stack(s) finish (signal again to stop at once)")
        self.stop()

    def run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        logfile = logging.handlers.RotatingFileHandler(self.workspace.layout.log, maxBytes=2**20, backupCount=5,
                                                       encoding="utf-8")
        logfile.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logfile.setLevel(logging.INFO)
        log.addHandler(logfile)  # a login service has no terminal: this file is its log
        try:
            self._run()
        finally:
            log.removeHandler(logfile)
            logfile.close()

    def _run(self) -> None:
        recover(self.workspace, self.runner.alive)
        settings = self.settings
        observer = self._observer = PollingObserver(timeout=self.rescan) if settings.polling else Observer()
        observer.schedule(_Wake(self), str(settings.hot_folder), recursive=False)
        observer.start()
        where = f"cluster {settings.cluster}" if settings.cluster else f"{settings.workers} worker(s)"
        log.info("watching %s (results to %s; quiet %g s, gap %g s, %s, %s)", settings.hot_folder,
                 settings.out, settings.quiet, settings.gap, settings.format, where)
        threads = MAX_THREADS if settings.cluster else settings.workers
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                while not self._stopping.is_set():
                    self._pass(pool)
                    self.wake.wait(self._until_due())
                    self.wake.clear()
                for future in list(self._running.values()):
                    future.result()
        finally:
            observer.stop()
            observer.join()
            self.runner.close()
            self.workspace.journal.close()
        log.info("stopped")

    def _until_due(self) -> float:
        """Seconds to the next pass: the rescan interval, or less where the inbox expects a file to settle
        or a bracket's quiet period to end before it (no event marks either)."""
        return min(self.rescan, max(0.0, self.inbox.due - self.inbox.clock()) + 0.01)

    def _run_job(self, job: Job) -> Job:
        job = run_job(self.workspace, job, self.settings, self.runner)
        if self.settings.open and job.state == "done":
            open_in_default_app(Path(job.outputs[0]))
        return job

    def _pass(self, pool: ThreadPoolExecutor) -> None:
        ready = self.inbox.scan()
        if self.live is not None:
            self._feed_live()
        for stack in ready:
            key = stack.folder or stack.frames[0]  # as the inbox names it in ``live``
            if self.live is not None:
                self.live.drain(key)  # its frames read before they move
            try:
                job = claim(self.workspace, stack)
            except OSError as e:  # a frame that cannot be moved (permissions): say so, keep watching
                log.error("could not take stack %s out of the hot folder: %s", stack.name, e)
                continue
            if self.live is not None and not stack.problem:
                self.live.claimed(key, job.id)
        if self.live is not None:
            live = {key for key in self.inbox.live if key.exists()}
            self.live.keep_only(live)
            self._watch({key for key in live if key.is_dir()})
        self._running = {i: f for i, f in self._running.items() if not f.done()}
        if self._running:
            self._note_workers()
        capacity = self.runner.capacity()
        for job in self.workspace.journal.jobs("waiting"):
            if len(self._running) >= capacity:
                break
            if job.id not in self._running:
                future = pool.submit(self._run_job, job)
                future.add_done_callback(lambda _: self.wake.set())
                self._running[job.id] = future

    def _watch(self, folders: set[Path]) -> None:
        """Watch ``folders`` (the live ones) as the hot folder is watched, and no others."""
        for folder in folders - set(self._watched):
            try:
                self._watched[folder] = self._observer.schedule(_Wake(self), str(folder), recursive=False)
            except OSError:
                pass  # gone since the scan; the rescan still sees what lands in one
        for folder in set(self._watched) - folders:
            try:
                self._observer.unschedule(self._watched.pop(folder))
            except (KeyError, OSError):
                pass  # its watch ended with the folder

    def _feed_live(self) -> None:
        """Hand the live brackets' complete frames to their pass 1, with the settings their jobs will have (a
        manifest whose settings do not go together is left to fail as its job)."""
        for bracket, (manifest, frames) in self.inbox.live.items():
            try:
                settings = self.settings.amended(manifest.settings, MANIFEST)
                options = settings.stack_options()
            except ValueError:
                continue
            self.live.feed(bracket, frames, options, manifest.count, ".psd" in settings.format.suffixes)

    def _note_workers(self) -> None:
        """Journal which worker each running stack is on (``focusdrop status`` shows it)."""
        where = self.runner.running_on()
        for job in self.workspace.journal.jobs("running"):
            if job.task and where.get(job.task) != job.worker:  # None while it waits for a worker
                self.workspace.journal.note_worker(job.id, job.task, where.get(job.task))
