"""Reading frames in every format a photographer's tools write, and refusing bad ones by name."""
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from focusdrop.engine import frames
from focusdrop.engine.frameinfo import FrameError, IncompleteFrame
from focusdrop.engine.frames import check_stack, list_frames, probe_frame, read_frame
from focusdrop.engine.save import write_image

RNG = np.random.default_rng(0)
RGB16 = (RNG.random((30, 40, 3)) * 65535).astype(np.uint16)
RGB8 = (RGB16 >> 8).astype(np.uint8)
SMOOTH8 = np.dstack([*np.meshgrid(np.arange(40) * 6, np.arange(30) * 8), np.full((30, 40), 128)]).astype(np.uint8)
ICC = b"\0\0\2\0fake-icc-profile" * 10


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
@pytest.mark.parametrize("pixels", [RGB16, RGB8, RGB16[..., 0]], ids=["rgb16", "rgb8", "grey16"])
def test_tiff_round_trip_with_icc(tmp_path, compression, pixels):
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, pixels, compression=compression, iccprofile=ICC,
                     photometric="rgb" if pixels.ndim == 3 else "minisblack")
    info = probe_frame(path)
    assert info.icc == ICC
    assert info.dtype == pixels.dtype
    assert np.array_equal(read_frame(info), pixels.reshape(info.shape))


def test_png_16bit_rgb_keeps_its_depth(tmp_path):
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), cv2.cvtColor(RGB16, cv2.COLOR_RGB2BGR))
    info = probe_frame(path)
    assert info.shape == (30, 40, 3) and info.dtype == np.uint16
    assert np.array_equal(read_frame(info), RGB16)


def test_jpeg_with_icc(tmp_path):
    path = tmp_path / "f.jpg"
    Image.fromarray(SMOOTH8).save(path, quality=95, icc_profile=ICC)
    info = probe_frame(path)
    assert info.icc == ICC and info.shape == (30, 40, 3) and info.dtype == np.uint8
    assert np.abs(read_frame(info).astype(int) - SMOOTH8).mean() < 2


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
def test_written_images_carry_the_icc_profile(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    write_image(path, RGB16 if suffix != ".jpg" else RGB8, ICC)
    info = probe_frame(path)
    assert info.icc == ICC
    assert info.dtype == (np.uint8 if suffix == ".jpg" else np.uint16)
    assert not list(tmp_path.glob(".*partial"))


def test_folder_listing_is_natural_and_skips_other_files(tmp_path):
    for name in ["f_10.tif", "f_2.tif", "F_1.TIF", ".DS_Store", "f_3.xmp", "notes.txt", "._f_4.tif"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_frames(tmp_path)] == ["F_1.TIF", "f_2.tif", "f_10.tif"]


def _damaged(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _tiff_bytes(tmp_path, compression=None) -> bytes:
    tifffile.imwrite(tmp_path / "good.tif", RGB16, compression=compression)
    return (tmp_path / "good.tif").read_bytes()


@pytest.mark.parametrize("case, message", [
    ("empty", "file is empty"),
    ("text", "not an image"),
    ("truncated_tiff", "incomplete file"),
    ("truncated_lzw", "incomplete file"),
    ("truncated_jpeg", "incomplete file"),
    ("truncated_png", "incomplete file"),
    ("header_only", "damaged or unreadable"),
])
def test_bad_files_are_refused_by_name(tmp_path, case, message):
    jpeg = tmp_path / "good.jpg"
    Image.fromarray(RGB8).save(jpeg)
    png = tmp_path / "good.png"
    cv2.imwrite(str(png), RGB16)
    data = {
        "empty": b"",
        "text": b"this is not an image at all",
        "truncated_tiff": _tiff_bytes(tmp_path)[:4000],
        "truncated_lzw": _tiff_bytes(tmp_path, "lzw")[:3000],
        "truncated_jpeg": jpeg.read_bytes()[:-500],
        "truncated_png": png.read_bytes()[:2000],
        "header_only": _tiff_bytes(tmp_path)[:12],
    }[case]
    path = _damaged(tmp_path, f"{case}.img", data)
    with pytest.raises(FrameError) as caught:
        read_frame(probe_frame(path))
    assert str(caught.value).startswith(f"{case}.img: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_float_tiff_is_refused(tmp_path):
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, RGB16.astype(np.float32), photometric="rgb")
    with pytest.raises(FrameError, match="float32 samples are not supported"):
        probe_frame(path)


def _write(tmp_path, name, pixels):
    tifffile.imwrite(tmp_path / name, pixels)
    return probe_frame(tmp_path / name)


@pytest.mark.parametrize("other, message", [
    (RGB16[:20], "size 40x20 differs from a.tif"),
    (RGB16[..., 0], "greyscale differs from a.tif"),
    (RGB8, "8-bit differs from a.tif"),
])
def test_mismatched_frames_are_refused(tmp_path, other, message):
    infos = [_write(tmp_path, "a.tif", RGB16), _write(tmp_path, "b.tif", other)]
    with pytest.raises(FrameError, match=message) as caught:
        check_stack(infos)
    assert caught.value.path.name == "b.tif"


def test_single_frame_is_refused(tmp_path):
    with pytest.raises(FrameError, match="at least 2 frames"):
        check_stack([_write(tmp_path, "a.tif", RGB16)])


def test_same_file_twice_is_refused(tmp_path):
    info = _write(tmp_path, "a.tif", RGB16)
    with pytest.raises(FrameError, match="b.tif: given twice"):
        (tmp_path / "b.tif").hardlink_to(tmp_path / "a.tif")
        check_stack([info, probe_frame(tmp_path / "b.tif")])


def test_huge_header_is_refused_before_allocating(tmp_path):
    """A TIFF header claiming 100000x100000 pixels is refused from the header, in well under a second."""
    path = tmp_path / "huge.tif"
    tags = [(256, 4, 100000), (257, 4, 100000), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, 100000), (279, 4, 1)]  # (tag, type: 3 SHORT / 4 LONG, value)
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + struct.pack("<HH" if kind == 3 else "<I", value, 0)[:4]
        if kind == 3 else struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    path.write_bytes(b"II*\0" + struct.pack("<I", 16) + b"\0" * 8 + ifd + b"\0\0\0\0")
    with pytest.raises(FrameError, match="huge.tif: 100000x100000 is 10000 MP, over the 400 MP cap"):
        probe_frame(path)


def test_stack_bigger_than_free_memory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(frames, "available_memory", lambda: 10_000)
    infos = [_write(tmp_path, "a.tif", RGB16), _write(tmp_path, "b.tif", RGB16)]
    with pytest.raises(FrameError, match=r"a.tif: a stack of 40x30 frames needs about .* GB of memory"):
        check_stack(infos)


def _mutations(data: bytes, rng: np.random.Generator, count: int) -> list[bytes]:
    """``count`` damaged copies of a file: bytes flipped, cut short, header bytes overwritten."""
    out = []
    for i in range(count):
        b = bytearray(data)
        kind = i % 3
        if kind == 0:
            for at in rng.integers(0, len(b), int(rng.integers(1, 20))):
                b[at] ^= int(rng.integers(1, 256))
        elif kind == 1:
            b = b[: int(rng.integers(1, len(b)))]
        else:
            for at in rng.integers(0, min(len(b), 200), int(rng.integers(1, 8))):
                b[at] = int(rng.integers(0, 256))
        out.append(bytes(b))
    return out


def test_fuzzed_frames_give_a_frame_error_or_an_image(tmp_path):
    """A few hundred mutated TIFF, JPEG and PNG files: each is a FrameError with its name, or decodes to
    the size its header says; never another exception."""
    rng = np.random.default_rng(7)
    jpeg, png = tmp_path / "good.jpg", tmp_path / "good.png"
    Image.fromarray(RGB8).save(jpeg)
    cv2.imwrite(str(png), RGB16)
    sources = [_tiff_bytes(tmp_path), _tiff_bytes(tmp_path, "lzw"), jpeg.read_bytes(), png.read_bytes()]
    outcomes = {"refused": 0, "decoded": 0}
    for s, source in enumerate(sources):
        for i, data in enumerate(_mutations(source, rng, 75)):
            path = tmp_path / f"fuzz_{s}_{i}.img"
            path.write_bytes(data)
            try:
                info = probe_frame(path)
                pixels = read_frame(info)
            except FrameError as e:
                assert str(e).startswith(path.name + ": ") and "\n" not in str(e)
                outcomes["refused"] += 1
                continue
            assert pixels.shape == info.shape and pixels.dtype == info.dtype
            outcomes["decoded"] += 1
    assert outcomes["refused"] >= 100, outcomes


BIG8 = cv2.resize(SMOOTH8, (400, 300)) ^ (RNG.random((300, 400, 1)) * 16).astype(np.uint8)  # some texture


def _jpeg_with_thumbnail(tmp_path, progressive=False) -> bytes:
    """A JPEG whose EXIF block (APP1) holds a whole thumbnail JPEG, end-of-image marker included."""
    Image.fromarray(SMOOTH8[:8, :8]).save(tmp_path / "thumb.jpg")
    Image.fromarray(BIG8).save(tmp_path / "main.jpg", quality=90, progressive=progressive)
    thumb, main = (tmp_path / "thumb.jpg").read_bytes(), (tmp_path / "main.jpg").read_bytes()
    app1 = b"Exif\0\0" + thumb
    return main[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + main[2:]


TRAILERS = {  # what phones append after the main image's end-of-image marker
    "samsung_98_bytes": b"\0\0SEFH" + bytes(range(88)) + b"SEFT",
    "mpf_second_image": None,  # a second JPEG (multi-picture format, Ultra HDR's gain map)
    "motion_photo_mp4": struct.pack(">I", 24) + b"ftypmp42" + b"\0" * 12 + struct.pack(">I", 16) + b"mdat" + b"\1" * 8,
}


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("trailer", TRAILERS)
def test_a_jpeg_with_bytes_after_its_image_is_whole(tmp_path, trailer, progressive):
    jpeg = _jpeg_with_thumbnail(tmp_path, progressive)
    extra = TRAILERS[trailer] if TRAILERS[trailer] is not None else (tmp_path / "thumb.jpg").read_bytes()
    path = _damaged(tmp_path, "phone.jpg", jpeg + extra)
    assert frames.jpeg_end(path.read_bytes()) == len(jpeg)
    pixels = read_frame(probe_frame(path))
    assert pixels.shape == (300, 400, 3) and np.abs(pixels.astype(int) - BIG8).mean() < 6


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("keep", [0.3, 0.7, -2])
def test_a_jpeg_cut_inside_its_image_data_is_incomplete(tmp_path, keep, progressive):
    """Cut anywhere in the scan data (or just before the last marker), even with the thumbnail's
    end-of-image marker earlier in the file and a trailer-like tail, the file waits."""
    jpeg = _jpeg_with_thumbnail(tmp_path, progressive)
    cut = jpeg[: int(len(jpeg) * keep) if keep > 0 else keep]
    assert frames.jpeg_end(cut) is None
    with pytest.raises(IncompleteFrame, match="no JPEG end-of-image marker"):
        probe_frame(_damaged(tmp_path, "cut.jpg", cut))
