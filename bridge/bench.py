"""``focusdrop bench``: time per step and peak memory of ``focusdrop stack`` on a generated bracket.

The bracket is written to disk first (uncompressed 16-bit TIFF, as a raw-converter export, or with --raw
14-bit DNG, whose decoding time per frame is reported); the stack then runs in a child process so that its
peak resident memory is its own, not the generator's. With --live, a ``focusdrop watch`` child process is
fed the frames instead, one every --interval seconds, as tethered shooting lands them: into a live job
folder whose manifest gives the count, or with --no-count loose into the hot folder (the quiet period
then ends the bracket); printed is the time from the last frame's rename to the result's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from psd_tools import PSDImage

from focusdrop.bridge.demo import psnr, to_unit
from focusdrop.bridge.samples import srgb_profile, write_bracket, write_dng_bracket
from focusdrop.engine.synthetic import BracketSpec


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: give it as WIDTHxHEIGHT, for example 3000x2000") from None
    return width, height


def run(args: argparse.Namespace) -> int:
    width, height = parse_size(args.size)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="focusdrop-bench-"))
    spec = BracketSpec(width=width, height=height, frames=args.frames, bit_depth=args.bits, scene="sphere")
    try:
        started = time.perf_counter()
        bracket = folder / ("bracket-dng" if args.raw else "bracket")
        if args.raw:
            truth, _ = write_dng_bracket(spec, bracket)
        else:
            truth, _ = write_bracket(spec, bracket, icc=srgb_profile())
        print(f"bench: generated {spec.frames} frames of {width}x{height} "
              f"{'DNG' if args.raw else f'{spec.bit_depth}-bit'} in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        if args.live:
            return _live(args, spec, bracket, folder)
        result, report = folder / f"result.{args.format}", folder / "report.json"
        command = [sys.executable, "-m", "focusdrop.bridge.cli", "stack", str(bracket), "-o", str(result),
                   "--method", args.method, "--timings", "--overwrite", "--report", str(report)]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - started
        run = json.loads(report.read_text())
        x0, y0, x1, y1 = run["box"]
        if args.raw:  # Adobe RGB out, sRGB truth: no PSNR; the decoding time instead (a preview and a full decode)
            quality = f"decoding {run['seconds']['read'] / spec.frames:.2f} s per frame (preview and full)"
        else:
            fused = tifffile.imread(result) if args.format == "tif" else PSDImage.open(result).numpy()
            score = psnr(to_unit(fused) if fused.dtype != np.float32 else fused, truth.image[y0:y1, x0:x1])
            quality = f"PSNR {score:.2f} dB"
        print(f"bench: {spec.frames} x {width}x{height} {'DNG' if args.raw else f'{spec.bit_depth}-bit'}, "
              f"{args.method} to {args.format}: wall {wall:.2f} s, peak RSS {run['peak_memory_mb']} MB, "
              f"{result.stat().st_size / 1e6:.0f} MB, {quality}")
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _live(args: argparse.Namespace, spec: BracketSpec, bracket: Path, folder: Path) -> int:
    """Feed ``bracket`` into a watched hot folder as tethered shooting would; print the time from the last
    frame's rename to the result's."""
    from focusdrop.engine.frames import list_frames
    inbox, out, log = folder / "In", folder / "Out", folder / "watch.log"
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    inbox.mkdir()
    frames = list_frames(bracket)
    target = inbox if args.no_count else inbox / "bench.partial"
    if not args.no_count:
        target.mkdir()
        (target / "manifest.json").write_text(json.dumps({"count": len(frames)}))
    result = out / f"{frames[0].stem if args.no_count else 'bench'}.{args.format}"
    with open(log, "w") as output:
        service = subprocess.Popen([sys.executable, "-m", "focusdrop.bridge.cli", "watch", str(inbox), "--out",
                                    str(out), "--format", args.format, "--quiet", f"{args.quiet:g}"],
                                   stdout=output, stderr=output)
    try:
        while "watching" not in log.read_text() and service.poll() is None:  # (a service that stops is said below)
            time.sleep(0.05)
        for k, frame in enumerate(frames):
            time.sleep(args.interval if k else 0.0)
            shutil.copyfile(frame, target / (frame.name + ".tmp"))
            os.rename(target / (frame.name + ".tmp"), target / frame.name)
        last = time.perf_counter()
        while not result.exists() and service.poll() is None:
            time.sleep(0.01)
        after = time.perf_counter() - last
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait()
    if not result.exists():
        print(f"bench: the service stopped without a result; its log: {log}", file=sys.stderr)
        return 1
    how = f"loose, the quiet period {args.quiet:g} s" if args.no_count else "with a count"
    print(f"bench --live: {spec.frames} x {spec.width}x{spec.height} {spec.bit_depth}-bit, {args.interval:g} s "
          f"apart, {how}: the {args.format.upper()} {after:.2f} s after the last frame")
    return 0
