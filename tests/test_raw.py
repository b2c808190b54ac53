"""Raw frames: a DNG bracket written by the project's generator (bridge.samples.write_dng_bracket: a Bayer
mosaic of the frames' linear light) is decoded by LibRaw with one setting for all frames and stacked."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image
from psd_tools import PSDImage

from focusdrop.bridge.hotfolder.journal import Job
from focusdrop.bridge.hotfolder.lifecycle import job_settings
from focusdrop.bridge.settings import Settings
from focusdrop.bridge.samples import write_bracket, write_dng_bracket
from conftest import focusdrop
from focusdrop.engine import geometry
from focusdrop.engine.frames import probe_frame, read_frame
from focusdrop.engine.icc import ADOBE_RGB, ADOBE_RGB_GAMMA
from focusdrop.engine.pipeline import StackOptions, align_frames
from focusdrop.engine.raw import same_settings
from focusdrop.engine.synthetic import BracketSpec
from hotfolder import files, wait_for, watching

SPEC = BracketSpec(width=600, height=400, frames=5, seed=3)
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"'
       b' xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" crs:Exposure2012="+1.00" crs:CropTop="0.1">'
       b'<crs:ToneCurvePV2012><rdf:Seq><rdf:li>0, 0</rdf:li></rdf:Seq></crs:ToneCurvePV2012>'
       b'</rdf:Description></rdf:RDF></x:xmpmeta>')  # Lightroom's sidecar: a rating, and develop settings


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dng")
    truth, paths = write_dng_bracket(SPEC, folder)
    (folder / "IMG_0003.xmp").write_bytes(XMP)  # Lightroom's sidecar beside the reference frame
    return truth, paths


def test_a_dng_bracket_stacks_into_adobe_rgb_and_matches_the_truth(tmp_path, dng):
    truth, paths = dng
    output, report = tmp_path / "out.psd", tmp_path / "report.json"
    run = focusdrop("stack", paths[0].parent, "-o", output, "--report", report)
    assert run.returncode == 0, run.stderr
    document = PSDImage.open(output)
    assert document.depth == 16
    assert document.image_resources.get_data(1039) == ADOBE_RGB  # the ICC profile of what LibRaw made
    packet = document.image_resources.get_data(1060)  # the reference frame's sidecar, with more added
    assert b'xmp:Rating="4"' in packet and b'tiff:Model="Synthetic"' in packet and b"IMG_0005.dng" in packet
    assert b"camera-raw-settings" not in packet  # the raw's develop settings, not applied, are not passed on
    x0, y0, x1, y1 = json.loads(report.read_text())["box"]
    result = document.numpy()[..., :3].astype(np.float64)  # the composite, in [0, 1]
    found = (result ** ADOBE_RGB_GAMMA) @ np.array([0.2974, 0.6273, 0.0753])  # Adobe RGB (1998) Y
    true = (truth.image[y0:y1, x0:x1] ** 2.2) @ np.array([0.2126, 0.7152, 0.0722])  # linear sRGB Y
    assert abs(found.mean() / true.mean() - 1) < 0.02  # no brightening, one white balance: measured 1.002
    blurred = [cv2.GaussianBlur(y.astype(np.float32), (0, 0), 1.0) ** (1 / 2.2) for y in (found, true)]
    assert 10 * np.log10(1 / np.mean((blurred[0] - blurred[1]) ** 2)) > 36  # measured 39.8 (demosaicing costs
    # the finest texture: 28.3 dB unblurred)


@pytest.mark.parametrize("kind", ["dng", "jpeg"])
def test_frames_a_camera_turned_come_out_upright(tmp_path, kind):
    """Frames stored a quarter turn left with EXIF orientation 6, as a camera held upright writes them: the
    result is the scene as viewed, not on its side (the wrong turn, or none, would not correlate)."""
    spec = BracketSpec(width=600, height=400, frames=3, bit_depth=8, seed=3)
    if kind == "dng":
        truth, paths = write_dng_bracket(spec, tmp_path / "in", portrait=True)
    else:
        truth, tiffs = write_bracket(spec, tmp_path / "tif")
        (tmp_path / "in").mkdir()
        for path in tiffs:
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.fromarray(np.rot90(tifffile.imread(path))).save(tmp_path / "in" / f"{path.stem}.jpg",
                                                                 quality=95, exif=exif)
    output, report = tmp_path / "out.tif", tmp_path / "report.json"
    run = focusdrop("stack", tmp_path / "in", "-o", output, "--report", report)
    assert run.returncode == 0, run.stderr
    x0, y0, x1, y1 = json.loads(report.read_text())["box"]
    result = tifffile.imread(output).astype(np.float32)
    true = truth.image[y0:y1, x0:x1].astype(np.float32)
    assert result.shape == true.shape  # 3 channels, landscape as viewed
    luma = [cv2.cvtColor(image / image.max(), cv2.COLOR_RGB2GRAY).ravel() for image in (result, true)]
    assert np.corrcoef(*luma)[0, 1] > 0.9


def test_large_raw_frames_are_aligned_from_half_size_previews(tmp_path):
    """Pass 1 decodes a raw frame of 2048 px or more at half size; registration still lands on the true
    transforms, in full-resolution pixels."""
    spec = BracketSpec(width=2200, height=1400, frames=3, shake=5.0, rotation=0.3, breathing=0.02, seed=7)
    truth, paths = write_dng_bracket(spec, tmp_path)
    infos = same_settings([probe_frame(p) for p in paths], 1)
    assert read_frame(infos[0], preview=True).shape == (700, 1100, 3)
    alignment = align_frames(infos, StackOptions(order="given", reference=1))
    corners = geometry.corners(spec.width, spec.height)
    for k, matrix in enumerate(alignment.to_ref):
        found = geometry.apply(np.linalg.inv(matrix), corners)
        true = geometry.apply(truth.transforms[k] @ np.linalg.inv(truth.transforms[1]), corners)
        assert np.abs(found - true).max() < 0.2  # measured 0.04-0.10 px


def test_one_white_balance_can_be_chosen(tmp_path, dng):
    """--white-balance: the camera's daylight balance, or R,G,B multipliers, for every frame; a bad value is
    one line naming what to give."""
    _, paths = dng
    means = {}
    for balance in ("as-shot", "1.5,1,1", "daylight"):
        output = tmp_path / f"{balance}.tif"
        run = focusdrop("stack", *paths[:3], "-o", output, "--white-balance", balance)
        assert run.returncode == 0, run.stderr
        means[balance] = tifffile.imread(output).reshape(-1, 3).astype(np.float64).mean(axis=0)
    red_over_green = {balance: mean[0] / mean[1] for balance, mean in means.items()}
    assert red_over_green["1.5,1,1"] > 1.15 * red_over_green["as-shot"]  # 1.5x in linear light, before gamma
    assert abs(means["daylight"][1] / means["as-shot"][1] - 1) < 0.2  # a daylight balance, not a failure
    run = focusdrop("stack", *paths[:3], "-o", tmp_path / "bad.tif", "--white-balance", "warm")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "--white-balance: 'warm' must be as-shot, daylight" in run.stderr


def test_a_manifest_sets_the_white_balance(tmp_path):
    config = Settings(white_balance="daylight")
    job = Job(1, "bracket", "waiting", tmp_path, [], {"white_balance": [2, 1, 1.5]}, [], [], None, None,
              0.0, None, None)
    assert job_settings(job, config).stack_options().white_balance == (2.0, 1.0, 1.5)
    assert job_settings(replace(job, options={}), config).stack_options().white_balance == "daylight"
    with pytest.raises(ValueError, match="manifest.json: white_balance = 'tungsten' must be as-shot, daylight"):
        job_settings(replace(job, options={"white_balance": "tungsten"}), config)


def test_raw_and_tiff_frames_do_not_mix(tmp_path, dng):
    _, paths = dng
    _, tiffs = write_bracket(BracketSpec(width=600, height=400, frames=2, seed=3), tmp_path)
    run = focusdrop("stack", paths[0], paths[1], tiffs[0], "-o", tmp_path / "out.tif")
    assert run.returncode == 2
    assert run.stderr.startswith("focusdrop: error: IMG_0001.dng: is RAW, frame_01.tif is TIFF: a stack takes "
                                 "raw frames or images, not both")


def test_a_corrupt_dng_is_named(tmp_path, dng):
    _, paths = dng
    bad = tmp_path / "IMG_9.dng"
    bad.write_bytes(paths[0].read_bytes()[:300])
    run = focusdrop("stack", paths[0], bad, "-o", tmp_path / "out.tif")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("focusdrop: error: IMG_9.dng: raw")


def test_the_hot_folder_stacks_loose_raw_frames_with_their_sidecars(tmp_path, dng):
    _, paths = dng
    inbox = tmp_path / "In"
    inbox.mkdir()
    for path in paths + [paths[0].with_name("IMG_0003.xmp")]:
        (inbox / path.name).write_bytes(path.read_bytes())
    with watching(tmp_path, "--format", "tif") as (_, log):
        wait_for(lambda: files(inbox / "done") == ["IMG_0001"], 60, log)
    assert files(tmp_path / "Out") == ["IMG_0001.tif"]
    assert "IMG_0003.xmp" in files(inbox / "done" / "IMG_0001")
    assert "frame arrived: IMG_0001.dng (600x400, 16-bit)" in log.read_text()
