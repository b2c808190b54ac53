"""``focusdrop watch`` as a real process on temporary folders, with watchdog's real observer."""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from psd_tools import PSDImage

from bridge.journal import Journal
from bridge.samples import write_bracket
from engine.synthetic import BracketSpec
from gimp import open_in_gimp

QUIET = "1.5"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Frames of a 5-frame 16-bit 480x320 bracket, written once, copied by each test."""
    _, paths = write_bracket(BracketSpec(width=480, height=320, frames=5, seed=11),
                             tmp_path_factory.mktemp("small"))
    return [p.read_bytes() for p in paths]


@contextmanager
def watching(root: Path, *options: str):
    """The service on root/In -> root/Out; yields (process, log path); stops it with SIGTERM after."""
    (root / "In").mkdir(exist_ok=True)
    log = root / f"log-{time.monotonic_ns()}.txt"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "bridge.cli", "watch", str(root / "In"), "--out",
                                    str(root / "Out"), "--quiet", QUIET, *options], stdout=out, stderr=out)
    try:
        wait_for(lambda: "watching" in log.read_text(), 30, log)
        yield process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def frame_layers(document) -> int:
    """The layers of a FocusDrop PSD that hold frames (not the blend, pyramid or depth-map layers)."""
    return sum("(FocusDrop)" not in layer.name for layer in PSDImage.open(document))


def wait_for(condition, timeout, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out; log:\n{log.read_text() if log else ''}")


def drop(folder: Path, frames: list[bytes], stem: str, mtime: float | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, data in enumerate(frames):
        path = folder / f"{stem}_{k + 1:02d}.tif"
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime + k, mtime + k))
        paths.append(path)
    return paths


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_two_loose_brackets_with_a_capture_gap_become_two_stacks(tmp_path, small):
    with watching(tmp_path) as (_, log):
        drop(tmp_path / "In", small, "a", mtime=time.time() - 600)
        drop(tmp_path / "In", small, "b", mtime=time.time() - 300)
        (tmp_path / "In" / ".DS_Store").write_bytes(b"x")
        wait_for(lambda: len(files(tmp_path / "In" / "done")) == 2, 60, log)
    assert files(tmp_path / "Out") == ["a_01.psd", "b_01.psd"]
    assert files(tmp_path / "In" / "done" / "a_01") == [f"a_{k:02d}.tif" for k in range(1, 6)] + ["report.json"]
    assert files(tmp_path / "In") == [".DS_Store", ".focusdrop", "done", "failed"]
    text = log.read_text()
    assert "stack formed: a_01, 5 frames (capture time jumps" in text
    assert "stack formed: b_01, 5 frames (no new frame for 1.5 s)" in text
    assert "finished: b_01" in text and "frame arrived: b_05.tif (480x320, 16-bit)" in text
    assert frame_layers(tmp_path / "Out" / "a_01.psd") == 5
    view = open_in_gimp(tmp_path / "Out" / "b_01.psd", tmp_path / "gimp")
    masked_frames = [name for name, _, has_mask in view.layers if has_mask and "(FocusDrop)" not in name]
    assert masked_frames == [f"b_{k:02d}" for k in range(5, 0, -1)]
    status = subprocess.run([sys.executable, "-m", "bridge.cli", "status", str(tmp_path / "In")],
                            capture_output=True, text=True)
    assert status.stdout.splitlines()[0] == "waiting: 0  running: 0  done: 2  failed: 0"


def test_a_partial_job_folder_waits_for_its_rename(tmp_path, small):
    with watching(tmp_path) as (_, log):
        job = tmp_path / "In" / "ring.partial"
        drop(job, small, "frame")
        (job / "manifest.json").write_text(json.dumps({"name": "Ring 42", "format": "both"}))
        time.sleep(float(QUIET) + 4)
        assert files(tmp_path / "Out") == [] and job.exists()
        job.rename(tmp_path / "In" / "ring")
        wait_for(lambda: files(tmp_path / "In" / "done") == ["Ring 42"], 60, log)
    assert files(tmp_path / "Out") == ["Ring 42.psd", "Ring 42.tif"]
    assert "manifest.json" in files(tmp_path / "In" / "done" / "Ring 42")
    assert "stack formed: Ring 42, 5 frames (job folder" in log.read_text()


def test_frames_written_slowly_are_not_read_early(tmp_path, small):
    with watching(tmp_path) as (_, log):
        drop(tmp_path / "In", small[:4], "slow")
        last = tmp_path / "In" / "slow_05.tif"
        with open(last, "wb") as f:
            for chunk in range(8):  # 3.2 s of writing, longer than the quiet period
                f.write(small[4][chunk * len(small[4]) // 8:(chunk + 1) * len(small[4]) // 8])
                f.flush()
                time.sleep(0.4)
        wait_for(lambda: files(tmp_path / "In" / "done") == ["slow_01"], 60, log)
    report = json.loads((tmp_path / "In" / "done" / "slow_01" / "report.json").read_text())
    assert len(report["frames"]) == 5 and files(tmp_path / "In" / "failed") == []


def test_a_corrupt_frame_fails_its_stack_alone(tmp_path, small):
    with watching(tmp_path) as (process, log):
        bad = drop(tmp_path / "In", small, "bad", mtime=time.time() - 600)
        bad[2].write_bytes(small[2][:len(small[2]) // 3])
        os.utime(bad[2], (time.time() - 598, time.time() - 598))
        drop(tmp_path / "In", small, "good", mtime=time.time() - 300)
        wait_for(lambda: files(tmp_path / "In" / "done") == ["good_01"], 60, log)
        assert process.poll() is None
    assert files(tmp_path / "Out") == ["good_01.psd"]
    failed = tmp_path / "In" / "failed" / "bad_01"
    assert files(failed) == [f"bad_{k:02d}.tif" for k in range(1, 6)] + ["error.txt"]
    error = (failed / "error.txt").read_text()
    assert "What went wrong: bad_03.tif: truncated or corrupt image data" in error
    assert "What to do: Re-export the frame named above" in error
    assert "failed: bad_01: bad_03.tif: truncated or corrupt" in log.read_text()


def test_an_existing_result_is_never_overwritten(tmp_path, small):
    (tmp_path / "Out").mkdir()
    (tmp_path / "Out" / "x_01.psd").write_bytes(b"an earlier result")
    with watching(tmp_path) as (_, log):
        drop(tmp_path / "In", small, "x")
        wait_for(lambda: files(tmp_path / "In" / "done") == ["x_01"], 60, log)
    assert files(tmp_path / "Out") == ["x_01-2.psd", "x_01.psd"]
    assert (tmp_path / "Out" / "x_01.psd").read_bytes() == b"an earlier result"


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A bracket that takes a few seconds to stack, to be killed in the middle of."""
    _, paths = write_bracket(BracketSpec(width=1800, height=1200, frames=8, seed=12),
                             tmp_path_factory.mktemp("large"))
    return [p.read_bytes() for p in paths]


@pytest.mark.parametrize("delay", [0.5, 2.5])
def test_kill_9_while_stacking_then_restart_finishes_exactly_once(tmp_path, large, delay):
    with watching(tmp_path) as (process, log):
        drop(tmp_path / "In", large, "k")
        wait_for(lambda: "started: k_01" in log.read_text(), 60, log)
        time.sleep(delay)
        process.kill()
        process.wait()
    assert files(tmp_path / "In" / "done") == []  # it was killed before it finished
    with watching(tmp_path) as (_, log):
        wait_for(lambda: files(tmp_path / "In" / "done") == ["k_01"], 120, log)
    assert files(tmp_path / "Out") == ["k_01.psd"]
    assert files(tmp_path / "In" / "done" / "k_01") == [f"k_{k:02d}.tif" for k in range(1, 9)] + ["report.json"]
    assert files(tmp_path / "In" / ".focusdrop" / "jobs") == []
    assert files(tmp_path / "In") == [".focusdrop", "done", "failed"]
    assert frame_layers(tmp_path / "Out" / "k_01.psd") == 8
    assert len(open_in_gimp(tmp_path / "Out" / "k_01.psd", tmp_path / "gimp").layers) == 8 + 2  # blend, depth


def test_sigterm_lets_the_running_stack_finish(tmp_path, large):
    with watching(tmp_path) as (process, log):
        drop(tmp_path / "In", large, "t")
        wait_for(lambda: "started: t_01" in log.read_text(), 60, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
    assert files(tmp_path / "Out") == ["t_01.psd"] and files(tmp_path / "In" / "done") == ["t_01"]
    assert "stopping after the running stack(s) finish" in log.read_text()


def test_two_workers_take_two_job_folders_at_once(tmp_path, small):
    with watching(tmp_path, "--workers", "2", "--format", "tif") as (_, log):
        for name in ("one", "two"):
            drop(tmp_path / "In" / f"{name}.partial", small, name)
        for name in ("one", "two"):
            (tmp_path / "In" / f"{name}.partial").rename(tmp_path / "In" / name)
        wait_for(lambda: files(tmp_path / "In" / "done") == ["one", "two"], 60, log)
    assert files(tmp_path / "Out") == ["one.tif", "two.tif"]
    one, two = Journal(tmp_path / "In" / ".focusdrop" / "journal.sqlite").jobs("done")
    assert one.started < two.finished and two.started < one.finished  # they ran at the same time


def test_the_polling_observer_for_network_shares(tmp_path, small):
    with watching(tmp_path, "--polling", "--format", "tif") as (_, log):
        drop(tmp_path / "In", small, "p")
        wait_for(lambda: files(tmp_path / "In" / "done") == ["p_01"], 60, log)
    assert files(tmp_path / "Out") == ["p_01.tif"]
