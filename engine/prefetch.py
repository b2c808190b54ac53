"""Overlap of frame work: run a per-frame function on worker threads, a bounded number of frames ahead.

OpenCV, NumPy and the image decoders release the GIL, so on the project's 2 cores reading and warping the
next frame proceeds while the current one is fused. At most ``ahead`` results wait at any time, so memory
stays bounded whatever the number of frames; results come back in input order, exceptions included.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(function: Callable[[T], R], items: Iterable[T], ahead: int = 2) -> Iterator[R]:
    """Like ``map(function, items)``, computed up to ``ahead`` items in advance on threads."""
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
