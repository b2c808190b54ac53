"""A stack's life after the hot folder: claimed out of it, stacked, its frames archived; and recovery.

Every move is a rename inside one file system (atomic) and every state change one journal statement,
ordered so that a kill -9 between any two leaves a journal that says what to finish:
- claim: journal 'claiming' (which frames, from where) -> frames renamed into .focusdrop/jobs/ID -> 'waiting'
- run: output names chosen and journaled ('running') -> stacked (here, or by a cluster worker, whose task
  key is journaled first), each result written under a temporary name and renamed -> archive folder
  journaled -> frames renamed into done/NAME -> 'done'
- fail: the error journaled -> frames renamed into failed/NAME with error.txt -> 'failed'
- recover, at start: temporary outputs deleted; 'claiming' jobs finish their moves; a 'running' job whose
  outputs all exist whole is archived as done (the crash came after its last rename; a report.json it
  never wrote is replaced by a short one); others run again, under the output names they had, so nothing
  is written twice; a 'done' job whose output is there but not whole (a power cut before its data reached
  the disk) has its frames brought back from done/ and runs again.

``crash_point(step)`` marks each boundary between two steps: with the environment variable
FOCUSDROP_CRASH_AT naming that step, the process kills itself there with SIGKILL, as a power cut would
stop it (the tests use it to check recovery from every boundary).

Durable in order, for power cuts as well as kills: a file's data, then its rename, then the folders the
rename touched (engine.save), and only then the journal statement that says it happened.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from focusdrop.bridge.cluster.runner import ClusterUnavailable
from focusdrop.bridge.config import WatchConfig, parse_white_balance
from focusdrop.bridge.inbox import ReadyStack
from focusdrop.bridge.journal import Job, Journal
from focusdrop.bridge.stacking import stack_record
from focusdrop.engine.frames import FrameError, probe_frame
from focusdrop.engine.pipeline import METHODS, StackOptions
from focusdrop.engine.psd import incomplete as psd_incomplete
from focusdrop.engine.save import sync_folder, write_durably

log = logging.getLogger("focusdrop")

REPORT = "report.json"
LOG_NAME = "focusdrop.log"  # the service's own log, rotated at 1 MB, five kept
FORMAT_SUFFIXES = {"psd": [".psd"], "tif": [".tif"], "both": [".psd", ".tif"]}
MANIFEST_OPTIONS = {"name", "frames", "method", "format", "pyramid_layer", "skip_unaligned", "reference", "job_id",
                    "created_by", "source", "white_balance"}


class Workspace:
    """The folders and journal of one hot folder: In/.focusdrop/{jobs/, journal.sqlite}, In/done, In/failed."""

    def __init__(self, inbox: Path, out: Path):
        self.inbox, self.out = inbox, out
        self.state = inbox / ".focusdrop"
        self.jobs, self.done, self.failed = self.state / "jobs", inbox / "done", inbox / "failed"
        self.log = self.state / LOG_NAME
        self.results = self.state / "results"  # JOB_ID.json per job whose manifest gave a job_id
        for folder in (self.jobs, self.results, self.done, self.failed, out):
            folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.state / "journal.sqlite")
        self.names = threading.Lock()  # output and archive names are chosen one job at a time


def safe_name(name: str) -> str:
    """A stack name usable as a file name."""
    cleaned = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", name).strip(" .")
    return cleaned or "stack"


def _free_stem(folder: Path, name: str, suffixes: list[str], taken: set[str]) -> str:
    """NAME, else NAME-2, NAME-3, ...: the first for which no ``folder/stem+suffix`` exists or is taken."""
    n = 1
    while True:
        stem = name if n == 1 else f"{name}-{n}"
        candidates = [str(folder / (stem + s)) for s in suffixes]
        if not any(Path(c).exists() or c in taken for c in candidates):
            return stem
        n += 1


def claim(ws: Workspace, stack: ReadyStack) -> Job:
    """Move a ready stack's frames out of the hot folder into its own work folder; journal it."""
    if stack.folder is not None:
        sources = [str(stack.folder)]
        frames = [p.name for p in stack.frames]
    else:
        sources = [str(p) for p in stack.frames + stack.sidecars]
        frames = [p.name for p in stack.frames]
    options = stack.manifest if isinstance(stack.manifest, dict) else {"problem": stack.manifest}
    if stack.problem:
        options = {"problem": f"{stack.frames[0].name}: {stack.problem}"}
    job = ws.journal.add(safe_name(stack.name), lambda job_id: ws.jobs / f"{job_id:06d}", frames, options,
                         sources)
    crash_point("claim:journaled")
    _move_in(job)
    crash_point("claim:moved")
    log.info("stack formed: %s, %d frames (%s)", job.name, len(frames), stack.how)
    return ws.journal.update(job.id, state="waiting")


def _move_in(job: Job) -> None:
    if len(job.sources) == 1 and Path(job.sources[0]).is_dir():
        if not job.folder.exists():
            _rename(Path(job.sources[0]), job.folder)
        return
    job.folder.mkdir(exist_ok=True)
    moved = set()
    for source in map(Path, job.sources):
        if source.exists() and not (job.folder / source.name).exists():
            os.rename(source, job.folder / source.name)
            moved.add(source.parent)
    for folder in moved | {job.folder, job.folder.parent}:
        sync_folder(folder)


def _rename(source: Path, target: Path) -> None:
    """Rename durably: both folders' entries are on the disk when this returns."""
    os.rename(source, target)
    sync_folder(source.parent)
    sync_folder(target.parent)


def stack_options(job: Job, config: WatchConfig) -> tuple[StackOptions, list[str]]:
    """The job's stacking options and output suffixes: the config's, as its manifest amends them."""
    manifest = job.options
    if "problem" in manifest:  # a bad manifest.json, or a file that never became a frame
        raise ValueError(manifest["problem"])
    unknown = set(manifest) - MANIFEST_OPTIONS
    if unknown:
        raise ValueError(f"manifest.json: unknown option {sorted(unknown)[0]!r}")
    method = manifest.get("method", config.method)
    fmt = manifest.get("format", config.format)
    if method not in METHODS or fmt not in FORMAT_SUFFIXES:
        raise ValueError(f"manifest.json: method must be one of {', '.join(METHODS)} and format one of "
                         f"{', '.join(FORMAT_SUFFIXES)}")
    if method == "pyramid" and fmt != "tif":
        raise ValueError("manifest.json: the pyramid method gives a flat result only: use \"format\": \"tif\"")
    options = StackOptions(method=method, reference=manifest.get("reference"),
                           skip_unaligned=bool(manifest.get("skip_unaligned", False)),
                           also_pyramid=bool(manifest.get("pyramid_layer", False)),
                           order="given" if "frames" in manifest else "estimate",
                           white_balance=parse_white_balance(manifest.get("white_balance", config.white_balance)))
    return options, FORMAT_SUFFIXES[fmt]


class LocalRunner:
    """Stacks on this machine, ``workers`` stacks at a time (the service's threads)."""

    def __init__(self, workers: int):
        self.workers = workers

    def capacity(self) -> int:
        return self.workers

    def running_on(self) -> dict[str, str]:
        return {}  # no tasks: the service's own threads run the stacks

    def alive(self, task: str) -> bool:
        return False

    def close(self) -> None:
        pass

    def run(self, job: Job, options: StackOptions, remember: Callable[[str], None]) -> dict:
        """Stack ``job`` here; returns bridge.stacking.stack_record's record."""
        return stack_record([job.folder / f for f in job.frames], [Path(o) for o in job.outputs], options, "local")


def run_job(ws: Workspace, job: Job, config: WatchConfig, runner) -> Job:
    """Stack a waiting job into the output folder with ``runner`` (LocalRunner, or
    bridge.cluster.runner.ClusterRunner), archive its frames; a failure goes to failed/. A job whose
    cluster is unreachable goes back to waiting."""
    try:
        options, suffixes = stack_options(job, config)
        with ws.names:
            if not job.outputs:  # a job run again after a crash keeps the names it had
                taken = {o for other in ws.journal.jobs("waiting", "running") for o in other.outputs}
                stem = _free_stem(ws.out, job.name, suffixes, taken)
                job = ws.journal.update(job.id, outputs=[str(ws.out / (stem + s)) for s in suffixes])
            job = ws.journal.update(job.id, state="running", started=time.time())
        log.info("started: %s (%d frames)", job.name, len(job.frames))
        crash_point("run:started")
        started = time.perf_counter()
        record = runner.run(job, options, lambda key: ws.journal.update(job.id, task=key))
        crash_point("run:written")
        write_durably(job.folder / REPORT, json.dumps(record["report"], indent=1).encode())
        job = ws.journal.update(job.id, outputs=record["written"], worker=record["worker"])
        crash_point("run:reported")
        archive = _archive(ws, job, ws.done)
        crash_point("run:archived")
        log.info("finished: %s in %.1f s%s -> %s (frames in %s)", job.name, time.perf_counter() - started,
                 "" if record["worker"] == "local" else f" on {record['worker']}", ", ".join(job.outputs), archive)
        return _finish(ws, ws.journal.get(job.id), "done")
    except ClusterUnavailable as e:
        log.warning("%s waits: %s", job.name, e)
        return ws.journal.update(job.id, state="waiting")
    except Exception as e:  # any failure fails this stack alone; the service goes on
        return fail(ws, job, e)


def _finish(ws: Workspace, job: Job, state: str) -> Job:
    """End a job as "done" or "failed": its result record first (an exporter waiting on it learns the
    outcome; written again if a crash comes before the journal), then the journal."""
    job_id = job.options.get("job_id")
    if job_id:
        error_txt = Path(job.archive or "") / "error.txt"
        record = {"job_id": job_id, "name": job.name, "state": state, "archive": job.archive,
                  "outputs": job.outputs if state == "done" else [],
                  "error": (error_txt.read_text(encoding="utf-8")
                            if state == "failed" and error_txt.is_file() else None)}
        write_durably(ws.results / f"{safe_name(str(job_id))}.json",
                      json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8"))
    return ws.journal.update(job.id, state=state, finished=time.time())


def _archive(ws: Workspace, job: Job, where: Path) -> Path:
    with ws.names:
        target = where / _free_stem(where, job.name, [""], set())
        ws.journal.update(job.id, archive=str(target))
    crash_point("archive:journaled")
    if job.folder.exists():
        _rename(job.folder, target)
    return target


def _advice(error: Exception) -> str:
    text = str(error)
    if "cannot be aligned" in text:
        return ("Check that every frame shows the same subject. Remove the frame named above (or add "
                "\"skip_unaligned\": true to a manifest.json), then move this folder back into the hot folder.")
    if isinstance(error, FrameError):
        return ("Re-export the frame named above from Lightroom (or remove it), then move this folder back "
                "into the hot folder.")
    if isinstance(error, ValueError):
        return "Correct what is named above, then move this folder back into the hot folder."
    return ("This is not a problem with the frames as far as FocusDrop can tell. Move this folder back into "
            "the hot folder to try again; if it fails again, send this file to FocusDrop's developers.")


def fail(ws: Workspace, job: Job, error: Exception) -> Job:
    """Send a job's frames to failed/NAME with an error.txt that says what went wrong and what to do."""
    message = str(error) or type(error).__name__
    job = ws.journal.update(job.id, error=message)
    target = Path(job.archive) if job.archive and not job.folder.exists() else _archive(ws, job, ws.failed)
    crash_point("fail:archived")
    target.mkdir(parents=True, exist_ok=True)  # a job whose frames never arrived still gets its error.txt
    write_durably(target / "error.txt", (
        f"FocusDrop could not stack {job.name}.\n\nWhat went wrong: {message}\n\nWhat to do: {_advice(error)}\n\n"
        f"The frames in this folder are untouched.\n").encode())
    log.error("failed: %s: %s (frames in %s)", job.name, message, target)
    return _finish(ws, ws.journal.get(job.id), "failed")


def recover(ws: Workspace, alive: Callable[[str], bool] = lambda task: False) -> None:
    """Bring the journal and the folders back in step after a crash or a kill (see the module's text).
    ``alive(task)``: whether a job's cluster task still runs (its outputs' temporary files are its own)."""
    still = {Path(o).name for job in ws.journal.jobs("running") if job.task and alive(job.task)
             for o in job.outputs}
    for leftover in ws.out.glob(".*.partial"):
        if any(leftover.name.startswith(f".{name}.") for name in still):
            continue
        leftover.unlink(missing_ok=True)
        log.info("removed an unfinished output: %s", leftover.name)
    for job in ws.journal.jobs("claiming"):
        _move_in(job)
        ws.journal.update(job.id, state="waiting")
    for job in ws.journal.jobs("running"):
        if job.archive and not job.folder.exists():
            failed = Path(job.archive).parent == ws.failed
            if failed and not (Path(job.archive) / "error.txt").exists():
                fail(ws, job, RuntimeError(job.error or "interrupted"))
            else:
                _finish(ws, job, "failed" if failed else "done")
                log.info("recovered: %s had %s before the interruption", job.name, "failed" if failed else "finished")
        elif job.outputs and job.error is None and not any(map(output_problem, job.outputs)):
            if not (job.folder / REPORT).exists():
                write_durably(job.folder / REPORT, json.dumps({
                    "outputs": job.outputs, "note": "the service was stopped after the result was written "
                    "and before this report; per-frame details were not kept"}, indent=1).encode())
            _archive(ws, job, ws.done)
            _finish(ws, ws.journal.get(job.id), "done")
            log.info("recovered: %s had finished before the interruption", job.name)
        else:
            ws.journal.update(job.id, state="waiting", archive=None)
            log.info("recovered: %s was interrupted; it runs again", job.name)
    for job in ws.journal.jobs("done"):
        broken = [o for o in job.outputs if Path(o).exists() and output_problem(o)]
        archive = Path(job.archive or "")
        if broken and archive.is_dir() and all((archive / f).exists() for f in job.frames):
            for output in broken:
                log.warning("recovered: %s is not whole (%s); %s runs again", output, output_problem(output),
                            job.name)
                Path(output).unlink()
            _rename(archive, job.folder)
            ws.journal.update(job.id, state="waiting", archive=None)


def crash_point(step: str) -> None:
    """Kill this process with SIGKILL if FOCUSDROP_CRASH_AT names ``step`` (fault injection for tests)."""
    if os.environ.get("FOCUSDROP_CRASH_AT") == step:
        log.info("crash point %s: killing the service", step)
        os.kill(os.getpid(), signal.SIGKILL)


def output_problem(output: str | Path) -> str:
    """What is wrong with a result file on disk, "" if it is whole: a PSD or PSB's sections and composite
    all within the file; a TIFF's strips, a PNG's IEND, a JPEG's end marker. Missing: "missing"."""
    path = Path(output)
    if not path.exists():
        return "missing"
    if path.suffix.lower() in (".psd", ".psb"):
        return psd_incomplete(path)
    try:
        probe_frame(path)
    except FrameError as e:
        return e.problem
    return ""
