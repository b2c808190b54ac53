"""Real brackets shot by other people (../shared/data/real): the pipeline completes, and the result is sharper
than every frame it was made from. No ground truth here; quality thresholds live in test_stack.py."""
import json

import cv2
import numpy as np
import pytest

from conftest import REAL_DATA, focusdrop
from focusdrop.engine.frames import list_frames, probe_frame, read_frame
from focusdrop.engine.pipeline import StackOptions, stack
from focusdrop.engine.warp import warp_to_reference

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


def local_energy(image: np.ndarray) -> np.ndarray:
    """Laplacian energy of the luma of a (H, W, 3) float32 image, averaged over about 8 px: (H, W)."""
    laplacian = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    return cv2.GaussianBlur(laplacian * laplacian, (0, 0), 8)


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data/real is not beside this checkout")
@pytest.mark.parametrize("name", BRACKETS)
def test_fusion_keeps_the_sharpest_frames_detail_where_it_is_sharpest(name):
    """No softening by the blend or the resampling: at each pixel with detail (where the sharpest aligned
    frame's energy is above its median), the result has in all at least the energy of the sharpest frame
    there. Flat background is left out: its Laplacian energy is noise, which the blend rightly averages."""
    result = stack(list_frames(REAL_DATA / name), StackOptions())
    a = result.alignment
    sharpest = np.max([local_energy(warp_to_reference(read_frame(info), a.to_ref[k], a.box, a.gains[k],
                                                      info.full_scale)) for k, info in enumerate(a.frames)], axis=0)
    fused = local_energy(result.image.astype(np.float32) / np.iinfo(result.image.dtype).max)
    detail = sharpest > np.median(sharpest)
    ratio = fused[detail].sum() / sharpest[detail].sum()
    assert ratio > 0.99, ratio  # measured: 1.002 (ring), 1.048 (beetle), 1.060 (circuit board)
