"""Row PCA against scikit-learn's PCA, and the study's numbers on its photo."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits
from sklearn.decomposition import PCA

from imcompress import UsageError
from imcompress.metrics import rmse
from imcompress.pca_rows import RowPCA, explained_variance_ratios, n_components_for_variance, to_uint8



@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # scikit-learn's references run BLAS; with pytest-xdist workers sharing few
    # cores, BLAS threads spin against each other (scikit-learn's own conftest
    # limits threads the same way)
    with threadpool_limits(limits=1, user_api="blas"):
        yield

@pytest.fixture
def small(rng):
    # rows mixing many frequencies with decaying weights, plus noise, so that
    # the spectrum decays gradually like a photo's
    h, w = 40, 56
    x = np.linspace(0, np.pi, w)
    freqs = np.arange(1, 13)
    amps = rng.normal(0, 1, (h, freqs.size)) * (60.0 / freqs)
    phases = rng.uniform(0, 2 * np.pi, freqs.size)
    base = amps @ np.sin(freqs[:, None] * x[None, :] + phases[:, None]) + 128
    img = base[:, :, None] + rng.normal(0, 6, (h, w, 3)) + np.array([0, 20, -20])
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("n", [1, 5, (3, 7, 11)])
def test_matches_sklearn_pca(small, n):
    pca = RowPCA(n).fit(small)
    ns = (n, n, n) if isinstance(n, int) else n
    assert pca.n_components_ == ns
    scores = pca.transform(small)
    rec = pca.inverse_transform(scores)
    assert rec.shape == small.shape and rec.dtype == np.float64
    for c in range(3):
        ch = small[:, :, c].astype(np.float64)
        sk = PCA(ns[c], svd_solver="full").fit(ch)
        # components agree up to sign; ours follow sklearn's sign rule exactly
        signs = np.sign(np.sum(sk.components_ * pca.components_[c], axis=1))
        np.testing.assert_allclose(pca.components_[c], sk.components_ * signs[:, None], atol=1e-10)
        np.testing.assert_allclose(np.abs(scores[c]), np.abs(sk.transform(ch)), atol=1e-8)
        np.testing.assert_allclose(rec[:, :, c], sk.inverse_transform(sk.transform(ch)), atol=1e-8)
        np.testing.assert_allclose(pca.mean_[c], sk.mean_, atol=1e-12)
        full = PCA(svd_solver="full").fit(ch)
        np.testing.assert_allclose(pca.explained_variance_ratio_[c], full.explained_variance_ratio_, atol=1e-12)
        assert pca.components_[c].shape == (ns[c], small.shape[1])


def test_all_components_reconstruct_exactly(small):
    pca = RowPCA(min(small.shape[:2])).fit(small)
    np.testing.assert_array_equal(pca.reconstruct(small), small)


def test_variance_rule_and_stored_values(small):
    pca = RowPCA(variance=0.8).fit(small)
    h, w, _ = small.shape
    for c, n in enumerate(pca.n_components_):
        cum = np.cumsum(pca.explained_variance_ratio_[c])
        assert n == int(np.argmax(cum > 0.8))  # the study's rule, verbatim
        assert cum[n - 1] <= 0.8 < cum[n]
        assert pca.stored_values_[c] == h * n + n * w + w
    # the explained-variance spectrum does not depend on what is kept
    ratios = explained_variance_ratios(small)
    for c in range(3):
        np.testing.assert_allclose(ratios[c], pca.explained_variance_ratio_[c])


def test_more_variance_means_smaller_error(small):
    errs = [rmse(small, RowPCA(variance=t).fit(small).reconstruct(small)) for t in (0.5, 0.8, 0.95)]
    assert errs[0] > errs[1] > errs[2]


def test_n_components_for_variance_rule():
    cum = [0.5, 0.8, 0.95, 1.0]
    assert n_components_for_variance(cum, 0.9) == int(np.argmax(np.array(cum) > 0.9)) == 2
    assert n_components_for_variance(cum, 0.5) == 1
    assert n_components_for_variance(cum, 0.1) == 1  # argmax is 0: at least one kept
    assert n_components_for_variance(cum, 1.0) == 4  # nothing exceeds 1: keep all
    with pytest.raises(UsageError, match=r"variance=1.5 should be in \(0, 1\]"):
        n_components_for_variance(cum, 1.5)
    with pytest.raises(UsageError, match="empty"):
        n_components_for_variance([], 0.5)


def test_rescale_clip_vs_minmax(small):
    pca = RowPCA(3).fit(small)
    raw = pca.inverse_transform(pca.transform(small))
    clip = pca.reconstruct(small)
    np.testing.assert_array_equal(clip, np.clip(np.rint(raw), 0, 255).astype(np.uint8))
    mm = RowPCA(3, rescale="minmax").fit(small).reconstruct(small)
    for c in range(3):
        ch = raw[:, :, c]
        expect = np.rint((ch - ch.min()) / (ch.max() - ch.min()) * 255)
        np.testing.assert_array_equal(mm[:, :, c], expect.astype(np.uint8))
        assert mm[:, :, c].min() == 0 and mm[:, :, c].max() == 255
    flat = np.full((4, 4, 3), 7.0)
    np.testing.assert_array_equal(to_uint8(flat, rescale="minmax"), 0)
    with pytest.raises(UsageError, match="rescale='bad'"):
        to_uint8(flat, rescale="bad")


def test_does_not_mutate_input(small):
    before = small.copy()
    RowPCA(variance=0.9).fit(small).reconstruct(small)
    np.testing.assert_array_equal(small, before)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "exactly one of n_components and variance"),
        ({"n_components": 3, "variance": 0.9}, "exactly one"),
        ({"variance": 0.0}, r"variance=0.0 should be in \(0, 1\]"),
        ({"variance": 1.2}, r"variance=1.2 should be in \(0, 1\]"),
        ({"variance": "high"}, "should be a number"),
        ({"n_components": 0}, r"n_components=0 should be in 1\.\.40"),
        ({"n_components": 41}, r"n_components=41 should be in 1\.\.40"),
        ({"n_components": (1, 2)}, "an int or a tuple of 3 ints"),
        ({"n_components": 2.5}, "an int or a tuple of 3 ints"),
        ({"n_components": (1, 2, 2.0)}, "should hold integers"),
        ({"n_components": 3, "rescale": "stretch"}, "rescale='stretch' should be one of"),
    ],
)
def test_bad_parameters(small, kwargs, match):
    with pytest.raises(UsageError, match=match):
        RowPCA(**kwargs).fit(small)


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float64),
     np.zeros((1, 4, 3), np.uint8)],
)
def test_bad_images(image):
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\) uint8|at least 2 rows"):
        RowPCA(1).fit(image)


def test_unfitted_and_mismatched(small):
    with pytest.raises(UsageError, match="not fitted yet"):
        RowPCA(2).transform(small)
    pca = RowPCA(2).fit(small)
    with pytest.raises(UsageError, match="width 10 differs from the fitted width 56"):
        pca.transform(small[:, :10])
    with pytest.raises(UsageError, match="list of 3 arrays"):
        pca.inverse_transform([np.zeros((3, 2))])
    with pytest.raises(UsageError, match=r"scores\[0\] of shape \(3, 5\) should be \(H, 2\)"):
        pca.inverse_transform([np.zeros((3, 5))] * 3)


def test_constant_image():
    img = np.full((5, 6, 3), 42, np.uint8)
    pca = RowPCA(variance=0.9).fit(img)
    assert pca.n_components_ == (1, 1, 1)
    np.testing.assert_array_equal(pca.reconstruct(img), img)


# -- the study's photo ---------------------------------------------------------

@pytest.fixture(scope="module")
def elephant_fits(elephant):
    return {t: RowPCA(variance=t).fit(elephant) for t in (0.90, 0.95)}


def test_study_components_per_threshold(elephant, elephant_fits):
    assert elephant_fits[0.90].n_components_ == (57, 44, 22)
    assert elephant_fits[0.95].n_components_ == (108, 95, 70)
    # the study's "compressed channels" are the score arrays, H x n values
    counts = [s.size for s in elephant_fits[0.90].transform(elephant)]
    assert counts == [26_562, 20_504, 10_252]
    # scikit-learn's full PCA spectrum gives the same rule result
    for c, n in enumerate((57, 44, 22)):
        ratio = PCA(svd_solver="full").fit(elephant[:, :, c].astype(np.float64)).explained_variance_ratio_
        assert int(np.argmax(np.cumsum(ratio) > 0.90)) == n


def test_study_true_stored_values(elephant, elephant_fits):
    h, w, _ = elephant.shape
    stored = sum(elephant_fits[0.95].stored_values_)
    assert stored == sum(h * n + n * w + w for n in (108, 95, 70))
    # scores only would undercount by the components and the means
    scores_only = sum(h * n for n in (108, 95, 70))
    assert stored > 2 * scores_only


def test_select_slices_the_same_svd(small):
    base = RowPCA(variance=0.5).fit(small)
    for kwargs in ({"variance": 0.95}, {"n_components": (2, 3, 4)}):
        sliced = base.select(**kwargs)
        direct = RowPCA(**kwargs).fit(small)
        assert sliced.n_components_ == direct.n_components_
        assert sliced.stored_values_ == direct.stored_values_
        np.testing.assert_allclose(sliced.inverse_transform(sliced.transform(small)),
                                   direct.inverse_transform(direct.transform(small)), atol=1e-9)
    assert base.n_components_ == RowPCA(variance=0.5).fit(small).n_components_  # unchanged
    with pytest.raises(UsageError, match="not fitted yet"):
        RowPCA(2).select(3)
    with pytest.raises(UsageError, match=r"variance=2.0 should be in \(0, 1\]"):
        base.select(variance=2.0)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(2, 12),
    w=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    t=st.floats(0.05, 1.0),
)
def test_property_round_trip(h, w, seed, t):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    full = RowPCA(min(h, w)).fit(img)
    np.testing.assert_array_equal(full.reconstruct(img), img)  # every component: lossless
    pca = RowPCA(variance=t).fit(img)
    assert all(1 <= n <= min(h, w) for n in pca.n_components_)
    out = pca.reconstruct(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert pca.stored_values_ == tuple(h * n + n * w + w for n in pca.n_components_)
