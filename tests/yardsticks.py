"""Quality without ground truth: a stacked result measured against its own bracket's frames.

- Tile detail: in each 24 px tile, the detail between 1 and 3 px (luma, Gaussian sigma 0.8 minus sigma
  2.5, squared, averaged) of the result over that of the sharpest frame there, the frames registered onto
  the result, at the result's exposure (the frames' gains applied: a frame 12 % brighter has 25 % more
  detail energy). Over the sharpest quarter of the inner tiles, plain tiles left out: the median, the
  10th percentile and the share below 0.8. A blend that averages nearly equally sharp frames, each blurred a little differently, scores
  below 1; a result as detailed as the best frame in every tile scores 1.
- Blotches: in each tile, the texture between 1.5 and 6 px (Gaussian sigma 1.5 minus sigma 6, squared,
  averaged) of the result against that of the most textured frame there. A patchwork of frames whose
  brightness differs makes texture no frame has: the share of inner tiles where the result's exceeds twice
  the best frame's (plus 2 levels RMS).
- Haze: beside a thin dark subject on a plain background, the result minus the frame sharp at the subject,
  in 8-bit luma levels, averaged over plain pixels by distance from the subject's dark edges. A haze is a
  dip 10-40 px out against 40-160 px out.

A real bracket is one line of BRACKETS: its folder under ../shared/data/real, and where it has a thin
dark subject on a plain background, the crop (rows, columns of the result) and the frame sharp there.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from focusdrop.engine.frames import read_frame
from focusdrop.engine.pipeline import StackResult
from focusdrop.engine.warp import warp_to_reference

TILE = 24
DETAIL_FLOOR = 4.0  # levels squared: a tile whose best frame has less detail (2 levels RMS) is plain, its
# 1-3 px band sensor or JPEG noise, which a blend rightly averages down (a ring on white: 3/4 of the tiles)
BLOTCH_FLOOR = 4.0  # levels squared (2 levels RMS): texture this faint is not seen as a blotch
HAZE_BANDS = ((3, 10), (10, 20), (20, 40), (40, 160))  # px from the dark edges


@dataclass(frozen=True)
class RealBracket:
    """name: the folder; haze: ((row0, row1, col0, col1) of the result, the file sharp at the dark subject
    there) or None; detail_trusted: False where registration confounds the tile measure (strong
    breathing, a microscope's doubled edges): judged by eye in the gallery instead."""

    name: str
    haze: tuple[tuple[int, int, int, int], str] | None = None
    detail_trusted: bool = True


BRACKETS = [
    RealBracket("cmcguinness_steps"),
    RealBracket("noahpeeters_dsc"),
    RealBracket("lucalista_amber", haze=((650, 1050, 500, 1000), "0001.jpg")),
    RealBracket("lackmann1994_lightbox", detail_trusted=False),
    RealBracket("petteri_pcb_depthmap", detail_trusted=False),
    RealBracket("la3lma_scorpion", detail_trusted=False),
]


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] -> (H, W) float32 luma in 8-bit levels."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) * np.float32(255.0)


def to_unit(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)


def registered_frames(result: StackResult) -> list[np.ndarray]:
    """Each frame of the stack on the result's pixel grid, (h, w, 3) float32 in [0, 1], with its gains."""
    a = result.alignment
    return [warp_to_reference(read_frame(info), a.to_ref[k], a.box, a.gains[k], info.full_scale, a.shading[k])
            for k, info in enumerate(a.frames)]


def band_energy(image: np.ndarray, fine: float, coarse: float) -> np.ndarray:
    """Per-tile mean of the squared band of the luma between Gaussian sigmas ``fine`` and ``coarse`` (px):
    (rows, cols) float64 for TILE px tiles."""
    grey = luma(image)
    band = cv2.GaussianBlur(grey, (0, 0), fine) - cv2.GaussianBlur(grey, (0, 0), coarse)
    band *= band
    rows, cols = grey.shape[0] // TILE, grey.shape[1] // TILE
    return band[:rows * TILE, :cols * TILE].reshape(rows, TILE, cols, TILE).mean(axis=(1, 3), dtype=np.float64)


def band_detail(image: np.ndarray) -> np.ndarray:
    """Per-tile 1-3 px detail (band_energy between sigmas 0.8 and 2.5)."""
    return band_energy(image, 0.8, 2.5)


@dataclass(frozen=True)
class TileDetail:
    median: float
    p10: float
    below_08: float  # share of the tiles below 0.8

    def __str__(self) -> str:
        return f"median {self.median:.3f}, 10th percentile {self.p10:.3f}, {100 * self.below_08:.1f} % below 0.8"


def tile_detail(result: np.ndarray, frames: list[np.ndarray]) -> TileDetail:
    """The result's tile detail over the best frame's, over the sharpest quarter of the inner tiles (the
    outer ring of tiles left out: resampling and the crop edge), plain tiles left out (DETAIL_FLOOR)."""
    best = np.max([band_detail(f) for f in frames], axis=0)[1:-1, 1:-1]
    ratio = band_detail(result)[1:-1, 1:-1] / np.maximum(best, 1e-9)
    sharp = (best >= np.percentile(best, 75)) & (best >= DETAIL_FLOOR)
    values = ratio[sharp]
    return TileDetail(float(np.median(values)), float(np.percentile(values, 10)), float(np.mean(values < 0.8)))


def blotches(result: np.ndarray, frames: list[np.ndarray]) -> float:
    """Share of the inner tiles where the result has more than twice the 1.5-6 px texture (band_energy
    between sigmas 1.5 and 6) of the most textured frame there, plus BLOTCH_FLOOR: texture made by the
    fusion, not found in any frame."""
    best = np.max([band_energy(f, 1.5, 6.0) for f in frames], axis=0)[1:-1, 1:-1]
    return float(np.mean(band_energy(result, 1.5, 6.0)[1:-1, 1:-1] > 2.0 * best + BLOTCH_FLOOR))


def overall_detail(image: np.ndarray, detail_tiles: np.ndarray) -> float:
    """Mean 1-3 px band energy (as ``band_detail``) over the tiles ``detail_tiles`` ((rows, cols) bool):
    a whole image's sharpness that leaves plain tiles, whose band is noise, out."""
    return float(band_detail(image)[detail_tiles].mean())


def detail_tiles(frames: list[np.ndarray]) -> np.ndarray:
    """(rows, cols) bool: the tiles where some frame has detail (DETAIL_FLOOR)."""
    return np.max([band_detail(f) for f in frames], axis=0) >= DETAIL_FLOOR


def haze_profile(result: np.ndarray, sharp: np.ndarray, crop: tuple[int, int, int, int]) -> list[float]:
    """Mean of result - sharp, 8-bit luma, over plain pixels of ``crop`` in each of HAZE_BANDS (px from the
    dark subject's edges in the sharp frame)."""
    r0, r1, c0, c1 = crop
    mine, theirs = luma(result[r0:r1, c0:c1]), luma(sharp[r0:r1, c0:c1])
    background = float(np.median(theirs))
    dark = theirs < background - 40  # the subject: well darker than the plain background
    dark = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    distance = cv2.distanceTransform((~dark).astype(np.uint8), cv2.DIST_L2, 5)
    fine = theirs - cv2.GaussianBlur(theirs, (0, 0), 1.5)
    plain = cv2.GaussianBlur(fine * fine, (0, 0), 3) < 4.0  # under 2 levels of detail at 1.5 px
    difference = mine - theirs
    return [float(difference[plain & (distance >= lo) & (distance < hi)].mean()) for lo, hi in HAZE_BANDS]


def haze_steps(profile: list[float]) -> tuple[float, float]:
    """The dip 10-20 px and 20-40 px out, against 40-160 px out (levels; a haze makes them negative)."""
    return profile[1] - profile[3], profile[2] - profile[3]
