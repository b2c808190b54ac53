"""The job journal: one SQLite file in ``In/.focusdrop/`` that outlives a kill -9.

Every step of a job's life is one committed statement, so after a crash the journal says how far each
job got: claiming (its frames are being moved out of the hot folder), waiting, running (its output names
are chosen and recorded before any byte is written), done, failed, retried (a failed stack whose frames go
back into the hot folder, to the folder recorded, to be stacked again as a new job).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STATES = ("claiming", "waiting", "running", "done", "failed", "retried")


@dataclass(frozen=True)
class Job:
    """One stack. folder: where its frames live while it waits and runs; frames: file names, in the order
    to stack them; options: the settings its manifest amends (bridge.settings.to_json); sources: where the
    frames came from (for a claim to finish after a crash); outputs: result paths chosen when it started;
    archive: where its frames went; worker: the machine that stacked it ("local" on this one); task: its
    Dask key on a cluster, while the task runs; job_id: the exporter's id, for its outcome record; problem:
    why it cannot be stacked at all (a bad manifest, a file that never became a frame), known when it was
    claimed; progress: the step a running stack is at, such as "fuse 5/12"."""

    id: int
    name: str
    state: str
    folder: Path
    frames: list[str]
    options: dict
    sources: list[str]
    outputs: list[str]
    archive: str | None
    error: str | None
    created: float
    started: float | None
    finished: float | None
    worker: str | None = None
    task: str | None = None
    job_id: str | None = None
    problem: str | None = None
    progress: str | None = None


_COLUMNS = ("id", "name", "state", "folder", "frames", "options", "sources", "outputs", "archive", "error",
            "created", "started", "finished", "worker", "task", "job_id", "problem", "progress")
_ADDED = ("worker", "task", "job_id", "problem", "progress")  # columns a journal from an earlier version lacks
_JSON = ("frames", "options", "sources", "outputs")
_OLD_JOB_KEYS = ("name", "frames", "created_by", "source")  # kept in options by journals before problem/job_id


class Journal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, name TEXT, state TEXT, folder TEXT,"
                " frames TEXT, options TEXT, sources TEXT, outputs TEXT DEFAULT '[]', archive TEXT, error TEXT,"
                " created REAL, started REAL, finished REAL, worker TEXT, task TEXT, job_id TEXT, problem TEXT)")
            present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for column in _ADDED:
                if column not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
            if "problem" not in present:
                self._split_old_options()

    def _split_old_options(self) -> None:
        """A journal from before the problem and job_id columns kept the whole manifest, or {"problem":
        ...}, as a job's options: move those into their columns, keep only the settings in options (a job
        still waiting runs as its manifest said)."""
        rows = self._db.execute("SELECT id, options FROM jobs WHERE state NOT IN ('done', 'failed')").fetchall()
        for job_id, text in rows:
            options = json.loads(text or "{}")
            problem, exporter_id = options.pop("problem", None), options.pop("job_id", None)
            for key in _OLD_JOB_KEYS:
                options.pop(key, None)
            self._db.execute("UPDATE jobs SET options = ?, problem = ?, job_id = ? WHERE id = ?",
                             (json.dumps(options), problem, exporter_id, job_id))

    def add(self, name: str, folder_of, frames: list[str], options: dict, sources: list[str],
            job_id: str | None = None, problem: str | None = None) -> Job:
        """Record a new job in state 'claiming'; ``folder_of(id)`` names its work folder."""
        with self._lock:  # one transaction: a crash never leaves a job without its folder
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO jobs (name, state, frames, options, sources, created, job_id, problem)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (name, "claiming", json.dumps(frames), json.dumps(options),
                                                     json.dumps(sources), time.time(), job_id, problem))
            job_id = cursor.lastrowid
            self._db.execute("UPDATE jobs SET folder = ? WHERE id = ?", (str(folder_of(job_id)), job_id))
            self._db.execute("COMMIT")
        return self.get(job_id)

    def update(self, job_id: int, **values) -> Job:
        """Change some fields of a job in one committed statement."""
        assignments = ", ".join(f"{k} = ?" for k in values)
        encoded = [json.dumps(v) if k in _JSON else str(v) if isinstance(v, Path) else v
                   for k, v in values.items()]
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*encoded, job_id))
        return self.get(job_id)

    def note_worker(self, job_id: int, task: str, worker: str | None) -> None:
        """Journal the worker running a job's cluster task ``task``, unless that task has ended: its
        record (run_job) clears the task and names the worker that finished it, which stays."""
        with self._lock:
            self._db.execute("UPDATE jobs SET worker = ? WHERE id = ? AND task = ?", (worker, job_id, task))

    def note_progress(self, job_id: int, progress: str) -> None:
        """Journal the step a running job is at (for the status page)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'", (progress, job_id))

    def get(self, job_id: int) -> Job:
        return self._select("WHERE id = ?", (job_id,))[0]

    def find(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        found = self._select("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def jobs(self, *states: str) -> list[Job]:
        """Jobs in the given states (all when none given), oldest first."""
        if not states:
            return self._select("ORDER BY id", ())
        marks = ", ".join("?" * len(states))
        return self._select(f"WHERE state IN ({marks}) ORDER BY id", states)

    def _select(self, where: str, args: tuple) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {where}", args).fetchall()
        jobs = []
        for row in rows:
            values = dict(zip(_COLUMNS, row))
            for key in _JSON:
                values[key] = json.loads(values[key] or "[]")
            values["folder"] = Path(values["folder"] or "")
            jobs.append(Job(**values))
        return jobs

    def close(self) -> None:
        with self._lock:
            self._db.close()
