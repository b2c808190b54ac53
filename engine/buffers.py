"""Frame-sized buffers handed on from one frame to the next within a pass.

A new frame-sized array is memory the kernel must zero page by page before it is used: on 20 frames of
24 MP that was a fifth of the stack's CPU time (clear_page, measured with perf). Pass 1 decodes each frame
into the memory of a frame it is done with, and pass 2 warps each frame into the memory of the one fused
two frames before: 41.5 -> 37.1 s of CPU there, the same peak memory. Buffers that would sit free beside
the others at the peak (the decoded frame and the focus measures in pass 2) are not pooled: that raised the
peak by 140-250 MB.
"""
from __future__ import annotations

import threading
from collections import defaultdict

import numpy as np


class BufferPool:
    """Arrays by (shape, dtype): ``take`` one (a free one, else a new one), ``give`` it back when nothing
    uses it any more. Thread-safe: pass 1 decodes frames on two threads."""

    def __init__(self) -> None:
        self._free: dict[tuple, list[np.ndarray]] = defaultdict(list)
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            if self._free[key]:
                return self._free[key].pop()
        return np.empty(shape, dtype)

    def give(self, *arrays: np.ndarray) -> None:
        """Arrays nobody uses any more. Views, and arrays not C-contiguous, are left alone: only whole
        arrays are handed out again."""
        with self._lock:
            for array in arrays:
                if array.base is None and array.flags.c_contiguous:
                    self._free[(array.shape, array.dtype)].append(array)

    def clear(self) -> None:
        """Let go of every free buffer (before work that needs the memory for other things)."""
        with self._lock:
            self._free.clear()
