"""Fault injection: the hot-folder service killed between every two steps of a job's life, and at random
moments while brackets stream in. After the restarts every frame exists exactly once, byte for byte,
under done/ (or failed/ for a stack that must fail), every stack has exactly one whole result, and no
temporary file is left.

FOCUSDROP_CRASH_KILLS (default 20) and FOCUSDROP_CRASH_SEED set the random test's kills and seed; the
seed is printed, so a failure can be replayed.
"""
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from focusdrop.bridge.hotfolder.journal import Journal
from focusdrop.bridge.samples import write_bracket
from focusdrop.engine.synthetic import BracketSpec
from hotfolder import files, frame_layers, wait_for, watching

FRAMES = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Frames of a 3-frame 16-bit 240x160 bracket (quick to stack), written once."""
    _, paths = write_bracket(BracketSpec(width=240, height=160, frames=FRAMES, seed=21),
                             tmp_path_factory.mktemp("tiny"))
    return [p.read_bytes() for p in paths]


def drop_job(inbox: Path, name: str, frames: list[bytes], manifest: str | None = None) -> dict[str, bytes]:
    """A job folder NAME.partial renamed to NAME, as the Lightroom preset exports; returns its files."""
    partial = inbox / f"{name}.partial"
    partial.mkdir(parents=True)
    dropped = {f"{name}_{k + 1}.tif": data for k, data in enumerate(frames)}
    for file, data in dropped.items():
        (partial / file).write_bytes(data)
    if manifest is not None:
        (partial / "manifest.json").write_text(manifest)
    partial.rename(inbox / name)
    return dropped


def drop_loose(inbox: Path, name: str, frames: list[bytes], when: float) -> dict[str, bytes]:
    """Loose frames with modification times around ``when`` (capture-time gaps split the bursts)."""
    inbox.mkdir(parents=True, exist_ok=True)
    dropped = {f"{name}_{k + 1}.tif": data for k, data in enumerate(frames)}
    for k, (file, data) in enumerate(dropped.items()):
        (inbox / file).write_bytes(data)
        os.utime(inbox / file, (when + k, when + k))
    return dropped


def check_nothing_lost(root: Path, dropped: dict[str, bytes], stacks: int, failed: int = 0) -> None:
    """Every dropped frame exactly once, byte for byte, in done/ or failed/; ``stacks`` whole results, one
    layer per frame; ``failed`` failed stacks, each with its error.txt; no temporary or stray file."""
    inbox, out = root / "In", root / "Out"
    found: dict[str, list[Path]] = {}
    for path in (inbox / "done").rglob("*.tif"):
        found.setdefault(path.name, []).append(path)
    for path in (inbox / "failed").rglob("*.tif"):
        found.setdefault(path.name, []).append(path)
    assert sorted(found) == sorted(dropped), "frames lost or made up"
    for name, paths in found.items():
        assert len(paths) == 1, f"{name} is there {len(paths)} times"
        assert paths[0].read_bytes() == dropped[name], f"{name} changed"
    assert files(inbox) == [".focusdrop", "done", "failed"]
    assert files(inbox / ".focusdrop" / "jobs") == []
    assert len(files(inbox / "failed")) == failed
    for folder in (inbox / "failed").iterdir():
        assert (folder / "error.txt").exists()
    for folder in (inbox / "done").iterdir():
        assert (folder / "report.json").exists()
    leftovers = [p for folder in (inbox, out) for p in folder.rglob("*.partial")]
    assert not leftovers, f"temporary files left: {leftovers}"
    results = files(out)
    assert len(results) == stacks and all(r.endswith(".psd") for r in results), results
    for result in results:
        assert frame_layers(out / result) == FRAMES
    journal = Journal(inbox / ".focusdrop" / "journal.sqlite")
    states = [job.state for job in journal.jobs()]
    journal.close()
    assert sorted(states) == sorted(["done"] * stacks + ["failed"] * failed)


@pytest.mark.parametrize("step", ["claim:journaled", "claim:moved", "run:started", "run:written",
                                  "run:reported", "archive:journaled", "run:archived"])
def test_killed_between_two_steps_of_a_stack(tmp_path, tiny, step):
    """A kill -9 exactly at one step boundary (as a power cut there looks to the next start)."""
    with watching(tmp_path, env={"FOCUSDROP_CRASH_AT": step}) as (process, log):
        dropped = drop_job(tmp_path / "In", "ring", tiny)
        assert process.wait(60) == -signal.SIGKILL, log.read_text()
    assert f"crash point {step}" in log.read_text()
    with watching(tmp_path) as (_, log):
        wait_for(lambda: files(tmp_path / "In" / "done") == ["ring"], 60, log)
    check_nothing_lost(tmp_path, dropped, stacks=1)
    if step in ("run:written", "run:reported", "archive:journaled", "run:archived"):
        assert "recovered: ring had finished before the interruption" in log.read_text()  # not stacked again


@pytest.mark.parametrize("step", ["archive:journaled", "fail:archived"])
def test_killed_between_two_steps_of_a_failing_stack(tmp_path, tiny, step):
    with watching(tmp_path, env={"FOCUSDROP_CRASH_AT": step}) as (process, log):
        dropped = drop_job(tmp_path / "In", "bad", tiny, manifest="{not json")
        assert process.wait(60) == -signal.SIGKILL, log.read_text()
    with watching(tmp_path) as (_, log):
        wait_for(lambda: (tmp_path / "In" / "failed" / "bad" / "error.txt").exists(), 60, log)
    check_nothing_lost(tmp_path, dropped, stacks=0, failed=1)
    assert "manifest.json is not valid JSON" in (tmp_path / "In" / "failed" / "bad" / "error.txt").read_text()


def test_a_result_that_never_reached_the_disk_is_made_again(tmp_path, tiny):
    """A power cut can leave a renamed result without its data (ext4's zero-length file): the next start
    finds it not whole, brings the frames back from done/ and stacks them again."""
    with watching(tmp_path) as (_, log):
        dropped = drop_job(tmp_path / "In", "ring", tiny)
        wait_for(lambda: files(tmp_path / "In" / "done") == ["ring"], 60, log)
    result = tmp_path / "Out" / "ring.psd"
    whole = result.stat().st_size
    result.write_bytes(result.read_bytes()[: whole // 3])
    with watching(tmp_path) as (_, log):
        wait_for(lambda: "finished: ring" in log.read_text() and files(tmp_path / "In" / "done") == ["ring"], 60, log)
    assert result.stat().st_size == whole
    assert "ring.psd is not whole" in log.read_text()
    check_nothing_lost(tmp_path, dropped, stacks=1)


def test_temporary_files_a_kill_left_are_removed_at_the_next_start(tmp_path, tiny):
    """A kill while a report, an error.txt, an outcome record or a result was being written leaves its
    temporary file (.NAME.PID.partial) beside it: the next start removes each, wherever it lies."""
    with watching(tmp_path) as (_, log):
        dropped = drop_job(tmp_path / "In", "ring", tiny)
        dropped |= drop_job(tmp_path / "In", "bad", tiny[::-1], manifest="{not json")
        wait_for(lambda: files(tmp_path / "In" / "done") == ["ring"] and
                 files(tmp_path / "In" / "failed") == ["bad"], 60, log)
    inbox = tmp_path / "In"
    left = [inbox / "done" / "ring" / ".report.json.4242.partial", inbox / "failed" / "bad" / ".error.txt.4242.partial",
            inbox / ".focusdrop" / "results" / ".ring-1.json.4242.partial", tmp_path / "Out" / ".ring-2.psd.4242.partial"]
    for path in left:
        path.write_bytes(b"cut short")
    keep = inbox / "done" / "ring" / ".notes.partial"  # not a name FocusDrop writes: left alone
    keep.write_bytes(b"the photographer's")
    with watching(tmp_path) as (_, log):
        wait_for(lambda: "removed an unfinished file: ring/.report.json.4242.partial" in log.read_text(), 30, log)
    assert not [p for p in left if p.exists()] and keep.exists()
    keep.unlink()
    check_nothing_lost(tmp_path, dropped, stacks=1, failed=1)


def test_a_waiting_job_keeps_its_output_name_from_a_second_stack_of_that_name(tmp_path, tiny):
    """A job put back to waiting by recovery keeps its output name; with two workers, a second stack of
    the same name must not pick that name too (the later rename would replace the first result)."""
    with watching(tmp_path, env={"FOCUSDROP_CRASH_AT": "run:started"}) as (process, log):
        dropped = drop_job(tmp_path / "In", "ring", tiny)
        assert process.wait(60) == -signal.SIGKILL
    dropped |= drop_job(tmp_path / "In", "ring2", tiny[::-1], manifest=json.dumps({"name": "ring"}))
    with watching(tmp_path, "--workers", "2") as (_, log):
        wait_for(lambda: len(files(tmp_path / "In" / "done")) == 2, 60, log)
    assert files(tmp_path / "Out") == ["ring-2.psd", "ring.psd"]
    check_nothing_lost(tmp_path, dropped, stacks=2)


def test_random_kills_while_brackets_stream_in(tmp_path, tiny):
    """Brackets (job folders and loose bursts) stream into the hot folder while the service is killed
    with SIGKILL at random moments and restarted each time."""
    kills = int(os.environ.get("FOCUSDROP_CRASH_KILLS", 20))
    seed = int(os.environ.get("FOCUSDROP_CRASH_SEED", 1234))
    print(f"random kills: FOCUSDROP_CRASH_SEED={seed} FOCUSDROP_CRASH_KILLS={kills}")
    rng = random.Random(seed)
    inbox, dropped, stacks = tmp_path / "In", {}, 0
    epoch = time.time() - 10 * 86400
    for kill in range(kills):
        with watching(tmp_path, ready=rng.random() < 0.7) as (process, log):  # or killed while starting
            if rng.random() < 0.6:
                if rng.random() < 0.5:
                    dropped |= drop_job(inbox, f"job{stacks}", tiny)
                else:  # loose bursts an hour apart in capture time: one stack each
                    dropped |= drop_loose(inbox, f"loose{stacks}", tiny, epoch + 3600 * stacks)
                stacks += 1
            time.sleep(rng.uniform(0.0, 3.0))
            process.kill()
            process.wait()
    with watching(tmp_path) as (_, log):
        wait_for(lambda: len(files(inbox / "done")) == stacks, 120, log)
    check_nothing_lost(tmp_path, dropped, stacks)
