"""Where a stack runs: the protocol the service drives, and the runner for this machine (the cluster's is
bridge.cluster.runner)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.layout import REPORT_PAGE
from focusdrop.bridge.hotfolder.live import LiveStacks
from focusdrop.bridge.stacking import stack_record
from focusdrop.engine.pipeline import Progress, StackOptions


class RunnerUnavailable(RuntimeError):
    """The runner cannot take the stack now (a cluster's scheduler cannot be reached): the stack waits, it
    has not failed."""


class ResultUnreported(RuntimeError):
    """The stack's every attempt ended with its machine gone (killed, or out of memory), so no record came
    back; an attempt may still have written the outputs whole before its machine went."""


class Runner(Protocol):
    def capacity(self) -> int:
        """How many stacks may run at once now."""

    def running_on(self) -> dict[str, str]:
        """{task key: machine} for the stacks running now on other machines."""

    def alive(self, task: str) -> bool:
        """Whether task ``task`` (a key ``run`` remembered) still runs: a restarted service reattaches."""

    def run(self, job: Job, options: StackOptions, remember: Callable[[str], None], progress: Progress) -> dict:
        """Stack ``job``'s frames into its outputs; returns bridge.stacking.stack_record's record.
        ``remember(key)`` journals a task key before the task starts; ``progress`` is the engine's progress
        callback, where the runner can call it. Raises RunnerUnavailable."""

    def close(self) -> None:
        """Let go of what the runner holds (connections)."""


class LocalRunner:
    """Stacks on this machine, ``workers`` stacks at a time (the service's threads); ``live``: the pass 1
    done on live folders' frames as they arrived, which a job that has one finishes instead of reading its
    frames again."""

    def __init__(self, workers: int, live: LiveStacks | None = None):
        self.workers = workers
        self.live = live

    def capacity(self) -> int:
        return self.workers

    def running_on(self) -> dict[str, str]:
        return {}  # no tasks: the service's own threads run the stacks

    def alive(self, task: str) -> bool:
        return False

    def run(self, job: Job, options: StackOptions, remember: Callable[[str], None], progress: Progress) -> dict:
        taken = None if self.live is None else self.live.take(job.id, job.folder, options)
        return stack_record([job.folder / f for f in job.frames], [Path(o) for o in job.outputs], options, "local",
                            job.folder / REPORT_PAGE, progress, taken)

    def close(self) -> None:
        pass
