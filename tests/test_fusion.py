"""Fusion on small arrays: the weight maps, the layer masks and the pyramid, checked exactly."""
import cv2
import numpy as np

from engine.depthmap import DepthmapFusion
from engine.focus import focus_measure
from engine.pyramid import PyramidFusion, collapse, laplacian_pyramid


def _frames(rng, n=4, shape=(40, 50, 3)):
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def test_layer_masks_composited_bottom_up_reproduce_the_fused_image():
    rng = np.random.default_rng(0)
    images = _frames(rng)
    fusion = DepthmapFusion(images[0].shape)
    composite = None
    for k, image in enumerate(images):
        focus = rng.random(image.shape[:2], dtype=np.float32) ** 3
        mask = fusion.add(image, focus, k)
        if k == 0:
            assert np.allclose(mask, 1.0)  # the bottom layer's mask is white
            composite = image.copy()
        else:
            assert mask.min() >= 0.0 and mask.max() <= 1.0
            composite = mask[..., None] * image + (1 - mask[..., None]) * composite
    assert np.abs(composite - fusion.result()).max() < 1e-5


def test_the_sharper_frame_wins_where_it_is_sharper():
    rng = np.random.default_rng(1)
    sharp = rng.random((60, 60, 1), dtype=np.float32)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)[..., None]
    left_sharp = np.concatenate([sharp[:, :30], blurred[:, 30:]], axis=1)
    right_sharp = np.concatenate([blurred[:, :30], sharp[:, 30:]], axis=1)
    fusion = DepthmapFusion(sharp.shape)
    for k, image in enumerate([left_sharp, right_sharp]):
        fusion.add(image, focus_measure(image[..., 0], 1.0, 2.0), k)
    depth = fusion.depth()
    assert (depth[:, :20] == 0).all() and (depth[:, 40:] == 1).all()
    inner = (slice(None), np.r_[0:20, 40:60])
    assert np.abs(fusion.result()[inner] - sharp[inner]).max() < 0.02


def test_flat_frames_weigh_the_same():
    flat = [np.full((10, 10, 3), v, np.float32) for v in (0.2, 0.4, 0.6)]
    fusion = DepthmapFusion(flat[0].shape)
    for k, image in enumerate(flat):
        fusion.add(image, np.zeros((10, 10), np.float32), k)
    assert np.allclose(fusion.result(), 0.4, atol=1e-6)


def test_pyramid_collapse_inverts_decomposition_on_odd_sizes():
    image = np.random.default_rng(2).random((37, 53, 3), dtype=np.float32)
    bands = laplacian_pyramid(image, 4)
    assert [b.shape for b in bands] == [(37, 53, 3), (19, 27, 3), (10, 14, 3), (5, 7, 3)]
    assert np.abs(collapse(bands) - image).max() < 1e-5


def test_pyramid_fusion_keeps_the_detail_of_each_half():
    rng = np.random.default_rng(3)
    sharp = cv2.GaussianBlur(rng.random((256, 256, 3), dtype=np.float32), (0, 0), 1.0) * 2 - 0.5
    sharp = np.clip(sharp, 0, 1)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    a = np.concatenate([sharp[:, :128], blurred[:, 128:]], axis=1)
    b = np.concatenate([blurred[:, :128], sharp[:, 128:]], axis=1)
    fusion = PyramidFusion(sharp.shape)
    fusion.add(a)
    fusion.add(b)
    inner = (slice(16, -16), np.r_[16:112, 144:240])
    assert np.abs(fusion.result() - sharp)[inner].mean() < 0.25 * np.abs(blurred - sharp)[inner].mean()


def test_a_blurred_first_frame_does_not_overflow_the_weights():
    """The focus scale is set by the first frame; a frame a million times sharper must not reach inf."""
    rng = np.random.default_rng(4)
    images = _frames(rng, n=3, shape=(20, 30, 3))
    focus = [np.full((20, 30), 1e-9, np.float32), np.full((20, 30), 1e-3, np.float32),
             np.full((20, 30), 2e-9, np.float32)]
    fusion = DepthmapFusion(images[0].shape)
    masks = [fusion.add(image, f.copy(), k) for k, (image, f) in enumerate(zip(images, focus))]
    result = fusion.result()
    assert np.isfinite(result).all() and np.abs(result - images[1]).max() < 1e-4
    assert np.allclose(masks[1], 1.0) and masks[2].max() < 1e-4
    assert (fusion.depth() == 1).all()


def test_plain_background_is_averaged_not_picked_from_noise():
    """Layer masks an editor can paint: flat, noisy background gets smooth masks, detail stays chosen."""
    rng = np.random.default_rng(5)
    detail = rng.random((40, 40), dtype=np.float32)
    images = []
    for k in range(3):
        image = np.full((120, 160, 1), 0.8, np.float32) + rng.normal(0, 0.004, (120, 160, 1)).astype(np.float32)
        patch = detail if k == 1 else cv2.GaussianBlur(detail, (0, 0), 4)
        image[40:80, 60:100, 0] = patch
        images.append(image)
    fusion = DepthmapFusion(images[0].shape)
    masks = [fusion.add(image, focus_measure(image[..., 0]), k) for k, image in enumerate(images)]
    background = (slice(0, 25), slice(None))
    assert masks[1][background].std() < 0.05 and masks[2][background].std() < 0.05
    assert np.allclose(masks[2][background], 1 / 3, atol=0.1)  # three frames averaged: 1/3 on top
    assert masks[1][50:70, 70:90].min() > 0.95 and masks[2][50:70, 70:90].max() < 0.05
