"""Plane geometry shared by the pipeline: 3x3 homogeneous matrices between pixel grids.

Convention: pixel (x, y) has its centre at integer coordinates, x to the right, y down. A transform
``M`` maps points of one grid to another, ``[x', y', 1] = M @ [x, y, 1]``.
"""
from __future__ import annotations

import numpy as np


def similarity(scale: float = 1.0, angle_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0),
               centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Scale and rotate about ``centre``, then shift. Returns (3, 3) float64."""
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    cx, cy = centre
    return np.array([[c, -s, cx - c * cx + s * cy + shift[0]],
                     [s, c, cy - s * cx - c * cy + shift[1]],
                     [0.0, 0.0, 1.0]])


def resize_matrix(factor: float, factor_y: float | None = None) -> np.ndarray:
    """Map full-resolution pixel coordinates to those of the image resized by ``factor`` (cv2.resize),
    or by ``factor`` across and ``factor_y`` down."""
    fy = factor if factor_y is None else factor_y
    return np.array([[factor, 0.0, 0.5 * factor - 0.5],
                     [0.0, fy, 0.5 * fy - 0.5],
                     [0.0, 0.0, 1.0]])


def translation(dx: float, dy: float) -> np.ndarray:
    """Shift by (dx, dy) pixels. Returns (3, 3) float64."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (K, 2) points through a (3, 3) affine matrix. Returns (K, 2) float64."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def corners(width: int, height: int) -> np.ndarray:
    """Centres of the four corner pixels, (4, 2): top-left, top-right, bottom-right, bottom-left."""
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)


def scale_and_angle(matrix: np.ndarray) -> tuple[float, float]:
    """Mean magnification and rotation in degrees of an affine (3, 3) matrix."""
    det = float(np.linalg.det(matrix[:2, :2]))
    angle = float(np.degrees(np.arctan2(matrix[1, 0] - matrix[0, 1], matrix[0, 0] + matrix[1, 1])))
    return float(np.sqrt(abs(det))), angle
