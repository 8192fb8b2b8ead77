"""The shared validation module: check_image and the one to_uint8."""

import numpy as np
import pytest
from skimage.util import img_as_ubyte

import imcompress
from imcompress import UsageError, check_image, to_uint8
from imcompress.metrics import bits_per_pixel, compression_ratio


# -- check_image ---------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [3, 4])
def test_check_image_returns_the_array_without_copy(channels):
    img = np.arange(2 * 5 * channels, dtype=np.uint8).reshape(2, 5, channels)
    before = img.copy()
    out = check_image(img)
    assert out is img  # no copy for an array that is already right
    np.testing.assert_array_equal(img, before)


def test_check_image_accepts_array_likes():
    nested = [[[1, 2, 3], [4, 5, 6]]]
    with pytest.raises(UsageError, match=r"dtype int64 should be \(H, W, 3\|4\) uint8"):
        check_image(nested)  # a Python list is int64: never silently cast
    out = check_image(np.array(nested, dtype=np.uint8))
    assert out.shape == (1, 2, 3) and out.dtype == np.uint8


@pytest.mark.parametrize(
    "image, kwargs, match",
    [
        (np.zeros((4, 4), np.uint8), {}, r"image of shape \(4, 4\) and dtype uint8 should be \(H, W, 3\|4\) uint8"),
        (np.zeros((4, 4, 2), np.uint8), {}, r"shape \(4, 4, 2\) .* should be \(H, W, 3\|4\)"),
        (np.zeros((4, 4, 3), np.float64), {}, r"dtype float64 should be \(H, W, 3\|4\) uint8"),
        (np.zeros((4, 4, 3), np.uint16), {}, r"dtype uint16"),
        (np.zeros((4, 4, 4), np.uint8), {"channels": 3}, r"should be \(H, W, 3\) uint8"),
        (np.zeros((0, 4, 3), np.uint8), {}, r"too small: it needs at least 1 row and 1 column"),
        (np.zeros((1, 4, 3), np.uint8), {"min_shape": (2, 1)}, r"needs at least 2 rows and 1 column"),
        (np.zeros((4, 2, 3), np.uint8), {"min_shape": (2, 3)}, r"at least 2 rows and 3 columns"),
        (np.zeros((4, 4), np.uint8), {"name": "reference", "hint": "load it with load_image"},
         r"^reference of shape .*uint8; load it with load_image$"),
    ],
)
def test_check_image_errors(image, kwargs, match):
    with pytest.raises(UsageError, match=match):
        check_image(image, **kwargs)


def test_check_image_error_is_a_value_error():
    with pytest.raises(ValueError):
        check_image(np.zeros((3, 3)))


# -- to_uint8 ------------------------------------------------------------------------------
def test_to_uint8_rounds_half_to_even_and_clips():
    x = np.array([-1e9, -0.5, 0.5, 1.5, 2.5, 127.49, 254.5, 255.5, 1e9])
    assert to_uint8(x).tolist() == [0, 0, 0, 2, 2, 127, 254, 255, 255]
    assert to_uint8(x).dtype == np.uint8


def test_to_uint8_does_not_mutate_and_keeps_shape(rng):
    x = rng.normal(128, 80, (5, 6, 3))
    before = x.copy()
    out = to_uint8(x)
    assert out.shape == x.shape
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(out, np.clip(np.round(x), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_to_uint8_16_bit_matches_skimage(dtype):
    v = np.arange(65536).astype(dtype)
    # rounded, as img_as_ubyte does for floats (for uint16 it truncates, v >> 8)
    expected = img_as_ubyte(np.arange(65536) / 65535.0)
    np.testing.assert_array_equal(to_uint8(v, in_range=(0, 65535)), expected)


def test_to_uint8_unit_floats_match_skimage(rng):
    x = rng.random((50, 3))
    x[0] = [0.0, 1.0, 0.5]
    # skimage rounds too (img_as_ubyte of floats: x * 255 then rint)
    np.testing.assert_array_equal(to_uint8(x, in_range=(0.0, 1.0)), img_as_ubyte(x))


def test_to_uint8_image_range_stretches_each_channel():
    x = np.zeros((2, 2, 3))
    x[..., 0] = [[10.0, 20.0], [30.0, 40.0]]
    x[..., 1] = 7.0  # flat channel -> 0
    x[..., 2] = [[-1.0, 0.0], [0.0, 1.0]]
    out = to_uint8(x, in_range="image")
    assert out[..., 0].tolist() == [[0, 85], [170, 255]]
    assert (out[..., 1] == 0).all()
    assert out[..., 2].tolist() == [[0, 128], [128, 255]]  # 127.5 rounds to even
    whole = to_uint8(x, in_range="image", channel_axis=None)
    assert whole.min() == 0 and whole.max() == 255


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_range": "auto"}, r"in_range='auto' should be 'image' or a \(low, high\) pair"),
        ({"in_range": (5,)}, r"should be 'image' or a \(low, high\) pair"),
        ({"in_range": (3, 3)}, r"in_range=\(3, 3\) should be finite with low < high"),
        ({"in_range": (0, np.inf)}, "finite with low < high"),
    ],
)
def test_to_uint8_bad_range(kwargs, match):
    with pytest.raises(UsageError, match=match):
        to_uint8(np.zeros(3), **kwargs)


@pytest.mark.parametrize("values", [[1.0, np.nan], [np.nan, 1.0], [np.inf, np.nan, -np.inf], [[np.nan]]])
def test_to_uint8_refuses_nan(values):
    with pytest.raises(UsageError, match="values contain NaN"):
        to_uint8(np.array(values))


def test_to_uint8_infinities_empty_and_the_callers_array():
    values = np.array([-np.inf, -0.5, 0.5, 2.5, 254.5, 255.5, np.inf])
    kept = values.copy()
    # round half to even, then clip
    assert to_uint8(values).tolist() == [0, 0, 0, 2, 254, 255, 255]
    np.testing.assert_array_equal(values, kept)
    assert to_uint8(np.empty((0, 3))).shape == (0, 3)


# -- one definition of bpp and ratio ------------------------------------------------------
def test_ratio_counts_alpha_and_bpp_does_not():
    assert bits_per_pixel(1200, (40, 30, 3)) == bits_per_pixel(1200, (40, 30, 4)) == 8.0
    assert compression_ratio(1200, (40, 30, 3)) == 3.0
    assert compression_ratio(1200, (40, 30, 4)) == 4.0


@pytest.mark.parametrize("channels", [3, 4])
def test_inspect_uses_the_metrics_definitions(rng, channels):
    img = rng.integers(0, 256, (12, 10, channels), dtype=np.uint8)
    data = imcompress.compress(img, "kmeans", n_colors=4)
    meta = imcompress.inspect(data)
    assert meta["bpp"] == bits_per_pixel(len(data), img.shape) == 8 * len(data) / 120
    assert meta["ratio"] == compression_ratio(len(data), img.shape) == 120 * channels / len(data)


# -- check_scalar --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, kwargs, expected",
    [(3, {"kind": "int"}, 3), (np.int64(7), {"kind": "int", "min_val": 7}, 7),
     (0.5, {"kind": "real", "min_val": 0, "max_val": 1}, 0.5), (np.float32(2), {"kind": "real"}, 2.0),
     (1, {"kind": "real", "max_val": 1}, 1.0), (None, {"kind": "int", "allow_none": True}, None)],
)
def test_check_scalar_accepts(value, kwargs, expected):
    from imcompress._validation import check_scalar

    out = check_scalar(value, "x", **kwargs)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    "value, kwargs, match",
    [
        (True, {"kind": "int"}, r"^x=True should be an integer$"),
        (2.0, {"kind": "int", "min_val": 1}, r"^x=2\.0 should be an integer >= 1$"),
        ("3", {"kind": "real"}, r"^x='3' should be a number$"),
        (np.nan, {"kind": "real", "min_val": 0, "max_val": 1}, r"^x=nan should be a number from 0 to 1$"),
        (11, {"kind": "int", "min_val": 1, "max_val": 10, "hint": "1 best"}, r"^x=11 .* from 1 to 10 \(1 best\)$"),
        (-1, {"kind": "int", "max_val": -2}, r"^x=-1 should be an integer <= -2$"),
        (0, {"kind": "int", "min_val": 1, "allow_none": True}, r"^x=0 should be an integer >= 1 or None$"),
        (None, {"kind": "int"}, r"^x=None should be an integer$"),
    ],
)
def test_check_scalar_errors(value, kwargs, match):
    from imcompress._validation import check_scalar

    with pytest.raises(UsageError, match=match):
        check_scalar(value, "x", **kwargs)
