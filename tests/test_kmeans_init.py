"""KMeansQuantizer(init=...), prepare_colors and the one palette order."""

import ast
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans

import imcompress
from imcompress import KMeansQuantizer, UsageError
from imcompress.kmeans import PreparedColors, kmeans_sweep, palette_order, prepare_colors


@pytest.fixture(scope="module")
def photo(sample):
    return np.ascontiguousarray(sample[200:248, 200:264])  # 48 x 64


@pytest.mark.parametrize("k", [3, 8])
def test_init_array_reaches_scikit_learns_result(photo, k):
    rng = np.random.default_rng(1)
    pixels = photo.reshape(-1, 3).astype(np.float64)
    init = pixels[rng.choice(len(pixels), k, replace=False)]
    init = np.clip(init + rng.uniform(-0.4, 0.4, init.shape), 0, 255)  # not exactly on pixels
    # tol=0: both run Lloyd until no label changes, so they stop at the same fixed point
    sk = KMeans(k, init=init, n_init=1, tol=0.0, max_iter=300, algorithm="lloyd").fit(pixels)
    q = KMeansQuantizer(k, init=init, tol=0.0).fit(photo)
    ours = q.cluster_centers_[np.lexsort(q.cluster_centers_.T[::-1])]
    theirs = sk.cluster_centers_[np.lexsort(sk.cluster_centers_.T[::-1])]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert q.inertia_ == pytest.approx(sk.inertia_, rel=1e-9)


def test_init_is_used_whatever_n_init_and_speed(photo):
    init = np.array([[20.0, 20, 20], [120, 100, 90], [230, 220, 210]])
    a = KMeansQuantizer(3, init=init, n_init=5, speed=1).fit(photo)
    b = KMeansQuantizer(3, init=init, speed=9).fit(photo)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-9)


def test_partial_init_is_completed_and_fixed_colours_are_kept(photo):
    init = np.array([[0.0, 0, 0], [200, 180, 160]])
    q = KMeansQuantizer(6, init=init, fixed_colors=[[0, 0, 0]]).fit(photo)
    assert q.palette_.shape == (6, 3) and [0, 0, 0] in q.palette_.tolist()


@pytest.mark.parametrize(
    "init, match",
    [
        ("random", r"init='random' should be 'k-means\+\+' or an array"),
        (np.zeros((5, 3)), r"init of shape \(5, 3\) should be \(n_colors, 3\) = \(4, 3\)"),
        (np.zeros((2, 4)), r"should be \(n_colors, 3\)"),
        (np.array([[0.0, 0, 0], [300, 0, 0]]), "finite sRGB values in 0..255"),
        (np.array([[0.0, 0, np.nan]]), "finite sRGB values"),
        (np.array([[1.0, 2, 3], [1, 2, 3]]), "same centre twice"),
        ([["a", "b", "c"]], "numeric array"),
    ],
)
def test_bad_init(photo, init, match):
    with pytest.raises(UsageError, match=match):
        KMeansQuantizer(4, init=init).fit(photo)


def test_init_and_fixed_colours_together_must_fit(photo):
    init = np.array([[10.0, 10, 10], [100, 100, 100], [200, 200, 200]])
    with pytest.raises(UsageError, match="init has 3 centres besides the 1 fixed colours: more than n_colors=3"):
        KMeansQuantizer(3, init=init, fixed_colors=[[255, 255, 255]]).fit(photo)


def test_prepared_colours_fit_like_the_image(photo):
    prepared = prepare_colors(photo, speed=5)
    assert isinstance(prepared, PreparedColors) and prepared.n_colors == imcompress.metrics.unique_colors(photo)
    for k in (2, 7):
        a = KMeansQuantizer(k, speed=5).fit(prepared)
        b = KMeansQuantizer(k, speed=5).fit(photo)
        np.testing.assert_array_equal(a.palette_, b.palette_)
        assert a.inertia_ == b.inertia_ and a.mse_ == b.mse_
    with pytest.raises(UsageError, match=r"prepared with color_space='rgb', speed=5 cannot fit .*speed=4"):
        KMeansQuantizer(4).fit(prepared)
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\|4\) uint8"):
        prepare_colors(photo.astype(float))
    with pytest.raises(UsageError, match="speed=0 should be an integer"):
        prepare_colors(photo, speed=0)


def test_sweep_warm_start_is_reported_and_keeps_inertia_falling(photo):
    sweep = kmeans_sweep(photo, ks=range(2, 10))
    assert len(sweep.warm_start_won) == len(sweep.ks) and sweep.warm_start_won[0] is False
    assert all(b < a for a, b in zip(sweep.inertias, sweep.inertias[1:]))
    with pytest.raises(UsageError, match="do not pass init="):
        kmeans_sweep(photo, ks=[2, 3], init=np.zeros((2, 3)))


def test_sweep_and_quality_search_use_only_public_api():
    # no private attribute or private import of the quantizer in these modules
    root = Path(imcompress.__file__).parent / "kmeans"
    for name in ("_sweep.py", "_quality.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")
                   and not n.attr.startswith("__")]
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for a in n.names if a.name.startswith("_")]
        assert private == [] and imported == [], (name, private, imported)


# -- the palette is sorted once, by one rule -------------------------------------------------
def test_palette_order_rule():
    pal = np.array([[255, 0, 0, 255], [0, 0, 0, 0], [0, 255, 0, 255], [9, 9, 9, 0], [0, 0, 0, 255]], np.uint8)
    order = palette_order(pal)
    assert order.tolist()[:2] == [1, 3]  # fully transparent first (then by luma)
    luma = pal[order, :3].astype(int) @ [299, 587, 114]
    assert list(luma[2:]) == sorted(luma[2:])


@pytest.mark.parametrize("n_colors", [5, 64])  # a fit, and the exact table of a 30-colour image
def test_codec_stores_the_palette_in_palette_order(photo, n_colors):
    img = photo if n_colors == 5 else (photo // 64 * 64 + photo[..., :1] // 128 * 3).astype(np.uint8)
    codec = imcompress.get_codec("kmeans")(n_colors=n_colors)
    palette, indices, info = codec.quantize(img)
    np.testing.assert_array_equal(palette_order(palette), np.arange(len(palette)))
    np.testing.assert_array_equal(palette[indices], imcompress.decompress(codec.encode(img)))
    assert info["exact"] is (n_colors == 64)
    if n_colors == 5:
        np.testing.assert_array_equal(palette, KMeansQuantizer(5).fit(img).palette_)


def _plain_kmeanspp(X, w, k, init, rand):
    """Greedy weighted k-means++ without pruning: every candidate against every point."""
    centers = [np.asarray(c, dtype=np.float64) for c in init]
    closest = np.full(X.shape[0], np.inf)
    for c in centers:
        closest = np.minimum(closest, ((X - c) ** 2).sum(1))
    if not centers:
        first = min(int(np.searchsorted(np.cumsum(w), rand[0, 0] * w.sum(), side="right")), len(X) - 1)
        centers.append(X[first])
        closest = ((X - X[first]) ** 2).sum(1)
    for c in range(len(centers), k):
        cum = np.cumsum(w * closest)
        best = None
        for t in range(rand.shape[1]):
            idx = min(int(np.searchsorted(cum, rand[c, t] * cum[-1], side="right")), len(X) - 1)
            cand = np.minimum(closest, ((X - X[idx]) ** 2).sum(1))
            pot = float((w * cand).sum())
            if best is None or pot < best[0]:
                best = (pot, idx, cand)
        centers.append(X[best[1]])
        closest = best[2]
    return np.array(centers)


@pytest.mark.parametrize("n,k,m", [(500, 12, 0), (3000, 40, 0), (3000, 200, 0), (2000, 64, 3), (300, 300, 0)])
def test_pruned_kmeanspp_picks_the_plain_algorithms_centres(rng, n, k, m):
    from imcompress.kmeans._kernels import KMEANSPP_GROUP_AFTER, _integral_potential, kmeanspp, nearest_brute

    assert k <= 12 or k > KMEANSPP_GROUP_AFTER  # both ways of scoring candidates are exercised
    # integer colours and counts, many repeated points: every potential is an exact
    # integer, so the plain algorithm's choices are well defined whatever the summation order
    X = rng.integers(0, 64, size=(n, 3)).astype(np.float64)
    X[: n // 10] = X[n // 10 : 2 * (n // 10)]
    w = rng.integers(1, 50, size=n).astype(np.float64)
    init = X[rng.choice(n, m, replace=False)] + 0.5 if m else np.zeros((0, 3))
    rand = rng.random((k, 2 + int(np.log(k))))
    # without init (or with integer init) the potential's running sum comes from exact per-block sums
    assert _integral_potential(X, w, init) == (m == 0)
    ours, labels = kmeanspp(X, w, k, init, rand)
    np.testing.assert_array_equal(ours, _plain_kmeanspp(X, w, k, init, rand))
    # the labels it returns are the brute-force nearest centres (lowest index on the many ties)
    np.testing.assert_array_equal(labels, nearest_brute(X, ours))
    # and on float points (Lab-like, with weights), where ties are unlikely
    Xf = rng.normal(size=(n, 3)) * [20.0, 8.0, 8.0]
    assert not _integral_potential(Xf, w, init * 0.1)
    ours, labels = kmeanspp(Xf, w, k, init * 0.1, rand)
    np.testing.assert_array_equal(ours, _plain_kmeanspp(Xf, w, k, init * 0.1, rand))
    np.testing.assert_array_equal(labels, nearest_brute(Xf, ours))
