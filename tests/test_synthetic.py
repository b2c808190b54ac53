"""The bracket generator is the yardstick of every quality test: check that it renders what it claims."""
import numpy as np
import pytest

from engine.focus import focus_measure
from engine.synthetic import BracketSpec, depth_map, render_bracket

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
