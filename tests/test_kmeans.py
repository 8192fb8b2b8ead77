"""The K-means quantizer against scikit-learn, its determinism, the sweep and the errors."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans

from imcompress import UsageError
from imcompress.kmeans import KMeansQuantizer, color_table, find_elbow, kmeans_sweep
from imcompress.kmeans._kernels import kmeanspp, nearest, nearest_brute
from imcompress.kmeans._lloyd import lloyd
from imcompress.metrics import psnr


@pytest.fixture(scope="module")
def small(sample):
    """A 128x128 version of the sample photo (every 4th pixel)."""
    return np.ascontiguousarray(sample[::4, ::4])


def _all_pixel_inertia(image, centers):
    """Sum over every pixel of the squared distance to its nearest centre."""
    X = image.reshape(-1, image.shape[2]).astype(np.float64)
    d = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).sum())


def test_color_table_reconstructs_image(small):
    table = color_table(small)
    assert table.colors.dtype == np.uint8 and table.counts.sum() == small.shape[0] * small.shape[1]
    np.testing.assert_array_equal(table.colors[table.inverse].reshape(small.shape), small)
    ref = np.unique(small.reshape(-1, 3), axis=0)
    assert table.n_colors == ref.shape[0]


def test_color_table_histogram_path_matches_sort_path(rng):
    # > 2**20 pixels takes the bincount path; compare with NumPy's unique
    img = rng.integers(0, 40, size=(1100, 1000, 3)).astype(np.uint8)
    table = color_table(img)
    packed = img.reshape(-1, 3).astype(np.uint32) @ np.array([1, 256, 65536], dtype=np.uint32)
    keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(table.counts, counts)
    np.testing.assert_array_equal(table.inverse, inverse.ravel())
    np.testing.assert_array_equal(table.colors[table.inverse].reshape(img.shape), img)


@pytest.mark.parametrize("channels", [3, 4])
def test_color_table_radix_path_matches_numpys_unique(rng, channels):
    img = rng.integers(0, 12, size=(300, 200, channels)).astype(np.uint8)
    img[..., 1] = 7  # a channel with one value: its pass is skipped
    img[:10] = 255
    table = color_table(img)
    packed = np.zeros(img.shape[:2], dtype=np.uint32)
    for c in range(channels):
        packed |= img[..., c].astype(np.uint32) << np.uint32(8 * c)
    keys, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(table.counts, counts)
    np.testing.assert_array_equal(table.inverse, inverse.ravel())
    np.testing.assert_array_equal(table.colors[table.inverse].reshape(img.shape), img)
    assert table.inverse.dtype == np.int32 and table.counts.dtype == np.int64


def test_weighted_kmeans_equals_plain_kmeans_on_expanded_pixels(small):
    # posterize so many pixels share a colour: the weighted problem is much smaller
    img = np.ascontiguousarray(small[:48, :48] & 0xE0)
    X = img.reshape(-1, 3).astype(np.float64)
    ref = KMeans(n_clusters=5, n_init=10, random_state=0).fit(X)
    ours = KMeansQuantizer(5, speed=1).fit(img)
    assert ours.n_distinct_colors_ < X.shape[0] / 5
    # our inertia is the all-pixel objective of our centres ...
    assert ours.inertia_ == pytest.approx(_all_pixel_inertia(img, ours.cluster_centers_), rel=1e-9)
    # ... and reaches scikit-learn's optimum on the expanded pixels
    assert ours.inertia_ <= ref.inertia_ * 1.001
    assert ours.inertia_ >= ref.inertia_ * 0.95


@pytest.mark.parametrize("k", [4, 16, 48])
def test_inertia_and_psnr_match_scikit_learn(small, k):
    table = color_table(small)
    ref = KMeans(n_clusters=k, n_init=1, random_state=0).fit(
        table.colors.astype(np.float64), sample_weight=table.counts.astype(np.float64)
    )
    ours = KMeansQuantizer(k).fit(small)
    assert ours.inertia_ <= ref.inertia_ * 1.02
    ref_palette = np.clip(np.rint(ref.cluster_centers_), 0, 255).astype(np.uint8)
    ref_out = ref_palette[ref.predict(small.reshape(-1, 3).astype(np.float64))].reshape(small.shape)
    assert psnr(small, ours.quantize(small)) >= psnr(small, ref_out) - 0.1


def test_kernels_agree_with_brute_force(rng):
    X = rng.random((2000, 3)) * 255
    C = rng.random((37, 3)) * 255
    C[5] = C[17]  # an exact tie: the lowest index must win
    brute = np.argmin(((X[:, None] - C[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest_brute(X, C), brute)
    labels, d2 = nearest(X, C, rng.integers(0, 37, size=2000))
    np.testing.assert_array_equal(labels, brute)
    assert not np.any(labels == 17)
    np.testing.assert_allclose(d2, ((X - C[brute]) ** 2).sum(1))


@pytest.mark.parametrize("ties", [False, True])
def test_bounded_search_agrees_with_brute_force(rng, ties):
    """Lloyd's last bounds, loosened by how far each centre then moved, prove or search every label."""
    from imcompress.kmeans import _dispatch

    X = rng.integers(0, 40, size=(4000, 3)).astype(np.float64) if ties else rng.random((4000, 3)) * 255
    w = rng.integers(1, 20, size=4000).astype(np.float64)
    C0, guess = kmeanspp(X, w, 50, np.zeros((0, 3)), rng.random((50, 5)))
    bounds = np.empty((2, 4000))
    C, labels, *_ = lloyd(X, w, C0, guess, 0, 8, 0.0, 1.0, 5.0, relax=1.8, bounds=bounds)
    # the bounds hold for the centres returned
    d = np.sqrt(((X[:, None] - C[None]) ** 2).sum(-1))
    assert np.all(d[np.arange(4000), labels] <= bounds[0] * (1 + 1e-12))
    d[np.arange(4000), labels] = np.inf
    assert np.all(d.min(1) >= bounds[1] * (1 - 1e-12))
    # rounding the centres moves them by up to 0.87 (integer points and centres: many exact ties)
    P = np.rint(C) if ties else C + rng.uniform(-0.5, 0.5, size=C.shape)
    moved = np.sqrt(((P - C) ** 2).sum(1))
    kernels = _dispatch.kernels()
    got = kernels.nearest_bounded(X, np.ascontiguousarray(P), labels, bounds[0].copy(), bounds[1].copy(), moved)
    np.testing.assert_array_equal(got, nearest_brute(X, P))
    kept = (bounds[0] + moved[labels] < bounds[1] - moved.max())
    assert 0.05 < kept.mean() < 1.0  # both ways exercised


def test_lloyd_converges_to_a_fixed_point(rng):
    X = rng.random((3000, 3)) * 255
    w = rng.integers(1, 20, size=3000).astype(np.float64)
    C0, _ = kmeanspp(X, w, 12, np.zeros((0, 3)), rng.random((12, 4)))
    C, labels, inertia, _ = lloyd(X, w, C0, nearest_brute(X, C0), 0, 500, 0.0, 1.0, 5.0)
    # a Lloyd fixed point: every point at its nearest centre, every centre the weighted mean
    np.testing.assert_array_equal(labels, nearest_brute(X, C))
    for j in range(12):
        sel = labels == j
        np.testing.assert_allclose(C[j], (w[sel, None] * X[sel]).sum(0) / w[sel].sum(), atol=1e-9)
    ref = KMeans(12, init=C0, n_init=1, tol=0, max_iter=500).fit(X, sample_weight=w)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-6)


def test_fixed_centres_do_not_move(rng):
    X = rng.random((1000, 3)) * 255
    w = np.ones(1000)
    fixed = np.array([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0]])
    C0, _ = kmeanspp(X, w, 6, fixed, rng.random((6, 3)))
    C, *_ = lloyd(X, w, C0, nearest_brute(X, C0), 2, 100, 0.0, 1.0, 5.0)
    np.testing.assert_array_equal(C[:2], fixed)


def test_attributes_and_predict(small):
    q = KMeansQuantizer(12, random_state=3).fit(small)
    assert q.palette_.shape == (12, 3) and q.palette_.dtype == np.uint8
    assert q.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(q.palette_, np.clip(np.rint(q.cluster_centers_), 0, 255))
    idx = q.predict(small)
    assert idx.shape == small.shape[:2] and idx.dtype == np.uint8
    # every pixel at its nearest palette colour
    d = ((small.reshape(-1, 1, 3).astype(float) - q.palette_[None].astype(float)) ** 2).sum(-1)
    np.testing.assert_array_equal(idx.ravel(), np.argmin(d, axis=1))
    np.testing.assert_array_equal(q.quantize(small), q.palette_[idx])
    # palette sorted by luma, then R, G, B
    p = q.palette_.astype(int)
    keys = list(zip(299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2], p[:, 0], p[:, 1], p[:, 2]))
    assert keys == sorted(keys)
    assert q.n_iter_ >= 1 and q.n_distinct_colors_ == color_table(small).n_colors


@pytest.mark.parametrize("speed", [1, 4, 10])
def test_determinism_two_runs(small, speed):
    a = KMeansQuantizer(16, speed=speed).fit(small)
    b = KMeansQuantizer(16, speed=speed).fit(small)
    np.testing.assert_array_equal(a.palette_, b.palette_)
    np.testing.assert_array_equal(a.predict(small), b.predict(small))
    assert a.inertia_ == b.inertia_


_CHILD = """
import hashlib, numpy as np, imcompress
from imcompress.kmeans import KMeansQuantizer
img = imcompress.sample_image()[::4, ::4]
q = KMeansQuantizer(24, random_state=7).fit(img)
print(hashlib.sha256(q.palette_.tobytes() + q.predict(img).tobytes()).hexdigest())
"""


def test_determinism_in_a_subprocess(sample):
    img = sample[::4, ::4]
    q = KMeansQuantizer(24, random_state=7).fit(img)
    here = hashlib.sha256(q.palette_.tobytes() + q.predict(img).tobytes()).hexdigest()
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


def test_seed_changes_the_run(small):
    a = KMeansQuantizer(16, random_state=0).fit(small)
    b = KMeansQuantizer(16, random_state=1).fit(small)
    assert not np.array_equal(a.palette_, b.palette_)


def test_sweep_shares_work_without_losing_quality(small):
    sweep = kmeans_sweep(small, ks=range(2, 13))
    assert sweep.ks == list(range(2, 13))
    for k, inertia in zip(sweep.ks, sweep.inertias):
        alone = KMeansQuantizer(k).fit(small)
        assert inertia <= alone.inertia_ * 1.01
        assert sweep.quantizer(k).palette_.shape == (k, 3)
    assert all(b < a for a, b in zip(sweep.inertias, sweep.inertias[1:]))
    assert sweep.elbow_k in sweep.ks
    with pytest.raises(UsageError, match="k=40 is not in this sweep"):
        sweep.quantizer(40)


def test_sweep_errors(small):
    with pytest.raises(UsageError, match="ks is empty"):
        kmeans_sweep(small, ks=[])
    with pytest.raises(UsageError, match="should be integers"):
        kmeans_sweep(small, ks=["a"])
    with pytest.raises(UsageError, match="exceeds the"):
        kmeans_sweep(np.zeros((4, 4, 3), np.uint8) + np.arange(4, dtype=np.uint8)[:, None, None], ks=[2, 8])


def test_find_elbow():
    ks = list(range(1, 11))
    inertias = [1000, 300, 120, 100, 90, 82, 76, 71, 67, 64]
    assert find_elbow(ks, inertias) == 3
    assert find_elbow([2, 4], [10, 5]) is None


def test_errors(small):
    two = np.zeros((8, 8, 3), np.uint8)
    two[:4] = 200
    with pytest.raises(UsageError, match="n_colors=3 exceeds the 2 distinct colours"):
        KMeansQuantizer(3).fit(two)
    with pytest.raises(UsageError, match="n_colors=1 should be >= 2"):
        KMeansQuantizer(1).fit(small)
    with pytest.raises(UsageError, match="should be an integer"):
        KMeansQuantizer(4.5).fit(small)
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\|4\) uint8"):
        KMeansQuantizer(4).fit(small.astype(np.float64))
    with pytest.raises(UsageError, match="not fitted yet"):
        KMeansQuantizer(4).predict(small)
    with pytest.raises(UsageError, match="speed=11 should be an integer from 1"):
        KMeansQuantizer(4, speed=11).fit(small)
    with pytest.raises(UsageError, match="n_init=0 should be"):
        KMeansQuantizer(4, n_init=0).fit(small)
    with pytest.raises(UsageError, match="max_iter=0 should be"):
        KMeansQuantizer(4, max_iter=0).fit(small)
    with pytest.raises(UsageError, match=r"random_state=-1 should be an integer >= 0"):
        KMeansQuantizer(4, random_state=-1).fit(small)
    with pytest.raises(UsageError, match=r"random_state=None should be an integer >= 0"):
        KMeansQuantizer(4, random_state=None).fit(small)
    with pytest.raises(UsageError, match="tol=-1 should be"):
        KMeansQuantizer(4, tol=-1).fit(small)
    q = KMeansQuantizer(4).fit(small)
    with pytest.raises(UsageError, match="image has 4 channels but the palette was fitted on 3"):
        q.predict(np.zeros((4, 4, 4), np.uint8))


def test_two_colour_image_is_exact():
    img = np.zeros((10, 10, 3), np.uint8)
    img[:, 5:] = (10, 200, 30)
    q = KMeansQuantizer(2).fit(img)
    np.testing.assert_array_equal(q.quantize(img), img)
    assert q.inertia_ == 0.0


@pytest.mark.parametrize("k", [2, 7, 64, 256])
def test_half_gaps_from_a_stale_order_are_the_full_ones(rng, k):
    from imcompress.kmeans import _dispatch

    kernels = _dispatch.kernels()
    C = rng.random((k, 3)) * 255
    C[k // 2] = C[0]  # two equal centres: a gap of zero
    cc, order, _ = kernels.neighbour_geometry(C)
    for step in (0.0, 0.5, 4.0, 40.0):  # centres moved by up to ``step`` since the order was made
        moved = np.ascontiguousarray(C + rng.uniform(-1, 1, size=C.shape) * step / np.sqrt(3))
        np.testing.assert_array_equal(kernels.half_gaps_near(moved, cc, order, 2.0 * step), kernels.half_gaps(moved))
