"""Helpers for tests (and tests/bench_cluster.py) that run a real Dask cluster on 127.0.0.1: a scheduler and
``focusdrop worker`` processes with the studio's TLS certificates (``focusdrop cluster certs``)."""
import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from focusdrop.bridge.hotfolder.lifecycle import CRASH_AT
from hotfolder import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A process in its own session (so that kill -9 of its group takes its children too)."""
    with open(log, "a") as out:
        return subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True, env=env)


def kill(process: subprocess.Popen, how: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, how)
    except ProcessLookupError:
        pass
    process.wait(30)


class Cluster:
    """A scheduler and named workers on 127.0.0.1, TLS with ``certs``; logs in ``root``."""

    def __init__(self, root: Path, certs: Path):
        self.root, self.certs = root, certs
        self.port = _free_port()
        self.address = f"tls://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self._log_start = 0  # where the running scheduler's part of scheduler.log starts

    def start_scheduler(self) -> None:
        log = self.root / "scheduler.log"
        self._log_start = len(log.read_text()) if log.exists() else 0
        pem = str(self.certs / "scheduler.pem")
        self.scheduler = _start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", str(self.port), "--protocol", "tls", "--no-dashboard",
                                 "--tls-ca-file", str(self.certs / "ca.pem"), "--tls-cert", pem, "--tls-key", pem],
                                self.root / "scheduler.log")
        wait_for(lambda: "Scheduler at" in self._log(), 60, log)

    def _log(self) -> str:
        return (self.root / "scheduler.log").read_text()[self._log_start:]

    def start_worker(self, name: str, *options: str, crash_at: str | None = None) -> None:
        """``crash_at``: the step of each task at which the worker kills itself (lifecycle.crash_point), as
        running out of memory would; the ``focusdrop worker`` around it starts it again."""
        env = {**os.environ, CRASH_AT: crash_at} if crash_at else None
        self.workers[name] = _start([sys.executable, "-m", "focusdrop.bridge.cli", "worker", self.address, "--cluster-ca",
                                     str(self.certs / "ca.pem"), "--cluster-cert", str(self.certs / f"{name}.pem"),
                                     "--name", name, "--share", str(self.root), *options], self.root / f"{name}.log",
                                    env)

    def wait_for_workers(self, count: int) -> None:
        wait_for(lambda: self._log().count("Register worker") - self._log().count("Remove worker") >= count, 90,
                 self.root / "scheduler.log")

    def watch_options(self) -> list[str]:
        return ["--cluster", self.address, "--cluster-ca", str(self.certs / "ca.pem"), "--cluster-cert",
                str(self.certs / "service.pem"), "--format", "tif"]

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process is not None and process.poll() is None:
                kill(process)


@contextmanager
def cluster(root: Path, certs: Path, workers=("w1", "w2")):
    c = Cluster(root, certs)
    try:
        c.start_scheduler()
        for name in workers:
            c.start_worker(name)
        c.wait_for_workers(len(workers))
        yield c
    finally:
        c.stop()


