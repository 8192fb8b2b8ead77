"""Row PCA of each colour channel, as in the study being reproduced.

For each of R, G and B the H rows of the channel are the observations and
its W columns the features: PCA keeps ``n`` principal axes of length W, and
each row is stored as ``n`` scores. What must be stored to decode a channel
is the scores (H x n), the components (n x W) and the column means (W).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._errors import UsageError
from .._validation import check_image, to_uint8 as _to_uint8

__all__ = ["RowPCA", "n_components_for_variance", "explained_variance_ratios"]

_RESCALE = ("clip", "minmax")

#: Channels up to this many values (about 4 megapixels) are decomposed with
#: one BLAS thread: on matrices this small, BLAS threads gain little on an idle
#: machine but spin against each other on a busy one (30x slower measured with
#: 2 cores shared by 4 processes).
_SINGLE_THREAD_MAX_VALUES = 1 << 22

#: Channels whose smaller side is at most this are decomposed completely (the
#: whole spectrum); larger ones by the truncated solver when the components
#: wanted are few (see :data:`_TRUNCATED_MAX_FRACTION`).
_EXACT_MAX_SIDE = 1024

#: The truncated solver is used only while the components it must find are at
#: most this fraction of min(H, W); beyond it the complete decomposition is cheaper.
_TRUNCATED_MAX_FRACTION = 0.25

#: The truncated solver stops when every wanted Ritz pair has a residual
#: ``||G y - theta y||`` at most this times the largest eigenvalue.
_RESIDUAL_TOL = 1e-13
_MAX_ITER = 200
#: Components computed past the ones wanted (see _fit_channel).
_PAD = 16


def n_components_for_variance(cumulative, t) -> int:
    """Number of components by the study's rule ``np.argmax(cumulative > t)``.

    The rule returns the 0-based *index* of the first component at which the
    cumulative explained variance exceeds ``t``; used as a count, it keeps one
    component fewer than needed to pass ``t`` (the kept components explain
    ``cumulative[n - 1] <= t``). We keep the rule so the study's numbers are
    reproduced (57/44/22 at 90 % on its photo); two edge cases are made safe:
    the result is at least 1, and when no prefix exceeds ``t`` (``t = 1`` up to
    round-off) every component is kept.

    Parameters
    ----------
    cumulative : array-like of shape (n,)
        Cumulative explained variance ratio, non-decreasing, ending near 1.
    t : float
        Threshold in (0, 1].

    Returns
    -------
    int
        Number of components, in ``1..n``.

    Examples
    --------
    >>> n_components_for_variance([0.5, 0.8, 0.95, 1.0], 0.9)
    2
    """
    t = _check_variance(t)
    cumulative = np.asarray(cumulative, dtype=np.float64).ravel()
    if cumulative.size == 0:
        raise UsageError("cumulative explained variance is empty")
    above = cumulative > t
    if not above.any():
        return int(cumulative.size)
    return max(1, int(np.argmax(above)))


def _check_variance(t) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise UsageError(f"variance={t!r} should be a number in (0, 1]")
    t = float(t)
    if not (0.0 < t <= 1.0):
        raise UsageError(f"variance={t} should be in (0, 1]")
    return t


def _check_image(image) -> np.ndarray:
    return check_image(
        image, channels=3, min_shape=(2, 1),
        hint="row PCA takes RGB images of at least 2 rows; load one with imcompress.load_image",
    )


@dataclass(frozen=True)
class _ChannelFit:
    """What row PCA learned on one channel (the leading part of its SVD).

    ``singular_values`` and ``components`` hold the leading ``L`` singular
    values and right singular vectors (``L = min(H, W)`` when ``complete``);
    ``total`` is the squared Frobenius norm of the centred channel, the sum of
    the whole spectrum, so ratios are exact whether or not the tail was computed.
    """

    mean: np.ndarray
    singular_values: np.ndarray
    components: np.ndarray
    total: float
    complete: bool

    @property
    def ratios(self) -> np.ndarray:
        return _ratio(self.singular_values, self.total)


def _fit_channel(channel: np.ndarray, *, n=None, t=None, solver="auto") -> _ChannelFit:
    """Row PCA of one (H, W) channel, enough of it for ``n`` components or threshold ``t``.

    The centred channel ``X`` (H x W) is decomposed through its Gram matrix on
    its smaller side, ``m = min(H, W)``: ``X X^T`` (H x H) or ``X^T X``
    (W x W), whose eigenvalues are the squared singular values. ``"full"``
    (every image with m <= 1024, or when many components are wanted) takes its
    complete eigendecomposition; ``"truncated"`` only its leading eigenpairs, by
    block subspace iteration with Rayleigh-Ritz, growing the block until the
    kept components pass ``t``. Either way the components come from a final
    SVD of ``X`` projected on the leading eigenvectors (a Rayleigh-Ritz step on
    ``X`` itself), which keeps them as accurate as a full SVD of ``X``: within
    1e-11 of LAPACK's on the study photo.

    Signs follow scikit-learn's PCA (``svd_flip(u_based_decision=False)``):
    the largest-magnitude entry of every component is positive.
    """
    x = channel.astype(np.float64)
    h, w = x.shape
    mean = x.mean(axis=0)
    x -= mean
    m = min(h, w)
    limit = 1 if x.size <= _SINGLE_THREAD_MAX_VALUES else None
    from threadpoolctl import threadpool_limits  # here: the CLI builds its options without it

    with threadpool_limits(limits=limit, user_api="blas"):
        rows = h <= w  # Gram of the rows (H x H) or covariance of the columns (W x W)
        gram = x @ x.T if rows else x.T @ x
        total = float(np.trace(gram))
        want = n if n is not None else 64
        if solver == "auto":
            solver = "truncated" if m > _EXACT_MAX_SIDE and want <= _TRUNCATED_MAX_FRACTION * m else "full"
        if solver == "full":
            lam, vecs = np.linalg.eigh(gram)
            lam, vecs = lam[::-1], vecs[:, ::-1]
            spectrum = np.sqrt(np.maximum(lam, 0.0))
            if n is None:
                n = n_components_for_variance(np.cumsum(_ratio(spectrum, total)), t)
            # a few more than wanted: the last kept components stay accurate
            # when eigenvalues cluster around the cut
            s, vt = _project_svd(x, vecs[:, : min(m, n + _PAD)], rows)
            spectrum[: s.size] = s
            s, complete = spectrum, True
        else:
            s, vt = _truncated(x, gram, rows, n=n, t=t, total=total)
            complete = False
    del gram
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    vt *= signs[:, None]
    return _ChannelFit(mean=mean, singular_values=s, components=vt, total=total, complete=complete)


def _project_svd(x, basis, rows):
    """Leading singular values and right vectors of ``x`` from an orthonormal basis
    of its leading left (``rows``) or right singular subspace."""
    if rows:
        _, s, vt = np.linalg.svd(basis.T @ x, full_matrices=False)
        return s, vt
    _, s, zt = np.linalg.svd(x @ basis, full_matrices=False)
    return s, zt @ basis.T


def _truncated(x, gram, rows, *, n, t, total):
    """Leading singular triplets of ``x`` via block subspace iteration on ``gram``.

    With ``t`` given, the block grows (doubling) while the first ``k`` Ritz
    values cannot pass ``t``, so every value the variance rule looks at is known.
    """
    basis, need = _leading_eigh(gram, n, np.random.default_rng(0), t=t, total=total)
    if basis is None:  # the rule needs more components than the truncated solver is for
        _, vecs = np.linalg.eigh(gram)
        basis = vecs[:, ::-1]
        need = basis.shape[1]
    s, vt = _project_svd(x, basis, rows)
    # only the converged leading pairs: the rest of the block is approximate
    return s[:need], vt[:need]


def _leading_eigh(gram, n, rng, *, t=None, total=0.0):
    """An orthonormal (m, L) block spanning the leading eigenvectors of ``gram``.

    Block subspace iteration with Rayleigh-Ritz. It runs until the Ritz pairs
    that matter have converged (relative residual ``_RESIDUAL_TOL``): the first
    ``n``, or with the variance threshold ``t`` the first ``c + 1``, ``c`` the
    count the rule gives. Ritz values never exceed the eigenvalues they
    approach, so while the first ``k`` of them, converging, stay below ``t``
    the block doubles (warm-started). Returns (the block, the number of
    converged leading pairs), or (None, 0) when ``k`` would pass
    ``_TRUNCATED_MAX_FRACTION * m``.
    """
    m = gram.shape[0]
    k = n if n is not None else 32
    size = min(m, max(2 * k, k + _PAD))
    q, _ = np.linalg.qr(gram @ rng.standard_normal((m, size)))
    previous = -1.0
    for _ in range(_MAX_ITER):
        z = gram @ q
        small = q.T @ z
        theta, rot = np.linalg.eigh(0.5 * (small + small.T))
        theta, rot = theta[::-1], rot[:, ::-1]
        y, gy = q @ rot, z @ rot
        need = k
        if t is not None:
            cum = np.cumsum(np.maximum(theta[:k], 0.0)) / total if total > 0 else np.ones(k)
            above = cum > t
            if not above.any():
                if cum[-1] - previous < 1e-4:  # settled below t: more components are needed
                    k *= 2
                    if k > _TRUNCATED_MAX_FRACTION * m:
                        return None, 0
                    size = min(m, 2 * k)
                    q, _ = np.linalg.qr(np.hstack([gy, gram @ rng.standard_normal((m, size - gy.shape[1]))]))
                    previous = -1.0
                    continue
                previous = cum[-1]
                q, _ = np.linalg.qr(gy)
                continue
            need = max(1, int(np.argmax(above))) + 1
        resid = np.linalg.norm(gy[:, :need] - y[:, :need] * theta[:need], axis=0)
        if theta[0] <= 0 or resid.max() <= _RESIDUAL_TOL * theta[0]:
            break
        q, _ = np.linalg.qr(gy)
    return y, need


def _ratio(s: np.ndarray, total: float | None = None) -> np.ndarray:
    power = s**2
    if total is None:
        total = power.sum()
    if total == 0:
        # a constant channel: nothing to explain; one component says it all
        out = np.zeros_like(power)
        out[0] = 1.0
        return out
    return power / total


def explained_variance_ratios(image) -> list:
    """Full-spectrum explained variance ratio of row PCA, per channel.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8

    Returns
    -------
    list of 3 ndarray of shape (min(H, W),), float64
    """
    image = _check_image(image)
    return [_fit_channel(image[:, :, c], n=1, solver="full").ratios for c in range(3)]


class RowPCA:
    """Row PCA per colour channel (scikit-learn ``PCA`` on each H x W channel).

    Parameters
    ----------
    n_components : int or tuple of 3 int, optional
        Components kept per channel (one int for all three). Exactly one of
        ``n_components`` and ``variance`` must be given.
    variance : float in (0, 1], optional
        Choose ``n`` per channel by the study's rule
        :func:`n_components_for_variance` on the full spectrum.
    rescale : {"clip", "minmax"}, default="clip"
        How :meth:`reconstruct` returns to uint8: ``"clip"`` rounds and clips
        to 0..255 (correct); ``"minmax"`` rescales each channel's min..max
        to 0..255, as the study did (distorts contrast; for reproduction only).

    Attributes
    ----------
    n_components_ : tuple of 3 int
    components_ : list of 3 ndarray of shape (n_c, W), float64
    mean_ : list of 3 ndarray of shape (W,), float64
    explained_variance_ratio_ : list of 3 ndarray of shape (L_c,)
        The spectrum, whatever ``n`` is kept: complete (``L_c = min(H, W)``)
        when ``min(H, W) <= 1024`` or many components are kept; otherwise the
        leading values the truncated solver computed (at least ``n_c + 1`` of
        them with ``variance``), still as fractions of the whole variance.
    singular_values_ : list of 3 ndarray of shape (L_c,)
    stored_values_ : tuple of 3 int
        Values needed to decode each channel: ``H*n + n*W + W``
        (scores + components + mean).
    shape_ : tuple (H, W, 3)

    Examples
    --------
    >>> from imcompress import sample_image
    >>> from imcompress.pca_rows import RowPCA
    >>> pca = RowPCA(variance=0.95).fit(sample_image())
    >>> len(pca.n_components_)
    3
    >>> pca.reconstruct(sample_image()).dtype
    dtype('uint8')
    """

    def __init__(self, n_components=None, *, variance=None, rescale="clip"):
        self.n_components = n_components
        self.variance = variance
        self.rescale = rescale

    # -- validation ---------------------------------------------------------
    def _check_params(self, max_n: int):
        if self.rescale not in _RESCALE:
            raise UsageError(f"rescale={self.rescale!r} should be one of {_RESCALE}")
        if (self.n_components is None) == (self.variance is None):
            raise UsageError(
                "give exactly one of n_components and variance "
                f"(got n_components={self.n_components!r}, variance={self.variance!r})"
            )
        if self.variance is not None:
            return None, _check_variance(self.variance)
        n = self.n_components
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
            n = (n, n, n)
        if not isinstance(n, (tuple, list)) or len(n) != 3:
            raise UsageError(
                f"n_components={self.n_components!r} should be an int or a tuple of 3 ints"
            )
        out = []
        for v in n:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise UsageError(f"n_components={self.n_components!r} should hold integers")
            if not 1 <= v <= max_n:
                raise UsageError(
                    f"n_components={int(v)} should be in 1..{max_n} (min(H, W) of the image)"
                )
            out.append(int(v))
        return tuple(out), None

    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise UsageError("this RowPCA is not fitted yet; call fit(image) first")

    # -- estimator ----------------------------------------------------------
    def fit(self, image):
        """Fit one PCA per channel of an (H, W, 3) uint8 image.

        Each channel is decomposed through its Gram matrix on the smaller side
        (see Notes), computing the components needed (and a few more, so that
        :meth:`select` can often slice them without a new decomposition).

        Notes
        -----
        The result is that of a full SVD per channel (scikit-learn's
        ``PCA(svd_solver="full")``) to within 1e-9 in the reconstruction; on
        images with ``min(H, W) > 1024`` only the leading components are
        computed (block subspace iteration on the Gram matrix, converged to
        a relative residual of 1e-12), which makes a 20-megapixel photo take
        seconds instead of minutes.
        """
        image = _check_image(image)
        h, w, _ = image.shape
        fixed, t = self._check_params(min(h, w))
        fits = [_fit_channel(image[:, :, c], n=None if fixed is None else fixed[c], t=t) for c in range(3)]
        return self._set_from_fits(fits, image)

    def _set_from_fits(self, fits, image):
        h, w, _ = image.shape
        fixed, t = self._check_params(min(h, w))
        ratios = [f.ratios for f in fits]
        if fixed is not None:
            ns = fixed
        else:
            ns = tuple(n_components_for_variance(np.cumsum(r), t) for r in ratios)
        self.n_components_ = tuple(int(n) for n in ns)
        self.components_ = [np.ascontiguousarray(f.components[:n]) for f, n in zip(fits, ns)]
        self.mean_ = [f.mean for f in fits]
        self.explained_variance_ratio_ = ratios
        self.singular_values_ = [f.singular_values for f in fits]
        self.stored_values_ = tuple(h * n + n * w + w for n in self.n_components_)
        self.shape_ = (h, w, 3)
        # what select() slices; the image (a reference, not a copy) for when it
        # asks for more components than were computed
        self._fits, self._image = fits, image
        return self

    def select(self, n_components=None, *, variance=None):
        """A fitted copy keeping another number of components, usually without a new fit.

        The copy is sliced from this fit's decomposition when it holds enough
        components (and spectrum); a channel that needs more is fitted again.

        Parameters
        ----------
        n_components, variance
            As for the constructor; exactly one of them.

        Returns
        -------
        RowPCA
            A new fitted estimator with the same ``rescale``.

        Examples
        --------
        >>> from imcompress import sample_image
        >>> pca = RowPCA(variance=0.90).fit(sample_image())
        >>> pca.select(variance=0.95).n_components_ >= pca.n_components_
        True
        """
        self._check_fitted()
        other = RowPCA(n_components, variance=variance, rescale=self.rescale)
        h, w, _ = self.shape_
        fixed, t = other._check_params(min(h, w))
        fits = []
        for c, fit in enumerate(self._fits):
            if fixed is not None:
                enough = fixed[c] <= fit.components.shape[0]
            else:
                cum = np.cumsum(fit.ratios)
                n = n_components_for_variance(cum, t)
                enough = (fit.complete or (cum > t).any()) and n <= fit.components.shape[0]
            if not enough:
                fit = _fit_channel(self._image[:, :, c], n=None if fixed is None else fixed[c], t=t)
            fits.append(fit)
        return other._set_from_fits(fits, self._image)

    def _check_same_width(self, image):
        image = _check_image(image)
        if image.shape[1] != self.shape_[1]:
            raise UsageError(
                f"image width {image.shape[1]} differs from the fitted width {self.shape_[1]}"
            )
        return image

    def transform(self, image) -> list:
        """Scores of every row, per channel.

        Returns
        -------
        list of 3 ndarray of shape (H, n_c), float64
        """
        self._check_fitted()
        image = self._check_same_width(image)
        return [
            (image[:, :, c].astype(np.float64) - self.mean_[c]) @ self.components_[c].T
            for c in range(3)
        ]

    def inverse_transform(self, scores) -> np.ndarray:
        """Rows rebuilt from scores: (H, W, 3) float64, neither rounded nor clipped."""
        self._check_fitted()
        if len(scores) != 3:
            raise UsageError(f"scores should be a list of 3 arrays, got {len(scores)}")
        chans = []
        for c in range(3):
            s = np.asarray(scores[c], dtype=np.float64)
            n = self.components_[c].shape[0]
            if s.ndim != 2 or s.shape[1] != n:
                raise UsageError(
                    f"scores[{c}] of shape {s.shape} should be (H, {n}) for this fit"
                )
            chans.append(s @ self.components_[c] + self.mean_[c])
        return np.stack(chans, axis=2)

    def reconstruct(self, image) -> np.ndarray:
        """Compress and decompress ``image``: (H, W, 3) uint8 per ``rescale``."""
        return to_uint8(self.inverse_transform(self.transform(image)), rescale=self.rescale)


#: RowPCA's ``rescale`` policies as :func:`imcompress.to_uint8` input ranges.
_IN_RANGE = {"clip": (0.0, 255.0), "minmax": "image"}


def to_uint8(values, *, rescale: str = "clip") -> np.ndarray:
    """Float (H, W, 3) reconstructions to uint8 under a :class:`RowPCA` ``rescale``.

    A name for the policy only: the conversion is :func:`imcompress.to_uint8`.
    ``"clip"`` rounds and clips to 0..255 (``in_range=(0, 255)``);
    ``"minmax"`` maps each channel's own minimum and maximum to 0 and 255,
    the study's rescale (``in_range="image"``).

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([[[-1.0, 10.0, 300.0]]])).tolist()
    [[[0, 10, 255]]]
    """
    if rescale not in _IN_RANGE:
        raise UsageError(f"rescale={rescale!r} should be one of {_RESCALE}")
    return _to_uint8(values, in_range=_IN_RANGE[rescale], channel_axis=-1)
