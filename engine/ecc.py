"""ECC (Evangelidis & Psarakis 2008) for a similarity warp (shift, rotation, magnification), as OpenCV's
cv2.findTransformECC iterates for an affine one, at half its cost a step.

A focus bracket moves by shake and focus breathing, which a similarity holds; a lens does not shear, and
the affine fit's two extra parameters took up the content's own change with focus (docs/measurements.md,
"Alignment drift"). OpenCV builds six Jacobian images a step (45-55 ms at 1024 px). Here the normal
equations are image moments instead, sums of a product image weighted by x^a y^b, one matrix product each
(14-21 ms), projected onto the similarity's four parameters. Pixels that warping blends with the outside
of the image are left out, which OpenCV counts: on a known similarity it converges to 0.002 px where
OpenCV stays 0.03-0.06 px off. OpenCV does the sums, not numpy: OpenBLAS's own threads would contend with
the pipeline's.
"""
from __future__ import annotations

import cv2
import numpy as np

_DIFFERENCE = np.array([[-0.5, 0.0, 0.5]], np.float32)  # central difference, as OpenCV's ECC
# The affine Jacobian's columns, in OpenCV's parameter order (a00, a10, a01, a11, a02, a12): (gradient: 0
# for d/dx, 1 for d/dy; power of x; power of y)
_COLUMNS = ((0, 1, 0), (1, 1, 0), (0, 0, 1), (1, 0, 1), (0, 0, 0), (1, 0, 0))
# (6, 4): the affine parameters' change for a change of the similarity's (a, b, shift x, shift y), whose
# warp is [[a, -b, x], [b, a, y]]
_SIMILARITY = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                       np.float64)
EPSILON = 1e-6  # the correlation's change at which iterating stops, as cv2.findTransformECC's criteria


def ecc(template: np.ndarray, image: np.ndarray, warp: np.ndarray, iterations: int = 1
        ) -> tuple[float, np.ndarray]:
    """Forward-additive ECC iterations, both images smoothed by a 3 x 3 Gaussian first (as OpenCV's
    gaussFiltSize 3), until the correlation changes by less than EPSILON or after ``iterations``.

    template, image: (h, w) and (h', w') float32; warp: (2, 3) similarity, template pixels -> image pixels.
    Returns the correlation coefficient before the last update (as cv2.findTransformECC) and the updated
    (2, 3) float64 warp, a similarity. Raises cv2.error where the update is undefined (the images do not
    correlate).
    """
    template = cv2.GaussianBlur(template, (3, 3), 0)
    smooth = cv2.GaussianBlur(image, (3, 3), 0)
    gradients = [cv2.filter2D(smooth, -1, kernel) for kernel in (_DIFFERENCE, _DIFFERENCE.T)]
    warp, last = np.asarray(warp, np.float64), None
    for _ in range(iterations):
        correlation, warp = _step(template, smooth, gradients, warp)
        if last is not None and abs(correlation - last) < EPSILON:
            break
        last = correlation
    return correlation, warp


def _step(template: np.ndarray, smooth: np.ndarray, image_gradients: list[np.ndarray], warp: np.ndarray
          ) -> tuple[float, np.ndarray]:
    """One iteration on the smoothed images and the image's (x, y) gradients; see ecc."""
    height, width = template.shape
    matrix = warp.astype(np.float32)

    def warped(values: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.warpAffine(values, matrix, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP)

    # the image's gradient, warped (the warped image's own differences are biased at sub-pixel shifts)
    gradients = [warped(gradient) for gradient in image_gradients]
    image_zm = warped(smooth)
    template_zm = template.copy()
    inside = warped(np.ones(smooth.shape, np.uint8), cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8), borderValue=0)  # no pixel blends in the outside
    weight = inside.astype(np.float32)
    for values in (template_zm, image_zm):  # zero mean inside, zero outside; in place (a frame-sized
        values -= np.float32(cv2.mean(values, inside)[0])  # temporary costs fresh pages)
    for values in (*gradients, template_zm, image_zm):
        values *= weight

    x_powers = np.stack([np.ones(width, np.float32), np.arange(width, dtype=np.float32),
                         np.arange(width, dtype=np.float32) ** 2], axis=1)  # (w, 3)
    y = np.arange(height, dtype=np.float64)
    y_powers = np.stack([np.ones_like(y), y, y * y])  # (3, h)
    product = weight  # its memory, reused

    def moments(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(3, 3): [b, a] = sum of first * second * x^a * y^b."""
        cv2.multiply(first, second, dst=product)
        by_row = cv2.gemm(product, x_powers, 1.0, None, 0.0).astype(np.float64)  # (h, 3)
        return cv2.gemm(y_powers, by_row, 1.0, None, 0.0)

    pairs = {(k, l): moments(gradients[k], gradients[l]) for k, l in ((0, 0), (0, 1), (1, 1))}
    pairs[1, 0] = pairs[0, 1]
    hessian = np.array([[pairs[gk, gl][bk + bl, ak + al] for gl, al, bl in _COLUMNS]
                        for gk, ak, bk in _COLUMNS])

    def projection(values: np.ndarray) -> np.ndarray:
        """(6,): the affine Jacobian's columns dotted with ``values``."""
        by_gradient = [moments(g, values) for g in gradients]
        return np.array([by_gradient[g][b, a] for g, a, b in _COLUMNS])

    hessian = _SIMILARITY.T @ hessian @ _SIMILARITY
    image_projection, template_projection = (_SIMILARITY.T @ projection(values)
                                             for values in (image_zm, template_zm))
    correlation = float(cv2.sumElems(cv2.multiply(image_zm, template_zm, dst=product))[0])
    image_norm, template_norm = cv2.norm(image_zm), cv2.norm(template_zm)
    if image_norm * template_norm == 0.0 or not np.linalg.cond(hessian) < 1e12:  # inf or nan: singular
        raise cv2.error("ECC: the images have no detail in common")  # a plain image, or none of it inside
    inverse = np.linalg.inv(hessian)
    projected = inverse @ image_projection
    denominator = correlation - template_projection @ projected
    if denominator <= 0:
        raise cv2.error("ECC: the images do not correlate")
    scale = (image_norm ** 2 - image_projection @ projected) / denominator
    delta = _SIMILARITY @ inverse @ (scale * template_projection - image_projection)
    updated = warp + np.array([[delta[0], delta[2], delta[4]], [delta[1], delta[3], delta[5]]])
    return correlation / (image_norm * template_norm), updated
