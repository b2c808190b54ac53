"""What runs on a cluster worker: one whole stack, as ``focusdrop stack`` would run it on this machine.

The frames stream from the share, the outputs are written on it under temporary names and renamed
(bridge.stacking), so a worker killed mid-stack leaves no partial result where Lightroom would pick it up.
Only a small record travels back to the service: the paths written, the report, the worker's name.

Paths travel in the service's own names. Where this machine mounts the share elsewhere, the
FOCUSDROP_PATH_MAP environment variable (set by ``focusdrop worker --path-map``) says so:
``/Volumes/Studio=/mnt/studio`` maps the service's ``/Volumes/Studio/...`` to ``/mnt/studio/...`` here.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from focusdrop.bridge.hotfolder.lifecycle import crash_point
from focusdrop.bridge.stacking import stack_record
from focusdrop.engine.pipeline import StackOptions

PATH_MAP_ENV = "FOCUSDROP_PATH_MAP"


def parse_path_map(text: str) -> list[tuple[str, str]]:
    """``"A=B;C=D"`` (``--path-map`` given once or more, joined by ``;``) as [(A, B), (C, D)]: the service's
    folder A is this machine's B. Raises ValueError for an entry without ``=``."""
    pairs = []
    for entry in filter(None, text.split(";")):
        service, _, here = entry.partition("=")
        if not service or not here:
            raise ValueError(f"--path-map {entry!r}: give it as SERVICE_FOLDER=THIS_MACHINE_FOLDER")
        pairs.append((service.rstrip("/\\"), here.rstrip("/\\")))
    return pairs


def map_path(path: str, pairs: list[tuple[str, str]], reverse: bool = False) -> str:
    """``path`` with the first matching folder prefix replaced (service -> here; here -> service if
    ``reverse``). A prefix matches whole folder names only."""
    for service, here in pairs:
        old, new = (here, service) if reverse else (service, here)
        if path == old or path.startswith(old + "/") or path.startswith(old + "\\"):
            return new + path[len(old):]
    return path


def worker_name() -> str:
    """This worker as the journal and ``focusdrop status`` name it: its Dask name, else the host name."""
    try:
        from distributed import get_worker
        return str(get_worker().name)
    except (ImportError, ValueError):
        return socket.gethostname()


def stack_task(frames: list[str], outputs: list[str], options: StackOptions, page: str | None = None) -> dict:
    """Stack ``frames`` (the service's paths, in focus order) into ``outputs``, and the report page into
    ``page``; returns {"written": the service's paths of the files written, "report":
    bridge.stacking.report, "worker": worker_name()}.
    Raises FileNotFoundError naming this worker when it cannot see a frame or the output folder."""
    pairs = parse_path_map(os.environ.get(PATH_MAP_ENV, ""))
    here = [Path(map_path(f, pairs)) for f in frames]
    targets = [Path(map_path(o, pairs)) for o in outputs]
    for path in here[:1] + [t.parent for t in targets]:
        if not path.exists():
            raise FileNotFoundError(f"worker {worker_name()} cannot see {path} (is the share mounted there? "
                                    f"focusdrop worker --path-map SERVICE_FOLDER=THIS_MACHINE_FOLDER maps it)")
    crash_point("task:started")
    record = stack_record(here, targets, options, worker_name(), Path(map_path(page, pairs)) if page else None)
    crash_point("task:written")
    record["written"] = record["report"]["outputs"] = [map_path(p, pairs, reverse=True) for p in record["written"]]
    return record
