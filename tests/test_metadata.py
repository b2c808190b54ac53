"""The result's XMP, read back by an independent reader (exiftool, from Debian's libimage-exiftool-perl):
the reference frame's capture essentials and FocusDrop's provenance, in the PSD and in the TIFF."""
import json
import shutil
import subprocess

import pytest
import tifffile
from PIL import Image

from focusdrop.bridge.samples import write_bracket
from conftest import focusdrop
from focusdrop.engine.synthetic import BracketSpec

EXIFTOOL = shutil.which("exiftool")


def _jpeg_bracket(folder):
    """A 5-frame JPEG bracket whose frames carry a camera's EXIF (make, model, lens, exposure, capture time)."""
    _, paths = write_bracket(BracketSpec(width=480, height=320, frames=5, bit_depth=8, seed=8), folder)
    jpegs = []
    for k, path in enumerate(paths):
        exif = Image.Exif()
        exif[271], exif[272] = "Canon", "EOS R5"
        details = exif.get_ifd(0x8769)
        details.update({0x920A: 100.0, 0x829D: 2.8, 0x829A: 0.008, 0x8827: 200, 0xA434: "RF100mm F2.8 L MACRO IS USM",
                        0x9003: f"2026:11:27 10:00:{k:02d}"})
        jpeg = path.with_suffix(".jpg")
        Image.fromarray(tifffile.imread(path)).save(jpeg, quality=95, exif=exif)
        path.unlink()
        jpegs.append(jpeg)
    return jpegs


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (apt-get install libimage-exiftool-perl)")
@pytest.mark.parametrize("suffix", [".psd", ".tif"])
def test_exiftool_reads_the_capture_and_the_provenance(tmp_path, suffix):
    frames = _jpeg_bracket(tmp_path / "in")
    output = tmp_path / f"out{suffix}"
    run = focusdrop("stack", tmp_path / "in", "-o", output)
    assert run.returncode == 0, run.stderr
    [tags] = json.loads(subprocess.run([EXIFTOOL, "-j", "-XMP:all", output], capture_output=True, text=True,
                                       check=True).stdout)
    assert tags["Make"] == "Canon" and tags["Model"] == "EOS R5"
    assert tags["LensModel"] == "RF100mm F2.8 L MACRO IS USM"
    assert tags["FNumber"] == 2.8 and tags["FocalLength"] == "100.0 mm" and tags["ISO"] == 200
    assert tags["ExposureTime"] == "1/125"
    assert tags["DateTimeOriginal"] == "2026:11:27 10:00:02"  # the reference frame's: the middle one
    assert tags["Frames"] == 5 and tags["Method"] == "depthmap"
    assert tags["Sources"] == [f.name for f in frames]
