"""``focusdrop watch`` as a real process on temporary folders, with watchdog's real observer."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tifffile

from focusdrop.bridge.hotfolder.journal import Journal
from focusdrop.bridge.samples import write_bracket
from focusdrop.engine.synthetic import BracketSpec
from gimp import open_in_gimp
from hotfolder import QUIET, drop, files, frame_layers, wait_for, watching


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Frames of a 5-frame 16-bit 480x320 bracket, written once, copied by each test."""
    _, paths = write_bracket(BracketSpec(width=480, height=320, frames=5, seed=11),
                             tmp_path_factory.mktemp("small"))
    return [p.read_bytes() for p in paths]


def test_two_loose_brackets_with_a_capture_gap_become_two_stacks(tmp_path, small):
    with watching(tmp_path) as (_, log):
        drop(tmp_path / "In", small, "a", mtime=time.time() - 600)
        drop(tmp_path / "In", small, "b", mtime=time.time() - 300)
        (tmp_path / "In" / ".DS_Store").write_bytes(b"x")
        wait_for(lambda: len(files(tmp_path / "In" / "done")) == 2, 60, log)
    assert files(tmp_path / "Out") == ["a_01.psd", "b_01.psd"]
    assert files(tmp_path / "In" / "done" / "a_01") == [f"a_{k:02d}.tif" for k in range(1, 6)] + ["report.html", "report.jpg", "report.json"]
    assert files(tmp_path / "In") == [".DS_Store", ".focusdrop", "done", "failed"]
    text = log.read_text()
    assert "stack formed: a_01, 5 frames (capture time jumps" in text
    assert "stack formed: b_01, 5 frames (no new frame for 1.5 s)" in text
    assert "finished: b_01" in text and "frame arrived: b_05.tif (480x320, 16-bit)" in text
    assert frame_layers(tmp_path / "Out" / "a_01.psd") == 5
    view = open_in_gimp(tmp_path / "Out" / "b_01.psd", tmp_path / "gimp")
    masked_frames = [name for name, _, has_mask in view.layers if has_mask and "(FocusDrop)" not in name]
    assert masked_frames == [f"b_{k:02d}" for k in range(5, 0, -1)]
    status = subprocess.run([sys.executable, "-m", "focusdrop.bridge.cli", "status", str(tmp_path / "In")],
                            capture_output=True, text=True)
    assert status.stdout.splitlines()[0] == "waiting: 0  running: 0  done: 2  failed: 0  (last hour: 2 stacks)"


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
        tifffile.imwrite(bad[2], tifffile.imread(bad[2]), compression="zlib")
        data = bad[2].read_bytes()  # complete, but its compressed data damaged: found only when decoded
        bad[2].write_bytes(data[:len(data) // 2] + bytes(4096) + data[len(data) // 2 + 4096:])
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


def test_empty_and_cut_off_files_never_block_the_hot_folder(tmp_path, small):
    """A zero-byte frame and a frame cut off mid-file beside a bracket: status names both and why; the
    cut-off one holds the newest bracket back until --give-up (it may belong to it), no longer; then each
    goes to failed/ on its own with an error.txt naming it, the bracket is stacked, the service runs on."""
    def waiting() -> dict:
        status = subprocess.run([sys.executable, "-m", "focusdrop.bridge.cli", "status", str(tmp_path / "In"), "--json"],
                                capture_output=True, text=True)
        return {item["file"]: item["problem"] for item in json.loads(status.stdout)["waiting"]}

    with watching(tmp_path, "--give-up", "8", "--format", "tif") as (process, log):
        (tmp_path / "In" / "empty.tif").write_bytes(b"")
        (tmp_path / "In" / "cut.tif").write_bytes(small[0][: len(small[0]) // 2])
        drop(tmp_path / "In", small, "g")
        problems = waiting()
        assert problems["empty.tif"] == "file is empty (0 bytes)"
        assert problems["cut.tif"].startswith("incomplete file: its image data runs to byte")
        wait_for(lambda: files(tmp_path / "In" / "done") == ["g_01"], 60, log)
        wait_for(lambda: files(tmp_path / "In" / "failed") == ["cut", "empty"], 60, log)
        assert process.poll() is None
    assert files(tmp_path / "In" / "failed" / "empty") == ["empty.tif", "error.txt"]
    assert "empty.tif: file is empty (0 bytes); unchanged for 8 s" in (
        tmp_path / "In" / "failed" / "empty" / "error.txt").read_text()
    assert files(tmp_path / "In") == [".focusdrop", "done", "failed"]
    text = (tmp_path / "In" / ".focusdrop" / "focusdrop.log").read_text()  # the service's own log file
    assert "waiting for empty.tif: file is empty" in text and "failed: empty" in text


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


@pytest.mark.parametrize("step", ["run:started", "run:written"])
def test_kill_9_while_stacking_then_restart_finishes_exactly_once(tmp_path, large, step):
    """Killed (by its own crash point, so at a known moment, not after a delay) just after the stack
    started, or just after its result was renamed into place: the next start finishes it once."""
    with watching(tmp_path, env={"FOCUSDROP_CRASH_AT": step}) as (process, log):
        drop(tmp_path / "In", large, "k")
        assert process.wait(120) == -signal.SIGKILL
    assert files(tmp_path / "In" / "done") == []  # it was killed before it finished
    with watching(tmp_path) as (_, log):
        wait_for(lambda: files(tmp_path / "In" / "done") == ["k_01"], 120, log)
    assert files(tmp_path / "Out") == ["k_01.psd"]
    assert files(tmp_path / "In" / "done" / "k_01") == [f"k_{k:02d}.tif" for k in range(1, 9)] + ["report.html", "report.jpg", "report.json"]
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


def test_open_hands_each_new_result_to_the_default_application(tmp_path, small):
    """--open: each finished result is opened (xdg-open here; a stand-in on PATH records what it is given)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opener = bin_dir / "xdg-open"
    opener.write_text(f"#!/bin/sh\necho \"$1\" >> {tmp_path / 'opened.txt'}\n")
    opener.chmod(0o755)
    with watching(tmp_path, "--open", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}) as (_, log):
        drop(tmp_path / "In", small, "o")
        wait_for(lambda: (tmp_path / "opened.txt").exists(), 60, log)
    assert (tmp_path / "opened.txt").read_text().split() == [str(tmp_path / "Out" / "o_01.psd")]


def test_a_journal_from_the_previous_version_keeps_its_waiting_jobs(tmp_path):
    """Before the problem and job_id columns, a job's options held its whole manifest (or {"problem": ...}):
    opened now, a waiting job keeps its settings, its exporter's id and its problem, in their places."""
    import sqlite3
    path = tmp_path / "journal.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT, state TEXT, folder TEXT, frames TEXT,"
                " options TEXT, sources TEXT, outputs TEXT DEFAULT '[]', archive TEXT, error TEXT, created REAL,"
                " started REAL, finished REAL, worker TEXT, task TEXT)")
    manifest = {"name": "Ring 42", "frames": ["b.tif", "a.tif"], "job_id": "Ring-1", "source": ["/x/b.tif"],
                "created_by": "FocusDrop for Lightroom Classic", "format": "both", "method": "depthmap"}
    for state, options in (("waiting", manifest), ("waiting", {"problem": "x.tif: file is empty"}),
                           ("done", manifest)):
        old.execute("INSERT INTO jobs (name, state, folder, frames, options, sources, created) VALUES "
                    "(?, ?, '', '[]', ?, '[]', 0)", ("Ring 42", state, json.dumps(options)))
    old.commit()
    old.close()
    journal = Journal(path)
    first, second, finished = journal.jobs()
    assert first.options == {"format": "both", "method": "depthmap"} and first.job_id == "Ring-1"
    assert first.problem is None
    assert second.options == {} and second.problem == "x.tif: file is empty"
    assert finished.options == manifest  # a finished job is history: left as it was
    journal.close()


def test_a_late_worker_note_keeps_the_worker_that_finished_the_stack(tmp_path):
    """The service notes which cluster worker runs each task; a note taken just before the task's record
    came back (the task no longer listed: worker None) must not erase the record's worker."""
    journal = Journal(tmp_path / "journal.sqlite")
    job = journal.add("ring", lambda i: tmp_path / str(i), ["a.tif"], {}, ["a.tif"])
    journal.update(job.id, state="running", task="focusdrop-stack-1")
    journal.note_worker(job.id, "focusdrop-stack-1", "w1")
    assert journal.get(job.id).worker == "w1"
    journal.update(job.id, worker="w2", task=None)  # the record: rerun on w2 after w1 died
    journal.note_worker(job.id, "focusdrop-stack-1", None)  # the note read before the record
    assert journal.get(job.id).worker == "w2"
    journal.close()
