"""A job folder's manifest.json, read once and checked where it was written: which frames in what order,
the job's name and id (for the exporter that waits on it), and the settings it amends for this job
(bridge.settings: any setting whose places include the manifest)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focusdrop.bridge.settings import MANIFEST as PLACE
from focusdrop.bridge.settings import parse

MANIFEST = "manifest.json"
JOB_KEYS = {"name", "frames", "count", "job_id", "created_by", "source"}  # about the job, not how to stack it


@dataclass(frozen=True)
class Manifest:
    """name: the stack's name (None: the folder's); frames: file names in this folder, in order (None: its
    frames); count: how many frames the bracket has, for a NAME.partial/ folder stacked live (its frames are
    aligned as they arrive and the stack starts when that many are in; None: not live); job_id: the
    exporter's id for the job's outcome record; settings: typed (bridge.settings)."""

    name: str | None = None
    frames: list[str] | None = None
    count: int | None = None
    job_id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def read_manifest(folder: Path) -> Manifest:
    """The job folder's manifest.json. Raises ValueError, naming the file, for anything wrong in it."""
    try:
        raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{MANIFEST} must hold a JSON object")
    frames = raw.get("frames")
    if frames is not None and not (isinstance(frames, list) and all(isinstance(f, str) and "/" not in f and
                                                                     "\\" not in f for f in frames)):
        raise ValueError(f"{MANIFEST}: \"frames\" must be a list of file names in this folder")
    count = raw.get("count")
    if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count >= 2):
        raise ValueError(f"{MANIFEST}: \"count\" must be a whole number of frames, at least 2")
    for key in ("name", "job_id"):
        if key in raw and not (isinstance(raw[key], str) and raw[key].strip()):
            raise ValueError(f"{MANIFEST}: \"{key}\" must be text")
    settings = parse({k: v for k, v in raw.items() if k not in JOB_KEYS}, PLACE, MANIFEST)
    return Manifest(raw.get("name"), frames, count, raw.get("job_id"), settings)
