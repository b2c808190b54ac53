"""Layered Photoshop documents: one masked layer per aligned frame over the fused composite, streamed.

Written directly from Adobe's "Photoshop File Formats Specification" rather than through psd-tools'
document model, which recomputes the composite and holds every layer uncompressed in memory. Each layer
is compressed as it arrives (ZIP with prediction: row differences, then deflate at level 1 by libdeflate,
1.8x faster than zlib's level 1 on 16-bit frames, itself several times faster than psd-tools' encoder,
channels on two threads) into an unnamed spool file beside the output, so memory holds one layer at a
time (the last layers, added just before ``write``, are kept in memory). A layer's mask may come later, at
``write``: masks drawn from a depth map known only once every frame is in (engine.masks); they are
compressed then, one at a time, and are small (mostly flat). ``write`` then lays out, under a temporary
name, header, image resources (ICC profile 1039, XMP 1060, version info 1057 saying the composite is real:
"maximize compatibility"), room for the layer records, the spooled channel data with each mask as it is
compressed, and the composite, RLE-compressed (ImageMagick reads RLE composites, not ZIP ones), compressed
meanwhile; the records, which need every channel's size, are filled in last. A layer may reach past the
canvas (``crop``).

A document over 2 GB or 30,000 px a side is written as PSB (version 2); GIMP 2.10 cannot open PSB. One that
turns out over 2 GB only once written is written again as PSB.
"""
from __future__ import annotations

import os
import struct
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import imagecodecs
import numpy as np
from psd_tools.compression import encode_rle

from focusdrop.engine.save import atomic_path

PSD_MAX_SIDE = 30_000
PSB_MAX_SIDE = 300_000
PSD_MAX_BYTES = 2**31 - 1
ZIP_WITH_PREDICTION, RLE, RAW = 3, 1, 0
TRANSPARENCY, USER_MASK = -1, -2


class _OverPSD(Exception):
    """The document came out over PSD's 2 GB: it is written again as PSB."""


def needs_psb(width: int, height: int, document_bytes: int) -> bool:
    """Whether a document of this size must be PSB: a side over 30,000 px, or 2 GB or more in all."""
    if max(width, height) > PSB_MAX_SIDE:
        raise ValueError(f"{width}x{height} is larger than even PSB allows ({PSB_MAX_SIDE} px a side)")
    return max(width, height) > PSD_MAX_SIDE or document_bytes > PSD_MAX_BYTES


def incomplete(path: Path) -> str:
    """What is missing from a PSD or PSB this module wrote, or "" if it is whole: each section's length is
    followed to the composite, whose RLE row counts give the exact end of the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(26)
        if len(header) < 26 or header[:4] != b"8BPS" or header[4:6] not in (b"\0\1", b"\0\2"):
            return "not a PSD or PSB header"
        version, channels, height = header[5], *struct.unpack(">HI", header[12:18])
        at = 26
        for width in (4, 4, 4 if version == 1 else 8):  # colour mode data, image resources, layers and masks
            f.seek(at)
            field = f.read(width)
            if len(field) < width:
                return f"it stops at byte {size}, inside its sections"
            at += width + int.from_bytes(field, "big")
        f.seek(at)
        compression = f.read(2)
        counts = f.read(channels * height * (2 if version == 1 else 4))
    if compression != struct.pack(">H", RLE) or len(counts) < channels * height * (2 if version == 1 else 4):
        return f"it stops at byte {size}, before its composite image"
    end = at + 2 + len(counts) + sum(np.frombuffer(counts, ">u2" if version == 1 else ">u4").astype(np.int64))
    return "" if end == size else f"its composite runs to byte {end}, the file has {size}"


def zip_with_prediction(channel: np.ndarray) -> bytes:
    """One (H, W) uint8/uint16 channel as PSD compression 3: per-row differences, big-endian, deflated.
    The differences go straight into one big-endian buffer: one channel-sized copy, not three."""
    delta = np.empty(channel.shape, channel.dtype.newbyteorder(">"))
    delta[:, 0] = channel[:, 0]
    np.subtract(channel[:, 1:], channel[:, :-1], out=delta[:, 1:])
    return imagecodecs.deflate_encode(delta, level=1)


def _compressed(channel: np.ndarray) -> tuple[bytes, bytes]:
    """A channel as stored: (its 2-byte compression code, its data), ZIP with prediction."""
    return struct.pack(">H", ZIP_WITH_PREDICTION), zip_with_prediction(channel)


def _uncompressed(channel: np.ndarray) -> tuple[bytes, np.ndarray]:
    """A channel as stored uncompressed: (its 2-byte compression code, its big-endian samples)."""
    return struct.pack(">H", RAW), np.ascontiguousarray(channel, channel.dtype.newbyteorder(">"))


def rle_channel(channel: np.ndarray, version: int) -> tuple[bytes, bytes]:
    """One (H, W) channel as PackBits rows: (the row byte counts, the rows)."""
    height, width = channel.shape
    depth = channel.dtype.itemsize * 8
    encoded = encode_rle(channel.astype(channel.dtype.newbyteorder(">")).tobytes(), width, height, depth, version)
    split = height * (2 if version == 1 else 4)
    return encoded[:split], encoded[split:]


def _append(source, out, offset: int, size: int) -> None:
    """Append ``size`` bytes of file ``source`` from ``offset`` to file ``out``: in the kernel with
    copy_file_range where the system has it (0.7 s a GB here, against 4 s through Python's buffers),
    else by reading and writing."""
    out.flush()
    start, done = out.tell(), 0
    try:
        while done < size:
            copied = os.copy_file_range(source.fileno(), out.fileno(), size - done, offset + done, start + done)
            if copied == 0:
                break
            done += copied
    except (AttributeError, OSError):  # no copy_file_range here, or not between these files
        pass
    source.seek(offset + done)
    out.seek(start + done)
    left = size - done
    while left:  # whatever the kernel did not copy
        chunk = source.read(min(left, 16 << 20))
        out.write(chunk)
        left -= len(chunk)


def _pascal_name(name: str) -> bytes:
    """Layer name as a Pascal string padded to 4 bytes (ASCII; the full name goes in 'luni')."""
    raw = name.encode("ascii", "replace")[:255]
    data = bytes([len(raw)]) + raw
    return data + b"\0" * (-len(data) % 4)


def _unicode(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    return struct.pack(">I", len(encoded) // 2) + encoded


def _block(key: bytes, data: bytes, pad: int) -> bytes:
    data += b"\0" * (-len(data) % pad)
    return b"8BIM" + key + struct.pack(">I", len(data)) + data


def _resource(resource_id: int, data: bytes) -> bytes:
    padded = data + b"\0" * (len(data) % 2)
    return b"8BIM" + struct.pack(">H", resource_id) + b"\0\0" + struct.pack(">I", len(data)) + padded


@dataclass
class _Layer:
    name: str
    visible: bool
    top: int                         # the layer's rectangle in document px (it may reach past the canvas)
    left: int
    height: int
    width: int
    channels: list[tuple[int, int]]  # (channel id, bytes in the spool including the 2-byte compression)
    offset: int                      # where the layer's channels start in the spool
    mask: bytes | None = None        # the compressed mask channel, 2-byte compression included
    mask_later: bool = False         # the mask comes with ``write``
    held: list[tuple[int, Future]] | None = None  # a late layer's channels, compressing, kept in memory

    @property
    def spooled(self) -> int:
        return sum(size for _, size in self.channels)


class LayeredDocument:
    """A PSD/PSB being assembled: add layers bottom to top, then ``write`` with the composite.

    path: the final file; width, height: px; channels: 1 (grey) or 3 (RGB); dtype: uint8 or uint16, the
    document depth; icc, xmp: bytes to embed, or None; spool: the folder that holds the spool (the path's
    folder if None). ``path`` may be changed until ``write``, and ``crop`` changes the canvas.
    """

    def __init__(self, path: Path, width: int, height: int, channels: int, dtype: np.dtype,
                 icc: bytes | None = None, xmp: bytes | None = None, spool: Path | None = None):
        self.path = Path(path)
        self.width, self.height, self.channels = width, height, channels
        self.dtype = np.dtype(dtype)
        self.icc, self.xmp = icc, xmp
        self._layers: list[_Layer] = []
        self._spool = tempfile.TemporaryFile(dir=spool or self.path.parent, prefix=".focusdrop-spool-")
        self._pool = ThreadPoolExecutor(max_workers=2)  # deflate releases the GIL: channels in parallel
        self._pending: tuple[_Layer, list] | None = None
        self._opaque: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # the transparency channel, by layer size

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """Make the area (x0, y0, x1, y1) of the canvas the document's canvas; the layers keep all their
        pixels, those past the new canvas outside it (as Photoshop's crop with "Delete Cropped Pixels" off)."""
        self._spool_pending()
        for layer in self._layers:
            layer.top, layer.left = layer.top - y0, layer.left - x0
        self.width, self.height = x1 - x0, y1 - y0

    def add_layer(self, name: str, pixels: np.ndarray, mask: np.ndarray | None = None,
                  visible: bool = True, mask_later: bool = False, late: bool = False, raw: bool = False) -> None:
        """Append a layer above the others, covering the canvas. pixels: (H, W, C), mask: (H, W), both of
        the document dtype; mask_later: the mask (covering the canvas) is passed to ``write`` instead;
        late: one of the last layers, added just before ``write``: kept in memory, not spooled; raw: its
        pixels are stored uncompressed (PSD's raw channel data: each channel says how it is stored).

        Compression runs in the background while the caller goes on; one layer at most waits for it (a late
        layer waits for nothing: ``write`` takes its channels as it reaches them)."""
        if pixels.shape != (self.height, self.width, self.channels) or pixels.dtype != self.dtype:
            raise ValueError(f"layer {name!r}: {pixels.shape} {pixels.dtype} does not fit the document")
        planes = [(c, pixels[..., c]) for c in range(self.channels)]
        if mask is not None:
            planes.append((USER_MASK, mask))
        compressing = [(cid, self._pool.submit(_uncompressed if raw and cid != USER_MASK else _compressed, plane))
                       for cid, plane in planes]
        self._spool_pending()
        layer = _Layer(name, visible, 0, 0, self.height, self.width, [], 0, mask_later=mask_later)
        if late:
            layer.held = compressing
            layer.channels = [(TRANSPARENCY, 0)] + [(cid, 0) for cid, _ in compressing if cid != USER_MASK]
            layer.mask = b"" if mask is not None else None  # sizes come with the data, at write
            self._layers.append(layer)
        else:
            self._pending = (layer, compressing)

    def _spool_pending(self) -> None:
        """Write the waiting layer's compressed channels to the spool."""
        if self._pending is None:
            return
        layer, compressing = self._pending
        layer.offset = self._spool.tell()
        self._store(layer, compressing, self._spool)
        self._layers.append(layer)
        self._pending = None

    def _store(self, layer: _Layer, compressing: list[tuple[int, Future]], out) -> None:
        """Write a layer's channels to ``out`` (the spool, or the document for a late layer), transparency
        first, each as its compression ends; its mask, compressed, is kept on the layer."""
        size = (layer.height, layer.width)
        if size not in self._opaque:
            self._opaque[size] = _compressed(np.full(size, np.iinfo(self.dtype).max, self.dtype))
        layer.channels = []
        stored = [(TRANSPARENCY, self._opaque[size])] + [(c, f.result()) for c, f in compressing]
        for channel_id, (code, data) in stored:
            if channel_id == USER_MASK:
                layer.mask = code + data
            else:
                out.write(code)
                out.write(data)
                layer.channels.append((channel_id, len(code) + memoryview(data).nbytes))

    def write(self, composite: np.ndarray, later_masks: Iterable[np.ndarray] = ()) -> Path:
        """Write the document with ``composite`` (H, W, C) as its flattened image and ``later_masks``,
        (H, W) of the document dtype, for the layers added with ``mask_later``, bottom first. Returns the
        path written: ``path``, or ``path`` with the suffix .psb when a .psd would break PSD's limits.

        The masks and the composite are compressed on the pool's threads while the layers are copied from
        the spool (the layer records, which need every channel's size, are filled in last)."""
        try:
            self._spool_pending()
            masks = self._masks_later(later_masks)
            version = 2 if self.path.suffix.lower() == ".psb" else 1
            if version == 1 and needs_psb(self.width, self.height, self._spool.tell()):
                version = 2
            while True:
                path = self.path.with_suffix(".psb") if version == 2 else self.path
                rle = [self._pool.submit(rle_channel, composite[..., c], version) for c in range(self.channels)]
                try:
                    with atomic_path(path) as temporary, open(temporary, "wb") as out:
                        self._write_file(out, version, masks, rle)
                        if version == 1 and needs_psb(self.width, self.height, out.tell()):
                            raise _OverPSD
                    return path
                except _OverPSD:
                    version = 2
        finally:
            self.close()

    def _masks_later(self, masks: Iterable[np.ndarray]) -> list[Future]:
        """Compress the masks given to ``write`` on one of the pool's threads, one at a time, bottom first:
        one future per layer added with ``mask_later``, its mask channel as stored."""
        waiting = [layer for layer in self._layers if layer.mask_later]
        slots: list[Future] = [Future() for _ in waiting]

        def compress() -> None:
            try:
                for layer, slot, mask in zip(waiting, slots[:len(waiting)], masks, strict=True):
                    if mask.shape != (self.height, self.width) or mask.dtype != self.dtype:
                        raise ValueError(f"mask of layer {layer.name!r}: {mask.shape} {mask.dtype} does not fit")
                    slot.set_result(b"".join(_compressed(mask)))
            except BaseException as e:
                for slot in slots[:len(waiting)]:
                    if not slot.done():
                        slot.set_exception(e)
                raise
        slots.append(self._pool.submit(compress))  # last: its own error (more masks than layers)
        return slots

    def _write_file(self, out, version: int, masks: list[Future], rle: list[Future]) -> None:
        """Lay out the document in ``out``: header, resources, a place for the layer records, each layer's
        channels and mask as they are ready, then the records and the composite."""
        out.write(self._header(version))
        out.write(struct.pack(">I", 0))  # colour mode data
        resources = self._resources()
        out.write(struct.pack(">I", len(resources)) + resources)
        length = ">I" if version == 1 else ">Q"
        waiting = [layer for layer in self._layers if layer.mask_later]
        for layer in waiting:
            layer.mask = layer.mask or b""  # a mask's record is as long whatever its size
        place = out.tell()
        head = 2 * struct.calcsize(length) + 2 + len(self._records(version))
        out.write(b"\0" * head)
        for layer in self._layers:
            if layer.held is not None:
                self._store(layer, layer.held, out)
            else:
                _append(self._spool, out, layer.offset, layer.spooled)
            if layer.mask_later:
                layer.mask = masks[waiting.index(layer)].result()
            if layer.mask is not None:
                out.write(layer.mask)
        masks[-1].result()
        info_size = out.tell() - place - struct.calcsize(length) * 2
        padding = -info_size % 4
        out.write(b"\0" * padding + struct.pack(">I", 0))  # + global layer mask info
        info_size += padding
        end = out.tell()
        out.seek(place)
        out.write(struct.pack(length, info_size + struct.calcsize(length) + 4) + struct.pack(length, info_size)
                  + struct.pack(">h", len(self._layers)) + self._records(version))
        out.seek(end)
        composite = [future.result() for future in rle]
        out.write(struct.pack(">H", RLE))
        out.write(b"".join(counts for counts, _ in composite))
        for _, rows in composite:
            out.write(rows)

    def close(self) -> None:
        """Drop the spool and the compression threads (``write`` does this itself)."""
        self._pool.shutdown(cancel_futures=True)
        self._spool.close()

    def _header(self, version: int) -> bytes:
        mode = 3 if self.channels == 3 else 1  # RGB or greyscale
        return (b"8BPS" + struct.pack(">H", version) + b"\0" * 6
                + struct.pack(">HIIHH", self.channels, self.height, self.width, self.dtype.itemsize * 8, mode))

    def _resources(self) -> bytes:
        version_info = (struct.pack(">IB", 1, 1) + _unicode("FocusDrop") + _unicode("FocusDrop")
                        + struct.pack(">I", 1))
        blocks = [_resource(1057, version_info)]
        if self.icc:
            blocks.append(_resource(1039, self.icc))
        if self.xmp:
            blocks.append(_resource(1060, self.xmp))
        return b"".join(blocks)

    def _records(self, version: int) -> bytes:
        return b"".join(self._record(layer, version) for layer in self._layers)

    def _record(self, layer: _Layer, version: int) -> bytes:
        length = ">I" if version == 1 else ">Q"
        channels = layer.channels + ([(USER_MASK, len(layer.mask))] if layer.mask is not None else [])
        record = struct.pack(">iiiiH", layer.top, layer.left, layer.top + layer.height, layer.left + layer.width,
                             len(channels))
        record += b"".join(struct.pack(">h", cid) + struct.pack(length, size) for cid, size in channels)
        flags = 0 if layer.visible else 0x02
        record += b"8BIMnorm" + struct.pack(">BBBB", 255, 0, flags, 0)
        has_mask = layer.mask is not None
        top, left, bottom, right = (0, 0, self.height, self.width) if layer.mask_later else \
            (layer.top, layer.left, layer.top + layer.height, layer.left + layer.width)  # a mask covers the canvas
        # at write, or else its layer
        mask = struct.pack(">IiiiiBBxx", 20, top, left, bottom, right, 0, 0) if has_mask else b"\0" * 4
        full_range = struct.pack(">HHHH", 0, 0xFFFF, 0, 0xFFFF)
        blending = full_range * (1 + self.channels)
        extra = (mask + struct.pack(">I", len(blending)) + blending + _pascal_name(layer.name)
                 + _block(b"luni", _unicode(layer.name), 4))
        return record + struct.pack(">I", len(extra)) + extra
