"""Floyd–Steinberg dithering of the K-means quantizer."""

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from imcompress import UsageError
from imcompress.kmeans import KMeansQuantizer
from imcompress.kmeans._dither import dither_indices


@pytest.fixture(scope="module")
def small(sample):
    return np.ascontiguousarray(sample[::4, ::4])


@pytest.fixture
def gradient():
    """A horizontal grey ramp 0..255, 32 rows, with a slight colour tilt."""
    ramp = np.linspace(0, 255, 256)
    img = np.stack([ramp, ramp * 0.9 + 10, 255 - ramp], axis=-1)
    return np.clip(np.rint(np.broadcast_to(img, (32, 256, 3))), 0, 255).astype(np.uint8)


def test_strength_zero_is_no_dither(small):
    plain = KMeansQuantizer(8).fit(small)
    zero = KMeansQuantizer(8, dither=0.0).fit(small)
    np.testing.assert_array_equal(plain.predict(small), zero.predict(small))


def test_dithered_output_uses_only_palette_colours(small):
    q = KMeansQuantizer(8, dither=1.0).fit(small)
    out = q.quantize(small)
    colours = np.unique(out.reshape(-1, 3), axis=0)
    palette = {tuple(c) for c in q.palette_}
    assert all(tuple(c) in palette for c in colours)
    assert not np.array_equal(q.predict(small), KMeansQuantizer(8).fit(small).predict(small))


def test_dither_keeps_local_mean_closer_on_a_gradient(gradient):
    q = KMeansQuantizer(4, speed=1).fit(gradient)
    flat = q.quantize(gradient).astype(np.float64)
    dq = KMeansQuantizer(4, speed=1, dither=1.0).fit(gradient)
    np.testing.assert_array_equal(dq.palette_, q.palette_)
    dith = dq.quantize(gradient).astype(np.float64)
    ref = gradient.astype(np.float64)

    def local_error(img):
        blur = uniform_filter(img, size=(9, 9, 1), mode="nearest")
        return float(np.abs(blur - uniform_filter(ref, size=(9, 9, 1), mode="nearest"))[4:-4, 4:-4].mean())

    assert local_error(dith) < 0.5 * local_error(flat)
    # half strength lies in between
    half = KMeansQuantizer(4, speed=1, dither=0.5).fit(gradient).quantize(gradient).astype(np.float64)
    assert local_error(dith) < local_error(half) < local_error(flat)


def test_dither_is_deterministic(small):
    q = KMeansQuantizer(16, dither=0.8).fit(small)
    np.testing.assert_array_equal(q.predict(small), q.predict(small))


def test_dither_kernel_matches_a_reference_floyd_steinberg():
    # a tiny image against a straightforward Python Floyd-Steinberg (serpentine,
    # clamped error) on a 3-colour palette
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(6, 7, 3)).astype(np.uint8)
    palette = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255]], np.uint8)
    guess = np.zeros((6, 7), np.int64)
    ours = dither_indices(img, palette, guess, 1.0)
    P = palette.astype(float)
    work = img.astype(float)
    ref = np.zeros((6, 7), np.int64)
    for y in range(6):
        xs = range(7) if y % 2 == 0 else range(6, -1, -1)
        dx = 1 if y % 2 == 0 else -1
        for x in xs:
            v = np.clip(work[y, x], 0, 255)
            j = int(np.argmin(((P - v) ** 2).sum(1)))
            ref[y, x] = j
            e = np.clip(v - P[j], -64, 64)
            for (yy, xx, f) in ((y, x + dx, 7), (y + 1, x - dx, 3), (y + 1, x, 5), (y + 1, x + dx, 1)):
                if 0 <= yy < 6 and 0 <= xx < 7:
                    work[yy, xx] += e * f / 16
    np.testing.assert_array_equal(ours, ref)


def test_dither_keeps_transparent_pixels_transparent(small):
    alpha = np.full(small.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0
    rgba = np.dstack([small, alpha])
    q = KMeansQuantizer(8, dither=1.0).fit(rgba)
    out = q.quantize(rgba)
    assert np.all(out[:, :40, 3] == 0)
    assert np.all(out[:, 40:, 3] == 255)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "x", True])
def test_dither_range_errors(small, bad):
    with pytest.raises(UsageError, match="dither=.* should be a number from 0"):
        KMeansQuantizer(4, dither=bad).fit(small)
