"""``focusdrop watch --cluster`` with real processes on 127.0.0.1: a Dask scheduler and two ``focusdrop
worker`` processes with TLS certificates made by ``focusdrop cluster certs``, and the service on temporary
folders. Workers, the service and the scheduler are killed with SIGKILL mid-batch; every bracket must still
end as exactly one result, its frames archived once. The longest test is marked ``cluster_slow``
(``pytest -m cluster_slow`` runs it alone)."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from focusdrop.bridge.samples import write_bracket
from clusterprocs import Cluster, cluster, kill
from conftest import focusdrop
from focusdrop.engine.synthetic import BracketSpec
from hotfolder import files, wait_for, watching

pytest.importorskip("distributed")
SMALL = BracketSpec(width=320, height=240, frames=4, seed=5)
LARGE = BracketSpec(width=2000, height=1500, frames=10, seed=6)  # several seconds a stack on one thread


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    run = focusdrop("cluster", "certs", folder, "scheduler", "w1", "w2", "service")
    assert run.returncode == 0, run.stderr
    assert sorted(files(folder)) == ["ca-key.pem", "ca.pem", "scheduler.pem", "service.pem", "w1.pem", "w2.pem"]
    assert (folder / "w1.pem").stat().st_mode & 0o077 == 0  # a private key: its owner's alone
    return folder


@pytest.fixture(scope="module")
def brackets(tmp_path_factory):
    """The small and the large bracket's frames, written once: {"small": folder, "large": folder}."""
    root = tmp_path_factory.mktemp("brackets")
    for name, spec in (("small", SMALL), ("large", LARGE)):
        write_bracket(spec, root / name)
    return {"small": root / "small", "large": root / "large"}


def _drop_job(inbox: Path, name: str, frames: Path) -> None:
    """A job folder of the frames in ``frames``, written as NAME.partial and renamed: it starts at once."""
    staging = inbox / f"{name}.partial"
    shutil.copytree(frames, staging)
    staging.rename(inbox / name)


def _status(root: Path) -> dict:
    run = focusdrop("status", root / "In", "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _journal(root: Path) -> list[dict]:
    return _status(root)["stacks"]


def _check_each_once(root: Path, frames: dict[str, int]) -> None:
    """Every bracket (name: frame count) ended as exactly one result and one archive of all its frames;
    nothing partial, nothing failed."""
    assert files(root / "Out") == sorted(f"{n}.tif" for n in frames)
    assert files(root / "In" / "done") == sorted(frames)
    for name, count in frames.items():
        assert len([f for f in files(root / "In" / "done" / name) if f.endswith(".tif")]) == count
    assert not list((root / "Out").glob(".*")) and not list((root / "In").glob("*.partial"))
    assert _status(root)["counts"]["failed"] == 0


def test_six_brackets_spread_over_two_workers(tmp_path, certs, brackets):
    with cluster(tmp_path, certs) as c, watching(tmp_path, *c.watch_options()) as (_, log):
        names = [f"ring{k}" for k in range(6)]
        for name in names:
            _drop_job(tmp_path / "In", name, brackets["small"])
        wait_for(lambda: _status(tmp_path)["counts"]["done"] == 6, 120, log)
        status = focusdrop("status", tmp_path / "In").stdout
    _check_each_once(tmp_path, dict.fromkeys(names, SMALL.frames))
    for name in names:  # the workers wrote each stack's report page into its folder
        assert {"report.html", "report.jpg", "report.json"} <= set(files(tmp_path / "In" / "done" / name))
    workers = {job["worker"] for job in _journal(tmp_path)}
    assert workers == {"w1", "w2"}, workers
    assert "(last hour: 6 stacks)" in status and " on w1)" in status and " on w2)" in status
    assert "cluster scheduler" in log.read_text() and "connected" in log.read_text()


def test_a_client_without_a_certificate_is_refused(tmp_path, certs):
    with cluster(tmp_path, certs, workers=()) as c:
        probe = (f"from distributed import Client\n"
                 f"try:\n    Client('{c.address}', timeout='5s')\nexcept Exception as e:\n"
                 f"    print('refused', type(e).__name__)\nelse:\n    print('connected')\n")
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert "refused" in run.stdout, run.stdout + run.stderr
        plain = focusdrop("watch", tmp_path / "In", "--out", tmp_path / "Out", "--cluster",
                          c.address.replace("tls://", "tcp://"))
        assert plain.returncode == 2 and "not a tls:// address" in plain.stderr
        assert not (tmp_path / "In").exists()  # refused before anything was made


def test_a_worker_killed_mid_stack_its_stack_finishes_on_the_other(tmp_path, certs, brackets):
    with cluster(tmp_path, certs) as c, watching(tmp_path, *c.watch_options()) as (_, log):
        _drop_job(tmp_path / "In", "ring", brackets["large"])

        def running_on():
            stacks = [j for j in _journal(tmp_path) if j["state"] == "running"]
            return stacks[0]["worker"] if stacks and stacks[0]["worker"] in c.workers else None
        wait_for(running_on, 90, log)
        victim = running_on()
        kill(c.workers[victim])  # kill -9, the worker and its nanny
        wait_for(lambda: _status(tmp_path)["counts"]["done"] == 1, 180, log)
    _check_each_once(tmp_path, {"ring": LARGE.frames})
    assert _journal(tmp_path)[0]["worker"] == ({"w1", "w2"} - {victim}).pop()


def test_a_stack_that_keeps_killing_workers_fails_alone(tmp_path, certs, brackets):
    """A stack whose worker dies every time it takes it (it kills itself as the stack starts, as running
    out of memory would) fails after Dask's allowed failures, in failed/ with error.txt; the next stack
    runs."""
    with cluster(tmp_path, certs, workers=()) as c, watching(tmp_path, *c.watch_options()) as (_, log):
        c.start_worker("w1", crash_at="task:started")
        _drop_job(tmp_path / "In", "poison", brackets["large"])
        wait_for(lambda: _status(tmp_path)["counts"]["failed"] == 1, 240, log)
        error = (tmp_path / "In" / "failed" / "poison" / "error.txt").read_text()
        assert "cluster workers in a row" in error
        assert len([f for f in files(tmp_path / "In" / "failed" / "poison") if f.endswith(".tif")]) == LARGE.frames
        kill(c.workers["w1"])
        c.start_worker("w1")
        _drop_job(tmp_path / "In", "next", brackets["small"])
        wait_for(lambda: _status(tmp_path)["counts"]["done"] == 1, 120, log)
    assert files(tmp_path / "Out") == ["next.tif"]
    assert (tmp_path / "w1.log").read_text().count("(exit -9); joining again") >= 3  # each attempt's worker


def test_a_stack_whose_worker_dies_after_writing_it_is_done(tmp_path, certs, brackets):
    """Every attempt writes the result whole and then loses its worker before the record comes back: after
    Dask's allowed failures the stack is done, not failed, its result in Out once, its report saying that
    per-frame details were not kept."""
    with cluster(tmp_path, certs, workers=()) as c, watching(tmp_path, *c.watch_options()) as (_, log):
        c.start_worker("w1", crash_at="task:written")
        _drop_job(tmp_path / "In", "ring", brackets["small"])
        wait_for(lambda: _status(tmp_path)["counts"]["done"] == 1, 240, log)
        assert "but an attempt had written the result whole" in log.read_text()
    _check_each_once(tmp_path, {"ring": SMALL.frames})
    report = json.loads((tmp_path / "In" / "done" / "ring" / "report.json").read_text())
    assert report["outputs"] == [str(tmp_path / "Out" / "ring.tif")] and "per-frame details" in report["note"]


@pytest.mark.cluster_slow
def test_the_service_and_the_scheduler_killed_mid_batch(tmp_path, certs, brackets):
    """kill -9 the service while stacks run on the workers, restart it: each stack ends once (running
    ones are reattached, not stacked twice). Then stop the scheduler: the service says so and the stacks
    wait; once it is back they finish."""
    names = [f"ring{k}" for k in range(4)]
    with cluster(tmp_path, certs) as c:
        with watching(tmp_path, *c.watch_options()) as (service, log):
            for name in names:
                _drop_job(tmp_path / "In", name, brackets["large"])
            wait_for(lambda: sum(j["state"] == "running" for j in _journal(tmp_path)) >= 2, 120, log)
            service.send_signal(signal.SIGKILL)
            service.wait(30)
        with watching(tmp_path, *c.watch_options()) as (_, log):
            wait_for(lambda: _status(tmp_path)["counts"]["done"] == 4, 240, log)
            assert "reattached" in log.read_text()
        _check_each_once(tmp_path, dict.fromkeys(names, LARGE.frames))
        joined = sum(c.root.joinpath(f"{w}.log").read_text().count("joining") for w in c.workers)
        assert joined == 2  # no worker was lost on the way

        with watching(tmp_path, *c.watch_options()) as (_, log):
            kill(c.scheduler)
            _drop_job(tmp_path / "In", "later", brackets["small"])
            wait_for(lambda: "cannot be reached" in log.read_text() or "lost" in log.read_text(), 120, log)
            time.sleep(3)
            assert _status(tmp_path)["counts"]["done"] == 4  # it waits, it does not fail
            assert _status(tmp_path)["counts"]["failed"] == 0
            c.start_scheduler()
            c.wait_for_workers(2)
            wait_for(lambda: _status(tmp_path)["counts"]["done"] == 5, 180, log)
            assert "reached again" in log.read_text()
    _check_each_once(tmp_path, {**dict.fromkeys(names, LARGE.frames), "later": SMALL.frames})


def test_without_a_scheduler_stacks_wait_or_run_here(tmp_path, certs, brackets):
    """No scheduler at the address: said in one line; the stack waits (it is not failed), or with
    --cluster-fallback local it is stacked on this machine."""
    c = Cluster(tmp_path, certs)  # a free port, nothing listening
    with watching(tmp_path, *c.watch_options()) as (_, log):
        _drop_job(tmp_path / "In", "ring", brackets["small"])
        wait_for(lambda: "cannot be reached" in log.read_text(), 60, log)
        time.sleep(3)
        assert _status(tmp_path)["counts"]["waiting"] == 1 and log.read_text().count("cannot be reached") == 1
    with watching(tmp_path, *c.watch_options(), "--cluster-fallback", "local") as (_, log):
        wait_for(lambda: _status(tmp_path)["counts"]["done"] == 1, 120, log)
        assert "stacking on this machine meanwhile" in log.read_text()
    _check_each_once(tmp_path, {"ring": SMALL.frames})
    assert _journal(tmp_path)[0]["worker"] == "local"


def test_path_maps_translate_whole_folder_names():
    from focusdrop.bridge.cluster.task import map_path, parse_path_map
    pairs = parse_path_map("/Volumes/Studio=/mnt/studio;D:\\Shoots=/srv/shoots")
    assert map_path("/Volumes/Studio/In/ring/a.tif", pairs) == "/mnt/studio/In/ring/a.tif"
    assert map_path("/Volumes/Studio2/a.tif", pairs) == "/Volumes/Studio2/a.tif"  # not a folder of it
    assert map_path("D:\\Shoots\\ring\\a.tif", pairs) == "/srv/shoots\\ring\\a.tif"
    assert map_path("/mnt/studio/Out/ring.psd", pairs, reverse=True) == "/Volumes/Studio/Out/ring.psd"
    with pytest.raises(ValueError, match="SERVICE_FOLDER=THIS_MACHINE_FOLDER"):
        parse_path_map("/Volumes/Studio")


def test_a_worker_that_cannot_see_the_share_fails_the_stack_it_took(tmp_path, certs, brackets):
    """A worker whose --path-map points at a folder it does not have: the stack fails with an error.txt
    naming the worker and what it could not see; a bad --share is refused before the worker joins."""
    refused = focusdrop("worker", "tls://127.0.0.1:1", "--cluster-ca", certs / "ca.pem", "--cluster-cert", certs / "w1.pem",
                        "--share", tmp_path / "nowhere")
    assert refused.returncode == 2 and "shared folder not found on this machine" in refused.stderr
    c = Cluster(tmp_path, certs)
    try:
        c.start_scheduler()
        c.start_worker("w1", "--path-map", f"{tmp_path}={tmp_path / 'elsewhere'}")
        c.wait_for_workers(1)
        with watching(tmp_path, *c.watch_options()) as (_, log):
            _drop_job(tmp_path / "In", "ring", brackets["small"])
            wait_for(lambda: _status(tmp_path)["counts"]["failed"] == 1, 120, log)
    finally:
        c.stop()
    error = (tmp_path / "In" / "failed" / "ring" / "error.txt").read_text()
    assert "worker w1 cannot see" in error and "--path-map" in error
    assert len([f for f in files(tmp_path / "In" / "failed" / "ring") if f.endswith(".tif")]) == SMALL.frames
