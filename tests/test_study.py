"""The study, recomputed: its numbers on its photo, its three defects, and study() itself."""

import json
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from sklearn.cluster import KMeans

from imcompress import InputError, UsageError
from imcompress.metrics import rmse, unique_colors
from imcompress.report import (
    kmeans_stored_bytes,
    parse_ks,
    parse_variances,
    study,
    wrapped_uint8_rmse,
)

# -- the study's photo -------------------------------------------------------------



@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # scikit-learn's references run BLAS; with pytest-xdist workers sharing few
    # cores, BLAS threads spin against each other (scikit-learn's own conftest
    # limits threads the same way)
    with threadpool_limits(limits=1, user_api="blas"):
        yield

@pytest.fixture(scope="module")
def elephant_study(elephant, elephant_path):
    return study(elephant, ks=[2, 4, 6, 8, 10], codecs=False,
                 source=str(elephant_path), file_bytes=elephant_path.stat().st_size)


def test_elephant_image_facts(elephant_study):
    assert elephant_study.shape == (466, 700, 3)
    assert elephant_study.unique_colors == 86_468


def test_elephant_kmeans_six(elephant, elephant_study):
    six = elephant_study.kmeans[6]
    assert six.unique_colors == 6
    # the true RMSE of 6-means is 12.65 (the study printed 8.32)
    assert six.rmse == pytest.approx(12.65, rel=0.03)
    # scikit-learn's KMeans on all pixels, as the study ran it, agrees
    km = KMeans(6, random_state=0).fit(elephant.reshape(-1, 3).astype(np.float64))
    sk_rec = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)[km.labels_].reshape(elephant.shape)
    assert rmse(elephant, sk_rec) == pytest.approx(six.rmse, rel=0.03)
    assert rmse(elephant, sk_rec) == pytest.approx(12.65, rel=0.03)


def test_elephant_wrapped_rmse_reproduces_the_study_error(elephant, elephant_study):
    # the study's reconstruction: centres cast to uint8, RMSE evaluated in uint8
    km = KMeans(6, random_state=0).fit(elephant.reshape(-1, 3).astype(np.float64))
    study_rec = km.cluster_centers_.astype(np.uint8)[km.labels_].reshape(elephant.shape)
    assert wrapped_uint8_rmse(elephant, study_rec) == pytest.approx(8.32, abs=0.01)
    # ours shows the same wrong kind of number next to the true one
    six = elephant_study.kmeans[6]
    assert six.rmse_wrapped == pytest.approx(8.32, abs=0.1)
    assert six.rmse - six.rmse_wrapped > 4
    c = elephant_study.corrections()["rmse_uint8_wraparound"]
    assert c["k"] == 6 and c["wrapped"] == six.rmse_wrapped and c["true"] == six.rmse


def test_elephant_row_pca(elephant_study):
    p90, p95 = elephant_study.pca
    assert (p90.variance, p95.variance) == (0.90, 0.95)
    assert p90.n_components == (57, 44, 22)
    assert p95.n_components == (108, 95, 70)
    assert p90.scores_values == (26_562, 20_504, 10_252)
    assert [s.shape for s in p90.scores] == [(466, 57), (466, 44), (466, 22)]
    # the kept components explain at most t (the argmax rule is off by one)
    assert all(e <= 0.90 for e in p90.explained) and all(e > 0.88 for e in p90.explained)
    assert p95.rmse < p90.rmse


def test_elephant_pca_true_size_exceeds_the_jpeg(elephant_study):
    p95 = elephant_study.pca[-1]
    h, w = 466, 700
    assert sum(p95.stored_values) == sum(h * n + n * w + w for n in (108, 95, 70))
    assert p95.stored_bytes == 4 * sum(p95.stored_values)
    # the study's scores-only count looks small; the truth is larger than the file
    assert p95.scores_bytes < elephant_study.file_bytes * 3
    assert p95.stored_bytes > elephant_study.file_bytes


def test_elephant_minmax_is_worse_than_clipping(elephant_study):
    for p in elephant_study.pca:
        assert p.rmse < p.rmse_minmax
        for c in range(3):
            assert p.image_minmax[:, :, c].min() == 0 and p.image_minmax[:, :, c].max() == 255


# -- study() on small images ----------------------------------------------------------


@pytest.fixture(scope="module")
def crop(sample):
    return sample[100:164, 150:246]  # 64 x 96


@pytest.fixture(scope="module")
def crop_study(crop):
    return study(crop, ks=[2, 3, 4, 5, 6], variances=[0.8, 0.95], codecs=False, source="crop")


def test_study_structure(crop, crop_study):
    r = crop_study
    assert r.ks == [2, 3, 4, 5, 6] and len(r.inertias) == 5
    assert {2, 4, 6} <= set(r.show_ks)
    assert r.elbow_k is None or r.elbow_k in r.show_ks
    for k, m in r.kmeans.items():
        if k not in r.show_ks:
            assert m.image is None  # only the shown reconstructions are kept
            assert 0 < m.unique_colors <= k and m.rmse > 0
            continue
        assert m.image.shape == crop.shape and m.image.dtype == np.uint8
        assert m.unique_colors == unique_colors(m.image) <= k
        assert m.rmse == pytest.approx(rmse(crop, m.image))
        assert m.stored_bytes == kmeans_stored_bytes(k, 64 * 96)
    assert [p.variance for p in r.pca] == [0.8, 0.95]
    assert len(r.explained_variance_ratio) == 3
    assert r.explained_variance_ratio[0].shape == (64,)


def test_to_dict_is_valid_json(crop_study):
    d = crop_study.to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on NaN or infinity
    back = json.loads(text)
    assert back["image"] == {"height": 64, "width": 96, "channels": 3,
                             "unique_colors": crop_study.unique_colors, "file_bytes": None,
                             "raw_bytes": 64 * 96 * 3}
    assert [e["k"] for e in back["kmeans"]["sweep"]] == [2, 3, 4, 5, 6]
    for e in back["kmeans"]["sweep"]:
        assert set(e) >= {"k", "inertia", "rmse", "psnr", "ssim", "unique_colors"}
    assert back["kmeans"]["elbow_k"] == crop_study.elbow_k
    for e, p in zip(back["pca_rows"]["thresholds"], crop_study.pca):
        assert set(e) >= {"variance", "n_components", "rmse", "psnr", "ssim", "stored_values"}
        assert e["n_components"] == list(p.n_components)
        assert e["stored_values"] == sum(p.stored_values)
    assert back["methods"][0]["method"] == "raw pixels"  # no file given
    assert back["methods"][0]["psnr"] is None  # infinity becomes null


def test_lossless_k_gives_null_not_infinity():
    img = np.zeros((6, 8, 3), np.uint8)
    img[:3] = (200, 10, 10)
    img[3:, :4] = (10, 200, 10)
    r = study(img, ks=[2, 3], codecs=False)
    assert math.isinf(r.kmeans[3].psnr)
    assert r.to_dict()["kmeans"]["sweep"][1]["psnr"] is None
    assert r.show_ks == [2]  # 4 and 6 exceed the 3 colours; 2 K give no elbow
    assert r.elbow_k is None


def test_methods_table(crop_study):
    rows = crop_study.methods_table()
    names = [(m["method"], m["setting"]) for m in rows]
    assert names[0] == ("raw pixels", "uint8 RGB")
    assert ("K-means", "K=2") in names or ("K-means", "K=2 (elbow)") in names
    for m in rows:
        assert m["bpp"] == pytest.approx(8 * m["bytes"] / (64 * 96))


def test_codec_sizes_when_available(crop):
    import imcompress

    r = study(crop, ks=[2, 4], variances=[0.9], rd=False)  # rate-distortion: tests/test_report_rd.py
    methods = imcompress.available_methods()
    if "kmeans" in methods:
        assert r.kmeans[2].imc_bytes == len(imcompress.compress(crop, "kmeans", n_colors=2, random_state=0))
        decoded = imcompress.decompress(imcompress.compress(crop, "kmeans", n_colors=2, random_state=0))
        assert r.kmeans[2].imc_rmse == pytest.approx(rmse(crop, decoded))
    else:
        assert r.kmeans[2].imc_bytes is None
    if "pca-rows" in methods:
        assert r.pca[0].imc_bytes == len(imcompress.compress(crop, "pca-rows", variance=0.9))
    else:
        assert r.pca[0].imc_bytes is None


def test_study_errors(crop):
    with pytest.raises(UsageError, match=r"n_colors=20000 exceeds the \d+ distinct colours"):
        study(crop, ks=[2, 20000], codecs=False)
    with pytest.raises(UsageError, match="K=1 should be >= 2"):
        study(crop, ks=[1, 2], codecs=False)
    with pytest.raises(UsageError, match=r"variance=1.5 should be in \(0, 1\]"):
        study(crop, ks=[2], variances=[0.9, 1.5], codecs=False)
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\) uint8"):
        study(crop.astype(np.float64), codecs=False)
    with pytest.raises(InputError, match="too small"):
        study(crop[:1], codecs=False)


def test_parse_ks():
    assert parse_ks("2..20:2") == list(range(2, 21, 2))
    assert parse_ks("2..5") == [2, 3, 4, 5]
    assert parse_ks("6,2, 4,4") == [2, 4, 6]
    assert parse_ks("2..6:2,10") == [2, 4, 6, 10]
    assert parse_ks([3, 2]) == [2, 3]
    for bad, match in [("", "ks is empty"), ("abc", "cannot read 'abc'"), ("5..2", "is empty"),
                       ("0..4", "K=0 should be >= 2"), ("2,-3", "K=-3 should be >= 2"),
                       ("2..8:0", "is empty")]:
        with pytest.raises(UsageError, match=match):
            parse_ks(bad)


def test_parse_variances():
    assert parse_variances("0.95,0.9") == [0.9, 0.95]
    assert parse_variances([1.0]) == [1.0]
    for bad, match in [("0", r"variance=0.0 should be in \(0, 1\]"), ("1.01", "variance=1.01"),
                       ("x", "should be numbers"), ("", "empty"), ("nan", "variance=nan")]:
        with pytest.raises(UsageError, match=match):
            parse_variances(bad)


def test_wrapped_rmse_known_values():
    a = np.zeros((1, 1, 3), np.uint8)
    b = np.full((1, 1, 3), 20, np.uint8)
    # (0 - 20) wraps to 236; 236**2 = 55696 wraps to 144; sqrt(144) = 12
    assert wrapped_uint8_rmse(a, b) == pytest.approx(12.0)
    assert rmse(a, b) == pytest.approx(20.0)


@pytest.mark.parametrize("k, bits", [(2, 1), (3, 2), (4, 2), (6, 3), (16, 4), (17, 5), (256, 8), (257, 9)])
def test_kmeans_stored_bytes(k, bits):
    assert kmeans_stored_bytes(k, 100) == 3 * k + math.ceil(100 * bits / 8)


def test_default_ks_stop_at_the_number_of_colours():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :3] = (255, 0, 0)
    img[:2, 5:] = (0, 0, 255)
    img[6:, 6:] = (0, 255, 0)
    r = study(img, codecs=False)  # 4 colours: K = 2, 4 of the default 2..20
    assert r.ks == [2, 4]
    with pytest.raises(UsageError, match="single colour"):
        study(np.zeros((4, 4, 3), np.uint8), codecs=False)


def test_shown_k_outside_the_sweep_are_fitted(crop):
    r = study(crop, ks=[3, 5], variances=[0.9], codecs=False)
    assert r.ks == [3, 5]
    assert {2, 4, 6} <= set(r.show_ks)
    for k in (2, 4, 6):
        assert r.kmeans[k].image is not None and r.kmeans[k].unique_colors <= k
    assert [e["k"] for e in r.to_dict()["kmeans"]["sweep"]] == [3, 5]
    assert {e["k"] for e in r.to_dict()["kmeans"]["shown"]} == set(r.show_ks)
