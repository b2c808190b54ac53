"""Stack grouping for loose frames: split a stream of exported frames into brackets.

A burst is split where the capture time jumps by more than ``gap`` seconds (EXIF DateTimeOriginal, the
file time when a frame has none) or where the image size changes; each stack is then put in focus order
(natural file-name order). Pure: no files are touched here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from focusdrop.engine.frames import natural_key


@dataclass(frozen=True)
class LooseFrame:
    """A settled frame in the hot folder. captured: seconds (EXIF, else file time); size: (width, height),
    None for a file whose header does not open (it joins its neighbours in time, and fails their stack)."""

    path: Path
    captured: float
    size: tuple[int, int] | None


@dataclass(frozen=True)
class Burst:
    """Frames of one bracket in focus order, and why the burst ended where it did (None: it is the last)."""

    frames: list[LooseFrame]
    split: str | None


def split_bursts(frames: list[LooseFrame], gap: float) -> list[Burst]:
    """Bursts in capture order. frames: in any order; gap: seconds."""
    ordered = sorted(frames, key=lambda f: (f.captured, natural_key(f.path)))
    bursts: list[Burst] = []
    current: list[LooseFrame] = []
    for frame in ordered:
        if current:
            jump = frame.captured - current[-1].captured
            reason = None
            if frame.size and current[-1].size and frame.size != current[-1].size:
                reason = (f"image size changes to {frame.size[0]}x{frame.size[1]} at {frame.path.name}")
            elif jump > gap:
                reason = f"capture time jumps {jump:.0f} s before {frame.path.name}"
            if reason:
                bursts.append(Burst(sorted(current, key=lambda f: natural_key(f.path)), reason))
                current = []
        current.append(frame)
    if current:
        bursts.append(Burst(sorted(current, key=lambda f: natural_key(f.path)), None))
    return bursts
