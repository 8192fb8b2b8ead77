"""Row PCA's Gram-matrix solvers against LAPACK's full SVD (the study's method)."""

import numpy as np
import pytest
from scipy import linalg
from threadpoolctl import threadpool_limits

from imcompress.pca_rows import RowPCA
from imcompress.pca_rows import _pca


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _svd_reconstruction(image, ns):
    """The study's computation: a full SVD per channel, the first n axes kept."""
    out = np.empty(image.shape, dtype=np.float64)
    for c in range(3):
        x = image[:, :, c].astype(np.float64)
        mean = x.mean(axis=0)
        _, _, vt = linalg.svd(x - mean, full_matrices=False)
        v = vt[: ns[c]]
        out[:, :, c] = (x - mean) @ v.T @ v + mean
    return out


def _photo_like(rng, h, w):
    # rows mixing many frequencies with power-law weights, plus noise: a
    # spectrum that decays gradually, as a photo's does
    x = np.linspace(0, np.pi, w)
    freqs = np.arange(1, 60)
    amps = rng.normal(0, 1, (h, freqs.size)) * (80.0 / freqs)
    phases = rng.uniform(0, 2 * np.pi, freqs.size)
    base = amps @ np.sin(freqs[:, None] * x[None, :] + phases[:, None]) + 128
    img = base[:, :, None] + rng.normal(0, 4, (h, w, 3)) + np.array([0, 15, -15])
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("t, ns", [(0.90, (57, 44, 22)), (0.95, (108, 95, 70))])
def test_study_photo_unchanged(elephant, t, ns):
    pca = RowPCA(variance=t).fit(elephant)
    assert pca.n_components_ == ns
    rec = pca.inverse_transform(pca.transform(elephant))
    np.testing.assert_allclose(rec, _svd_reconstruction(elephant, ns), rtol=0, atol=1e-9)


def test_study_photo_truncated_solver(elephant):
    # the solver used beyond 1024 rows/columns, forced on the study photo
    fits = [_pca._fit_channel(elephant[:, :, c], t=0.90, solver="truncated") for c in range(3)]
    assert not any(f.complete for f in fits)
    pca = RowPCA(variance=0.90)._set_from_fits(fits, elephant)
    assert pca.n_components_ == (57, 44, 22)
    rec = pca.inverse_transform(pca.transform(elephant))
    np.testing.assert_allclose(rec, _svd_reconstruction(elephant, (57, 44, 22)), rtol=0, atol=1e-9)


@pytest.mark.parametrize("solver", ["full", "truncated"])
@pytest.mark.parametrize("shape", [(150, 260), (260, 150)])  # Gram of the rows, covariance of the columns
def test_solvers_match_svd(rng, solver, shape):
    img = _photo_like(rng, *shape)
    for t in (0.6, 0.8):
        fits = [_pca._fit_channel(img[:, :, c], t=t, solver=solver) for c in range(3)]
        pca = RowPCA(variance=t)._set_from_fits(fits, img)
        spectra = []  # the rule on the full SVD spectrum
        for c in range(3):
            x = img[:, :, c].astype(np.float64)
            s = linalg.svd(x - x.mean(axis=0), compute_uv=False)
            spectra.append(s**2 / np.sum(s**2))
        assert pca.n_components_ == tuple(_pca.n_components_for_variance(np.cumsum(r), t) for r in spectra)
        for c in range(3):
            # the truncated solver converges the values the rule looks at
            n = pca.n_components_[c] + 1 if solver == "truncated" else len(spectra[c])
            np.testing.assert_allclose(fits[c].ratios[:n], spectra[c][:n], rtol=0, atol=1e-12)
        rec = pca.inverse_transform(pca.transform(img))
        np.testing.assert_allclose(rec, _svd_reconstruction(img, pca.n_components_), rtol=0, atol=1e-9)


def test_large_side_uses_the_truncated_solver(rng):
    img = _photo_like(rng, 1030, 1040)
    pca = RowPCA(8).fit(img)
    assert all(not f.complete for f in pca._fits)
    assert all(r.size < 1030 for r in pca.explained_variance_ratio_)
    rec = pca.inverse_transform(pca.transform(img))
    np.testing.assert_allclose(rec, _svd_reconstruction(img, (8, 8, 8)), rtol=0, atol=1e-8)
    # asking for more components than were computed fits again, and agrees
    more = pca.select(20)
    direct = RowPCA(20).fit(img)
    np.testing.assert_allclose(more.inverse_transform(more.transform(img)),
                               direct.inverse_transform(direct.transform(img)), rtol=0, atol=1e-8)
