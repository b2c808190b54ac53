"""After a crash or a kill: the journal and the folders brought back in step, and results checked whole.

At start: temporary files deleted (outputs, reports, error.txt and outcome records a kill cut short,
wherever they lie); 'claiming' jobs finish their moves; a 'running' job whose outputs all exist whole is
archived as done (the crash came after its last rename; a report.json and report.html it never wrote are
replaced by short ones); others run again, under the output names they had, so nothing is written twice;
a 'done' job whose output is there but not whole (a power cut before its data reached the disk) has its
frames brought back from done/ and runs again; a 'retried' job's frames finish their way back into the hot
folder.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.layout import ERROR, Workspace
from focusdrop.bridge.hotfolder.lifecycle import (fail, finish, finish_unreported, move_back, move_in, output_problem,
                                                  rename)
from focusdrop.engine.save import temporary_of

log = logging.getLogger("focusdrop")


def recover(ws: Workspace, alive: Callable[[str], bool] = lambda task: False) -> None:
    """Bring the journal and the folders back in step (see the module's text). ``alive(task)``: whether a
    job's cluster task still runs (its outputs' temporary files are its own)."""
    _remove_temporary_files(ws, alive)
    for job in ws.journal.jobs("claiming"):
        move_in(job)
        ws.journal.update(job.id, state="waiting")
    for job in ws.journal.jobs("running"):
        _recover_running(ws, job)
    for job in ws.journal.jobs("retried"):
        move_back(job)
    for job in ws.journal.jobs("done"):
        broken = [o for o in job.outputs if Path(o).exists() and output_problem(o)]
        archive = Path(job.archive or "")
        if broken and archive.is_dir() and all((archive / f).exists() for f in job.frames):
            for output in broken:
                log.warning("recovered: %s is not whole (%s); %s runs again", output, output_problem(output),
                            job.name)
                Path(output).unlink()
            rename(archive, job.folder)
            ws.journal.update(job.id, state="waiting", archive=None)


def _remove_temporary_files(ws: Workspace, alive: Callable[[str], bool]) -> None:
    """Delete what a kill left under a temporary name: in the output folder (but not a running cluster
    task's), and in the work, done and failed folders and the outcome records."""
    still = {Path(o).name for job in ws.journal.jobs("running") if job.task and alive(job.task)
             for o in job.outputs}
    layout = ws.layout
    folders = [layout.out, layout.results] + [folder for parent in (layout.jobs, layout.done, layout.failed)
                                              for folder in parent.iterdir() if folder.is_dir()]
    for folder in folders:
        for leftover in folder.glob(".*.partial"):
            if temporary_of(leftover) is None or temporary_of(leftover) in still:
                continue
            leftover.unlink(missing_ok=True)
            log.info("removed an unfinished file: %s", leftover.relative_to(folder.parent))


def _recover_running(ws: Workspace, job: Job) -> None:
    if job.archive and not job.folder.exists():
        failed = Path(job.archive).parent == ws.layout.failed
        if failed and not (Path(job.archive) / ERROR).exists():
            fail(ws, job, RuntimeError(job.error or "interrupted"))
        else:
            finish(ws, job, "failed" if failed else "done")
            log.info("recovered: %s had %s before the interruption", job.name, "failed" if failed else "finished")
    elif job.outputs and job.error is None and not any(map(output_problem, job.outputs)):
        finish_unreported(ws, job, "the service was stopped after the result was written and before this "
                                   "report; per-frame details were not kept")
        log.info("recovered: %s had finished before the interruption", job.name)
    else:
        ws.journal.update(job.id, state="waiting", archive=None)
        log.info("recovered: %s was interrupted; it runs again", job.name)
