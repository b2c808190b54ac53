"""FocusDrop beside the free stackers that run here, on generated brackets: wall time and peak memory.
Not a test: a measurement, for docs/measurements.md.

    python tests/race.py [--focus-stack PATH] [--focusweave PATH] [--rounds 2] [NAME ...]

Each bracket is written once (uncompressed TIFF, as a raw converter exports); then, round after round, each
stacker runs on it in turn (alternating, so that a slow spell of the machine hits all alike) and the
fastest round of each is printed, with its peak resident memory (GNU time's maximum RSS). focus-stack is
built from its own repository outside this one; focusweave installs from PyPI into a venv of its own.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from focusdrop.bridge.samples import srgb_profile, write_bracket
from focusdrop.engine.synthetic import BracketSpec

BRACKETS = {
    "12x1200x900": BracketSpec(width=1200, height=900, frames=12, bit_depth=16),
    "12x3000x2000": BracketSpec(width=3000, height=2000, frames=12, bit_depth=16),
    "15x2000x1500-shake": BracketSpec(width=2000, height=1500, frames=15, bit_depth=8, shake=20.0),
    "50x1036x691": BracketSpec(width=1036, height=691, frames=50, bit_depth=8, max_blur=12.0),
    "20x6000x4000": BracketSpec(width=6000, height=4000, frames=20, bit_depth=16),
}


def commands(frames: list[Path], out: Path, focus_stack: str | None, focusweave: str | None) -> dict[str, list[str]]:
    """{stacker: its command line} for the stackers given."""
    found = {"FocusDrop": [sys.executable, "-m", "focusdrop.bridge.cli", "stack", str(frames[0].parent),
                           "-o", str(out / "focusdrop.tif"), "--overwrite"]}
    if focus_stack:
        found["focus-stack"] = [focus_stack, f"--output={out / 'focus-stack.tif'}"] + [str(f) for f in frames]
    if focusweave:
        found["focusweave"] = [focusweave, str(frames[0].parent), "--output", str(out / "focusweave.tif")]
    return found


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident GB of one run."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-300:]}")
    wall, kilobytes = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kilobytes) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BRACKETS)[:3], help=f"of {', '.join(BRACKETS)}")
    parser.add_argument("--focus-stack", help="the focus-stack binary")
    parser.add_argument("--focusweave", help="the focusweave program")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="focusdrop-race-") as temporary:
        for name in args.names:
            folder = Path(temporary) / name
            _, frames = write_bracket(BRACKETS[name], folder / "bracket", icc=srgb_profile())
            runs = commands(frames, folder, args.focus_stack, args.focusweave)
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                for stacker, command in runs.items():
                    wall, peak = timed(command)
                    if stacker not in best or wall < best[stacker][0]:
                        best[stacker] = (wall, peak)
            line = ", ".join(f"{stacker} {wall:.2f} s {peak:.2f} GB" for stacker, (wall, peak) in best.items())
            print(f"{name}: {line}", flush=True)


if __name__ == "__main__":
    main()
