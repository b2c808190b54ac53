"""A stack's life after the hot folder: claimed out of it, stacked, its frames archived, or failed.

Every move is a rename inside one file system (atomic) and every state change one journal statement,
ordered so that a kill -9 between any two leaves a journal that says what to finish (bridge.hotfolder.recovery):
- claim: journal 'claiming' (which frames, from where) -> frames renamed into .focusdrop/jobs/ID -> 'waiting'
- run: output names chosen and journaled ('running') -> stacked (here, or by a cluster worker, whose task
  key is journaled first), each result written under a temporary name and renamed -> archive folder
  journaled -> frames renamed into done/NAME -> 'done'
- fail: the error journaled -> frames renamed into failed/NAME with error.txt -> 'failed'
- retry (the status page's button): 'retried', with the hot-folder job folder the frames go to, journaled ->
  failed/NAME renamed to NAME.partial/ in the hot folder, its error.txt removed -> renamed to NAME/, which
  the service takes as a new stack

Durable in order, for power cuts as well as kills: a file's data, then its rename, then the folders the
rename touched (engine.save), and only then the journal statement that says it happened. ``crash_point``
marks each boundary between two steps for the fault-injection tests.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from focusdrop.bridge.hotfolder.inbox import ReadyStack
from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.layout import ERROR, PARTIAL, REPORT, REPORT_PAGE, Workspace, free_stem, safe_name
from focusdrop.bridge.hotfolder.manifest import MANIFEST
from focusdrop.bridge.hotfolder.runner import ResultUnreported, Runner, RunnerUnavailable
from focusdrop.bridge.settings import MANIFEST as IN_MANIFEST
from focusdrop.bridge.settings import Settings, arrange, parse, say_hint, to_json
from focusdrop.engine.frameinfo import FrameError
from focusdrop.engine.save import sync_folder, write_durably

if TYPE_CHECKING:  # the engine's heavy imports wait for a stack to run
    from focusdrop.engine.pipeline import Progress

log = logging.getLogger("focusdrop")

PROGRESS_EVERY = 0.5  # seconds between two progress notes in the journal
CRASH_AT = "FOCUSDROP_CRASH_AT"  # names the step at which crash_point kills the process (tests only)


def claim(ws: Workspace, stack: ReadyStack) -> Job:
    """Move a ready stack's frames out of the hot folder into its own work folder; journal it."""
    if stack.folder is not None:
        sources = [str(stack.folder)]
    else:
        sources = [str(p) for p in stack.frames + stack.sidecars]
    frames = [p.name for p in stack.frames]
    job = ws.journal.add(safe_name(stack.name), lambda job_id: ws.layout.jobs / f"{job_id:06d}", frames,
                         to_json(stack.manifest.settings), sources, stack.manifest.job_id, stack.problem or None)
    crash_point("claim:journaled")
    move_in(job)
    crash_point("claim:moved")
    log.info("stack formed: %s, %d frames (%s)", job.name, len(frames), stack.how)
    return ws.journal.update(job.id, state="waiting")


def move_in(job: Job) -> None:
    """Move a claimed job's frames (or its whole job folder) into its work folder; a move done before
    a crash is not done again."""
    if len(job.sources) == 1 and Path(job.sources[0]).is_dir():
        if not job.folder.exists():
            rename(Path(job.sources[0]), job.folder)
        return
    job.folder.mkdir(exist_ok=True)
    moved = set()
    for source in map(Path, job.sources):
        if source.exists() and not (job.folder / source.name).exists():
            os.rename(source, job.folder / source.name)
            moved.add(source.parent)
    for folder in moved | {job.folder, job.folder.parent}:
        sync_folder(folder)


def rename(source: Path, target: Path) -> None:
    """Rename durably: both folders' entries are on the disk when this returns."""
    os.rename(source, target)
    sync_folder(source.parent)
    sync_folder(target.parent)


def job_settings(job: Job, settings: Settings) -> Settings:
    """The service's settings as the job's manifest amends them. Raises ValueError for a job that cannot
    be stacked (its problem, known when it was claimed) or settings that do not go together."""
    if job.problem:
        raise ValueError(job.problem)
    return settings.amended(parse(job.options, IN_MANIFEST, MANIFEST), MANIFEST if job.options else "")


def run_job(ws: Workspace, job: Job, settings: Settings, runner: Runner) -> Job:
    """Stack a waiting job into the output folder with ``runner``, archive its frames; a failure goes to
    failed/. A job whose runner cannot take it now goes back to waiting."""
    try:
        chosen = job_settings(job, settings)
        with ws.names:
            if not job.outputs:  # a job run again after a crash keeps the names it had
                taken = {o for other in ws.journal.jobs("waiting", "running") for o in other.outputs}
                stem = free_stem(ws.layout.out, job.name, chosen.format.suffixes, taken)
                job = ws.journal.update(job.id, outputs=[str(ws.layout.out / (stem + s))
                                                         for s in chosen.format.suffixes],
                                        frames=[p.name for p in arrange([Path(f) for f in job.frames],
                                                                        chosen.order)])
            job = ws.journal.update(job.id, state="running", started=time.time())
        log.info("started: %s (%d frames)", job.name, len(job.frames))
        crash_point("run:started")
        started = time.perf_counter()
        record = runner.run(job, chosen.stack_options(), lambda key: ws.journal.update(job.id, task=key),
                            journal_progress(ws, job))
        crash_point("run:written")
        write_durably(job.folder / REPORT, json.dumps(record["report"], indent=1).encode())
        job = ws.journal.update(job.id, outputs=record["written"], worker=record["worker"], task=None)
        crash_point("run:reported")
        archive = archive_job(ws, job, ws.layout.done)
        crash_point("run:archived")
        log.info("finished: %s in %.1f s%s -> %s (frames in %s)", job.name, time.perf_counter() - started,
                 "" if record["worker"] == "local" else f" on {record['worker']}", ", ".join(job.outputs), archive)
        return finish(ws, ws.journal.get(job.id), "done")
    except RunnerUnavailable as e:
        log.warning("%s waits: %s", job.name, e)
        return ws.journal.update(job.id, state="waiting")
    except ResultUnreported as e:
        if job.outputs and not any(map(output_problem, job.outputs)):
            log.warning("%s: %s, but an attempt had written the result whole", job.name, e)
            return finish_unreported(ws, job, f"{e}, but an attempt had written the result whole; per-frame "
                                              f"details were not kept")
        return fail(ws, job, e)
    except Exception as e:  # any failure fails this stack alone; the service goes on
        return fail(ws, job, e)


def finish_unreported(ws: Workspace, job: Job, note: str) -> Job:
    """End as done a running job whose outputs all exist whole but whose runner's record is lost (its
    machine went after writing them): a report and report page that say so, the frames archived."""
    from focusdrop.bridge.report.page import short_page  # the report's imports wait for a stack to end
    if not (job.folder / REPORT).exists():
        write_durably(job.folder / REPORT, json.dumps({"outputs": job.outputs, "note": note}, indent=1).encode())
    if not (job.folder / REPORT_PAGE).exists():
        write_durably(job.folder / REPORT_PAGE, short_page(job.name, job.outputs, note).encode("utf-8"))
    archive_job(ws, job, ws.layout.done)
    return finish(ws, ws.journal.get(job.id), "done")


def output_problem(output: str | Path) -> str:
    """What is wrong with a result file on disk, "" if it is whole: a PSD or PSB's sections and composite
    all within the file; a TIFF's strips, a PNG's IEND, a JPEG's end marker. Missing: "missing"."""
    from focusdrop.engine.frames import probe_frame  # the engine's heavy imports wait for a stack to run
    from focusdrop.engine.psd import incomplete as psd_incomplete
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


def journal_progress(ws: Workspace, job: Job, every: float = PROGRESS_EVERY) -> Progress:
    """An engine progress callback that journals a running job's step (for the status page) at most once
    every ``every`` seconds, and at each step's start and end: each note is a committed, synced statement."""
    last = [0.0]

    def note(step: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done in (1, total) or now - last[0] >= every:
            last[0] = now
            ws.journal.note_progress(job.id, f"{step} {done}/{total}")
    return note


def finish(ws: Workspace, job: Job, state: str) -> Job:
    """End a job as "done" or "failed": its outcome record first (an exporter waiting on it learns the
    outcome; written again if a crash comes before the journal), then the journal."""
    if job.job_id:
        error_txt = Path(job.archive or "") / ERROR
        record = {"job_id": job.job_id, "name": job.name, "state": state, "archive": job.archive,
                  "outputs": job.outputs if state == "done" else [],
                  "error": (error_txt.read_text(encoding="utf-8")
                            if state == "failed" and error_txt.is_file() else None)}
        write_durably(ws.layout.results / f"{safe_name(job.job_id)}.json",
                      json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8"))
    return ws.journal.update(job.id, state=state, finished=time.time())


def archive_job(ws: Workspace, job: Job, where: Path) -> Path:
    """Move a job's work folder to ``where``/NAME (a free name), journaled first."""
    with ws.names:
        target = where / free_stem(where, job.name, [""], set())
        ws.journal.update(job.id, archive=str(target))
    crash_point("archive:journaled")
    if job.folder.exists():
        rename(job.folder, target)
    return target


def _advice(error: Exception) -> str:
    hint = getattr(error, "hint", None)
    setting = f" ({say_hint(hint, IN_MANIFEST)})" if hint is not None else ""
    if "cannot be aligned" in str(error):
        return (f"Check that every frame shows the same subject. Remove the frame named above{setting}, then "
                f"move this folder back into the hot folder.")
    if isinstance(error, FrameError):
        return (f"Re-export the frame named above from Lightroom (or remove it){setting}, then move this "
                f"folder back into the hot folder.")
    if isinstance(error, ValueError):
        return "Correct what is named above, then move this folder back into the hot folder."
    return ("This is not a problem with the frames as far as FocusDrop can tell. Move this folder back into "
            "the hot folder to try again; if it fails again, send this file to FocusDrop's developers.")


def fail(ws: Workspace, job: Job, error: Exception) -> Job:
    """Send a job's frames to failed/NAME with an error.txt that says what went wrong and what to do."""
    message = str(error) or type(error).__name__
    job = ws.journal.update(job.id, error=message)
    target = Path(job.archive) if job.archive and not job.folder.exists() else archive_job(ws, job, ws.layout.failed)
    crash_point("fail:archived")
    target.mkdir(parents=True, exist_ok=True)  # a job whose frames never arrived still gets its error.txt
    write_durably(target / ERROR, (
        f"FocusDrop could not stack {job.name}.\n\nWhat went wrong: {message}\n\nWhat to do: {_advice(error)}\n\n"
        f"The frames in this folder are untouched.\n").encode())
    log.error("failed: %s: %s (frames in %s)", job.name, message, target)
    return finish(ws, ws.journal.get(job.id), "failed")


def retry(ws: Workspace, job: Job) -> Job:
    """Put a failed stack's frames back into the hot folder as a job folder, to be stacked again as a new
    stack (this one then says 'retried' and is no longer listed). Raises ValueError for a stack that is not
    failed, or whose frames are no longer in failed/."""
    if job.state != "failed" or not job.archive or not Path(job.archive).is_dir():
        raise ValueError(f"{job.name}: only a failed stack whose folder is still in failed/ can be retried")
    with ws.names:
        hot = ws.layout.hot_folder
        target = hot / free_stem(hot, job.name, ["", PARTIAL], set())
        job = ws.journal.update(job.id, state="retried", folder=target)
    crash_point("retry:journaled")
    move_back(job)
    log.info("retried: %s (its frames are back in the hot folder as %s/)", job.name, target.name)
    return job


def move_back(job: Job) -> None:
    """Finish a retry's moves: failed/NAME -> NAME.partial/ (error.txt removed) -> NAME/ in the hot folder; a
    move done before a crash is not done again."""
    partial = job.folder.with_name(job.folder.name + PARTIAL)
    if Path(job.archive).is_dir() and not partial.exists() and not job.folder.exists():
        rename(Path(job.archive), partial)
    if partial.exists():
        (partial / ERROR).unlink(missing_ok=True)
        rename(partial, job.folder)


def crash_point(step: str) -> None:
    """Kill this process with SIGKILL if FOCUSDROP_CRASH_AT names ``step`` (fault injection for tests)."""
    if os.environ.get(CRASH_AT) == step:
        log.info("crash point %s: killing this process", step)
        os.kill(os.getpid(), signal.SIGKILL)
