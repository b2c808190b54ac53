"""The service's side of ``focusdrop watch --cluster``: one Dask task per stack, and what happens when the
cluster misbehaves.

- Each task has a key the journal records before it is submitted, and is published under that key (Dask's
  named datasets, shared between clients): the scheduler keeps it running if the service dies, and a
  restarted service reattaches to it by that key rather than stacking the bracket twice. Once its result
  is in, it is unpublished.
- A worker killed mid-stack: Dask reruns the task on another worker. A stack that kills workers again and
  again (``distributed.scheduler.allowed-failures``, 3 by default) ends as Dask's KilledWorker: the job
  fails with that said, and the cluster goes on.
- The scheduler unreachable, at the start or mid-batch: said in one line, the job waits (it is not
  failed) and the connection is tried again; with ``cluster_fallback = "local"`` stacks run on this
  machine meanwhile.
- Back-pressure: ``capacity`` is two stacks per connected worker (one running, one queued), so a share
  full of brackets is submitted a few at a time, not all at once.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.layout import REPORT_PAGE
from focusdrop.bridge.hotfolder.runner import ResultUnreported, RunnerUnavailable
from focusdrop.bridge.settings import flag
from focusdrop.engine.pipeline import Progress, StackOptions

log = logging.getLogger("focusdrop")

STACKS_PER_WORKER = 2
RETRY_SECONDS = 10.0  # between attempts to reach an unreachable scheduler
CONNECT_TIMEOUT = "5s"  # the service waits this long on each attempt


def needs_cluster_extra() -> None:
    """Raise ValueError, saying what to install, unless Dask distributed and cryptography are here (they
    are the cluster extra: a machine that stacks alone does without them)."""
    try:
        import cryptography  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as e:
        raise ValueError(f"the cluster needs FocusDrop's cluster extra: pip install 'focusdrop[cluster]' "
                         f"({e.name} is not installed)") from None


def security(ca: str | Path | None, cert: str | Path | None, insecure: bool, address: str):
    """distributed.security.Security for ``address``: mutual TLS with the studio's certificates
    (bridge.cluster.certs), or none for a tcp:// address with ``insecure``. Raises ValueError."""
    from distributed.security import Security
    if not address.startswith("tls://"):
        if not insecure:
            raise ValueError(f"cluster {address}: not a tls:// address. A Dask scheduler runs whatever code "
                             f"its clients send; use tls:// with certificates from focusdrop cluster certs, "
                             f"or --insecure on a network you trust")
        return Security()
    for what, path in (("cluster_ca", ca), ("cluster_cert", cert)):
        if not path or not Path(path).is_file():
            raise ValueError(f"cluster {address}: {what} ({flag(what)}) must name a file from focusdrop cluster certs "
                             f"(got {path or 'nothing'})")
    return Security(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(cert),
                    require_encryption=True)


class ClusterRunner:
    """Stacks on a Dask cluster. ``fallback``: a runner for this machine while the scheduler is away."""

    def __init__(self, address: str, security, fallback=None):
        self.address = address
        self.security = security
        self.fallback = fallback
        self._client = None
        self._lock = threading.Lock()
        self._next_try = 0.0
        self._reported = False  # the outage has been logged

    def client(self):
        """The connected client, or None while the scheduler cannot be reached (tried again after
        RETRY_SECONDS; the first failure of an outage is logged)."""
        from distributed import Client
        with self._lock:
            if self._client is not None and self._client.status == "running":
                return self._client
            if time.monotonic() < self._next_try:
                return None
            try:
                self._client = Client(self.address, security=self.security, timeout=CONNECT_TIMEOUT,
                                      set_as_default=False)
            except (OSError, TimeoutError) as e:
                self._next_try = time.monotonic() + RETRY_SECONDS
                if not self._reported:
                    log.error("cluster scheduler %s cannot be reached (%s); trying again every %g s%s",
                              self.address, str(e).splitlines()[0][:160], RETRY_SECONDS,
                              "; stacking on this machine meanwhile" if self.fallback else "")
                    self._reported = True
                return None
            if self._reported:
                log.info("cluster scheduler %s reached again", self.address)
            else:
                log.info("cluster scheduler %s connected", self.address)
            self._reported = False
            return self._client

    def _lost(self) -> None:
        """Forget a client whose scheduler went away; the next call to ``client`` reconnects."""
        with self._lock:
            client, self._client = self._client, None
            self._next_try = time.monotonic() + RETRY_SECONDS
        if client is not None:
            if not self._reported:
                log.error("cluster scheduler %s lost; its stacks wait, trying again every %g s",
                          self.address, RETRY_SECONDS)
                self._reported = True
            try:
                client.close(timeout=2)
            except Exception:  # closing a client whose scheduler is gone can fail in many ways
                pass

    def workers(self) -> dict[str, str]:
        """{worker address: worker name} of the connected workers ({} while disconnected)."""
        client = self.client()
        if client is None:
            return {}
        try:
            return {address: str(info.get("name", address))
                    for address, info in client.scheduler_info()["workers"].items()}
        except Exception:
            self._lost()
            return {}

    def capacity(self) -> int:
        """How many stacks may be submitted at once: STACKS_PER_WORKER per worker, or the fallback's."""
        workers = self.workers()
        if not workers and self._client is None and self.fallback is not None:
            return self.fallback.capacity()
        return STACKS_PER_WORKER * len(workers)

    def running_on(self) -> dict[str, str]:
        """{task key: name of the worker running it} for the tasks being processed now."""
        client, names = self._client, self.workers()
        if client is None:
            return {}
        try:
            return {key: names.get(address, address) for address, keys in client.processing().items()
                    for key in keys}
        except Exception:
            self._lost()
            return {}

    def alive(self, key: str) -> bool:
        """Whether the scheduler still holds task ``key`` (running, queued or just finished): a restarted
        service reattaches to it."""
        client = self.client()
        if client is None:
            return False
        try:
            return key in client.list_datasets()
        except Exception:
            self._lost()
            return False

    def run(self, job: Job, options: StackOptions, remember: Callable[[str], None], progress: Progress) -> dict:
        """Stack ``job`` on the cluster, reattaching to its task if the scheduler still runs it; returns
        bridge.cluster.task.stack_task's record. ``remember(key)`` journals the task's key before it is
        submitted; ``progress`` is called only by the local fallback (workers do not report theirs). Raises
        the stack's own error, ResultUnreported for a stack that kept killing workers, or RunnerUnavailable."""
        from distributed.scheduler import KilledWorker

        from focusdrop.bridge.cluster.task import stack_task
        client = self.client()
        if client is None:
            if self.fallback is not None:
                return self.fallback.run(job, options, remember, progress)
            raise RunnerUnavailable(f"cluster scheduler {self.address} cannot be reached")
        future = None
        try:
            if job.task and self.alive(job.task):
                future = client.get_dataset(job.task)
                log.info("reattached: %s is still stacking on the cluster", job.name)
            else:
                key = f"focusdrop-stack-{job.id}-{uuid.uuid4().hex[:12]}"
                remember(key)
                future = client.submit(stack_task, [str(job.folder / f) for f in job.frames], job.outputs,
                                       options, str(job.folder / REPORT_PAGE), key=key, pure=False)
                client.publish_dataset(future, name=key)
            record = future.result()
            self._forget(future.key)
            return record
        except KilledWorker as e:
            self._forget(future.key)
            last = getattr(e.last_worker, "name", None) or getattr(e.last_worker, "address", "?")
            raise ResultUnreported(f"the stack stopped {e.allowed_failures + 1} cluster workers in a row (killed, "
                                   f"or out of memory; the last: {last}); it was not tried again") from None
        except Exception as e:
            if future is not None and future.status == "error":  # the stack's own error
                self._forget(future.key)
                raise
            self._lost()
            raise RunnerUnavailable(f"cluster scheduler {self.address} lost ({type(e).__name__})") from None

    def _forget(self, key: str) -> None:
        """Unpublish a finished task: the scheduler may release it and its result."""
        try:
            self._client.unpublish_dataset(key)
        except Exception:  # already gone, or the scheduler with it: nothing is held then
            pass

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(timeout=5)
