"""pngquant-style options: colour spaces, fixed colours, alpha, speed and quality ranges."""

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

from imcompress import ExitCode, QualityError, UsageError
from imcompress.kmeans import (
    SPEED_LEVELS,
    KMeansQuantizer,
    mse_to_quality,
    parse_quality,
    quality_to_mse,
    quantize_quality,
)
from imcompress.kmeans._spaces import to_rgb_float, to_space
from imcompress.metrics import mse, psnr


@pytest.fixture(scope="module")
def small(sample):
    return np.ascontiguousarray(sample[::4, ::4])


# -- colour spaces -----------------------------------------------------------------


def test_space_round_trips(rng):
    colors = rng.integers(0, 256, size=(500, 3)).astype(np.uint8)
    for space in ("rgb", "lab", "oklab"):
        back = to_rgb_float(to_space(colors, space), space)
        np.testing.assert_allclose(back, colors, atol=1e-3)
    # CIELAB is scikit-image's
    np.testing.assert_allclose(to_space(colors, "lab"), rgb2lab(colors[None] / 255.0)[0], atol=1e-12)
    # Oklab reference values from Ottosson's post: white L=1, a=b=0 (scaled by 100)
    white = to_space(np.array([[255, 255, 255]], np.uint8), "oklab")[0]
    np.testing.assert_allclose(white, [100.0, 0.0, 0.0], atol=1e-2)


def test_premultiplied_alpha_round_trip(rng):
    colors = rng.integers(0, 256, size=(300, 4)).astype(np.uint8)
    colors[:50, 3] = 0
    pts = to_space(colors, "rgb")
    assert np.all(pts[:50] == 0)  # every fully transparent colour is one point
    back = to_rgb_float(pts, "rgb")
    opaque = colors[:, 3] == 255
    np.testing.assert_allclose(back[opaque], colors[opaque], atol=1e-9)


@pytest.mark.parametrize("space", ["lab", "oklab"])
def test_perceptual_spaces_give_sane_srgb_palettes(small, space):
    rgb = KMeansQuantizer(16).fit(small)
    q = KMeansQuantizer(16, color_space=space).fit(small)
    assert q.palette_.dtype == np.uint8 and q.palette_.shape == (16, 3)
    np.testing.assert_array_equal(q.palette_, np.clip(np.rint(q.cluster_centers_), 0, 255))
    out = q.quantize(small)
    # fewer dB than RGB clustering (which optimises MSE exactly) but not far
    assert psnr(small, rgb.quantize(small)) - 3.0 < psnr(small, out) <= psnr(small, rgb.quantize(small)) + 0.1
    de = deltaE_ciede2000(rgb2lab(small), rgb2lab(out)).mean()
    de_rgb = deltaE_ciede2000(rgb2lab(small), rgb2lab(rgb.quantize(small))).mean()
    assert 0 < de < 8
    if space == "lab":
        # clustering in CIELAB lowers the perceptual error
        assert de < de_rgb


def test_lab_palette_is_the_rounded_lab_centroid(small):
    q = KMeansQuantizer(8, color_space="lab").fit(small)
    # each palette colour is the sRGB image of a CIELAB mean of its pixels
    labels = q.predict(small).ravel()
    lab = rgb2lab(small / 255.0).reshape(-1, 3)
    for j in range(8):
        sel = labels == j
        mean_rgb = lab2rgb(lab[sel].mean(0)[None, None])[0, 0] * 255
        np.testing.assert_allclose(q.palette_[j], mean_rgb, atol=6)


# -- fixed colours -------------------------------------------------------------------


def test_fixed_colours_present_exactly(small):
    fixed = np.array([[255, 0, 255], [0, 255, 0], [12, 34, 56]], np.uint8)
    for space in ("rgb", "oklab"):
        q = KMeansQuantizer(10, fixed_colors=fixed, color_space=space).fit(small)
        rows = {tuple(c) for c in q.palette_}
        assert all(tuple(c) in rows for c in fixed)
        assert q.palette_.shape == (10, 3)
    # the free centroids still fit the image: better than the fixed ones alone
    assert psnr(small, q.quantize(small)) > 20


def test_fixed_colour_errors(small):
    with pytest.raises(UsageError, match=r"fixed_colors of shape \(2, 4\) should be \(m, 3\)"):
        KMeansQuantizer(4, fixed_colors=np.zeros((2, 4), np.uint8)).fit(small)
    with pytest.raises(UsageError, match="duplicate"):
        KMeansQuantizer(4, fixed_colors=np.zeros((2, 3), np.uint8)).fit(small)
    with pytest.raises(UsageError, match="5 fixed colours do not fit in n_colors=4"):
        KMeansQuantizer(4, fixed_colors=np.arange(15, dtype=np.uint8).reshape(5, 3)).fit(small)
    with pytest.raises(UsageError, match="uint8 values 0..255"):
        KMeansQuantizer(4, fixed_colors=[[300, 0, 0]]).fit(small)


# -- alpha ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rgba(small):
    alpha = np.full(small.shape[:2], 255, np.uint8)
    alpha[:, :32] = 0
    alpha[:16, 32:64] = 128
    img = np.dstack([small, alpha])
    img[:, :16, :3] = 77  # transparent pixels of different stored colours
    return img


def test_transparent_pixels_map_to_one_transparent_entry(rgba):
    q = KMeansQuantizer(12).fit(rgba)
    assert tuple(q.palette_[0]) == (0, 0, 0, 0)  # transparent entry first
    assert np.count_nonzero(q.palette_[:, 3] == 0) == 1
    idx = q.predict(rgba)
    assert np.all(idx[:, :32] == 0)
    out = q.quantize(rgba)
    assert np.all(out[:, :32] == 0)
    assert np.all(out[:, 64:, 3] == 255)  # opaque pixels stay opaque
    # half-transparent pixels keep their alpha, except a few very dark ones that
    # premultiplied K-means rightly puts with opaque black
    assert np.mean(np.abs(out[:16, 32:64, 3].astype(int) - 128) <= 2) > 0.95


def test_rgba_rejects_perceptual_space(rgba):
    with pytest.raises(UsageError, match="RGBA images are clustered in premultiplied RGBA"):
        KMeansQuantizer(4, color_space="lab").fit(rgba)
    with pytest.raises(UsageError, match="color_space='hsv' should be one of rgb, lab, oklab"):
        KMeansQuantizer(4, color_space="hsv").fit(rgba[..., :3])


# -- speed ------------------------------------------------------------------------------


def test_every_speed_level_runs_and_slow_is_better(small):
    inertias = {}
    for speed in SPEED_LEVELS:
        q = KMeansQuantizer(32, speed=speed).fit(small)
        assert q.palette_.shape == (32, 3)
        inertias[speed] = q.inertia_
    assert inertias[1] <= inertias[10]
    assert inertias[4] <= inertias[10]


def test_halved_refinement_above_k128_stays_near_convergence(elephant):
    # speed 4 refines K = 256 with 20 over-relaxed Lloyd iterations on the distinct colours; speed 3
    # runs plain Lloyd to convergence from the same histogram solution (one k-means++ run at K > 64)
    fast, full = KMeansQuantizer(256).fit(elephant), KMeansQuantizer(256, speed=3).fit(elephant)
    assert fast.n_iter_ < full.n_iter_
    assert 10 * np.log10(fast.mse_ / full.mse_) <= 0.03  # dB of PSNR given up
    assert KMeansQuantizer(128)._settings(128) == (1, 40, 1.0) and KMeansQuantizer(129)._settings(129)[:2] == (1, 20)


# -- quality ranges ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("65-80", (65, 80)), ("80", (72, 80)), ("-70", (0, 70)), ("50-", (50, 100)), ("0-100", (0, 100)), (" 40 - 60 ", (40, 60))],
)
def test_parse_quality(text, expected):
    assert parse_quality(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("80-60", "MIN 80 above MAX 60"),
        ("50-120", "outside 0..100"),
        ("abc", "is not a quality range"),
        ("", "is not a quality range"),
        ("-", "is not a quality range"),
        ("1-2-3", "is not a quality range"),
    ],
)
def test_parse_quality_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_quality(text)


def test_quality_scale():
    qs = np.arange(1, 100)
    limits = np.array([quality_to_mse(q) for q in qs])
    assert np.all(np.diff(limits) < 0)  # higher quality, lower allowed MSE
    assert quality_to_mse(100) == 0 and quality_to_mse(0) == np.inf
    for q in (1, 30, 60, 80, 99):
        assert mse_to_quality(quality_to_mse(q)) == q
        assert mse_to_quality(quality_to_mse(q) * 1.01) == q - 1
    assert mse_to_quality(0.0) == 100
    # quality 80 is about 37.6 dB PSNR
    assert 10 * np.log10(255**2 / quality_to_mse(80)) == pytest.approx(37.6, abs=0.1)


def test_quantize_quality_picks_the_fewest_colours(small):
    q = quantize_quality(small, 0, 60)
    k = q.n_colors
    assert q.quality_ >= 60
    assert q.mse_ == pytest.approx(mse(small, q.quantize(small)), rel=1e-9)
    assert mse_to_quality(mse(small, q.quantize(small))) == q.quality_
    fewer = KMeansQuantizer(k - 1).fit(small)
    assert mse_to_quality(mse(small, fewer.quantize(small))) < 60


def test_quantize_quality_best_effort_and_failure(small):
    q = quantize_quality(small, 0, 100, max_colors=8)
    assert q.n_colors == 8 and q.quality_ < 100
    with pytest.raises(QualityError, match=f"quality {q.quality_} with 8 colours is below the minimum 50") as err:
        quantize_quality(small, 50, 100, max_colors=8)
    assert err.value.exit_code == ExitCode.QUALITY == 99


def test_quantize_quality_errors(small):
    with pytest.raises(UsageError, match="min_quality=70 exceeds max_quality=60"):
        quantize_quality(small, 70, 60)
    with pytest.raises(UsageError, match="max_quality=101 should be an integer from 0 to 100"):
        quantize_quality(small, 0, 101)
    with pytest.raises(UsageError, match="max_colors=1 should be an integer >= 2"):
        quantize_quality(small, 0, 50, max_colors=1)
