"""engine.buffers: a buffer given back is handed out again for the same shape and type, and only then."""
import numpy as np

from focusdrop.engine.buffers import BufferPool


def test_a_buffer_given_back_is_taken_again():
    pool = BufferPool()
    first = pool.take((4, 5, 3), np.float32)
    assert first.shape == (4, 5, 3) and first.dtype == np.float32 and first.flags.c_contiguous
    pool.give(first)
    assert pool.take((4, 5, 3), np.float32) is first
    assert pool.take((4, 5, 3), np.float32) is not first  # taken already: a new one


def test_other_shapes_types_and_views_are_not_mixed_up():
    pool = BufferPool()
    whole = pool.take((4, 5), np.float32)
    pool.give(whole, whole[1:])  # the view is left alone
    assert pool.take((4, 5), np.uint16) is not whole
    assert pool.take((5, 4), np.float32) is not whole
    assert pool.take((4, 5), np.float32) is whole
    pool.give(whole)
    pool.clear()
    assert pool.take((4, 5), np.float32) is not whole


def test_a_tiff_is_decoded_into_the_buffer_given(standard_bracket):
    from focusdrop.engine.frames import probe_frame, read_frame
    info = probe_frame(standard_bracket.paths[0])
    buffer = np.zeros(info.shape, info.dtype)
    pixels = read_frame(info, out=buffer)
    assert pixels is buffer and np.array_equal(pixels, read_frame(info))
