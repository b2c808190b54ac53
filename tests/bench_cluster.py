"""Throughput of the hot folder, on this machine and through a Dask cluster on this machine (a measurement,
not a test).

    python tests/bench_cluster.py [--stacks 8] [--size 3000x2000] [--frames 12]

Generates one bracket (16-bit TIFF), then for each set-up drops ``--stacks`` copies of it into a fresh hot
folder at once and times them through ``focusdrop watch``: locally with 1 and 2 workers, and through a
scheduler and 1 or 2 ``focusdrop worker`` processes on 127.0.0.1 (TLS). Prints stacks per hour and the
median stack time the service logs; the cluster's overhead per stack is the difference of the 1-worker
wall times, local and through the cluster, over the number of stacks (a stack's logged time through the
cluster includes its wait in the worker's queue).
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from focusdrop.bridge.samples import write_bracket  # noqa: E402
from clusterprocs import cluster  # noqa: E402
from focusdrop.engine.synthetic import BracketSpec  # noqa: E402
from hotfolder import wait_for, watching  # noqa: E402

FINISHED = re.compile(r"finished: \S+ in ([0-9.]+) s")


def run(root: Path, bracket: Path, stacks: int, options: list[str]) -> tuple[float, list[float]]:
    """Wall time from the drop to the last result, and each stack's own time (s)."""
    with watching(root, *options, "--format", "tif") as (_, log):
        started = time.perf_counter()
        for k in range(stacks):
            staging = root / "In" / f"bracket{k:02d}.partial"
            shutil.copytree(bracket, staging)
            staging.rename(root / "In" / f"bracket{k:02d}")
        wait_for(lambda: len(list((root / "Out").glob("*.tif"))) == stacks, 3600, log)
        wall = time.perf_counter() - started
        return wall, [float(t) for t in FINISHED.findall(log.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--size", default="3000x2000")
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="focusdrop-bench-cluster-"))
    try:
        bracket = work / "bracket"
        write_bracket(BracketSpec(width=width, height=height, frames=args.frames, scene="sphere"), bracket)
        certs = work / "certs"
        subprocess.run([sys.executable, "-m", "focusdrop.bridge.cli", "cluster", "certs", str(certs), "scheduler", "w1",
                        "w2", "service"], check=True, capture_output=True)
        results = {}
        for label, workers in (("local, 1 worker", 1), ("local, 2 workers", 2)):
            root = work / label.replace(", ", "-").replace(" ", "")
            root.mkdir()
            results[label] = run(root, bracket, args.stacks, ["--workers", str(workers)])
        for label, names in (("cluster, 1 worker", ("w1",)), ("cluster, 2 workers", ("w1", "w2"))):
            root = work / label.replace(", ", "-").replace(" ", "")
            root.mkdir()
            with cluster(root, certs, names) as c:
                results[label] = run(root, bracket, args.stacks, c.watch_options()[:-2])
        print(f"{args.stacks} stacks of {args.frames} x {width}x{height} 16-bit, on {sys.platform}:")
        for label, (wall, each) in results.items():
            print(f"  {label:<20} {args.stacks / wall * 3600:7.0f} stacks/hour  (wall {wall:6.1f} s; "
                  f"each stack {statistics.median(each):5.2f} s median)")
        local, remote = (results[k][0] / args.stacks for k in ("local, 1 worker", "cluster, 1 worker"))
        print(f"  cluster overhead per stack: {remote - local:+.2f} s ({(remote - local) / local:+.1%} of "
              f"{local:.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
