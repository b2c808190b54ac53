"""``focusdrop worker`` and ``focusdrop cluster certs``: a machine joining a studio's cluster, and the
certificates that let it."""
from __future__ import annotations

import argparse
from pathlib import Path

from focusdrop.bridge.settings import WORKER, add_flags


def worker(args: argparse.Namespace) -> int:
    from focusdrop.bridge.cluster.runner import needs_cluster_extra
    needs_cluster_extra()
    from focusdrop.bridge.cluster.worker import run_worker
    run_worker(args.address, args.cluster_ca, args.cluster_cert, bool(args.insecure), args.name, args.nthreads,
               args.share, args.path_map)
    return 0


def certs(args: argparse.Namespace) -> int:
    from focusdrop.bridge.cluster.runner import needs_cluster_extra
    needs_cluster_extra()
    from focusdrop.bridge.cluster.certs import make_certificates
    for path in make_certificates(Path(args.folder), args.machines):
        print(f"focusdrop: wrote {path}")
    print("focusdrop: copy ca.pem and a machine's NAME.pem to that machine (NAME.pem holds its private key); "
          "ca-key.pem stays here")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("worker", help="stack for a cluster: a Dask worker, after checking this machine can")
    p.add_argument("address", help="the scheduler, tls://HOST:8786 (start it with dask scheduler)")
    add_flags(p, WORKER)  # --cluster-ca, --cluster-cert, --insecure
    p.add_argument("--name", help="this worker's name in the journal and focusdrop status (default: host name)")
    p.add_argument("--share", action="append", default=[], metavar="FOLDER",
                   help="a shared folder stacks are read from and written to: checked before joining (repeat)")
    p.add_argument("--path-map", action="append", default=[], metavar="SERVICE=HERE",
                   help="the service's folder SERVICE is mounted at HERE on this machine, for example "
                        "/Volumes/Studio=/mnt/studio (repeat)")
    p.add_argument("--nthreads", type=int, default=1, help="stacks at once on this machine (default 1)")
    p.set_defaults(run=worker)

    p = commands.add_parser("cluster", help="cluster set-up")
    sub = p.add_subparsers(dest="cluster_command", required=True)
    c = sub.add_parser("certs", help="make the studio's certificate authority (once) and a certificate per "
                                     "machine, for Dask's mutual TLS")
    c.add_argument("folder", help="where to write ca.pem, ca-key.pem and NAME.pem")
    c.add_argument("machines", nargs="+", metavar="NAME", help="the machines: scheduler, workers, service")
    c.set_defaults(run=certs)
