"""What a frame's header says (FrameInfo), and the errors that name a frame (FrameError).

Shared by the readers (engine.frames, engine.raw) and everything after them. An error may carry a Hint: the
setting that would let the stack go on, by its name in bridge/settings.py. The engine names no flag or
file; the caller says the setting as its user gives it (a flag, a manifest key).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_MEGAPIXELS = 400.0  # the default cap; a GFX pixel-shift frame is 400 MP. Pillow's own, lower cap is the
# caller's to lift (FocusDrop's command does): this one is checked on every header before decoding.


@dataclass(frozen=True)
class Hint:
    """What the user can do: set ``setting`` (its name in bridge/settings.py) to ``value`` (None: a value
    of their choice) ``purpose`` (for example "to leave such frames out")."""

    setting: str
    value: Any
    purpose: str


class FrameError(ValueError):
    """A frame that cannot be used, with the file it came from."""

    def __init__(self, path: Path | str, problem: str, hint: Hint | None = None):
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.path.name}: {problem}")

    def __reduce__(self):  # pickled whole (a stack run on a cluster worker sends it back)
        return type(self), (self.path, self.problem, self.hint)


class IncompleteFrame(FrameError):
    """A frame whose header opens but whose data stops short: perhaps still being written."""


@dataclass(frozen=True)
class FrameInfo:
    """What a frame's header says.

    shape: (H, W, C) with C = 1 (grey) or 3 (RGB); dtype: uint8 or uint16.
    icc: the embedded ICC profile, byte for byte, or None; xmp: the XMP packet or None;
    kind: "tiff", "jpeg" or "png", from the file's first bytes, or "raw" (engine.raw) by its extension.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    icc: bytes | None
    xmp: bytes | None
    kind: str
    camera: str | None = None  # raw frames: make and model (engine.raw)
    white_balance: tuple[float, ...] | None = None  # raw frames: the multipliers every frame is decoded with

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def full_scale(self) -> float:
        return float((1 << 8 * self.dtype.itemsize) - 1)  # unsigned integers: 255, 65535


def short_reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:120] if text else type(error).__name__
