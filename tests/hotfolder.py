"""Helpers for tests that run ``focusdrop watch`` as a real process on temporary folders."""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from psd_tools import PSDImage

QUIET = "1.5"


@contextmanager
def watching(root: Path, *options: str, env: dict | None = None, ready: bool = True):
    """The service on root/In -> root/Out; yields (process, log path) once it is watching (at once if not
    ``ready``); stops it with SIGTERM after. env: more environment variables (FOCUSDROP_CRASH_AT)."""
    (root / "In").mkdir(exist_ok=True)
    log = root / f"log-{time.monotonic_ns()}.txt"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "focusdrop.bridge.cli", "watch", str(root / "In"), "--out",
                                    str(root / "Out"), "--quiet", QUIET, *options], stdout=out, stderr=out,
                                   env={**os.environ, **(env or {})})
    try:
        if ready:
            wait_for(lambda: "watching" in log.read_text(), 30, log)
        yield process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def frame_layers(document) -> int:
    """The layers of a FocusDrop PSD that hold frames (not the blend, pyramid or depth-map layers)."""
    return sum("(FocusDrop)" not in layer.name for layer in PSDImage.open(document))


def wait_for(condition, timeout, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out; log:\n{log.read_text() if log else ''}")


def drop(folder: Path, frames: list[bytes], stem: str, mtime: float | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, data in enumerate(frames):
        path = folder / f"{stem}_{k + 1:02d}.tif"
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime + k, mtime + k))
        paths.append(path)
    return paths


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
