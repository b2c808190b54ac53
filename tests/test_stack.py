"""``focusdrop stack`` end to end on synthetic brackets with ground truth, and on bad input.

Quality thresholds were set from measurement on STANDARD (1200x800, 9 frames, 16-bit, sphere before a
tilted background, 2 % breathing, 5 px shake, 0.3 degree rotation, +-4 % flicker), about 0.8 dB under
what the pipeline gave when they were set: depthmap 36.45 dB (reversed 36.44, --no-crop 35.45), pyramid
35.46 dB, the sharpest single frame about 23 dB. Corner errors measured 0.02-0.08 px; gains within 0.9 %.
"""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from focusdrop.bridge.samples import write_bracket
from conftest import STANDARD, focusdrop, psnr, to_unit
from focusdrop.engine import geometry
from focusdrop.engine.frames import probe_frame
from focusdrop.engine.pipeline import StackOptions, align_frames, stack
from focusdrop.engine.synthetic import BracketSpec
from halo import best_frame_oracle, distance_from, parallel_lines, ring_errors, step_band_gap, step_edges

DEPTHMAP_DB = 35.6
PYRAMID_DB = 34.7


def _stack(tmp_path, inputs, *options, name="out.tif"):
    output, report = tmp_path / name, tmp_path / f"{Path(name).stem}.json"
    run = focusdrop("stack", *inputs, "-o", output, "--report", report, *options)
    assert run.returncode == 0, run.stderr
    return output, json.loads(report.read_text())


def _score(output, report, truth):
    x0, y0, x1, y1 = report["box"]
    return psnr(to_unit(tifffile.imread(output)), truth.image[y0:y1, x0:x1])


def test_transforms_and_gains_match_the_truth(standard_bracket):
    truth = standard_bracket.truth
    alignment = align_frames([probe_frame(p) for p in standard_bracket.paths], StackOptions())
    corners = geometry.corners(STANDARD.width, STANDARD.height)
    for k in range(STANDARD.frames):
        found = geometry.apply(np.linalg.inv(alignment.to_ref[k]), corners)
        assert np.abs(found - geometry.apply(truth.transforms[k], corners)).max() < 0.2, f"frame {k}"
    assert np.abs(alignment.gains * truth.gains ** (1 / 2.2) - 1).max() < 0.015


def test_depthmap_fusion_recovers_the_all_in_focus_image(tmp_path, standard_bracket):
    depth = tmp_path / "depth.png"
    output, report = _stack(tmp_path, [standard_bracket.folder], "--depthmap", depth)
    assert _score(output, report, standard_bracket.truth) > DEPTHMAP_DB
    info = probe_frame(output)
    assert info.dtype == np.uint16
    assert info.icc == standard_bracket.icc
    x0, y0, x1, y1 = report["box"]
    assert info.shape == (y1 - y0, x1 - x0, 3)
    depth_pixels = np.asarray(Image.open(depth))
    assert depth_pixels.shape == info.shape[:2]
    # the sphere (near, first frames) is darker than the background (far, last frames)
    h, w = depth_pixels.shape
    assert np.median(depth_pixels[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20]) < 100
    assert np.median(depth_pixels[:, -40:]) > 200


def test_fusion_beats_every_single_frame_by_10_db(tmp_path, standard_bracket):
    output, report = _stack(tmp_path, [standard_bracket.folder])
    x0, y0, x1, y1 = report["box"]
    truth = standard_bracket.truth.image[y0:y1, x0:x1]
    best_frame = max(psnr(to_unit(tifffile.imread(p))[y0:y1, x0:x1], truth) for p in standard_bracket.paths)
    assert _score(output, report, standard_bracket.truth) > best_frame + 10


def test_pyramid_fusion_recovers_the_all_in_focus_image(tmp_path, standard_bracket):
    output, report = _stack(tmp_path, [standard_bracket.folder], "--method", "pyramid")
    assert _score(output, report, standard_bracket.truth) > PYRAMID_DB


def test_reversed_order_works_as_well(tmp_path, standard_bracket):
    forward, forward_report = _stack(tmp_path, standard_bracket.paths, name="forward.tif")
    backward, backward_report = _stack(tmp_path, standard_bracket.paths, "--order", "reverse",
                                       name="backward.tif")
    assert backward_report["frames"][0]["file"] == standard_bracket.paths[-1].name
    scores = [_score(forward, forward_report, standard_bracket.truth),
              _score(backward, backward_report, standard_bracket.truth)]
    assert min(scores) > DEPTHMAP_DB and abs(scores[0] - scores[1]) < 0.2


def test_no_crop_keeps_the_reference_size(tmp_path, standard_bracket):
    output, report = _stack(tmp_path, [standard_bracket.folder], "--no-crop")
    assert report["box"] == [0, 0, STANDARD.width, STANDARD.height]
    assert _score(output, report, standard_bracket.truth) > DEPTHMAP_DB - 1.0


@pytest.fixture(scope="module")
def jpeg_bracket(tmp_path_factory):
    """An 8-bit bracket exported as JPEG, numbered so that plain sorting would get it wrong."""
    folder = tmp_path_factory.mktemp("jpeg")
    spec = BracketSpec(width=600, height=400, frames=11, bit_depth=8, seed=3)
    truth, paths = write_bracket(spec, folder / "tif")
    for k, path in enumerate(paths):
        Image.fromarray(tifffile.imread(path)).save(folder / f"IMG_{k + 1}.jpg", quality=97, subsampling=0)
    return truth, folder


def test_jpeg_frames_in_natural_order_give_an_8_bit_result(tmp_path, jpeg_bracket):
    truth, folder = jpeg_bracket
    output, report = _stack(tmp_path, [folder], name="out.png")
    assert [f["file"] for f in report["frames"]][:3] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]
    info = probe_frame(output)
    assert info.dtype == np.uint8
    x0, y0, x1, y1 = report["box"]
    result = np.asarray(Image.open(output)).astype(np.float32) / 255
    truth_box = truth.image[y0:y1, x0:x1]
    best_frame = max(psnr(np.asarray(Image.open(p)).astype(np.float32)[y0:y1, x0:x1] / 255, truth_box)
                     for p in folder.glob("*.jpg"))
    score = psnr(result, truth_box)
    assert score > 33.0 and score > best_frame + 10  # measured 33.9 dB; best frame 20.1 dB


def _copy_frames(bracket, folder, count=3):
    folder.mkdir()
    for path in bracket.paths[:count]:
        (folder / path.name).write_bytes(path.read_bytes())
    return sorted(folder.iterdir())


@pytest.mark.parametrize("damage, message", [
    ("empty", "frame_02.tif: file is empty (0 bytes)"),
    ("truncated", "frame_02.tif: incomplete file: its image data runs to byte"),
    ("text", "frame_02.tif: not an image FocusDrop reads"),
    ("smaller", "frame_02.tif: size 600x400 differs from frame_01.tif (1200x800)"),
    ("eight_bit", "frame_02.tif: 8-bit differs from frame_01.tif (16-bit)"),
    ("grey", "frame_02.tif: greyscale differs from frame_01.tif (RGB)"),
])
def test_bad_frame_gives_one_line_and_exit_2(tmp_path, standard_bracket, damage, message):
    frames = _copy_frames(standard_bracket, tmp_path / "in")
    victim = frames[1]
    pixels = tifffile.imread(victim)
    if damage == "empty":
        victim.write_bytes(b"")
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "text":
        victim.write_text("hello")
    elif damage == "smaller":
        tifffile.imwrite(victim, pixels[::2, ::2])
    elif damage == "eight_bit":
        tifffile.imwrite(victim, (pixels >> 8).astype(np.uint8))
    else:
        tifffile.imwrite(victim, pixels[..., 0])
    run = focusdrop("stack", tmp_path / "in", "-o", tmp_path / "out.tif")
    assert run.returncode == 2
    assert run.stderr.startswith(f"focusdrop: error: {message}"), run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "out.tif").exists() and not list(tmp_path.glob(".*partial"))
    assert len(list((tmp_path / "in").iterdir())) == 3  # nothing deleted


@pytest.mark.parametrize("case, message", [
    ("single", "frame_01.tif: a focus stack needs at least 2 frames"),
    ("missing", "nothing.tif: no such file or folder"),
    ("empty_folder", "in: no TIFF, JPEG, PNG or raw frames in this folder"),
    ("bad_output", "out.bmp: unknown output format"),
])
def test_bad_invocation_gives_one_line_and_exit_2(tmp_path, standard_bracket, case, message):
    frames = _copy_frames(standard_bracket, tmp_path / "in", count=1)
    inputs = {"single": frames, "missing": [tmp_path / "nothing.tif"], "empty_folder": [tmp_path / "in"],
              "bad_output": frames}[case]
    if case == "empty_folder":
        frames[0].unlink()
    output = tmp_path / ("out.bmp" if case == "bad_output" else "out.tif")
    run = focusdrop("stack", *inputs, "-o", output)
    assert run.returncode == 2
    assert run.stderr == f"focusdrop: error: {message}" + run.stderr[len(f"focusdrop: error: {message}"):]
    assert run.stderr.count("\n") == 1


def _with_foreign_frame(tmp_path, standard_bracket):
    frames = _copy_frames(standard_bracket, tmp_path / "in", count=5)
    noise = np.random.default_rng(5).integers(0, 65535, (STANDARD.height, STANDARD.width, 3), dtype=np.uint16)
    tifffile.imwrite(frames[2], noise)  # another "scene": nothing in it matches its neighbours
    return frames


def test_frame_that_cannot_be_aligned_is_named(tmp_path, standard_bracket):
    _with_foreign_frame(tmp_path, standard_bracket)
    run = focusdrop("stack", tmp_path / "in", "-o", tmp_path / "out.tif")
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].startswith("focusdrop: error: frame_03.tif: cannot be aligned to any other "
                                                  "frame (no keypoints in common with any, and the images do not "
                                                  "correlate)")
    assert run.stderr.splitlines()[-1].endswith("(to leave such frames out: --skip-unaligned)")
    assert not (tmp_path / "out.tif").exists()


def test_skip_unaligned_leaves_the_foreign_frame_out(tmp_path, standard_bracket):
    _with_foreign_frame(tmp_path, standard_bracket)
    output, report = _stack(tmp_path, [tmp_path / "in"], "--skip-unaligned", "--report-html", tmp_path / "out.html")
    assert report["skipped"] == ["frame_03.tif"]
    assert [f["file"] for f in report["frames"]] == ["frame_01.tif", "frame_02.tif", "frame_04.tif",
                                                       "frame_05.tif"]
    assert output.exists()
    page = (tmp_path / "out.html").read_text()  # the report page marks it and says why
    assert re.findall(r'<tr class="frame flagged skipped"><td>([^<]+)</td>', page) == ["frame_03.tif"]
    warnings = re.search(r'<ul id="warnings">(.*?)</ul>', page, re.S).group(1)
    assert "skipped frame_03.tif: cannot be aligned to any other frame" in warnings


def test_a_frame_blurred_past_recognition_is_aligned_by_correlation(tmp_path, standard_bracket):
    """Brackets often start before the subject: a first frame that is all blur must not fail the stack."""
    frames = _copy_frames(standard_bracket, tmp_path / "in", count=5)
    linear = to_unit(tifffile.imread(frames[0])) ** 2.2
    blurred = cv2.GaussianBlur(linear, (0, 0), 30) ** (1 / 2.2)  # a lens blurs linear light
    tifffile.imwrite(frames[0].with_name("frame_00.tif"), np.round(blurred * 65535).astype(np.uint16))
    output, report = _stack(tmp_path, [tmp_path / "in"])
    assert report["skipped"] == [] and report["frames"][0]["file"] == "frame_00.tif"
    assert report["frames"][0]["matches"] == 0  # it was registered to frame_01 by ECC alone
    # frame_00 is frame_01 blurred: the two land on the same place, within 1 px (measured 0.15 px with the
    # similarity fit; the affine fit before took 4.2 px of shear and anisotropy from the blur); a wrong-scene
    # frame would be refused (test_frame_that_cannot_be_aligned)
    blurred_to_ref, sharp_to_ref = (np.array(report["frames"][k]["to_reference"] + [[0, 0, 1]]) for k in (0, 1))
    corners = geometry.corners(STANDARD.width, STANDARD.height)
    assert np.abs(geometry.apply(blurred_to_ref, corners) - geometry.apply(sharp_to_ref, corners)).max() < 1.0


@pytest.fixture(scope="module")
def strands_bracket(tmp_path_factory):
    """Thin dark strands over a plain pale background, with a focus-dependent colour cast across the frame
    (up to 30 %, as vignetting and a medium's tint make): halos' home."""
    spec = BracketSpec(width=900, height=600, frames=9, scene="strands", cast=0.3, seed=21)
    return write_bracket(spec, tmp_path_factory.mktemp("strands"))


def test_no_halo_beside_thin_strands(tmp_path, strands_bracket):
    truth, paths = strands_bracket
    output, report = _stack(tmp_path, [paths[0].parent])
    x0, y0, x1, y1 = report["box"]
    result, true_image = to_unit(tifffile.imread(output)), truth.image[y0:y1, x0:x1]
    ring, far = ring_errors(result, true_image, truth.depth[y0:y1, x0:x1] < 1.0)
    # 8-bit levels, low-passed; measured 0.94 and 0.07 (2.19 and 0.11 without the shading correction and
    # the plain-area blend; the last release: 2.46 at 1200x800)
    assert ring < 1.1 and far < 0.15, (ring, far)
    # thin lines parallel to the strands, band-passed: measured 0.50 (0.65 with an unblurred local minimum
    # in the focus measure; the last release 0.99 at 1200x800)
    lines = parallel_lines(result, true_image, truth.depth[y0:y1, x0:x1] < 1.0)
    assert lines < 0.6, lines


def test_band_around_depth_steps_is_close_to_the_rest(tmp_path, standard_bracket):
    output, report = _stack(tmp_path, [standard_bracket.folder])
    x0, y0, x1, y1 = report["box"]
    truth = standard_bracket.truth
    gap = step_band_gap(to_unit(tifffile.imread(output)), truth.image[y0:y1, x0:x1], truth.depth[y0:y1, x0:x1])
    assert gap < 2.1, gap  # dB below the rest; measured 1.76 (2.95 in the last release)


def test_band_beside_occluding_ledges_is_close_to_the_best_frame_oracle(tmp_path):
    """Where a near ledge occludes a far one, every frame that has the far band sharp beside the step also
    has the near edge's blur over it, so the band is some 10 dB worse than the rest for any stacker. The
    measure is the best-frame oracle (each pixel from the frame closest to the truth), which nobody can
    know: the band must stay near it, and the rest closer."""
    spec = BracketSpec(width=900, height=600, scene="ledges", frames=11, bit_depth=8, shake=8.0, rotation=0.5,
                       flicker=0.05, noise=0.006, seed=7)
    truth, paths = write_bracket(spec, tmp_path)
    result = stack(paths)
    x0, y0, x1, y1 = result.alignment.box
    true_image = truth.image[y0:y1, x0:x1]
    band = distance_from(step_edges(truth.depth[y0:y1, x0:x1])) <= 12.0
    fused, oracle = to_unit(result.image), best_frame_oracle(result, true_image)
    # measured on seeds 5, 7, 9: the band 1.44-1.58 dB below the oracle's, the rest 0.17-0.18 dB below it
    # (enfuse, given the same aligned frames of a 1200x800 ledges bracket: 1.0 and 1.4 dB)
    assert psnr(oracle[band], true_image[band]) - psnr(fused[band], true_image[band]) < 2.0
    assert psnr(oracle[~band], true_image[~band]) - psnr(fused[~band], true_image[~band]) < 0.5
