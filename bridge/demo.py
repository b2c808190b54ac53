"""``focusdrop demo``: the real job on a generated bracket.

Creates a hot folder and an output folder, starts the hot-folder service, exports a generated 12-frame
16-bit focus bracket into the hot folder frame by frame as Lightroom would, waits for the layered PSD,
prints its path, the time from the last frame to the PSD and how it splits, and its PSNR against the
bracket's true all-in-focus image; then stops the service.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from psd_tools import PSDImage

from focusdrop.bridge.hotfolder.layout import REPORT, REPORT_PAGE
from focusdrop.bridge.hotfolder.service import Service
from focusdrop.bridge.samples import srgb_profile, write_bracket
from focusdrop.bridge.settings import Settings
from focusdrop.engine.synthetic import BracketSpec

DEMO_SPEC = BracketSpec(width=1600, height=1067, frames=12, scene="sphere", bit_depth=16)
DEMO_QUIET = 3.0  # seconds; the service's default is 10


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio, dB, of two float images in [0, 1] (infinite for equal images)."""
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(1.0 / np.mean((image.astype(np.float64) - truth) ** 2)))


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 pixels -> float32 in [0, 1]."""
    return pixels.astype(np.float32) / np.iinfo(pixels.dtype).max


def _say(text: str) -> None:
    print(f"focusdrop demo: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="focusdrop-demo-"))
    inbox, out, export = folder / "In", folder / "Out", folder / "export"
    spec = DEMO_SPEC
    _say(f"rendering a {spec.frames}-frame {spec.bit_depth}-bit {spec.width}x{spec.height} focus bracket")
    truth, frames = write_bracket(spec, export, stem="ring", icc=srgb_profile())
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("%(asctime)s focusdrop: %(message)s"))
    logging.getLogger("focusdrop").setLevel(logging.INFO)
    service = Service(Settings(hot_folder=inbox.resolve(), out=out.resolve(), quiet=DEMO_QUIET), rescan=0.5)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    _say(f"hot folder {inbox}, results in {out} (quiet period {DEMO_QUIET:g} s)")
    for frame in frames:  # an export: one file after another, each written under its own name
        shutil.copyfile(frame, inbox / frame.name)
        time.sleep(0.1)
    last_frame = time.time()
    _say(f"exported {len(frames)} frames into the hot folder; waiting for the PSD")
    result, report = out / f"{frames[0].stem}.psd", inbox / "done" / frames[0].stem / REPORT
    while not result.exists() and thread.is_alive():
        time.sleep(0.05)
    appeared = time.time()
    while not report.exists() and thread.is_alive():
        time.sleep(0.05)
    jobs = service.workspace.journal.jobs("done")
    service.stop()
    thread.join()
    if not jobs:
        _say("the service stopped without a result; see the log above")
        return 1
    x0, y0, x1, y1 = json.loads(report.read_text())["box"]
    score = psnr(PSDImage.open(result).numpy()[..., :3], truth.image[y0:y1, x0:x1])
    waited = jobs[0].started - last_frame
    _say(f"{result} appeared {appeared - last_frame:.1f} s after the last frame was written: {waited:.1f} s "
         f"until the stack started (quiet period {DEMO_QUIET:g} s, then the next scan), "
         f"{appeared - jobs[0].started:.1f} s stacking and writing the PSD")
    _say(f"{len(PSDImage.open(result)) - 2} frame layers with masks, the blend and the depth map; PSNR of its composite against the true all-in-focus "
         f"image {score:.1f} dB")
    _say(f"how it came out, frame by frame: {report.with_name(REPORT_PAGE)} (open it in a browser)")
    print(result)
    return 0
