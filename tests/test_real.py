"""Real brackets shot by other people (../shared/data/real): the pipeline completes, and the result is sharper
than every frame it was made from. No ground truth here; quality thresholds live in test_stack.py."""
import json

import cv2
import numpy as np
import pytest

from conftest import REAL_DATA, focusdrop
from engine.frames import list_frames, probe_frame, read_frame

BRACKETS = ["cmcguinness_steps", "noahpeeters_dsc", "petteri_pcb_depthmap"]


def sharpness(pixels: np.ndarray) -> float:
    """Mean Laplacian energy of the luma, a focus measure for a whole image."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.iinfo(pixels.dtype).max
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F) ** 2))


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data/real is not beside this checkout")
@pytest.mark.parametrize("name", BRACKETS)
def test_real_bracket_is_sharper_than_every_frame(tmp_path, name):
    output, report = tmp_path / f"{name}.tif", tmp_path / "report.json"
    run = focusdrop("stack", REAL_DATA / name, "-o", output, "--report", report)
    assert run.returncode == 0, run.stderr
    frames = list_frames(REAL_DATA / name)
    x0, y0, x1, y1 = json.loads(report.read_text())["box"]
    result = read_frame(probe_frame(output))
    assert result.shape[:2] == (y1 - y0, x1 - x0)
    inputs = [sharpness(read_frame(probe_frame(p))[y0:y1, x0:x1]) for p in frames]
    fused = sharpness(result)
    assert fused > 1.1 * max(inputs)  # measured: 1.23x (ring), 1.85x (beetle), 1.52x (circuit board)
