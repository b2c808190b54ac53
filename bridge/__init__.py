"""The exchange with the photographer's tools: the focusdrop command, the hot folder, the Adobe scripts'
installer, a cluster.

Three process-wide settings are made here, once, for every process that runs FocusDrop. FocusDrop checks
its own cap (the max_megapixels setting) on every frame's header before decoding, so Pillow's lower cap is
lifted. glibc's allocator is asked to keep freed memory for reuse while a stack runs (below); a
long-running process gives it back after each stack (``release_freed_memory``). And numpy's OpenBLAS runs
on one thread (unless the environment says otherwise): the pipeline runs its own threads, one per core,
and OpenBLAS's threads spun beside them (sched_yield): 7-12 % of a stack's CPU time. It must
be set before numpy is first imported, so it is set first.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import ctypes  # noqa: E402 (after the setting above)
import sys  # noqa: E402

from PIL import Image  # noqa: E402

Image.MAX_IMAGE_PIXELS = None


def _glibc() -> ctypes.CDLL | None:
    """The C library, where it is glibc (Linux); None elsewhere (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def _reuse_freed_memory() -> None:
    """glibc's malloc gives every array over a few MB fresh pages from the kernel and hands them back when
    it is freed, so a stack's frame-sized temporaries (some 5 GB over 12 frames of 6 MP) were zeroed by the
    kernel again and again: a quarter of the CPU time went to it. Arrays up to 32 MB (a 6 MP float plane)
    now come from the heap, freed memory is kept (up to 1 GB) for the next frame, and the threads share two
    heaps. Peak memory is unchanged (measured). Other C libraries: nothing to do."""
    if _LIBC is None:
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    _LIBC.mallopt(m_mmap_threshold, 32 << 20)
    _LIBC.mallopt(m_trim_threshold, 1 << 30)
    _LIBC.mallopt(m_arena_max, 2)


def release_freed_memory() -> None:
    """Give the memory kept for reuse back to the system (glibc's malloc_trim), so that a service between
    stacks holds none of it (0.5 GB after a 12 x 6 MP stack otherwise)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_reuse_freed_memory()
