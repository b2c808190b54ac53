"""``focusdrop worker``: a Dask worker that stacks for a studio's cluster, after checking this machine can.

A thin wrapper over ``dask worker``: it checks that the engine imports (its packages are installed here),
that each shared folder given is there and writable, and that the scheduler's address and certificates
make sense; then it runs ``dask worker`` with one thread (a stack keeps two cores busy on its own, and
one stack's frames fill the memory a machine has for stacking), the studio's TLS certificates, and the
path map in its environment for the tasks (bridge.cluster.task). Without Dask's nanny: the nanny starts
its worker with MALLOC_TRIM_THRESHOLD_=65536, which made every stack 40 % slower (large arrays went back to
the system and were faulted in again, frame after frame: 6.3 s -> 8.6 s for 12 x 6 MP, the same with that
variable set outside Dask), and this wrapper does the nanny's other job: a Dask worker leaves when it dies
or its scheduler goes away, and this one starts it again after REJOIN_SECONDS, so a restarted scheduler
gets its machines back without anyone visiting them. SIGTERM or SIGINT stops the worker and this wrapper.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from focusdrop.bridge.cluster.runner import security
from focusdrop.bridge.cluster.task import PATH_MAP_ENV, parse_path_map

REJOIN_SECONDS = 5.0


def check_share(folder: Path) -> None:
    """Raise ValueError unless ``folder`` exists and this machine can write in it."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: shared folder not found on this machine (mounted elsewhere? see --path-map)")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".focusdrop-worker-check-"):
            pass
    except OSError as e:
        raise ValueError(f"{folder}: this machine cannot write in the shared folder ({e.strerror})") from None


def worker_command(address: str, ca: str | None, cert: str | None, insecure: bool, name: str | None,
                   threads: int) -> list[str]:
    """The ``dask worker`` command line (as ``python -m distributed.cli.dask_worker``). Raises ValueError."""
    security(ca, cert, insecure, address)  # the same checks as the service's
    command = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", str(threads),
               "--nworkers", "1", "--no-nanny", "--name", name or socket.gethostname(), "--no-dashboard"]
    if address.startswith("tls://"):
        command += ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(cert)]
    return command


def run_worker(address: str, ca: str | None, cert: str | None, insecure: bool, name: str | None, threads: int,
               shares: list[str], path_map: list[str]) -> None:
    """Check, then run ``dask worker`` until a signal stops it, starting it again whenever it leaves (its
    scheduler gone). Raises ValueError when a check fails."""
    import focusdrop.engine.pipeline  # noqa: F401  (the engine and its packages import here, or this fails now)
    pairs = parse_path_map(";".join(path_map))
    for share in shares:
        check_share(Path(share))
    command = worker_command(address, ca, cert, insecure, name, threads)
    environment = {**os.environ, PATH_MAP_ENV: ";".join(f"{a}={b}" for a, b in pairs),
                   "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}  # it samples the stack every 10 ms
    stopping, child = [], None

    def stop(signum, frame):
        stopping.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    who = command[command.index("--name") + 1]
    while not stopping:
        print(f"focusdrop worker: joining {address} as {who}", file=sys.stderr, flush=True)
        child = subprocess.Popen(command, env=environment)
        child.wait()
        if not stopping:
            print(f"focusdrop worker: left {address} (exit {child.returncode}); joining again in "
                  f"{REJOIN_SECONDS:g} s", file=sys.stderr, flush=True)
            time.sleep(REJOIN_SECONDS)
