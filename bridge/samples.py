"""Synthetic brackets written to disk as a camera export would be: the demo's, the benchmark's and the tests'."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import ImageCms

from focusdrop.engine.exposure import GAMMA
from focusdrop.engine.synthetic import BracketSpec, Truth, render_bracket

RAW_WHITE = 16383  # a 14-bit camera
XYZ_TO_LINEAR_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])


def srgb_profile() -> bytes:
    """An sRGB ICC profile, as exported frames carry one."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_bracket(spec: BracketSpec, folder: Path, stem: str = "frame", compression: str | None = None,
                  icc: bytes | None = None) -> tuple[Truth, list[Path]]:
    """Render ``spec`` and write it frame by frame as ``folder/{stem}_{k:02d}.tif``.

    Returns the ground truth and the frame paths in focus order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth, frames = render_bracket(spec)
    paths = []
    for k, frame in enumerate(frames):
        path = folder / f"{stem}_{k + 1:02d}.tif"
        tifffile.imwrite(path, frame, photometric="rgb", compression=compression, iccprofile=icc,
                         metadata=None)
        paths.append(path)
    return truth, paths


def write_dng_bracket(spec: BracketSpec, folder: Path, stem: str = "IMG", portrait: bool = False
                      ) -> tuple[Truth, list[Path]]:
    """Render ``spec`` and write it as raw DNG frames ``folder/{stem}_{k:04d}.dng``: the frames' linear
    light mosaicked RGGB (Bayer) at 14 bits, for a "camera" whose colour is linear sRGB (its ColorMatrix1
    maps XYZ, D65, to linear sRGB), with the tags LibRaw needs. ``portrait``: the sensor's rows hold the
    frame turned a quarter left, with EXIF orientation 6 (turn right to view), as a camera held upright
    writes it. Returns the truth (as viewed) and the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth, frames = render_bracket(spec)
    to_rational = [v for x in XYZ_TO_LINEAR_SRGB.ravel() for v in (int(round(x * 10000)), 10000)]
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),  # DNG versions
            (50708, "s", 0, "FocusDrop synthetic camera", True), (271, "s", 0, "FocusDrop", True),
            (272, "s", 0, "Synthetic", True), (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
            (50717, "I", 1, (RAW_WHITE,), True), (50714, "I", 1, (0,), True), (50721, "2i", 9, to_rational, True),
            (50778, "H", 1, (21,), True), (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),
            (274, "H", 1, (6 if portrait else 1,), True)]
    paths = []
    for k, frame in enumerate(frames):
        linear = (frame.astype(np.float32) / np.iinfo(frame.dtype).max) ** GAMMA
        if portrait:
            linear = np.rot90(linear)
        mosaic = np.empty(linear.shape[:2], np.float32)
        for dy, dx, channel in ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)):  # R G / G B
            mosaic[dy::2, dx::2] = linear[dy::2, dx::2, channel]
        path = folder / f"{stem}_{k + 1:04d}.dng"
        tifffile.imwrite(path, np.round(np.clip(mosaic, 0, 1) * RAW_WHITE).astype(np.uint16), photometric=32803,
                         extratags=tags, subfiletype=0, metadata=None)
        paths.append(path)
    return truth, paths
