"""The public K-means API (KMeansQuantizer, kmeans_sweep, find_elbow) against scikit-learn.

Only the documented API is used here, so these tests hold whatever the
internals do (the solver is tuned for speed separately).
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from kneed import KneeLocator
from sklearn.cluster import KMeans

from imcompress import KMeansQuantizer, UsageError
from imcompress.kmeans import find_elbow, kmeans_sweep
from imcompress.metrics import rmse, unique_colors



@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # scikit-learn's references run BLAS; with pytest-xdist workers sharing few
    # cores, BLAS threads spin against each other (scikit-learn's own conftest
    # limits threads the same way)
    with threadpool_limits(limits=1, user_api="blas"):
        yield

@pytest.fixture(scope="module")
def blobs():
    """An image of 4 well separated colour blobs: K-means has one right answer."""
    rng = np.random.default_rng(1)
    centers = np.array([[20, 30, 200], [220, 40, 40], [40, 200, 60], [230, 230, 220]], dtype=np.float64)
    labels = rng.integers(0, 4, 40 * 50)
    pixels = centers[labels] + rng.normal(0, 6, (labels.size, 3))
    img = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(40, 50, 3)
    return img, centers


@pytest.fixture(scope="module")
def photo(sample):
    return sample[200:296, 180:308]  # a 96 x 128 crop of the bundled photo


def _sklearn_best_inertia(img, k, n_init=4):
    """scikit-learn's best inertia over all pixels (distinct colours weighted by count: same objective)."""
    colors, counts = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    km = KMeans(k, random_state=0, n_init=n_init).fit(colors.astype(np.float64), sample_weight=counts)
    return km.inertia_


def _sse(pixels, centers):
    d = ((pixels[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).sum())


def test_separated_blobs_recover_sklearn_centres(blobs):
    img, _ = blobs
    q = KMeansQuantizer(4, random_state=0).fit(img)
    X = img.reshape(-1, 3).astype(np.float64)
    sk = KMeans(4, random_state=0, n_init=4).fit(X)
    ours = q.cluster_centers_[np.lexsort(q.cluster_centers_.T[::-1])]
    ref = sk.cluster_centers_[np.lexsort(sk.cluster_centers_.T[::-1])]
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert q.inertia_ == pytest.approx(sk.inertia_, rel=1e-9)
    assert q.palette_.dtype == np.uint8 and q.palette_.shape == (4, 3)
    np.testing.assert_array_equal(np.sort(q.palette_, axis=0),
                                  np.sort(np.clip(np.rint(sk.cluster_centers_), 0, 255), axis=0))


@pytest.mark.parametrize("k", [2, 5, 16])
def test_photo_inertia_close_to_sklearn(photo, k):
    X = photo.reshape(-1, 3).astype(np.float64)
    q = KMeansQuantizer(k, random_state=0).fit(photo)
    best = _sklearn_best_inertia(photo, k)
    # a local optimum of the same objective: within 3 % of scikit-learn's best of 4
    assert q.inertia_ <= best * 1.03
    # inertia_ is what it says: SSE of all pixels to their centroids
    assert q.inertia_ == pytest.approx(_sse(X, q.cluster_centers_), rel=1e-3)


def test_quantize_maps_to_nearest_palette_colour(photo):
    q = KMeansQuantizer(8, random_state=0).fit(photo)
    idx = q.predict(photo)
    assert idx.shape == photo.shape[:2] and idx.dtype == np.uint8
    assert idx.max() < 8
    X = photo.reshape(-1, 3).astype(np.float64)
    d = ((X[:, None, :] - q.palette_.astype(np.float64)[None]) ** 2).sum(-1)
    chosen = d[np.arange(len(X)), idx.ravel()]
    np.testing.assert_array_equal(chosen, d.min(1))  # nearest (ties may pick either)
    out = q.quantize(photo)
    np.testing.assert_array_equal(out, q.palette_[idx])
    assert unique_colors(out) <= 8
    np.testing.assert_array_equal(q.fit_quantize(photo), out)


@pytest.mark.parametrize("channels, dither", [(3, 0.0), (3, 0.7), (4, 0.0)])
def test_fit_predict_is_fit_then_predict(photo, channels, dither):
    from imcompress.kmeans import prepare_colors

    img = photo
    if channels == 4:
        alpha = np.full(photo.shape[:2] + (1,), 255, np.uint8)
        alpha[:10] = 0
        alpha[10:20] = 90
        img = np.concatenate([photo, alpha], axis=2)
    fitted = KMeansQuantizer(12, random_state=1, dither=dither).fit(img)
    expected = fitted.predict(img)
    q = KMeansQuantizer(12, random_state=1, dither=dither)
    np.testing.assert_array_equal(q.fit_predict(img), expected)
    np.testing.assert_array_equal(q.palette_, fitted.palette_)
    # the fitted state is the estimator's public attributes, nothing else
    assert set(vars(q)) == set(vars(fitted))
    assert all(name.endswith("_") for name in set(vars(q)) - set(vars(KMeansQuantizer())))
    prepared = prepare_colors(img)
    q2 = KMeansQuantizer(12, random_state=1, dither=dither)
    np.testing.assert_array_equal(q2.fit_predict(img, colors=prepared), expected)
    # predict with the prepared colours of the image gives the same indices
    np.testing.assert_array_equal(fitted.predict(img, colors=prepared), expected)


def test_fit_predict_refuses_colours_of_another_image(photo):
    from imcompress.kmeans import prepare_colors

    with pytest.raises(UsageError, match=r"colors= should be prepare_colors\(image\) of the same image"):
        KMeansQuantizer(4).fit_predict(photo, colors=prepare_colors(photo[:20]))
    with pytest.raises(UsageError, match="cannot fit a quantizer with color_space='rgb', speed=6"):
        KMeansQuantizer(4, speed=6).fit_predict(photo, colors=prepare_colors(photo))


def test_deterministic_and_does_not_mutate(photo):
    before = photo.copy()
    a = KMeansQuantizer(6, random_state=3).fit(photo)
    b = KMeansQuantizer(6, random_state=3).fit(photo)
    np.testing.assert_array_equal(a.palette_, b.palette_)
    assert a.inertia_ == b.inertia_
    np.testing.assert_array_equal(photo, before)


def test_more_colours_less_error(photo):
    errs = [rmse(photo, KMeansQuantizer(k, random_state=0).fit_quantize(photo)) for k in (2, 4, 8, 16)]
    assert all(a > b for a, b in zip(errs, errs[1:]))


def test_k_equal_to_distinct_colours_is_lossless():
    img = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    q = KMeansQuantizer(4).fit(img)
    np.testing.assert_array_equal(q.quantize(img), img)
    assert q.inertia_ == pytest.approx(0.0, abs=1e-9)
    assert q.n_distinct_colors_ == 4


@pytest.mark.parametrize(
    "k, match",
    [(1, "n_colors=1 should be >= 2"), (5, "n_colors=5 exceeds the 4 distinct colours"),
     (2.5, "n_colors=2.5 should be an integer"), (True, "should be an integer")],
)
def test_bad_n_colors(k, match):
    img = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    with pytest.raises(UsageError, match=match):
        KMeansQuantizer(k).fit(img)


@pytest.mark.parametrize("img", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_bad_image(img):
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\|4\) uint8"):
        KMeansQuantizer(2).fit(img)


def test_unfitted():
    with pytest.raises(UsageError, match="not fitted yet"):
        KMeansQuantizer(2).predict(np.zeros((2, 2, 3), np.uint8))


def test_sweep(photo):
    sweep = kmeans_sweep(photo, ks=[8, 2, 4, 4, 6])
    assert sweep.ks == [2, 4, 6, 8]
    assert len(sweep.inertias) == len(sweep.quantizers) == 4
    assert all(a > b for a, b in zip(sweep.inertias, sweep.inertias[1:]))
    for k, inertia in zip(sweep.ks, sweep.inertias):
        q = sweep.quantizer(k)
        assert q.palette_.shape == (k, 3) and q.inertia_ == inertia
        best = _sklearn_best_inertia(photo, k)
        assert inertia <= best * 1.03
    assert sweep.elbow_k == find_elbow(sweep.ks, sweep.inertias)
    with pytest.raises(UsageError, match=r"k=5 is not in this sweep \(\[2, 4, 6, 8\]\)"):
        sweep.quantizer(5)


def test_sweep_errors(photo):
    with pytest.raises(UsageError, match="ks is empty"):
        kmeans_sweep(photo, ks=[])
    with pytest.raises(UsageError, match="n_colors=1 should be >= 2"):
        kmeans_sweep(photo, ks=[1, 2])


def test_find_elbow_matches_kneed():
    ks = list(range(1, 11))
    inertias = [1000, 420, 150, 90, 80, 72, 66, 61, 57, 54]
    expected = KneeLocator(ks, inertias, curve="convex", direction="decreasing").knee
    assert find_elbow(ks, inertias) == expected
    assert expected in (3, 4)  # where the curve visibly bends
    assert find_elbow([2, 4], [10.0, 5.0]) is None
    assert find_elbow([1, 2, 3], [3.0, 2.0, 1.0]) is None  # a straight line has no knee


def test_six_means_on_the_study_photo(elephant):
    q = KMeansQuantizer(6, random_state=0).fit(elephant)
    out = q.quantize(elephant)
    assert unique_colors(out) == 6
    sk = KMeans(6, random_state=0).fit(elephant.reshape(-1, 3).astype(np.float64))
    assert q.inertia_ <= sk.inertia_ * 1.01
