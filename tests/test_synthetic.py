"""The bracket generator is the yardstick of every quality test: check that it renders what it claims."""
import numpy as np
import pytest

from focusdrop.engine.focus import focus_measure
from focusdrop.engine.synthetic import BracketSpec, depth_map, render_bracket

SMALL = BracketSpec(width=240, height=160, frames=5, scene="tilted", shake=0, rotation=0, breathing=0,
                    flicker=0, noise=0, bit_depth=16)


def test_reference_frame_is_untouched_and_others_move():
    truth, frames = render_bracket(BracketSpec(width=240, height=160, frames=5))
    assert np.array_equal(truth.transforms[truth.reference], np.eye(3))
    assert np.array_equal(truth.gains[truth.reference], np.ones(3))
    moved = [k for k in range(5) if not np.allclose(truth.transforms[k], np.eye(3))]
    assert moved == [0, 1, 3, 4]
    assert all(f.dtype == np.uint16 and f.shape == (160, 240, 3) for f in frames)


def test_each_region_is_sharpest_in_the_frame_focused_at_its_depth():
    truth, frames = render_bracket(SMALL)
    sharpness = np.array([focus_measure(f.astype(np.float32).mean(axis=2) / 65535) for f in frames])
    columns = np.linspace(20, 219, 5).astype(int)  # the tilted plane gets deeper to the right
    sharpest = [int(np.argmax(sharpness[:, 80, x])) for x in columns]
    expected = [int(np.round(truth.depth[80, x] * 4)) for x in columns]
    assert sharpest == expected


@pytest.mark.parametrize("scene", ["tilted", "sphere", "steps"])
def test_depth_maps_span_the_bracket(scene):
    depth = depth_map(scene, 300, 200)
    assert depth.shape == (200, 300) and depth.dtype == np.float32
    assert depth.min() >= 0.0 and depth.max() <= 1.0 and depth.max() - depth.min() > 0.8


def test_unknown_scene_is_refused():
    with pytest.raises(ValueError, match="unknown scene"):
        depth_map("cube", 10, 10)


def test_ledges_occlude_at_every_step():
    """In the frame focused on the far band, the near band's blur spreads over the far band beside the
    step; in the frame focused on the near band, the far band there is blurred but clean of the near band."""
    spec = BracketSpec(width=400, height=120, frames=5, scene="ledges", shake=0, rotation=0, breathing=0,
                       flicker=0, noise=0, bit_depth=16, seed=4)
    truth, frames = render_bracket(spec)
    frames = [f.astype(np.float32) / 65535 for f in frames]
    assert np.array_equal(np.unique(truth.depth), np.array([0.0, 0.33, 0.67, 1.0], np.float32))
    step = 200  # columns 100-199 are at depth 1 (the last frame's focus), 200-299 at depth 0 (the first's)
    assert truth.depth[60, step - 1] == 1.0 and truth.depth[60, step] == 0.0
    beside = (slice(20, 100), slice(step - 6, step - 1))  # the far band, 1-5 px from the step
    far_inside = (slice(20, 100), slice(120, 180))
    error = [float(np.abs(f[beside] - truth.image[beside]).mean()) for f in frames]
    assert np.abs(frames[-1][far_inside] - truth.image[far_inside]).mean() < 0.002  # sharp away from the step
    assert error[-1] > 0.02  # the near band's skirt
    sharp_near = (slice(20, 100), slice(step + 2, step + 40))
    assert np.abs(frames[0][sharp_near] - truth.image[sharp_near]).mean() < 0.002


def test_black_surfaces_render_without_nan():
    """Compositing leaves values of -1e-16 where a surface is black; the camera must not turn them into NaN,
    which its resampling spreads as 0 over its kernel's reach."""
    spec = BracketSpec(width=400, height=120, frames=3, scene="ledges", shake=0, rotation=0, breathing=0,
                       flicker=0, noise=0, bit_depth=16, seed=5)
    truth, frames = render_bracket(spec)
    far = (slice(10, 110), slice(115, 180))  # the band at depth 1, sharp in the last frame, beyond the skirts
    assert (truth.image[far] == 0).any()  # the photograph's blue is clipped to black in places
    last = list(frames)[-1].astype(np.float32) / 65535
    assert np.abs(last[far] - truth.image[far]).max() < 0.01  # without the fix: 0.15
