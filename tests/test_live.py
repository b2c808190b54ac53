"""Live stacking: a NAME.partial/ job folder whose manifest gives the frame count is aligned and fused
frame by frame as its frames land, and finished when the last one is in, as a batch would stack it (within
the crop's edges, where the focus measure of frames fused on the whole frame sees past them: over 60 dB
PSNR); loose frames are aligned while the quiet period runs; a real ``focusdrop watch`` process each time."""
import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import tifffile
from PIL import Image
from psd_tools import PSDImage

from focusdrop.bridge.hotfolder.manifest import read_manifest
from focusdrop.bridge.samples import write_bracket, write_dng_bracket
from focusdrop.engine.synthetic import BracketSpec
from conftest import focusdrop, psnr, to_unit
from gimp import open_in_gimp
from hotfolder import files, frame_layers, wait_for, watching

COUNT = 6


@pytest.fixture(scope="module")
def bracket(tmp_path_factory):
    """A 6-frame 16-bit 640x480 bracket (with shake: the result is cropped), and the batch command's TIFF
    of it; its PSD is batch.psd beside the frames' folder."""
    root = tmp_path_factory.mktemp("live")
    _, paths = write_bracket(BracketSpec(width=640, height=480, frames=COUNT, seed=8), root / "frames")
    for output in ("batch.tif", "batch.psd"):
        run = focusdrop("stack", root / "frames", "-o", root / output)
        assert run.returncode == 0, run.stderr
    return paths, tifffile.imread(root / "batch.tif")


def as_batch(result, batch) -> bool:
    """Whether a live result is the batch's, but for the crop's edges (measured: 86 dB)."""
    return result.shape == batch.shape and psnr(to_unit(result), to_unit(batch)) > 60


def start_live(inbox, name: str, count: int = COUNT):
    folder = inbox / f"{name}.partial"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"count": count}))
    return folder


def land(folder, frame):
    """A frame written under a temporary name and renamed, as a tethering program saves it."""
    shutil.copy(frame, folder / (frame.name + ".tmp"))
    os.rename(folder / (frame.name + ".tmp"), folder / frame.name)


def test_a_live_bracket_is_stacked_when_its_last_frame_lands_as_a_batch_would(tmp_path, bracket):
    paths, batch = bracket
    with watching(tmp_path, "--format", "both") as (_, log):
        folder = start_live(tmp_path / "In", "ring")
        preview = tmp_path / "In" / ".focusdrop" / "live" / "ring.partial.jpg"
        for k, frame in enumerate(paths):
            land(folder, frame)
            wait_for(lambda: log.read_text().count(" complete") == k + 1, 30, log)
            if k == 2:  # the stack so far, at thumbnail size, for the status page
                wait_for(preview.exists, 30, log)
                assert max(Image.open(preview).size) == 384
        wait_for(lambda: (tmp_path / "Out" / "ring.tif").exists(), 60, log)
        assert not preview.exists()  # gone with the bracket
    text = log.read_text()
    assert f"all {COUNT} frames in (live)" in text
    assert f"live: {COUNT} frames were aligned as they arrived, {COUNT} fused" in text
    assert "pass 2 runs again" not in text
    result = tifffile.imread(tmp_path / "Out" / "ring.tif")
    assert as_batch(result, batch)
    # The PSD's layers, spooled as the frames came, are the reference frame's size and reach past the crop;
    # GIMP places them and their masks: it flattens the document to the TIFF, its masks are the batch's
    live = open_in_gimp(tmp_path / "Out" / "ring.psd", tmp_path / "gimp-live")
    cropped = open_in_gimp(paths[0].parent.parent / "batch.psd", tmp_path / "gimp-batch")
    assert [layer[0] for layer in live.layers] == [layer[0] for layer in cropped.layers]
    assert len(live.layers) == COUNT + 2 and np.abs(live.flat.astype(np.int32) - result).max() <= 1
    height, width, _ = batch.shape
    document = PSDImage.open(tmp_path / "Out" / "ring.psd")
    [(left, top)] = {(layer.left, layer.top) for layer in document if "(FocusDrop)" not in layer.name}
    assert left < 0 and top < 0  # the crop's corner, in the reference frame
    # the frames before the reference (fused all at once when it came) are stored uncompressed; every frame's
    # layer is the batch's inside the canvas (measured: within 3 of 65535)
    stored = document._record.layer_and_mask_information.layer_info.channel_image_data
    assert [{c.compression.name for c in layer[1:4]} for layer in stored[:COUNT]] == \
        [{"RAW"}] * (COUNT // 2) + [{"ZIP_WITH_PREDICTION"}] * (COUNT - COUNT // 2)
    for mine, theirs in zip(list(document)[:COUNT], PSDImage.open(paths[0].parent.parent / "batch.psd")):
        inside = mine.numpy()[-top:height - top, -left:width - left, :3]
        assert np.abs(inside - theirs.numpy()[..., :3]).max() * 65535 < 4
    for mine, theirs in zip(live.masks[2:], cropped.masks[2:]):
        assert mine.shape == (480, 640) and theirs.shape == (height, width)
        inside = mine[-top:height - top, -left:width - left].astype(np.int32)
        assert (np.abs(inside - theirs) > 1000).mean() < 0.005  # measured 0.1 %: the depth near the edges
    assert files(tmp_path / "In" / "done" / "ring") == sorted([p.name for p in paths] + [
        "manifest.json", "report.html", "report.jpg", "report.json"])


def test_loose_frames_are_aligned_while_the_quiet_period_runs(tmp_path, bracket):
    """Loose frames, tethered straight into the hot folder: each burst's frames are taken in as they
    settle, and the stack made when the quiet period ends is the batch's."""
    paths, batch = bracket
    with watching(tmp_path, "--format", "tif") as (_, log):
        for frame in paths:
            land(tmp_path / "In", frame)
            time.sleep(0.3)
        result = tmp_path / "Out" / f"{paths[0].stem}.tif"
        wait_for(result.exists, 60, log)
    assert f"live: {COUNT} frames were aligned as they arrived" in log.read_text()
    assert np.array_equal(tifffile.imread(result), batch)


def test_frames_arriving_out_of_order_give_the_batch_result(tmp_path, bracket):
    paths, batch = bracket
    with watching(tmp_path, "--format", "tif") as (_, log):
        folder = start_live(tmp_path / "In", "shuffled")
        for n, k in enumerate((3, 0, 5, 1, 4, 2)):
            land(folder, paths[k])
            wait_for(lambda: log.read_text().count(" complete") == n + 1, 30, log)  # taken in in this order
        wait_for(lambda: (tmp_path / "Out" / "shuffled.tif").exists(), 60, log)
    text = log.read_text()
    assert f"live: {COUNT} frames were aligned as they arrived" in text  # put in name order
    assert "pass 2 runs again at the end: the frames fused as they came are not the focus order" in text
    assert psnr(to_unit(tifffile.imread(tmp_path / "Out" / "shuffled.tif")), to_unit(batch)) > 60


def test_a_live_frame_that_never_completes_fails_the_bracket_naming_it(tmp_path, bracket):
    paths, _ = bracket
    with watching(tmp_path, "--give-up", "3") as (_, log):
        folder = start_live(tmp_path / "In", "cut")
        for frame in paths[:-1]:
            land(folder, frame)
        (folder / paths[-1].name).write_bytes(paths[-1].read_bytes()[:50_000])  # the tether cable pulled
        wait_for(lambda: (tmp_path / "In" / "failed" / "cut" / "error.txt").exists(), 60, log)
    error = (tmp_path / "In" / "failed" / "cut" / "error.txt").read_text()
    assert f"only {COUNT - 1} of {COUNT} frames complete" in error and paths[-1].name in error
    assert files(tmp_path / "In" / "failed" / "cut") == sorted([p.name for p in paths] + ["error.txt",
                                                                                        "manifest.json"])
    assert files(tmp_path / "Out") == []


def test_kill_9_mid_bracket_loses_nothing(tmp_path, bracket):
    paths, batch = bracket
    with watching(tmp_path, "--format", "tif") as (process, log):
        folder = start_live(tmp_path / "In", "killed")
        for frame in paths[:3]:
            land(folder, frame)
        wait_for(lambda: log.read_text().count(" complete") == 3, 30, log)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    status = focusdrop("status", tmp_path / "In", "--json")
    [item] = json.loads(status.stdout)["waiting"]
    assert (item["file"], item["state"]) == ("killed.partial/", f"live, 3 of {COUNT} frames in")
    with watching(tmp_path, "--format", "tif") as (_, log):
        for frame in paths[3:]:
            land(folder, frame)
        wait_for(lambda: (tmp_path / "Out" / "killed.tif").exists(), 60, log)
    assert as_batch(tifffile.imread(tmp_path / "Out" / "killed.tif"), batch)
    assert files(tmp_path / "In" / ".focusdrop" / "live") == []  # the killed service's preview cleared at the restart
    for frame in paths:
        assert (tmp_path / "In" / "done" / "killed" / frame.name).read_bytes() == frame.read_bytes()


def test_raw_frames_are_taken_in_live_with_the_brackets_white_balance(tmp_path):
    """DNG frames shot with one white balance: taken in as they land (with the first frame's balance, which
    is the reference's), the result the batch command's."""
    _, paths = write_dng_bracket(BracketSpec(width=600, height=400, frames=5, seed=3), tmp_path / "dng")
    run = focusdrop("stack", tmp_path / "dng", "-o", tmp_path / "batch.tif")
    assert run.returncode == 0, run.stderr
    with watching(tmp_path, "--format", "tif") as (_, log):
        folder = start_live(tmp_path / "In", "raw", count=len(paths))
        for frame in paths:
            land(folder, frame)
        wait_for(lambda: (tmp_path / "Out" / "raw.tif").exists(), 60, log)
    assert f"live: {len(paths)} frames were aligned as they arrived, {len(paths)} fused" in log.read_text()
    assert as_batch(tifffile.imread(tmp_path / "Out" / "raw.tif"), tifffile.imread(tmp_path / "batch.tif"))


@pytest.mark.parametrize("count", [1, "6", True, 2.5])
def test_a_count_that_is_not_a_number_of_frames_is_refused(tmp_path, count):
    (tmp_path / "manifest.json").write_text(json.dumps({"count": count}))
    with pytest.raises(ValueError, match="\"count\" must be a whole number of frames, at least 2"):
        read_manifest(tmp_path)
