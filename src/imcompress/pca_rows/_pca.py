"""Row PCA of each colour channel, as in the study being reproduced.

For each of R, G and B the H rows of the channel are the observations and
its W columns the features: PCA keeps ``n`` principal axes of length W, and
each row is stored as ``n`` scores. What must be stored to decode a channel
is the scores (H x n), the components (n x W) and the column means (W).
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_limits

from .._errors import UsageError
from .._validation import check_image, to_uint8 as _to_uint8

__all__ = ["RowPCA", "n_components_for_variance", "explained_variance_ratios"]

_RESCALE = ("clip", "minmax")

#: Channels up to this many values (about 4 megapixels) are decomposed with
#: one BLAS thread; see ``_channel_svd``.
_SINGLE_THREAD_MAX_VALUES = 1 << 22


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


def _channel_svd(channel: np.ndarray):
    """Mean, singular values and right singular vectors of one (H, W) channel.

    Signs follow scikit-learn's PCA (``svd_flip(u_based_decision=False)``):
    the largest-magnitude entry of every component is positive.
    """
    x = channel.astype(np.float64)
    mean = x.mean(axis=0)
    if x.size <= _SINGLE_THREAD_MAX_VALUES:
        # On matrices this small, BLAS threads gain little on an idle machine
        # but spin against each other on a busy one (30x slower measured with
        # 2 cores shared by 4 processes), so one thread is the safe choice.
        with threadpool_limits(limits=1, user_api="blas"):
            _, s, vt = linalg.svd(x - mean, full_matrices=False, check_finite=False)
    else:
        _, s, vt = linalg.svd(x - mean, full_matrices=False, check_finite=False)
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    vt *= signs[:, None]
    return mean, s, vt


def _ratio(s: np.ndarray) -> np.ndarray:
    power = s**2
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
    return [_ratio(_channel_svd(image[:, :, c])[1]) for c in range(3)]


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
    explained_variance_ratio_ : list of 3 ndarray of shape (min(H, W),)
        The full spectrum, whatever ``n`` is kept.
    singular_values_ : list of 3 ndarray of shape (min(H, W),)
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

        One full SVD per channel; the kept components are a slice of it.
        """
        image = _check_image(image)
        h, w, _ = image.shape
        self._check_params(min(h, w))
        svds = [_channel_svd(image[:, :, c]) for c in range(3)]
        return self._set_from_svd(svds, (h, w, 3))

    def _set_from_svd(self, svds, shape):
        h, w, _ = shape
        fixed, t = self._check_params(min(h, w))
        ratios = [_ratio(s) for _, s, _ in svds]
        if fixed is not None:
            ns = fixed
        else:
            ns = tuple(n_components_for_variance(np.cumsum(r), t) for r in ratios)
        self.n_components_ = tuple(int(n) for n in ns)
        self.components_ = [np.ascontiguousarray(vt[:n]) for (_, _, vt), n in zip(svds, ns)]
        self.mean_ = [mean for mean, _, _ in svds]
        self.explained_variance_ratio_ = ratios
        self.singular_values_ = [s for _, s, _ in svds]
        self.stored_values_ = tuple(h * n + n * w + w for n in self.n_components_)
        self.shape_ = (h, w, 3)
        self._svds = svds  # the full SVD, so that select() needs no new one
        return self

    def select(self, n_components=None, *, variance=None):
        """A fitted copy keeping another number of components, without a new SVD.

        The copy is sliced from this fit's full SVD, so trying several
        thresholds costs one SVD per channel in all.

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
        return other._set_from_svd(self._svds, self.shape_)

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
