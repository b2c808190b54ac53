"""Alignment: an affine transform (shift, rotation, magnification) from every frame to the reference.

Each frame is registered to the frame it matches best (engine.order picks the pairs: frames near in
focus differ least in blur) and the transforms are chained to the reference frame. Registration of a pair
is two-step:
1. Coarse and robust: SIFT keypoints (Lowe 2004) on a grey image of about 1 MP, Lowe's ratio test, RANSAC
   for a 4-parameter similarity (``cv2.estimateAffinePartial2D``). The shared/notes calibration found
   feature matching free of the drift that intensity methods show when started from nothing.
2. Fine: ECC (Evangelidis & Psarakis 2008, ``cv2.findTransformECC``) on a grey image of about 0.7 MP,
   started from step 1's similarity, in linear light. Lenses blur linear light; compared in gamma-encoded
   values, a blurred edge's local mean shifts and ECC drifts by about 0.1 px per frame (as shared/notes
   saw). Measured on the synthetic brackets: SIFT alone 0.1-0.3 px at the corners (worth ~1.2 dB on
   fine texture), ECC on encoded values 0.07-0.18 px per pair, ECC in linear light 0.02-0.05 px.
   If ECC does not converge or moves a keypoint more than 3 px (the RANSAC tolerance) from step 1, step
   1's estimate stands. ECC's template is the blurrier of the two frames (the one with fewer keypoints),
   the sharper one is warped onto it: the other way round, ECC settled 0.9 px off on a pair of frames
   blurred by 20 px (0.17 px this way), while keypoints were within 0.4 px. Judged at the keypoints, not
   the image corners: on thin strands over a plain background the detail clusters in the middle, SIFT's
   rotation is off enough to move the corners 1-2 px between heavily blurred frames while ECC is within
   0.04-0.3 px; the former test (ECC may not move a corner more than 1 px) kept SIFT's estimate there, and
   the chain drifted 6 px over four frames (0.8 px now; other brackets unchanged).
When step 1 fails (a frame blurred past recognition has few keypoints, and few that match), ECC alone,
for a shift only, decides: a blurred frame still correlates with its neighbour (0.95-0.99 measured on the
shared circuit-board bracket blurred by 25-40 px), a frame of another scene does not (0.01-0.2). A shift
only, because blur leaves too little to pin down scale and rotation: a full affine ECC strayed by 16 px
on a frame blurred by 30 px, where the change of magnification between neighbours is about 0.2 %.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine import geometry
from engine.exposure import GAMMA

FEATURE_SIDE = 640       # long side, px, of the image keypoints are found on (SIFT doubles it)
REFINE_SIDE = 1024       # long side, px, of the image ECC refines on
MAX_KEYPOINTS = 2000
CONTRAST_THRESHOLDS = (0.03, 0.01)  # SIFT's; the lower where the first finds under a quarter of MAX_KEYPOINTS:
# on the shared microscope bracket, 10 of 14 frames then match another (5 at 0.03 alone)
MIN_INLIERS = 20
RATIO = 0.8              # Lowe's ratio test
MAX_SCALE_CHANGE = 0.2   # between neighbours; breathing is a few percent over a whole bracket
MAX_ANGLE = 10.0         # degrees, between neighbours
MAX_SHIFT = 0.2          # fraction of the long side, between neighbours
MAX_REFINEMENT = 3.0     # px at full resolution: ECC moving a keypoint further than this has diverged
MIN_CORRELATION = 0.8    # ECC's correlation coefficient that accepts a pair without matching keypoints


class AlignmentError(ValueError):
    """Two frames whose contents could not be matched."""


@dataclass(frozen=True)
class FrameKey:
    """What registration keeps of a frame: keypoints and a reduced grey image.

    points: (K, 2) float32 keypoint positions in full-resolution pixels, strongest first; descriptors:
    (K, 128) float32;
    grey: (h, w) float32 in [0, 1], the frame reduced by ``factor`` for ECC, in linear light;
    size: full (width, height).
    """

    points: np.ndarray
    descriptors: np.ndarray
    grey: np.ndarray
    factor: float
    size: tuple[int, int]


def _reduce(grey: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    factor = min(1.0, side / max(grey.shape))
    if factor == 1.0:
        return grey, factor
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor


def frame_key(grey: np.ndarray) -> FrameKey:
    """Keypoints and ECC image of one frame. grey: (H, W) float32 in [0, 1], full resolution."""
    fine, fine_factor = _reduce(grey, REFINE_SIDE)
    small, factor = _reduce(fine, FEATURE_SIDE)
    factor *= fine_factor
    low, high = np.percentile(small[::2, ::2], (0.5, 99.5))  # a dark frame gets features as a bright one
    small8 = np.clip((small - low) * (255.0 / max(high - low, 0.1)) + 0.5, 0, 255).astype(np.uint8)
    for contrast in CONTRAST_THRESHOLDS:  # a soft frame (a microscope's, or a blurred one) gets a second look
        sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=contrast)
        keypoints, descriptors = sift.detectAndCompute(small8, None)
        if len(keypoints) >= MAX_KEYPOINTS // 4:
            break
    if descriptors is None:
        points, descriptors = np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    else:
        strongest = np.argsort([-kp.response for kp in keypoints], kind="stable")
        keypoints, descriptors = [keypoints[k] for k in strongest], descriptors[strongest]
        small_points = np.array([kp.pt for kp in keypoints], dtype=np.float64)
        points = geometry.apply(np.linalg.inv(geometry.resize_matrix(factor)), small_points)
    size = (grey.shape[1], grey.shape[0])
    return FrameKey(points.astype(np.float32), descriptors, fine ** GAMMA, fine_factor, size)


def register_pair(moving: FrameKey, fixed: FrameKey, ecc_scale: float = 1.0) -> tuple[np.ndarray, int]:
    """Affine transform mapping ``moving``'s full-resolution pixels onto ``fixed``'s.

    ecc_scale: ECC runs on the keys' grey images resized by this (0.5: a quarter of the work, for a check
    that needs a tenth of a pixel less). Returns the (3, 3) float64 matrix and the number of keypoint
    matches that support it (0 when ECC alone registered the pair). Raises AlignmentError when neither
    keypoints nor ECC register the pair.
    """
    try:
        coarse, count = match_features(moving, fixed)
    except AlignmentError as e:
        return ecc_alone(moving, fixed, e), 0
    if len(moving.points) < len(fixed.points):  # ECC's template is the blurrier frame (see above)
        return np.linalg.inv(_refine_ecc(fixed, moving, np.linalg.inv(coarse), ecc_scale)), count
    return _refine_ecc(moving, fixed, coarse, ecc_scale), count


def featureless(key: FrameKey) -> bool:
    """Too few keypoints to register: a frame blurred past recognition (or blank). It carries no detail."""
    return len(key.points) < MIN_INLIERS


def _check_motion(matrix: np.ndarray) -> None:
    scale, angle = geometry.scale_and_angle(matrix)
    if abs(scale - 1.0) > MAX_SCALE_CHANGE or abs(angle) > MAX_ANGLE:
        raise AlignmentError(f"implausible motion (scale {scale:.3f}, rotation {angle:.1f} degrees)")


def match_features(moving: FrameKey, fixed: FrameKey, strongest: int | None = None) -> tuple[np.ndarray, int]:
    """Similarity (3, 3) mapping ``moving``'s pixels onto ``fixed``'s from matching keypoints (only the
    ``strongest`` of each, if given), and the number of consistent matches. Raises AlignmentError."""
    if featureless(moving) or featureless(fixed):
        raise AlignmentError(f"only {min(len(moving.points), len(fixed.points))} features found")
    limit = slice(0, strongest)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(moving.descriptors[limit], fixed.descriptors[limit], k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    src = moving.points[[m.queryIdx for m in good]]
    dst = fixed.points[[m.trainIdx for m in good]]
    near = np.hypot(*(dst - src).T) < MAX_SHIFT * max(moving.size)
    src, dst = src[near], dst[near]
    if len(src) < MIN_INLIERS:
        raise AlignmentError(f"only {len(src)} matching features")
    threshold = 1.5 * max(moving.size) / FEATURE_SIDE
    affine, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                  ransacReprojThreshold=max(1.0, threshold),
                                                  maxIters=5000, confidence=0.999, refineIters=20)
    count = int(inliers.sum()) if inliers is not None else 0
    if affine is None or count < MIN_INLIERS:
        raise AlignmentError(f"only {count} consistent matching features")
    matrix = np.vstack([affine, [0.0, 0.0, 1.0]])
    _check_motion(matrix)
    return matrix, count


def ecc_alone(moving: FrameKey, fixed: FrameKey, why: AlignmentError) -> np.ndarray:
    """ECC for a shift from no motion, for pairs without matching keypoints; accepted if they correlate."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    try:
        correlation, warp = cv2.findTransformECC(fixed.grey, moving.grey, np.eye(2, 3, dtype=np.float32),
                                                 cv2.MOTION_TRANSLATION, criteria, None, 5)
    except cv2.error:
        correlation = 0.0
    if correlation < MIN_CORRELATION:
        raise AlignmentError(f"{why}, and the images do not correlate") from None
    to_fine = geometry.resize_matrix(moving.factor)
    matrix = np.linalg.inv(np.linalg.inv(to_fine) @ np.vstack([warp, [0.0, 0.0, 1.0]]) @ to_fine)
    shift = np.abs(geometry.apply(matrix, geometry.corners(*moving.size)) - geometry.corners(*moving.size)).max()
    if shift > MAX_SHIFT * max(moving.size):
        raise AlignmentError(f"{why}, and ECC found an implausible shift of {shift:.0f} px")
    return matrix


def _refine_ecc(moving: FrameKey, fixed: FrameKey, coarse: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """ECC refinement of a moving -> fixed matrix, on the grey images resized by ``scale``; returns
    ``coarse`` when ECC fails or diverges."""
    greys = [key.grey if scale == 1.0 else cv2.resize(key.grey, None, fx=scale, fy=scale,
                                                      interpolation=cv2.INTER_AREA) for key in (fixed, moving)]
    to_fine = geometry.resize_matrix(moving.factor * scale)
    fixed_to_moving = to_fine @ np.linalg.inv(coarse) @ np.linalg.inv(to_fine)
    warp = fixed_to_moving[:2].astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-6)
    try:
        _, warp = cv2.findTransformECC(greys[0], greys[1], warp, cv2.MOTION_AFFINE, criteria, None, 3)
    except cv2.error:
        return coarse
    refined = np.linalg.inv(np.linalg.inv(to_fine) @ np.vstack([warp, [0.0, 0.0, 1.0]]) @ to_fine)
    moved = np.abs(geometry.apply(refined, moving.points) - geometry.apply(coarse, moving.points)).max()
    return refined if moved <= MAX_REFINEMENT else coarse
