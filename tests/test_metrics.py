"""Metrics against hand-computed values and scikit-image's references."""

import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from imcompress import UsageError
from imcompress.metrics import bits_per_pixel, compression_ratio, mse, psnr, rmse, ssim, unique_colors


def test_rmse_does_not_wrap_around_in_uint8():
    a = np.array([[[0, 10, 200]]], dtype=np.uint8)
    b = np.array([[[10, 0, 250]]], dtype=np.uint8)
    # uint8 a - b would give 246, 10, 206: the true differences are -10, 10, -50
    assert rmse(a, b) == pytest.approx(np.sqrt((100 + 100 + 2500) / 3), rel=1e-15)
    assert rmse(b, a) == rmse(a, b)
    with np.errstate(over="ignore"):
        wrapped = np.sqrt(np.mean((a - b) ** 2))
    assert abs(wrapped - rmse(a, b)) > 1  # the bug the study made, for contrast


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_mse_rmse_match_skimage(rng, dtype):
    a = rng.integers(0, 256, (17, 23, 3)).astype(dtype)
    b = rng.integers(0, 256, (17, 23, 3)).astype(dtype)
    expected = mean_squared_error(a.astype(np.float64), b.astype(np.float64))
    assert mse(a, b) == pytest.approx(expected, rel=1e-12)
    assert rmse(a, b) == pytest.approx(np.sqrt(expected), rel=1e-12)
    assert isinstance(rmse(a, b), float)


def test_psnr_matches_skimage(rng):
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    assert psnr(a, b, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(a.astype(float), b.astype(float), data_range=1.0), rel=1e-12)
    assert psnr(a, a) == float("inf")
    # a known value: a constant error of 1 gives 20*log10(255)
    assert psnr(np.zeros((4, 4)), np.ones((4, 4))) == pytest.approx(20 * np.log10(255), rel=1e-12)


def test_ssim_matches_skimage(rng):
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(a, b, data_range=255, channel_axis=-1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-12)
    assert ssim(a, a) == pytest.approx(1.0)
    gray = a[:, :, 0]
    assert ssim(gray, b[:, :, 0]) == pytest.approx(
        structural_similarity(gray, b[:, :, 0], data_range=255), rel=1e-12)


def test_ssim_small_images(rng):
    a = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] ^= 1
    # 5 pixels: the window shrinks to 5
    assert ssim(a, b) == pytest.approx(
        structural_similarity(a, b, data_range=255, channel_axis=-1, win_size=5), rel=1e-12)
    tiny = rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)
    assert ssim(tiny, tiny) == 1.0
    assert np.isnan(ssim(tiny, 255 - tiny))


def test_shape_mismatch_is_a_usage_error():
    with pytest.raises(UsageError, match=r"shapes differ: reference \(2, 2, 3\) vs test \(2, 3, 3\)"):
        rmse(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="shapes differ"):  # still a ValueError for old callers
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8)))


def test_unique_colors():
    img = np.zeros((3, 4, 3), dtype=np.uint8)
    assert unique_colors(img) == 1
    img[0, 0] = (1, 0, 0)
    img[0, 1] = (0, 1, 0)
    img[0, 2] = (0, 0, 1)
    img[1, 1] = (0, 0, 1)
    assert unique_colors(img) == 4
    # colours that differ only in a high channel must not collide when packed
    img2 = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    assert unique_colors(img2) == 4
    assert unique_colors(np.array([[1, 2], [2, 3]], dtype=np.uint8)) == 3
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 1, 3] = 255
    assert unique_colors(rgba) == 2
    floats = np.array([[[0.5, 0, 0], [0.5, 0, 0], [0.25, 0, 0]]])
    assert unique_colors(floats) == 2


def test_unique_colors_matches_numpy(rng):
    img = rng.integers(0, 4, (30, 30, 3), dtype=np.uint8) * 60
    assert unique_colors(img) == np.unique(img.reshape(-1, 3), axis=0).shape[0]


def test_sizes():
    assert bits_per_pixel(1000, (100, 80, 3)) == 1.0
    assert bits_per_pixel(0, (10, 10)) == 0.0
    assert compression_ratio(1000, (100, 80, 3)) == 24.0
    assert compression_ratio(100, (10, 10)) == 1.0
    with pytest.raises(UsageError, match="n_bytes=0"):
        compression_ratio(0, (10, 10, 3))
    with pytest.raises(UsageError, match="n_bytes=-1 should be >= 0"):
        bits_per_pixel(-1, (10, 10, 3))
    with pytest.raises(UsageError, match=r"shape=\(0, 10\) should be"):
        bits_per_pixel(10, (0, 10))


def test_metrics_do_not_mutate(rng):
    a = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
    a0, b0 = a.copy(), b.copy()
    rmse(a, b), psnr(a, b), ssim(a, b), unique_colors(a)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
