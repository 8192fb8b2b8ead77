"""imcompress.compress_to_target: the one target search, against a brute-force reference."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import imcompress
from imcompress import QualityError, UsageError, compress_to_target, get_codec


@pytest.fixture(scope="module")
def crop(sample):
    return np.ascontiguousarray(sample[180:204, 200:230])  # 24x30: every candidate is cheap


def _all_candidates(img, method, **options):
    """(value, bytes, psnr) of every rate candidate: the reference the bisection must agree with."""
    codec = get_codec(method)(**options)
    out = []
    for v in codec.rate_candidates(img):
        data = codec.with_rate(v).encode(img)
        out.append((v, len(data), peak_signal_noise_ratio(img, imcompress.decompress(data), data_range=255)))
    return out


def test_no_target_is_one_plain_encode(crop):
    res = compress_to_target(crop, "kmeans", n_colors=8, random_state=0)
    assert res.data == imcompress.compress(crop, "kmeans", n_colors=8, random_state=0)
    assert res.met and len(res.trials) == 1
    assert res.psnr == pytest.approx(peak_signal_noise_ratio(crop, res.decoded, data_range=255), abs=1e-9)
    np.testing.assert_array_equal(res.decoded, imcompress.decompress(res.data))


@pytest.mark.parametrize("target", [22.0, 28.0, 33.0])
def test_target_psnr_is_the_smallest_file_reaching_it(crop, target):
    ref = _all_candidates(crop, "pca-rows")
    psnrs = [p for _, _, p in ref]
    assert psnrs == sorted(psnrs)  # monotone here, so the bisection must find the optimum
    reaching = [(n, v) for v, n, p in ref if p >= target]
    seen = []
    res = compress_to_target(crop, "pca-rows", target_psnr=target, on_trial=seen.append)
    assert res.met and res.psnr >= target
    assert res.bytes == min(reaching)[0]
    assert len(seen) == len(res.trials) < len(ref)  # a search, not a sweep
    assert res.psnr == pytest.approx(peak_signal_noise_ratio(crop, imcompress.decompress(res.data), data_range=255),
                                     abs=1e-9)


def test_max_bytes_is_the_best_psnr_within_the_budget(crop):
    ref = _all_candidates(crop, "pca-rows")
    budget = ref[len(ref) // 2][1] + 1
    best = max(p for _, n, p in ref if n <= budget)
    res = compress_to_target(crop, "pca-rows", max_bytes=budget)
    assert res.bytes <= budget and res.psnr == pytest.approx(best, abs=1e-9)


def test_unreachable_target_raises_or_gives_the_closest(crop):
    with pytest.raises(QualityError, match="cannot reach PSNR >= 150 dB"):
        compress_to_target(crop, "pca-rows", target_psnr=150)
    res = compress_to_target(crop, "pca-rows", target_psnr=150, best_effort=True)
    ref = _all_candidates(crop, "pca-rows")
    assert not res.met and res.psnr == pytest.approx(max(p for _, _, p in ref), abs=1e-9)


def test_png_format_and_codec_instance(crop):
    codec = get_codec("kmeans")(n_colors=6, random_state=0)
    res = compress_to_target(crop, codec, format="png")
    with Image.open(io.BytesIO(res.data)) as im:
        assert im.format == "PNG" and im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), res.decoded)
    with pytest.raises(UsageError, match="not both"):
        compress_to_target(crop, codec, n_colors=4)
    with pytest.raises(UsageError, match="writes imc files, not 'png'"):
        compress_to_target(crop, "pca-rows", format="png")


@pytest.mark.parametrize("method, rates", [("kmeans", (4, 16)), ("pca-rows", (4, 12))])
def test_prepared_shared_across_a_sweep_gives_the_same_files(crop, method, rates):
    codec = get_codec(method)()
    prepared = codec.prepare(crop)
    for rate in rates:
        fresh = compress_to_target(crop, codec.with_rate(rate))
        shared = compress_to_target(crop, codec.with_rate(rate), prepared=prepared)
        assert shared.bytes == fresh.bytes
        assert shared.psnr == pytest.approx(fresh.psnr, abs=0)
