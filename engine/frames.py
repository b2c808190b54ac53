"""Reading frames: TIFF (8/16-bit; none, LZW, ZIP), JPEG and PNG, RGB or grey, with their ICC profile.

The file type is told by the first bytes, not the extension. ``probe_frame`` reads only the header, so a
whole stack is checked for size, channel and depth mismatches before any pixel work starts. It also checks
that the file is complete (a TIFF's strips or tiles all lie within the file, a JPEG's main image reaches
its end-of-image marker, a PNG ends with its IEND chunk: an export still being written, or cut short, is caught
before it is decoded) and that its pixel count is under a cap before anything is allocated. Every problem
is raised as ``FrameError`` with the file name and one line a photographer can act on.
"""
from __future__ import annotations

import mmap
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps

from focusdrop.engine.frameinfo import MAX_MEGAPIXELS, FrameError, FrameInfo, Hint, IncompleteFrame, short_reason
from focusdrop.engine.raw import probe_raw, read_raw

RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".erf", ".mef", ".mos", ".kdc", ".dcr")
IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png") + RAW_SUFFIXES


def natural_key(path: Path) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, hidden files skipped, in natural order."""
    files = [p for p in Path(folder).iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=natural_key)


def _kind(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise FrameError(path, f"cannot be read ({e.strerror or e})") from None
    if not head:
        raise FrameError(path, "file is empty (0 bytes)")
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "tiff"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    raise FrameError(path, "not an image FocusDrop reads (expected TIFF, JPEG or PNG)")


def _check_pixels(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, int, int]:
    if not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise FrameError(path, f"damaged header: image size {shape}")
    if np.dtype(dtype) not in (np.uint8, np.uint16):
        raise FrameError(path, f"{np.dtype(dtype).name} samples are not supported; export 8 or 16-bit")
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    if len(shape) == 3 and shape[2] in (1, 3, 4):
        return (shape[0], shape[1], 1 if shape[2] == 1 else 3)  # a 4th channel is alpha: dropped
    raise FrameError(path, f"unsupported image layout {shape}; export RGB or greyscale")


def probe_frame(path: Path | str, max_megapixels: float = MAX_MEGAPIXELS) -> FrameInfo:
    """Read a frame's header: size, channels, depth, ICC profile, XMP; check that the file is complete and
    at most ``max_megapixels`` MP. Raises FrameError."""
    if Path(path).suffix.lower() in RAW_SUFFIXES:  # many are TIFF inside: told by the extension, not the bytes
        info, data_end = probe_raw(Path(path)), None
    else:
        info, data_end = _probe(Path(path))
    if info.pixels > max_megapixels * 1e6:
        raise FrameError(path, f"{info.shape[1]}x{info.shape[0]} is {info.pixels / 1e6:.0f} MP, over the "
                               f"{max_megapixels:g} MP cap", Hint("max_megapixels", None, "to raise the cap"))
    missing = "" if info.kind == "raw" else _incomplete(info, data_end)  # LibRaw has read a raw file whole
    if missing:
        raise IncompleteFrame(path, f"incomplete file: {missing} (still being written, or cut short)")
    return info


def _probe(path: Path) -> tuple[FrameInfo, int | None]:
    """The header, and for a TIFF the byte where its last strip or tile ends (None for other kinds)."""
    kind = _kind(path)
    try:
        if kind == "tiff":
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                if page.photometric not in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK):
                    raise FrameError(path, f"{page.photometric.name} TIFF is not supported; export RGB")
                shape = _check_pixels(path, page.shape if page.planarconfig == 1 else
                                      (*page.shape[1:], page.shape[0]), page.dtype)
                icc = page.tags.get(34675)
                xmp = page.tags.get(700)
                end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)), default=0)
                return FrameInfo(path, shape, np.dtype(page.dtype), icc.value if icc else None,
                                 bytes(xmp.value) if xmp else None, kind), end
        with Image.open(path) as im:
            bits16 = im.mode in ("I;16", "I;16B", "I") or (kind == "png" and _png_bit_depth(path) == 16)
            channels = 1 if im.mode in ("L", "I;16", "I;16B", "I", "LA") else 3
            if im.mode in ("P", "1", "CMYK") and kind == "jpeg":
                raise FrameError(path, f"{im.mode} JPEG is not supported; export RGB")
            width, height = im.size
            if kind == "jpeg" and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
            xmp = im.info.get("xmp")
            return FrameInfo(path, (height, width, channels), np.dtype(np.uint16 if bits16 else np.uint8),
                             im.info.get("icc_profile"), xmp.encode() if isinstance(xmp, str) else xmp,
                             kind), None
    except FrameError:
        raise
    except Exception as e:  # every reader has its own exceptions for a damaged header
        raise FrameError(path, f"damaged or unreadable {kind.upper()} header ({short_reason(e)})") from None


PNG_END = b"\0\0\0\0IEND\xaeB`\x82"


def _incomplete(info: FrameInfo, data_end: int | None) -> str:
    """What is missing from the end of a frame's file, or "" if it is whole. data_end: for a TIFF, where
    its header says the last strip or tile ends."""
    path = info.path
    size = path.stat().st_size
    if info.kind == "tiff":
        return f"its image data runs to byte {data_end}, the file has {size}" if data_end > size else ""
    with open(path, "rb") as f:
        if info.kind == "jpeg":
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return "" if jpeg_end(data) is not None else "no JPEG end-of-image marker after the image data"
        f.seek(max(0, size - 4096))
        tail = f.read()
    return "" if tail.endswith(PNG_END) else "no PNG IEND chunk"


_ENTROPY_END = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")  # FF00 is a stuffed byte, FFD0-D7 a restart


def jpeg_end(data: bytes | mmap.mmap) -> int | None:
    """Where a JPEG's main image ends: the offset just past the end-of-image marker that follows its
    entropy-coded data, found by walking its segments (ITU T.81, B.1); None if the data stops before it.
    Segments are skipped by their length, so a thumbnail's marker inside the EXIF block does not count,
    and bytes after the image (a phone's trailer, an MPF second image, a motion photo's video) are allowed."""
    pos = 2  # past SOI
    while True:
        pos = data.find(b"\xff", pos)  # libjpeg, too, skips stray bytes before a marker
        while 0 <= pos < len(data) - 1 and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos < 0 or pos + 2 > len(data):
            return None
        marker = data[pos + 1]
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
            pos += 2
            continue
        if pos + 4 > len(data):
            return None
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            found = _ENTROPY_END.search(data, min(pos, len(data)))
            if found is None:
                return None
            pos = found.start()


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 8


def read_frame(info: FrameInfo, preview: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a probed frame. Returns (H, W, C) uint8 or uint16, C as ``info.shape`` says; with
    ``preview``, a raw frame comes at half the size each way, five times faster (engine.raw), other frames
    as they are. ``out``: an (H, W, C) array of the frame's type that a TIFF stored so is decoded into (and
    returned), saving a new frame-sized array (engine.buffers); other files ignore it.

    Raises FrameError for a truncated or corrupt file, or pixels that do not match the header.
    """
    path, kind = info.path, info.kind
    if kind == "raw":
        return read_raw(info, half_size=preview)
    try:
        if kind == "tiff":
            pixels = _read_tiff(path, out)
        elif kind == "jpeg":
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                pixels = np.asarray(im.convert("L" if info.shape[2] == 1 else "RGB"))
        else:
            import cv2  # here, not at the top: probing headers (`focusdrop status`) does without it
            pixels = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
            if pixels is None:
                raise ValueError("truncated or corrupt PNG data")
            if pixels.ndim == 3:
                pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    except Exception as e:
        raise FrameError(path, f"truncated or corrupt image data ({short_reason(e)})") from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] != info.shape[2]:  # alpha, or grey stored as RGB: dropped
        pixels = pixels[..., :info.shape[2]]
    if pixels.shape != info.shape or pixels.dtype != info.dtype:
        raise FrameError(path, f"decoded {pixels.shape} {pixels.dtype} but the header says "
                               f"{info.shape} {info.dtype}")
    return np.ascontiguousarray(pixels)


def capture_time(path: Path) -> float | None:
    """EXIF DateTimeOriginal (+ SubSecTimeOriginal) as seconds since the epoch, read as UTC; None if absent.

    Only differences between frames matter (to split bursts), so the camera's time zone does not."""
    try:
        if _kind(path) == "tiff":
            with tifffile.TiffFile(path) as tif:
                tag = tif.pages[0].tags.get("ExifTag")
                exif = tag.value if tag else {}
            stamp, subsec = exif.get("DateTimeOriginal"), exif.get("SubsecTimeOriginal")
        else:
            with Image.open(path) as im:
                exif = im.getexif().get_ifd(0x8769)
            stamp, subsec = exif.get(36867), exif.get(37521)
        seconds = datetime.strptime(str(stamp).strip("\0 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except Exception:  # no EXIF, or a value no camera should write: fall back on the caller's side
        return None
    fraction = f"0.{str(subsec).strip()}" if subsec and str(subsec).strip().isdigit() else "0"
    return seconds.timestamp() + float(fraction)


def _read_tiff(path: Path, out: np.ndarray | None = None) -> np.ndarray:
    """The first page's pixels as (H, W[, C]); planar files turned to interleaved. ``out``: an array to
    decode into where the page is stored in exactly its shape and type (else a new one is made)."""
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        fits = out is not None and page.shape == out.shape and page.dtype == out.dtype
        pixels = page.asarray(maxworkers=1, out=out if fits else None)
    if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
        pixels = np.moveaxis(pixels, 0, -1)
    return pixels


BYTES_PER_PIXEL = 130  # peak memory of a layered-PSD stack per output pixel (measured: 2.9 GB at 24 MP)


def check_stack(infos: list[FrameInfo]) -> None:
    """Raise FrameError unless there are 2+ distinct frames of one size, channel count and bit depth, and
    the memory a stack of that size needs is available."""
    if len(infos) < 2:
        name = infos[0].path if infos else Path("(no frames)")
        raise FrameError(name, "a focus stack needs at least 2 frames")
    seen: dict[tuple[int, int], Path] = {}
    for info in infos:
        stat = info.path.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            raise FrameError(info.path, f"given twice (the same file as {seen[key]})")
        seen[key] = info.path
    first = infos[0]
    for info in infos[1:]:
        if info.shape[:2] != first.shape[:2]:
            raise FrameError(info.path, f"size {info.shape[1]}x{info.shape[0]} differs from "
                                        f"{first.path.name} ({first.shape[1]}x{first.shape[0]})")
        if info.shape[2] != first.shape[2]:
            raise FrameError(info.path, f"{_channels(info)} differs from {first.path.name} ({_channels(first)})")
        if info.dtype != first.dtype:
            raise FrameError(info.path, f"{info.dtype.itemsize * 8}-bit differs from {first.path.name} "
                                        f"({first.dtype.itemsize * 8}-bit)")
    need, free = first.pixels * BYTES_PER_PIXEL, available_memory()
    if free is not None and need > free:
        raise FrameError(first.path, f"a stack of {first.shape[1]}x{first.shape[0]} frames needs about "
                                     f"{need / 2**30:.1f} GB of memory; {free / 2**30:.1f} GB is free")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _channels(info: FrameInfo) -> str:
    return "greyscale" if info.shape[2] == 1 else "RGB"
