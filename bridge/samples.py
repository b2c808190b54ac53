"""Synthetic brackets written to disk as a camera export would be: the demo's, the benchmark's and the tests'."""
from __future__ import annotations

from pathlib import Path

import tifffile
from PIL import ImageCms

from engine.synthetic import BracketSpec, Truth, render_bracket


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
