"""Progress display for long work: a bar on a terminal, one line per finished step elsewhere (logs, CI)."""
from __future__ import annotations

import sys
import time
from typing import TextIO

STEP_NAMES = {"align": "aligning", "fuse": "fusing"}


class ProgressBar:
    """Callable as an engine progress callback: ``bar(step, done, total)``."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()
        self._started: dict[str, float] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        start = self._started.setdefault(step, time.perf_counter())
        name = STEP_NAMES.get(step, step)
        if self.interactive:
            filled = self.width * done // max(total, 1)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{name:<9} [{bar}] {done}/{total}")
            if done == total:
                self.stream.write(f"  {time.perf_counter() - start:.1f} s\n")
        elif done == total:
            self.stream.write(f"focusdrop: {name} {total} frames: {time.perf_counter() - start:.1f} s\n")
        self.stream.flush()
