"""``focusdrop status``: the hot folder's queue as the journal records it, and what sits in the hot folder
not yet a stack: frames still settling, and files it cannot use, with the reason."""
from __future__ import annotations

import os
import time
from pathlib import Path

from focusdrop.bridge.hotfolder.inbox import is_frame_name
from focusdrop.bridge.hotfolder.journal import STATES, Job, Journal
from focusdrop.bridge.hotfolder.layout import PARTIAL, Layout
from focusdrop.bridge.hotfolder.manifest import read_manifest
from focusdrop.engine.frameinfo import MAX_MEGAPIXELS, FrameError
from focusdrop.engine.frames import list_frames, probe_frame


def waiting_files(layout: Layout, quiet: float, max_megapixels: float = MAX_MEGAPIXELS) -> list[dict]:
    """Loose files and job folders in the hot folder, each {"file", "state", "problem", "preview"}: state
    "settling" (changed within the quiet period, or a job folder still open as NAME.partial), "live, K of N
    frames in" (a live job folder, bridge.hotfolder.live), "ready" (the service takes it at its next pass)
    or "unusable" (problem says why); preview: the path of the live preview of the bracket it holds or
    begins, or None."""
    now, found = time.time(), []
    for entry in sorted(os.scandir(layout.hot_folder), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if entry.name.startswith(".") or entry.name in layout.ignored:
                continue
            state = (_live_state(path, max_megapixels) or "settling") if entry.name.endswith(PARTIAL) else "ready"
            found.append({"file": entry.name + "/", "state": state, "problem": "", "preview": _preview(layout, path)})
        elif is_frame_name(path):
            try:
                probe_frame(path, max_megapixels)
                problem = ""
            except FrameError as e:
                problem = e.problem
            settling = now - entry.stat().st_mtime < quiet
            state = "settling" if settling else "unusable" if problem else "ready"
            found.append({"file": entry.name, "state": state, "problem": problem, "preview": _preview(layout, path)})
    return found


def _preview(layout: Layout, bracket: Path) -> str | None:
    preview = layout.live / f"{bracket.name}.jpg"
    return str(preview) if preview.is_file() else None


def _live_state(folder: Path, max_megapixels: float) -> str | None:
    """"live, K of N frames in" for a NAME.partial/ folder whose manifest gives a frame count, else None."""
    try:
        count = read_manifest(folder).count
    except (OSError, ValueError):
        return None
    if count is None:
        return None
    complete = 0
    for frame in list_frames(folder):
        try:
            probe_frame(frame, max_megapixels)
            complete += 1
        except FrameError:
            pass
    return f"live, {complete} of {count} frames in"


def status_data(journal: Journal, layout: Layout, quiet: float, last: int = 10,
                max_megapixels: float = MAX_MEGAPIXELS) -> dict:
    """Everything ``status`` shows, JSON-ready: counts per state, stacks finished in the last hour, the
    ``last`` most recent stacks (with the machine that stacked each), the files waiting in the hot folder,
    the service's log file."""
    jobs = [job for job in journal.jobs() if job.state != "retried"]  # a retried stack lives on as its new job
    hour_ago = time.time() - 3600
    return {"counts": {state: sum(j.state == state for j in jobs) for state in STATES if state != "retried"},
            "last_hour": sum(j.state == "done" and (j.finished or 0) > hour_ago for j in jobs),
            "stacks": [_job(job) for job in jobs[-last:]],
            "waiting": waiting_files(layout, quiet, max_megapixels),
            "log": str(layout.log)}


def _job(job: Job) -> dict:
    return {"id": job.id, "name": job.name, "state": job.state, "frames": len(job.frames), "outputs": job.outputs,
            "error": job.error, "archive": job.archive, "worker": job.worker, "progress": job.progress,
            "time": job.finished or job.started or job.created}


def status_text(data: dict) -> str:
    """``status_data`` as lines for a person: counts, recent stacks, waiting files, the log's path."""
    counts = data["counts"]
    lines = ["  ".join(f"{state}: {counts[state]}" for state in ("waiting", "running", "done", "failed"))]
    if counts["claiming"]:
        lines[0] += f"  claiming: {counts['claiming']}"
    lines[0] += f"  (last hour: {data['last_hour']} stacks)"
    for job in data["stacks"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["time"]))
        detail = ", ".join(job["outputs"]) if job["state"] == "done" else (job["error"] or "")
        remote = job["worker"] not in (None, "local") and job["state"] in ("running", "done")
        where = f" on {job['worker']}" if remote else ""
        lines.append(f"{when}  {job['state']:<8} {job['name']} ({job['frames']} frames{where})  {detail}".rstrip())
    if data["waiting"]:
        lines.append("in the hot folder, not yet a stack:")
        for item in data["waiting"]:
            reason = f": {item['problem']}" if item["problem"] else ""
            preview = f"  (preview: {item['preview']})" if item["preview"] else ""
            lines.append(f"  {item['state']:<8} {item['file']}{reason}{preview}")
    lines.append(f"log: {data['log']}")
    return "\n".join(lines)
