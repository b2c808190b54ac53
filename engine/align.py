"""Alignment: a similarity (shift, rotation, magnification) from every frame to the reference.

Each pair (engine.order picks which) is registered in two steps: coarse and robust, SIFT keypoints (Lowe
2004), Lowe's ratio test and a RANSAC similarity, checked by a first ECC pass at 256 px; then fine, ECC
(Evangelidis & Psarakis 2008) in linear light, as lenses blur, with the blurrier frame as the template.
A pair without matching keypoints (a frame blurred past recognition) is registered by ECC alone, coarse
to fine, for a shift and for a similarity, whichever correlates better. Measurements: docs/measurements.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from focusdrop.engine import geometry
from focusdrop.engine.ecc import EPSILON, ecc
from focusdrop.engine.exposure import GAMMA

FEATURE_SIDE = 256       # long side, px, of the image keypoints are found on (SIFT doubles it); 512 took
# 2.5x the time (68 -> 23 ms a frame) for the same corner errors and the same result on the real brackets
REFINE_SIDE = 1024       # long side, px, of the image ECC refines on
COARSE_SIDE = 256        # long side, px, of ECC's first pass for frames without matching keypoints
KEYPOINTS = 500          # the strongest found per frame, described and matched (2000 before: no more precise)
CONTRAST_THRESHOLDS = (0.03, 0.01)  # SIFT's; the lower where the first finds fewer than KEYPOINTS:
# on the shared microscope bracket, 10 of 14 frames then match another (5 at 0.03 alone)
FINE_ITERATIONS = 1      # ECC's at full scale, after it has converged at half scale (3 and 50: no more precise)
MIN_INLIERS = 20
RATIO = 0.8              # Lowe's ratio test
MAX_SCALE_CHANGE = 0.2   # between neighbours; breathing is a few percent over a whole bracket
MAX_ANGLE = 10.0         # degrees, between neighbours
MAX_SHIFT = 0.2          # fraction of the long side, between neighbours
MIN_CORRELATION = 0.8    # ECC's correlation coefficient that accepts a pair without matching keypoints


class AlignmentError(ValueError):
    """Two frames whose contents could not be matched."""


@dataclass(frozen=True)
class FrameKey:
    """What registration keeps of a frame: keypoints and a reduced grey image.

    points: (K, 2) float32 positions in full-resolution pixels of the K <= KEYPOINTS strongest keypoints,
    strongest first; descriptors: (K, 128) float32; sharpness: the keypoints' summed response (lower in a
    blurred frame);
    grey: (h, w) float32 in [0, 1], the frame reduced by ``factor`` for ECC, in linear light;
    size: full (width, height).
    """

    points: np.ndarray
    descriptors: np.ndarray
    sharpness: float
    grey: np.ndarray
    factor: float
    size: tuple[int, int]
    _levels: dict[float, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def grey_at(self, scale: float) -> np.ndarray:
        """``grey`` resized by ``scale`` (area average), made once per scale: each frame is in several
        pairs, each registered at two or three scales."""
        if scale == 1.0:
            return self.grey
        if scale not in self._levels:
            self._levels[scale] = cv2.resize(self.grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return self._levels[scale]


def _reduce(grey: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    factor = min(1.0, side / max(grey.shape))
    if factor == 1.0:
        return grey, factor
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor


def key_image(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """A 16-bit frame area-averaged by the largest whole factor k that keeps it at least twice REFINE_SIDE
    long, so that the key's own reduction is still one area average over two or more pixels each way; and
    k (1: the frame as it is). pixels: (H, W, C); returns (H // k, W // k, C). On a 24 MP frame, this and
    the grey conversion take 15 ms where converting and reducing the whole frame took 39 ms; the frames'
    transforms move by at most 0.004 px. An 8-bit frame is left whole: rounded to 8 bits again, its average
    would lose what averaging gains."""
    k = max(pixels.shape[:2]) // (2 * REFINE_SIDE)
    if k < 2 or pixels.dtype != np.uint16:
        return pixels, 1
    height, width = pixels.shape[0] // k, pixels.shape[1] // k
    reduced = cv2.resize(pixels[:height * k, :width * k], (width, height), interpolation=cv2.INTER_AREA)
    return reduced.reshape(height, width, pixels.shape[2]), k


def frame_key(grey: np.ndarray, full_size: tuple[int, int] | None = None, scale: float | None = None
              ) -> FrameKey:
    """Keypoints and ECC image of one frame. grey: (H, W) uint8 or uint16 (white: the type's largest
    value), or float32 in [0, 1]; full resolution or, if ``full_size`` (width, height) says otherwise, the
    frame reduced as cv2.resize's INTER_AREA would (a raw preview: each 2x2 block of the sensor one pixel;
    key_image's) by ``scale`` (grey's pixels per frame pixel; default: the ratio of their widths).
    Positions in the key are full-resolution pixels."""
    if scale is None:
        scale = 1.0 if full_size is None else grey.shape[1] / full_size[0]
    white = np.iinfo(grey.dtype).max if grey.dtype.kind == "u" else 1.0
    if grey.dtype != np.uint16:  # 16 bits are reduced as they are (a 24 MP float copy took 70 ms); 8 bits
        grey = grey.astype(np.float32, copy=False)  # in float, unrounded
    fine, fine_factor = _reduce(grey, REFINE_SIDE)
    fine = fine.astype(np.float32) * np.float32(1.0 / white)
    small, factor = _reduce(fine, FEATURE_SIDE)
    factor *= fine_factor
    low, high = np.percentile(small[::2, ::2], (0.5, 99.5))  # a dark frame gets features as a bright one
    small8 = np.clip((small - low) * (255.0 / max(high - low, 0.1)) + 0.5, 0, 255).astype(np.uint8)
    for contrast in CONTRAST_THRESHOLDS:  # a soft frame (a microscope's, or a blurred one) gets a second look
        sift = cv2.SIFT_create(nfeatures=KEYPOINTS, contrastThreshold=contrast)
        keypoints, descriptors = sift.detectAndCompute(small8, None)
        if len(keypoints) >= KEYPOINTS:
            break
    sharpness = float(sum(kp.response for kp in keypoints))
    points, descriptors = _strongest_first(keypoints, descriptors)
    points = geometry.apply(np.linalg.inv(geometry.resize_matrix(factor * scale)), points)
    size = full_size or (grey.shape[1], grey.shape[0])
    return FrameKey(points.astype(np.float32), descriptors, sharpness, fine ** GAMMA, fine_factor * scale, size)


def _strongest_first(keypoints: tuple, descriptors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A detector's keypoints as (K, 2) float64 positions and (K, 128) float32 descriptors, strongest
    first; K may be 0 (OpenCV 4 then gives None for the descriptors, OpenCV 5 an empty array)."""
    if not keypoints:
        return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
    strongest = np.argsort([-kp.response for kp in keypoints], kind="stable")
    points = np.array([keypoints[k].pt for k in strongest], dtype=np.float64).reshape(-1, 2)
    return points, np.asarray(descriptors, np.float32)[strongest]


def register_pair(moving: FrameKey, fixed: FrameKey, ecc_scale: float = 1.0,
                  matched: tuple[np.ndarray, int] | None = None) -> tuple[np.ndarray, int]:
    """Similarity mapping ``moving``'s full-resolution pixels onto ``fixed``'s.

    ecc_scale: ECC runs on the keys' grey images resized by this (0.5: a quarter of the work, for a check
    that needs a tenth of a pixel less); matched: match_features' result for the pair, if already known.
    Returns the (3, 3) float64 matrix and the number of keypoint matches that support it (0 when ECC alone
    registered the pair). Raises AlignmentError when neither keypoints nor ECC register the pair.
    """
    try:
        coarse, count = matched or match_features(moving, fixed)
    except AlignmentError as e:
        return ecc_alone(moving, fixed, e, ecc_scale), 0
    if moving.sharpness < fixed.sharpness:  # ECC's template is the blurrier frame (see above)
        return np.linalg.inv(_refine_ecc(fixed, moving, np.linalg.inv(coarse), ecc_scale)), count
    return _refine_ecc(moving, fixed, coarse, ecc_scale), count


def ransac_tolerance(size: tuple[int, int]) -> float:
    """How far, px at full resolution, a keypoint match may lie from the model and still support it:
    1.5 px of the image keypoints are found on."""
    return max(1.0, 1.5 * max(size) / FEATURE_SIDE)


def featureless(key: FrameKey) -> bool:
    """Too few keypoints to register: a frame blurred past recognition (or blank). It carries no detail."""
    return len(key.points) < MIN_INLIERS


def _check_motion(matrix: np.ndarray) -> None:
    scale, angle = geometry.scale_and_angle(matrix)
    if abs(scale - 1.0) > MAX_SCALE_CHANGE or abs(angle) > MAX_ANGLE:
        raise AlignmentError(f"implausible motion (scale {scale:.3f}, rotation {angle:.1f} degrees)")


def match_features(moving: FrameKey, fixed: FrameKey) -> tuple[np.ndarray, int]:
    """Similarity (3, 3) mapping ``moving``'s pixels onto ``fixed``'s from matching keypoints, and the number
    of consistent matches. Raises AlignmentError."""
    if featureless(moving) or featureless(fixed):
        raise AlignmentError(f"only {min(len(moving.points), len(fixed.points))} features found")
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(moving.descriptors, fixed.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    src = moving.points[[m.queryIdx for m in good]]
    dst = fixed.points[[m.trainIdx for m in good]]
    near = np.hypot(*(dst - src).T) < MAX_SHIFT * max(moving.size)
    src, dst = src[near], dst[near]
    if len(src) < MIN_INLIERS:
        raise AlignmentError(f"only {len(src)} matching features")
    partial, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=ransac_tolerance(moving.size),
                                                   maxIters=5000, confidence=0.999, refineIters=20)
    count = int(inliers.sum()) if inliers is not None else 0
    if partial is None or count < MIN_INLIERS:
        raise AlignmentError(f"only {count} consistent matching features")
    matrix = np.vstack([partial, [0.0, 0.0, 1.0]])
    _check_motion(matrix)
    return matrix, count


def ecc_alone(moving: FrameKey, fixed: FrameKey, why: AlignmentError, ecc_scale: float = 1.0) -> np.ndarray:
    """ECC from no motion, coarse to fine (to ``ecc_scale``, as register_pair), for pairs without matching
    keypoints: for a shift and for a similarity, whichever correlates better. Accepted if the frames
    correlate and the motion is plausible."""
    fits = []
    for shift_only in (True, False):
        matrix, correlation = np.eye(3), 0.0
        try:
            for scale, iterations in ((COARSE_SIDE / max(fixed.grey.shape), 25), (ecc_scale, 50)):
                correlation, matrix = _ecc(moving, fixed, matrix, scale, iterations, shift_only)
        except cv2.error:
            correlation = 0.0
        fits.append((correlation, matrix))
    correlation, matrix = max(fits, key=lambda fit: fit[0])
    if correlation < MIN_CORRELATION:
        raise AlignmentError(f"{why}, and the images do not correlate") from None
    shift = np.abs(geometry.apply(matrix, geometry.corners(*moving.size)) - geometry.corners(*moving.size)).max()
    if shift > MAX_SHIFT * max(moving.size):
        raise AlignmentError(f"{why}, and ECC found an implausible shift of {shift:.0f} px")
    try:
        _check_motion(matrix)
    except AlignmentError as e:
        raise AlignmentError(f"{why}, and ECC found an {e}") from None
    return matrix


def _ecc(moving: FrameKey, fixed: FrameKey, start: np.ndarray, scale: float, iterations: int = 50,
         shift_only: bool = False) -> tuple[float, np.ndarray]:
    """ECC (engine.ecc; a shift alone by OpenCV's) on the keys' grey images resized by ``scale``, from
    ``start`` (3, 3), moving's full-resolution pixels -> fixed's, for up to ``iterations``. Returns the
    correlation coefficient and the matrix. Raises cv2.error when ECC does not converge."""
    greys, to_fine = _greys(moving, fixed, scale)
    fixed_to_moving = to_fine @ np.linalg.inv(start) @ np.linalg.inv(to_fine)
    if shift_only:
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, EPSILON)
        correlation, warp = cv2.findTransformECC(greys[0], greys[1], fixed_to_moving[:2].astype(np.float32),
                                                 cv2.MOTION_TRANSLATION, criteria, None, 3)
    else:
        correlation, warp = ecc(greys[0], greys[1], fixed_to_moving[:2], iterations)
    return correlation, np.linalg.inv(np.linalg.inv(to_fine) @ np.vstack([warp, [0.0, 0.0, 1.0]]) @ to_fine)


def _refine_ecc(moving: FrameKey, fixed: FrameKey, coarse: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """ECC refinement of a moving -> fixed matrix on the grey images resized by ``scale``, from ``coarse``;
    and, if a first ECC pass at a quarter of the size lands elsewhere (a keypoint moved by more than the
    RANSAC tolerance: the keypoints misled), from there too. Returns whichever of the refinements, and
    ``coarse`` itself, correlates best."""
    starts = [coarse]
    try:
        _, rough = _ecc(moving, fixed, coarse, COARSE_SIDE / max(fixed.grey.shape), 25)
        if np.abs(geometry.apply(rough, moving.points) - geometry.apply(coarse, moving.points)).max() > \
                ransac_tolerance(moving.size):
            starts.append(rough)
    except cv2.error:
        pass
    best, best_correlation = coarse, _correlation(moving, fixed, coarse, scale)
    for start in starts:
        try:
            correlation, refined = _ecc_fine(moving, fixed, start, scale)
        except cv2.error:
            continue
        if correlation > best_correlation:
            best, best_correlation = refined, correlation
    return best


def _ecc_fine(moving: FrameKey, fixed: FrameKey, start: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """ECC at ``scale``, coarse to fine: converged at half the scale (a quarter of the work per
    iteration), then FINE_ITERATIONS at the scale itself; straight at the scale if the first does not
    converge. Returns the correlation coefficient and the matrix, as _ecc."""
    try:
        _, start = _ecc(moving, fixed, start, scale / 2)
        iterations = FINE_ITERATIONS
    except cv2.error:
        iterations = 50
    return _ecc(moving, fixed, start, scale, iterations)


def _correlation(moving: FrameKey, fixed: FrameKey, matrix: np.ndarray, scale: float) -> float:
    """ECC's correlation coefficient of ``moving`` warped by ``matrix`` onto ``fixed``, at ``scale``."""
    greys, to_fine = _greys(moving, fixed, scale)
    warp = (to_fine @ matrix @ np.linalg.inv(to_fine))[:2]
    height, width = greys[0].shape
    return float(cv2.computeECC(greys[0], cv2.warpAffine(greys[1], warp, (width, height), flags=cv2.INTER_LINEAR)))


def _greys(moving: FrameKey, fixed: FrameKey, scale: float) -> tuple[list[np.ndarray], np.ndarray]:
    """[fixed's, moving's] grey images resized by ``scale``, and the (3, 3) map from full-resolution
    pixels to theirs."""
    return [fixed.grey_at(scale), moving.grey_at(scale)], geometry.resize_matrix(moving.factor * scale)
