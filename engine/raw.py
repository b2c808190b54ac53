"""Raw frames (DNG, CR2/CR3, NEF, ARW, RAF, ORF, RW2, ...): decoded with LibRaw (rawpy), every frame of a
stack with the same settings, into 16-bit Adobe RGB (1998).

The settings a stack shares: one white balance (the reference frame's as-shot balance, given to every frame:
a per-frame balance would shift colours between focus slices), no automatic brightening, no rescaling of
the white level to the brightest pixel (LibRaw's default rescales when a frame's data reach 75 % of it: it
would brighten frames differently and clip before the camera does), highlights clipped only at the camera's
white level. LibRaw converts camera colour to Adobe RGB, a wide gamut whose gamma (563/256) is the engine's
own 2.2 to well within a level: the engine's linear-light steps (exposure, alignment, fusion) undo it
exactly as they do for TIFF frames. The conversion to gamma happens here, in LibRaw's output stage; the
output carries FocusDrop's Adobe RGB profile (engine.icc). EXIF orientation is applied, as LibRaw does by
default, so portrait frames come out upright.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import rawpy
import tifffile

from focusdrop.engine.frameinfo import FrameError, FrameInfo, short_reason
from focusdrop.engine.icc import ADOBE_RGB, ADOBE_RGB_GAMMA


def probe_raw(path: Path) -> FrameInfo:
    """A raw frame's size after demosaicing and orientation, as 16-bit RGB, with the camera in ``camera``
    and its as-shot white balance in ``white_balance``. Raises FrameError."""
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            height, width = (sizes.iwidth, sizes.iheight) if sizes.flip in (5, 6) else (sizes.iheight, sizes.iwidth)
            balance = tuple(float(v) for v in raw.camera_whitebalance)
    except Exception as e:  # LibRaw's own errors, and OS errors, for a file it cannot read
        raise FrameError(path, f"raw file LibRaw cannot read ({short_reason(e)})") from None
    if not any(balance[:3]):
        balance = (1.0, 1.0, 1.0, 1.0)
    return FrameInfo(path, (height, width, 3), np.dtype(np.uint16), ADOBE_RGB, _sidecar_xmp(path), "raw",
                     camera=_camera(path), white_balance=balance)


def read_raw(info: FrameInfo, half_size: bool = False) -> np.ndarray:
    """Decode a probed raw frame with the stack's settings. Returns (H, W, 3) uint16 Adobe RGB; with
    ``half_size``, (H/2, W/2, 3): each 2x2 block of the sensor one pixel, without demosaicing (0.2 s
    instead of 1.2 s for 24 MP), which is all that alignment needs."""
    try:
        with rawpy.imread(str(info.path)) as raw:
            return raw.postprocess(user_wb=list(info.white_balance), use_camera_wb=False, no_auto_bright=True,
                                   adjust_maximum_thr=0.0, output_bps=16, output_color=rawpy.ColorSpace.Adobe,
                                   gamma=(ADOBE_RGB_GAMMA, 0.0), highlight_mode=rawpy.HighlightMode.Clip,
                                   half_size=half_size)
    except Exception as e:
        raise FrameError(info.path, f"raw data LibRaw cannot decode ({short_reason(e)})") from None


WhiteBalance = str | tuple[float, float, float]  # "as-shot", "daylight", or (R, G, B) multipliers


def same_settings(infos: list[FrameInfo], reference: int, white_balance: WhiteBalance = "as-shot"
                  ) -> list[FrameInfo]:
    """Every raw frame with one white balance: the reference frame's as-shot balance, its camera's daylight
    balance, or the (R, G, B) multipliers given (images are left as they are). Raises FrameError for a
    stack that mixes raw and other frames, or frames from two cameras."""
    kinds = {info.kind == "raw" for info in infos}
    if kinds != {True}:
        if True in kinds:
            odd = next(info for info in infos if (info.kind == "raw") != (infos[0].kind == "raw"))
            raise FrameError(odd.path, f"is {odd.kind.upper()}, {infos[0].path.name} is {infos[0].kind.upper()}: "
                                       f"a stack takes raw frames or images, not both")
        return infos
    for info in infos:
        if info.camera != infos[0].camera and "unknown camera" not in (info.camera, infos[0].camera):
            raise FrameError(info.path, f"is from {info.camera}, {infos[0].path.name} from {infos[0].camera}; "
                                        f"a stack takes one camera's frames")
    if white_balance == "as-shot":
        balance = infos[reference].white_balance
    elif white_balance == "daylight":
        balance = _daylight_balance(infos[reference].path)
    else:
        red, green, blue = white_balance
        balance = (red, green, blue, green)
    return [replace(info, white_balance=balance) for info in infos]


def _daylight_balance(path: Path) -> tuple[float, float, float, float]:
    """The camera's daylight multipliers (LibRaw's, from its tables or the file's colour matrix)."""
    try:
        with rawpy.imread(str(path)) as raw:
            balance = tuple(float(v) for v in raw.daylight_whitebalance)
    except Exception as e:
        raise FrameError(path, f"raw file LibRaw cannot read ({short_reason(e)})") from None
    if not any(balance[:3]):
        raise FrameError(path, "LibRaw knows no daylight white balance for this camera; give R,G,B multipliers")
    return balance[:3] + (balance[3] or balance[1],)


def _camera(path: Path) -> str:
    """Make and model from the file's TIFF structure (DNG, CR2, NEF, ARW, ...); "unknown camera" for raw
    formats that are not TIFF inside (CR3, RAF), which then are not compared."""
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            return " ".join(str(tags[t].value).strip("\0 ") for t in (271, 272) if t in tags) or "unknown camera"
    except Exception:
        return "unknown camera"


def _sidecar_xmp(path: Path) -> bytes | None:
    """The .xmp sidecar beside a raw file (IMG_1.xmp or IMG_1.CR2.xmp), as Lightroom and Bridge write it."""
    for candidate in (path.with_suffix(".xmp"), path.with_name(path.name + ".xmp")):
        if candidate.is_file():
            return candidate.read_bytes()
    return None
