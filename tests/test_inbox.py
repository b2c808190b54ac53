"""Stack grouping and readiness in the hot folder, on a clock the tests move by hand."""
import json
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from focusdrop.bridge.hotfolder.grouping import LooseFrame, split_bursts
from focusdrop.bridge.hotfolder.inbox import SETTLE, Inbox
from focusdrop.bridge.hotfolder.layout import free_stem, safe_name
from focusdrop.bridge.hotfolder.manifest import read_manifest


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _frame(folder, name, size=(40, 30)):
    tifffile.imwrite(folder / name, np.zeros((size[1], size[0], 3), np.uint8), photometric="rgb")
    return folder / name


def test_bursts_split_at_capture_gaps_and_size_changes():
    frames = [LooseFrame(__import__("pathlib").Path(f"f_{i}.tif"), t, s) for i, t, s in [
        (1, 0, (60, 40)), (2, 1, (60, 40)), (10, 2, (60, 40)),       # one bracket, natural order 1, 2, 10
        (11, 100, (60, 40)), (12, 101, (60, 40)),                   # 98 s later
        (13, 102, (40, 60)), (14, 103, (40, 60))]]                   # turned to portrait
    bursts = split_bursts(list(reversed(frames)), gap=60)
    assert [[f.path.name for f in b.frames] for b in bursts] == [
        ["f_1.tif", "f_2.tif", "f_10.tif"], ["f_11.tif", "f_12.tif"], ["f_13.tif", "f_14.tif"]]
    assert bursts[0].split == "capture time jumps 98 s before f_11.tif"
    assert bursts[1].split == "image size changes to 40x60 at f_13.tif"
    assert bursts[2].split is None


def test_loose_frames_wait_for_the_quiet_period(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock)
    for k in range(3):
        _frame(tmp_path, f"IMG_{k}.tif")
    assert inbox.scan() == []
    clock.now += 9
    assert inbox.scan() == []
    clock.now += 1.5
    [stack] = inbox.scan()
    assert stack.name == "IMG_0" and [p.name for p in stack.frames] == ["IMG_0.tif", "IMG_1.tif", "IMG_2.tif"]
    assert stack.how == "no new frame for 10 s"


def test_the_inbox_says_when_a_frame_settles_and_when_its_burst_is_quiet(tmp_path):
    """``due``: the service's next pass comes then, not at its next rescan; nothing due, nothing said."""
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock)
    assert inbox.scan() == [] and inbox.due == float("inf")
    _frame(tmp_path, "IMG_0.tif")
    assert inbox.scan() == [] and inbox.due == 1000.0 + SETTLE  # first seen now: settled in SETTLE s
    clock.now += SETTLE
    assert inbox.scan() == [] and inbox.due == 1010.0  # settled: quiet 10 s after it was last changed
    assert [f.path.name for f in inbox.live[tmp_path / "IMG_0.tif"][1]] == ["IMG_0.tif"]  # taken in live
    clock.now = 1010.0
    assert len(inbox.scan()) == 1 and inbox.due == float("inf")


def test_a_growing_file_holds_back_the_newest_stack(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=3, gap=60, clock=clock)
    whole = _frame(tmp_path, "a_1.tif").read_bytes()
    growing = tmp_path / "a_2.tif"
    growing.write_bytes(whole[:100])
    inbox.scan()
    for end in range(400, len(whole) + 300, 300):
        clock.now += 2
        growing.write_bytes(whole[:end])
        assert inbox.scan() == []
    clock.now += 3.5
    [stack] = inbox.scan()
    assert [p.name for p in stack.frames] == ["a_1.tif", "a_2.tif"]


def test_exif_capture_times_split_loose_jpegs(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=1, gap=60, clock=clock)
    for name, stamp in [("p_1.jpg", "2026:11:27 10:00:00"), ("p_2.jpg", "2026:11:27 10:00:02"),
                        ("q_1.jpg", "2026:11:27 10:01:40"), ("q_2.jpg", "2026:11:27 10:01:41")]:
        exif = Image.Exif()
        exif[0x8769] = {36867: stamp}
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / name, exif=exif)
    inbox.scan()
    clock.now += SETTLE + 1
    stacks = inbox.scan()
    assert [[p.name for p in s.frames] for s in stacks] == [["p_1.jpg", "p_2.jpg"], ["q_1.jpg", "q_2.jpg"]]
    assert stacks[0].how == "capture time jumps 98 s before q_1.jpg"


def test_sidecars_travel_and_other_files_stay(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=1, gap=60, clock=clock)
    _frame(tmp_path, "IMG_1.tif")
    _frame(tmp_path, "IMG_2.tif")
    for name in ["IMG_1.xmp", "IMG_2.tif.xmp", ".DS_Store", "Thumbs.db", "notes.txt", "IMG_3.tif.tmp"]:
        (tmp_path / name).write_bytes(b"x")
    inbox.scan()
    clock.now += SETTLE + 1
    [stack] = inbox.scan()
    assert [p.name for p in stack.frames] == ["IMG_1.tif", "IMG_2.tif"]
    assert [p.name for p in stack.sidecars] == ["IMG_1.xmp", "IMG_2.tif.xmp"]


def test_partial_job_folders_are_left_alone_and_manifests_start_at_once(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock)
    for folder in ["ring.partial", "watch", "done", "failed"]:
        (tmp_path / folder).mkdir()
        for k in range(2):
            _frame(tmp_path / folder, f"f_{k}.tif")
    (tmp_path / "watch" / "manifest.json").write_text(json.dumps({"name": "Watch 7", "frames": ["f_1.tif", "f_0.tif"]}))
    inbox.scan()
    clock.now += SETTLE + 0.1
    [stack] = inbox.scan()
    assert stack.name == "Watch 7" and [p.name for p in stack.frames] == ["f_1.tif", "f_0.tif"]
    assert stack.how == "job folder with a manifest"
    clock.now += 60
    assert [s.folder.name for s in inbox.scan()] == ["watch"]  # ring.partial, done/ and failed/ never


def test_a_folder_without_manifest_waits_for_quiet(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock)
    (tmp_path / "bracket").mkdir()
    _frame(tmp_path / "bracket", "f_1.tif")
    inbox.scan()
    clock.now += 5
    assert inbox.scan() == []
    inbox.renamed_from_partial(tmp_path / "bracket")
    [stack] = inbox.scan()
    assert stack.how == "job folder renamed from .partial"


@pytest.mark.parametrize("text, message", [
    ("{", "manifest.json is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"frames": "a.tif"}', "must be a list of file names"),
    ('{"frames": ["../a.tif"]}', "must be a list of file names"),
    ('{"name": 7}', '"name" must be text'),
])
def test_bad_manifests_are_described(tmp_path, text, message):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_manifest(tmp_path)


def test_result_names_never_overwrite(tmp_path):
    (tmp_path / "ring.psd").write_bytes(b"")
    assert free_stem(tmp_path, "ring", [".psd", ".tif"], set()) == "ring-2"
    assert free_stem(tmp_path, "ring", [".psd"], {str(tmp_path / "ring-2.psd")}) == "ring-3"
    assert safe_name('a/b:c*?"<>|') == "a_b_c______" and safe_name(" .. ") == "stack"
    assert os.listdir(tmp_path) == ["ring.psd"]


def test_an_empty_file_holds_back_stacks_only_for_the_quiet_period(tmp_path):
    """A zero-byte .tif among loose frames: the bracket still goes after the quiet period; the empty file
    comes back on its own, with its problem, once unchanged for give_up seconds."""
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock, give_up=60)
    for k in range(3):
        _frame(tmp_path, f"IMG_{k}.tif")
    (tmp_path / "IMG_9.tif").write_bytes(b"")
    assert inbox.scan() == []
    clock.now += 9
    assert inbox.scan() == []
    clock.now += 1.5
    [stack] = inbox.scan()
    assert [p.name for p in stack.frames] == ["IMG_0.tif", "IMG_1.tif", "IMG_2.tif"] and not stack.problem
    for frame in stack.frames:  # as the service's claim moves them
        frame.unlink()
    clock.now += 50
    [rejected] = inbox.scan()
    assert [p.name for p in rejected.frames] == ["IMG_9.tif"]
    assert rejected.problem == "IMG_9.tif: file is empty (0 bytes); unchanged for 60 s"


@pytest.mark.parametrize("kind", ["tif", "jpg", "png"])
def test_a_stalled_export_is_waited_for_and_taken_once_complete(tmp_path, kind):
    """A frame cut off mid-file (an export stalled on a network share) is not taken, even once settled;
    when the rest arrives, it joins its bracket."""
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock, give_up=60)
    pixels = np.random.default_rng(0).integers(0, 255, (30, 40, 3), np.uint8)
    for k in range(2):
        Image.fromarray(pixels).save(tmp_path / f"IMG_{k}.{kind}")
    whole = (tmp_path / f"IMG_1.{kind}").read_bytes()
    (tmp_path / f"IMG_1.{kind}").write_bytes(whole[: len(whole) - 40])
    assert inbox.scan() == []  # the first sight of both files
    clock.now += 50
    assert inbox.scan() == [], "a cut-off frame holds back its bracket until give_up"
    (tmp_path / f"IMG_1.{kind}").write_bytes(whole)
    first = (tmp_path / f"IMG_0.{kind}").stat().st_mtime_ns
    os.utime(tmp_path / f"IMG_1.{kind}", ns=(first + 10**9, first + 10**9))  # the exporter's last write
    assert inbox.scan() == []
    clock.now += 10.5
    [stack] = inbox.scan()
    assert [p.name for p in stack.frames] == [f"IMG_0.{kind}", f"IMG_1.{kind}"]


def test_a_quiet_job_folder_with_a_cut_off_frame_waits(tmp_path):
    clock = Clock()
    inbox = Inbox(tmp_path, quiet=10, gap=60, clock=clock, give_up=60)
    job = tmp_path / "ring"
    job.mkdir()
    _frame(job, "a.tif")
    (job / "b.tif").write_bytes((job / "a.tif").read_bytes()[:200])
    assert inbox.scan() == []
    clock.now += 11
    assert inbox.scan() == []
    clock.now += 50
    [stack] = inbox.scan()  # given up on: it runs, and fails naming b.tif
    assert stack.folder == job
