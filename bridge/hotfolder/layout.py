"""The hot folder's layout and names: where each part of a stack's life lives, and how a stack's name
becomes a file name no other result has.

In/.focusdrop/ holds the journal, the service's log, each job's work folder (jobs/ID) and each exporter's
job outcome (results/JOB_ID.json); In/done/NAME/ and In/failed/NAME/ hold the frames of finished stacks
(with report.json and report.html, or error.txt); the output folder holds the results.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from focusdrop.bridge.hotfolder.journal import Journal

REPORT = "report.json"
REPORT_PAGE = "report.html"  # bridge.report: the same, as pictures and plots
ERROR = "error.txt"
LOG_NAME = "focusdrop.log"  # the service's own log, rotated at 1 MB, five kept
PARTIAL = ".partial"  # a job folder still being written: NAME.partial/, renamed to NAME/ when whole
RESERVED = {"done", "failed"}  # folder names in the hot folder that are never job folders


@dataclass(frozen=True)
class Layout:
    """The folders of one hot folder and its output folder (nothing is made by naming them)."""

    hot_folder: Path
    out: Path

    @property
    def state(self) -> Path:
        return self.hot_folder / ".focusdrop"

    @property
    def journal(self) -> Path:
        return self.state / "journal.sqlite"

    @property
    def log(self) -> Path:
        return self.state / LOG_NAME

    @property
    def jobs(self) -> Path:
        return self.state / "jobs"

    @property
    def results(self) -> Path:
        """JOB_ID.json for each job whose manifest gave a job_id: its outcome, for the exporter."""
        return self.state / "results"

    @property
    def live(self) -> Path:
        """KEY.jpg: a preview of each bracket being taken in live (bridge.hotfolder.live)."""
        return self.state / "live"

    @property
    def done(self) -> Path:
        return self.hot_folder / "done"

    @property
    def failed(self) -> Path:
        return self.hot_folder / "failed"

    @property
    def ignored(self) -> tuple[str, ...]:
        """Folder names in the hot folder that are not job folders: done, failed, and the output folder
        where it lies inside."""
        inside = (self.out.name,) if self.out.parent == self.hot_folder else ()
        return tuple(sorted(RESERVED)) + inside


class Workspace:
    """A hot folder in use: its folders made, its journal open, and the lock under which output and
    archive names are chosen (one job at a time)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        for folder in (layout.jobs, layout.results, layout.done, layout.failed, layout.out):
            folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(layout.journal)
        self.names = threading.Lock()


def safe_name(name: str) -> str:
    """A stack name usable as a file name."""
    cleaned = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", name).strip(" .")
    return cleaned or "stack"


def free_stem(folder: Path, name: str, suffixes: list[str], taken: set[str]) -> str:
    """NAME, else NAME-2, NAME-3, ...: the first for which no ``folder/stem+suffix`` exists or is taken."""
    n = 1
    while True:
        stem = name if n == 1 else f"{name}-{n}"
        candidates = [str(folder / (stem + s)) for s in suffixes]
        if not any(Path(c).exists() or c in taken for c in candidates):
            return stem
        n += 1
