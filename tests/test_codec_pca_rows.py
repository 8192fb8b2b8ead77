"""The pca-rows codec: quantized row PCA in a real file."""

import numpy as np
import pytest

import imcompress
from imcompress import UsageError
from imcompress.codecs._targets import Trial, search_target
from imcompress.pca_rows import RowPCA
from imcompress.pca_rows._codec import DISTORTION_FRACTION, RowPCACodec


@pytest.mark.parametrize("n", [8, 40])
def test_decoding_is_close_to_the_float_reconstruction(sample, n):
    data = RowPCACodec(n).encode(sample)
    out = imcompress.decompress(data)
    float_psnr = imcompress.metrics.psnr(sample, RowPCA(n).fit(sample).reconstruct(sample))
    ours = imcompress.metrics.psnr(sample, out)
    # quantization adds DISTORTION_FRACTION of the truncation MSE: 10*log10(1.1) = 0.41 dB
    assert DISTORTION_FRACTION == 0.1
    assert float_psnr - 0.5 <= ours <= float_psnr
    np.testing.assert_array_equal(out, imcompress.decompress(data))
    # far smaller than the raw float64 values PCA "stores"
    assert len(data) < RowPCA(n).fit(sample).stored_values_[0] * 3 * 8 / 10


def test_variance_and_info(sample):
    data = RowPCACodec(variance=0.9).encode(sample)
    ns = RowPCA(variance=0.9).fit(sample).n_components_
    meta = imcompress.inspect(data)
    assert meta["method"] == "pca-rows" and meta["bytes"] == len(data)
    assert tuple(meta["params"]["n_components"]) == ns
    assert meta["bpp"] == pytest.approx(8 * len(data) / 512**2)


def test_rgba_alpha_is_lossless(sample, rng):
    img = np.ascontiguousarray(sample[:64, :96])
    alpha = rng.integers(0, 256, size=img.shape[:2], dtype=np.uint8)
    alpha[:, :40] = 255
    rgba = np.dstack([img, alpha])
    out = imcompress.decompress(RowPCACodec(10).encode(rgba))
    assert out.shape == rgba.shape
    np.testing.assert_array_equal(out[:, :, 3], alpha)
    rgb_only = imcompress.decompress(RowPCACodec(10).encode(img))
    np.testing.assert_array_equal(out[:, :, :3], rgb_only)


def test_full_rank_is_nearly_lossless(sample):
    img = np.ascontiguousarray(sample[:32, :48])
    out = imcompress.decompress(RowPCACodec(32).encode(img))
    assert imcompress.metrics.psnr(img, out) > 45


def test_targets_with_the_generic_search(sample):
    img = np.ascontiguousarray(sample[::4, ::4])
    codec = RowPCACodec(1)

    def encode_at(n):
        data = codec.with_rate(n).encode(img)
        return Trial(n, data, imcompress.metrics.psnr(img, imcompress.decompress(data)))

    res = search_target(encode_at, codec.rate_candidates(img), target_psnr=22.0)
    assert res.met and res.trial.psnr >= 22.0
    below = [t for t in res.trials if t.value == res.trial.value - 1]
    assert all(t.psnr < 22.0 for t in below)
    res = search_target(encode_at, codec.rate_candidates(img), max_bytes=3000)
    assert res.met and res.trial.bytes <= 3000 and len(res.trials) <= 9


@pytest.mark.parametrize(
    "values, message",
    [
        ({"n_components": "a,b,c"}, "should be N or R,G,B integers"),
        ({"n_components": "1,2"}, "1 or 3 integers"),
        ({"n_components": "4", "variance": 0.9}, "not both"),
    ],
)
def test_option_errors(values, message):
    with pytest.raises(UsageError, match=message):
        RowPCACodec.from_options(**values)


def test_parameter_errors(sample):
    with pytest.raises(UsageError, match=r"should be in 1\.\.16"):
        RowPCACodec(17).encode(np.ascontiguousarray(sample[:16, :20]))
    assert RowPCACodec.from_options(n_components="5,6,7").n_components == (5, 6, 7)
    with pytest.raises(UsageError, match="writes imc files, not 'png'"):
        RowPCACodec(4).export(sample, format="png")


def test_study_photo_roundtrip(elephant):
    # 466 x 700: H != W exercises the score/axis step split
    codec = RowPCACodec(variance=0.9)
    data = codec.encode(elephant)
    out = imcompress.decompress(data)
    pca = RowPCA(variance=0.9).fit(elephant)
    assert tuple(imcompress.inspect(data)["params"]["n_components"]) == pca.n_components_
    float_psnr = imcompress.metrics.psnr(elephant, pca.reconstruct(elephant))
    assert float_psnr - 0.5 <= imcompress.metrics.psnr(elephant, out) <= float_psnr
    np.testing.assert_array_equal(out, imcompress.decompress(data))


def _in_order(s, v, m):
    """FORMAT.md §4's order, written out: k = 0, 1, ..., n-1 left to right, then + m."""
    acc = s[:, :1] * v[:1]
    for k in range(1, s.shape[1]):
        acc = acc + s[:, k:k + 1] * v[k:k + 1]
    return acc + m


def _reversed_order(a, b):
    # another summation order (k from n-1 down), like a BLAS kernel may use
    acc = a[:, -1:] * b[-1:]
    for k in range(a.shape[1] - 2, -1, -1):
        acc = acc + a[:, k:k + 1] * b[k:k + 1]
    return acc


def test_decoder_sums_in_the_order_the_format_fixes(rng):
    from imcompress.pca_rows._codec import rows_times_axes

    # values whose exact sum lands on k + 1/2 and whose rounding depends on the order
    big = 2.0**52
    s = np.array([[big, 0.5, -big, 0.0], [0.25, big, 0.25, -big], [1.0, 2.0, 3.0, 0.5]])
    v = np.ones((4, 6))
    m = np.linspace(100.0, 105.0, 6)
    want = np.rint(_in_order(s, v, m))
    assert not np.array_equal(np.rint(_reversed_order(s, v) + m), want)  # the case bites: the order matters
    for matmul in (np.matmul, _reversed_order):
        assert np.array_equal(np.rint(rows_times_axes(s, v, m, matmul=matmul)), want)
    # ordinary stored integers times steps, as the decoder sees them
    n, w = 40, 50
    s = rng.integers(-300, 300, (64, n)) * 0.37
    v = rng.integers(-40, 40, (n, w)) * 0.011
    m = np.cumsum(rng.integers(-9, 9, w)) / 16 + 128
    s[:3] = 0.5  # some exact ties
    for matmul in (np.matmul, _reversed_order):
        assert np.array_equal(np.rint(rows_times_axes(s, v, m, matmul=matmul)), np.rint(_in_order(s, v, m)))
