"""Codecs are stateless after __init__, and what a call chose comes back with the bytes."""

import copy

import numpy as np
import pytest

import imcompress
from imcompress import UsageError, get_codec
from imcompress.codecs import Compressed


@pytest.fixture(scope="module")
def photo(sample):
    return np.ascontiguousarray(sample[100:164, 150:230])  # 64 x 80


@pytest.fixture(scope="module")
def rgba(photo):
    alpha = np.full(photo.shape[:2] + (1,), 255, np.uint8)
    alpha[:8] = 0
    alpha[8:16] = 128
    return np.concatenate([photo, alpha], axis=2)


CODECS = [
    ("kmeans", {"n_colors": 12}),
    ("kmeans", {"n_colors": "auto"}),
    ("kmeans", {"quality": "40-60"}),
    ("kmeans", {"n_colors": 8, "dither": 0.5}),
    ("pca-rows", {"variance": 0.9}),
    ("pca-rows", {"n_components": 6}),
    ("pca-patch", {}),
]


@pytest.mark.parametrize("method, params", CODECS)
@pytest.mark.parametrize("alpha", [False, True])
def test_two_calls_same_bytes_and_nothing_new_on_the_codec(photo, rgba, method, params, alpha):
    image = rgba if alpha else photo
    codec = get_codec(method)(**params)
    before = copy.deepcopy(vars(codec))
    first = codec.compress(image)
    after_one = copy.deepcopy(vars(codec))
    second = codec.compress(image.copy())  # another array with the same pixels
    assert first.data == second.data
    assert codec.encode(image) == first.data
    assert vars(codec).keys() == before.keys() == after_one.keys()
    for key, value in before.items():
        assert vars(codec)[key] == value if not isinstance(value, np.ndarray) else np.array_equal(vars(codec)[key], value)


@pytest.mark.parametrize("method, params", CODECS)
def test_compressed_says_what_was_chosen(photo, method, params):
    out = get_codec(method)(**params).compress(photo)
    assert isinstance(out, Compressed)
    meta = imcompress.inspect(out.data)
    assert out.params == meta["params"]
    assert (out.method, out.format, out.shape) == (method, "imc", photo.shape)
    assert out.n_bytes == len(out.data) == meta["bytes"]
    assert out.bpp == meta["bpp"] == pytest.approx(8 * len(out.data) / (64 * 80), rel=1e-15)
    assert out.ratio == meta["ratio"]
    with pytest.raises(Exception):
        out.data = b""  # frozen


def test_png_params_match_the_imc_params(photo):
    codec = get_codec("kmeans")(n_colors="auto", dither=0.5)
    png = codec.compress(photo, format="png")
    imc = codec.compress(photo)
    assert png.format == "png" and png.data[:4] == b"\x89PNG"
    assert {k: png.params[k] for k in ("n_colors", "exact", "dither")} == {
        k: imc.params[k] for k in ("n_colors", "exact", "dither")}
    assert png.params["dither"] == 0.5 and not png.params["exact"]


def test_compress_refuses_formats_the_codec_does_not_write(photo):
    with pytest.raises(UsageError, match="method 'pca-rows' writes imc files, not 'png'"):
        get_codec("pca-rows")(n_components=2).compress(photo, format="png")
    with pytest.raises(UsageError, match="method 'kmeans' writes imc or png files, not 'gif'"):
        get_codec("kmeans")().compress(photo, format="gif")


@pytest.mark.parametrize("n", [1, 5, 30])
def test_prepared_gives_the_bytes_of_a_fresh_fit(photo, n):
    codec = get_codec("pca-rows")(variance=0.9)
    prepared = codec.prepare(photo)
    before = copy.deepcopy(vars(codec))
    via = codec.with_rate(n).compress(photo, prepared=prepared)
    fresh = codec.with_rate(n).compress(photo)
    assert via.data == fresh.data and via.params["n_components"] == [n, n, n]
    assert vars(codec) == before


def test_prepared_for_another_image_is_refused(photo):
    codec = get_codec("pca-rows")(n_components=3)
    prepared = codec.prepare(photo[:32])
    with pytest.raises(UsageError, match="prepare\\(image\\) result for the same image"):
        codec.compress(photo, prepared=prepared)


def test_codecs_without_shared_work_prepare_nothing(photo):
    assert get_codec("pca-patch")().prepare(photo) is None


@pytest.mark.parametrize("fmt", ["imc", "png"])
def test_kmeans_prepared_gives_the_bytes_of_a_fresh_fit(photo, fmt):
    codec = get_codec("kmeans")(n_colors=4, speed=6)
    prepared = codec.prepare(photo)
    before = copy.deepcopy(vars(codec))
    for k in (2, 9):
        via = codec.with_rate(k).compress(photo, format=fmt, prepared=prepared)
        assert via.data == codec.with_rate(k).compress(photo, format=fmt).data and via.params["n_colors"] == k
    assert vars(codec) == before
    with pytest.raises(UsageError, match="prepare\\(image\\) result for the same image"):
        codec.compress(photo[:10], prepared=prepared)
    with pytest.raises(UsageError, match="cannot fit a quantizer with color_space='rgb', speed=4"):
        get_codec("kmeans")(n_colors=3).compress(photo, prepared=prepared)


def test_the_quantizer_has_no_attribute_set_from_outside(photo):
    # what quantize_quality reports (mse_, quality_) the quantizer computes itself
    from imcompress.kmeans import KMeansQuantizer, quantize_quality

    q = quantize_quality(photo, 0, 60)
    alone = KMeansQuantizer(q.n_colors).fit(photo)
    assert set(vars(q)) == set(vars(alone))
    assert q.mse_ == alone.mse_ and q.quality_ == alone.quality_
