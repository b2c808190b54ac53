"""The report's pictures: previews of each aligned frame as it is fused (an on_layer sink), then of the
result, its sharpest window at 100 %, the depth map in colour and each frame's mask, as encoded files."""
from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from focusdrop.engine.frameinfo import FrameInfo
from focusdrop.engine.pipeline import StackResult
from focusdrop.engine.preview import frame_shares, mask_previews, preview, sharpest_window

RESULT_SIDE = 800  # px, the long side of the result's preview
FRAME_SIDE = 160   # px, of each frame's and each mask's preview
CROP_SIDE = 400    # px, the 100 % crop of the result's sharpest window
PREVIEW_QUALITY = 80  # JPEG quality of the previews
CROP_QUALITY = 92     # and of the 100 % crop, which is there to show the finest detail


def encoded(pixels: np.ndarray, kind: str = "jpeg", quality: int = PREVIEW_QUALITY) -> bytes:
    """(h, w, 3) RGB or (h, w) grey uint8 as a JPEG (of ``quality``) or PNG file's bytes."""
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if kind == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ok, data = cv2.imencode(f".{'jpg' if kind == 'jpeg' else 'png'}", pixels, params)
    if not ok:
        raise ValueError(f"could not encode a {pixels.shape} picture as {kind}")
    return data.tobytes()


def data_uri(data: bytes, kind: str = "jpeg") -> str:
    """A file's bytes as a data: URI of an image/``kind``."""
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _rgb(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2)


class FramePreviews:
    """An on_layer sink (engine.pipeline.LayerSink) that keeps a small preview of each aligned frame."""

    def __init__(self) -> None:
        self.previews: list[np.ndarray] = []

    def __call__(self, frame: FrameInfo, image: np.ndarray) -> None:
        self.previews.append(_rgb(preview(image, FRAME_SIDE)))

    def cropped(self, result: StackResult) -> list[np.ndarray]:
        """The previews of the result's area: cut from those of a larger area (result.layers_box)."""
        (lx0, ly0, lx1, ly1), (x0, y0, x1, y1) = result.layers_box, result.alignment.box
        if (lx0, ly0, lx1, ly1) == (x0, y0, x1, y1):
            return self.previews
        cut = []
        for picture in self.previews:
            fy, fx = picture.shape[0] / (ly1 - ly0), picture.shape[1] / (lx1 - lx0)
            rows = slice(round((y0 - ly0) * fy), round((y1 - ly0) * fy))
            cut.append(picture[rows, round((x0 - lx0) * fx):round((x1 - lx0) * fx)])
        return cut


@dataclass
class Pictures:
    """The report's pictures as data: URIs (the result's preview also as a JPEG file's bytes, result_jpeg,
    for the status page's list). crop: the result at 100 % where it has the most fine detail,
    at crop_box (x, y, w, h) in result pixels; depth: the depth map, frame k in colours[k] (hex RGB);
    frames: each aligned frame, in focus order; masks and shares: each frame's mask and the part of the
    result it supplies, 0-1 (depth, colours, masks and shares empty when the method has no depth map)."""

    result_jpeg: bytes
    size: tuple[int, int]
    crop: str
    crop_box: tuple[int, int, int, int]
    depth: str | None
    colours: list[str]
    frames: list[str]
    masks: list[str]
    shares: list[float]

    @property
    def result(self) -> str:
        return data_uri(self.result_jpeg)


def depth_colours(count: int) -> np.ndarray:
    """(count, 3) uint8 RGB: viridis from the first frame (dark blue) to the last (yellow)."""
    from matplotlib import colormaps  # here: only the report needs matplotlib
    return (colormaps["viridis"](np.linspace(0.0, 1.0, count))[:, :3] * 255 + 0.5).astype(np.uint8)


def make_pictures(result: StackResult, previews: FramePreviews) -> Pictures:
    """The pictures of a finished stack whose aligned frames went through ``previews``."""
    image = result.image
    height, width, _ = image.shape
    x, y = sharpest_window(image, CROP_SIDE)
    crop = image[y:y + CROP_SIDE, x:x + CROP_SIDE]
    crop8 = _rgb(preview(crop, CROP_SIDE))  # at 100 %: only brought to 8 bits
    count = len(result.alignment.frames)
    depth, colours, masks, shares = None, [], [], []
    if result.depth is not None:
        lut = depth_colours(count)
        step = -(-max(height, width) // RESULT_SIDE)  # at most RESULT_SIDE px, as the result's preview
        depth = data_uri(encoded(lut[result.depth[::step, ::step]], "png"), "png")
        colours = ["#%02x%02x%02x" % tuple(int(v) for v in c) for c in lut]
        masks = [data_uri(encoded(m, "png"), "png") for m in mask_previews(result.depth, count, FRAME_SIDE)]
        shares = frame_shares(result.depth, count).tolist()
    return Pictures(encoded(_rgb(preview(image, RESULT_SIDE))), (width, height),
                    data_uri(encoded(crop8, quality=CROP_QUALITY)), (x, y, crop8.shape[1], crop8.shape[0]), depth,
                    colours, [data_uri(encoded(p)) for p in previews.cropped(result)], masks, shares)
