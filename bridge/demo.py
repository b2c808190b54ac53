"""``focusdrop demo``: a generated focus bracket through the whole pipeline, scored against its ground truth."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bridge.samples import srgb_profile, write_bracket
from bridge.stacking import stack_to_file
from engine.frames import probe_frame, read_frame
from engine.pipeline import StackOptions
from engine.synthetic import BracketSpec

DEMO_SPEC = BracketSpec(width=1600, height=1067, frames=12, scene="sphere", bit_depth=16)


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio, dB, of two float images in [0, 1]."""
    return float(10.0 * np.log10(1.0 / np.mean((image.astype(np.float64) - truth) ** 2)))


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 pixels -> float32 in [0, 1]."""
    return pixels.astype(np.float32) / np.iinfo(pixels.dtype).max


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="focusdrop-demo-"))
    bracket = folder / "bracket"
    spec = DEMO_SPEC
    print(f"focusdrop: writing a {spec.frames}-frame {spec.bit_depth}-bit {spec.width}x{spec.height} "
          f"bracket to {bracket}", file=sys.stderr)
    truth, paths = write_bracket(spec, bracket, icc=srgb_profile())
    result, _ = stack_to_file(paths, [folder / "result.tif"], StackOptions(), folder / "depth.png")
    x0, y0, x1, y1 = result.alignment.box
    truth_box = truth.image[y0:y1, x0:x1]
    best_frame = max(psnr(to_unit(read_frame(probe_frame(p))[y0:y1, x0:x1]), truth_box) for p in paths)
    print(f"focusdrop: PSNR against the true all-in-focus image: {psnr(to_unit(result.image), truth_box):.1f} dB "
          f"(the sharpest single frame: {best_frame:.1f} dB)", file=sys.stderr)
    print(folder / "result.tif")
    return 0
