"""The tiled sampler: exact on images past OpenCV's 32 767-pixel limit and on memmaps."""
import numpy as np
import pytest
import tifffile

from groovescan.sampling import block_reduce_mean, sample, sample_compact


def _plane(shape):
    """A bilinear function: linear interpolation must reproduce it exactly."""
    rows, cols = np.indices(shape, dtype=np.float64)
    return (3.0 + 0.25 * rows + 0.001 * cols).astype(np.float32)


@pytest.fixture(scope="module")
def long_strip(tmp_path_factory):
    """A 40 000 x 48 px strip as an uncompressed TIFF, opened as a memmap."""
    path = tmp_path_factory.mktemp("strip") / "strip.tif"
    tifffile.imwrite(path, _plane((40_000, 48)))
    image = tifffile.memmap(path, mode="r")
    assert isinstance(image, np.memmap)
    return image


def test_sample_beyond_opencv_limit_on_memmap(long_strip):
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, 39_999, 5000)
    cols = rng.uniform(0, 47, 5000)
    got = sample(long_strip, rows, cols, interpolation="linear", max_box_px=1 << 16)
    expected = 3.0 + 0.25 * rows + 0.001 * cols
    # float32 pixels of values up to 10 000: a few ulp of error
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-3)


def test_sample_compact_falls_back_for_sprawling_sets(long_strip):
    rows = np.linspace(0, 39_999, 64, dtype=np.float32)[:, None] + np.zeros((1, 8), np.float32)
    cols = np.tile(np.linspace(1, 46, 8, dtype=np.float32), (64, 1))
    got = sample_compact(long_strip, rows, cols, interpolation="linear")
    np.testing.assert_allclose(got, 3.0 + 0.25 * rows + 0.001 * cols, rtol=2e-6, atol=2e-3)


def test_points_outside_are_nan(long_strip):
    got = sample(long_strip, np.array([-5.0, 40_010.0, 10.0]), np.array([3.0, 3.0, 60.0]))
    assert np.isnan(got).all()


def test_cubic_is_exact_at_pixel_centres():
    image = np.random.default_rng(1).random((300, 40_000)).astype(np.float32)
    rows = np.array([0, 17, 299]); cols = np.array([39_999, 33_000, 5])
    np.testing.assert_allclose(sample(image, rows, cols, interpolation="cubic"), image[rows, cols], atol=1e-5)


def test_block_reduce_mean_reads_in_strips(long_strip):
    reduced = block_reduce_mean(long_strip, 8, rows_per_strip=800)
    assert reduced.shape == (5000, 6)
    # the mean of a plane over a block is its value at the block centre
    rows, cols = np.indices(reduced.shape)
    np.testing.assert_allclose(reduced, 3.0 + 0.25 * (8 * rows + 3.5) + 0.001 * (8 * cols + 3.5), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.uint8])
def test_sample_compact_matches_sample_and_marks_points_off_the_image(dtype):
    # a compact patch of radial lines (the walls' reading pattern), partly off the image
    image = (np.random.default_rng(2).random((500, 700)) * 200).astype(dtype)
    theta = np.linspace(0.3, 0.5, 3000, dtype=np.float32)[:, None]
    r = np.float32(520) + np.arange(-20, 21, dtype=np.float32)[None, :] * 0.5
    rows, cols = 250 + r * np.sin(theta), -20 + r * np.cos(theta)
    got = sample_compact(image, rows, cols, interpolation="cubic")
    expected = sample(image.astype(np.float32), rows, cols, interpolation="cubic")
    off = (rows < -0.5) | (rows > 499.5) | (cols < -0.5) | (cols > 699.5)
    assert off.any() and (~off).any()
    assert np.isnan(got[off]).all()
    np.testing.assert_allclose(got[~off], expected[~off], atol=1e-3)


def test_sample_compact_rounds_16_bit_only_where_it_cannot_matter():
    bright = (30000 + np.random.default_rng(3).random((200, 200)) * 2000).astype(np.uint16)
    rows, cols = np.meshgrid(np.linspace(5, 190, 300, dtype=np.float32), np.linspace(5, 190, 40, dtype=np.float32))
    exact = sample(bright.astype(np.float32), rows, cols)
    np.testing.assert_allclose(sample_compact(bright, rows, cols), exact, atol=0.51)   # whole levels
    dark = (bright // 500).astype(np.uint16)        # nearly black film: a few levels
    exact = sample(dark.astype(np.float32), rows, cols)
    np.testing.assert_allclose(sample_compact(dark, rows, cols), exact, atol=1e-3)
