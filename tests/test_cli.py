"""``focusdrop stack`` never loses a file: inputs are never written over, outputs are replaced only when
asked, nothing is half-written; every refusal is one line naming the file, exit 2."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from focusdrop.bridge.samples import write_bracket
from conftest import focusdrop
from focusdrop.engine.synthetic import BracketSpec


@pytest.fixture
def frames(tmp_path):
    _, paths = write_bracket(BracketSpec(width=300, height=200, frames=4, seed=2), tmp_path / "in")
    return paths


def _refused(run: subprocess.CompletedProcess, message: str) -> None:
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"focusdrop: error: {message}"), run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_an_input_frame_is_never_written_over(frames):
    before = frames[2].read_bytes()
    run = focusdrop("stack", *frames, "-o", frames[2], "--overwrite")
    _refused(run, f"{frames[2]}: is one of the input frames")
    assert frames[2].read_bytes() == before


def test_an_existing_output_is_replaced_only_with_overwrite(frames, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"the retoucher's work")
    _refused(focusdrop("stack", *frames, "-o", out), f"{out}: already exists; give --overwrite to replace it")
    assert out.read_bytes() == b"the retoucher's work"
    run = focusdrop("stack", *frames, "-o", out, "--overwrite", "-v")  # -v after the command, too
    assert run.returncode == 0, run.stderr
    assert tifffile.imread(out).shape[2] == 3 and "frame_01.tif: shift" in run.stderr


def test_the_same_frame_twice_is_refused(frames, tmp_path):
    _refused(focusdrop("stack", frames[0], frames[1], frames[0], "-o", tmp_path / "out.tif"),
             f"{frames[0].name}: given twice")


def test_an_unwritable_output_folder_is_named_before_any_work(frames, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        locked.chmod(0o555)
        if (locked / "probe").exists() or _writable_anyway(locked):
            pytest.skip("no way to make a folder read-only here (root without chattr)")
    try:
        run = focusdrop("stack", *frames, "-o", locked / "out.psd", "--depthmap", tmp_path / "depth.png",
                        "--report", tmp_path / "report.json")
        _refused(run, f"{locked}: cannot write in this folder")
        assert "aligning" not in run.stderr
        assert not (tmp_path / "depth.png").exists() and not (tmp_path / "report.json").exists()
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
        locked.chmod(0o755)


def _writable_anyway(folder: Path) -> bool:
    try:
        (folder / "probe").write_bytes(b"")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_tiny_frames_are_called_too_small(tmp_path):
    for k in range(5):
        tifffile.imwrite(tmp_path / f"t{k}.tif", np.full((1, 1, 3), 40 * k, np.uint8), photometric="rgb")
    run = focusdrop("stack", *sorted(tmp_path.glob("t*.tif")), "-o", tmp_path / "out.tif")
    assert run.returncode == 2  # after a warning per frame left out, the one-line error:
    assert run.stderr.splitlines()[-1].startswith("focusdrop: error: t0.tif: none of the other 4 frames could "
                                                  "be aligned to it: at 1x1 the frames are too small")


def test_a_config_value_of_the_wrong_type_is_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('quiet = "ten"\n')
    _refused(focusdrop("watch", tmp_path / "In", "--config", config),
             f"{config}: quiet = 'ten' must be a number of seconds")
