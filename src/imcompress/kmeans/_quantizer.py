"""K-means colour quantization as a scikit-learn-style estimator."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .._errors import UsageError
from ._colors import color_table

__all__ = ["KMeansQuantizer"]


class KMeansQuantizer:
    """Quantize an image to ``n_colors`` colours with K-means.

    Pixels of the same colour are one weighted point, so K-means runs over the
    distinct colours with their counts: the same objective as over all
    pixels, on far fewer points.

    Parameters
    ----------
    n_colors : int, default=16
        Number of palette entries K, 2 <= K <= number of distinct colours.
    random_state : int, default=0
        Seed; the same image, K and seed give the same palette.
    n_init : int, default=1
        Number of k-means++ restarts; the lowest inertia wins.
    max_iter : int, default=300
    tol : float, default=1e-4

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (K, C), float64
        Centroids in 0..255 units.
    palette_ : ndarray of shape (K, C), uint8
        Centroids rounded and clipped to 0..255.
    inertia_ : float
        Sum over all pixels of the squared distance to the nearest centroid.
    n_iter_ : int
    n_distinct_colors_ : int
        Distinct colours in the fitted image.

    Examples
    --------
    >>> from imcompress import KMeansQuantizer, sample_image
    >>> q = KMeansQuantizer(n_colors=8).fit(sample_image())
    >>> q.palette_.shape
    (8, 3)
    """

    def __init__(self, n_colors=16, *, random_state=0, n_init=1, max_iter=300, tol=1e-4):
        self.n_colors = n_colors
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, image):
        """Fit the palette to an (H, W, C) uint8 image."""
        image = _check_uint8_image(image)
        table = color_table(image)
        k = _check_n_colors(self.n_colors, table.n_colors)
        km = KMeans(
            n_clusters=k,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
        )
        km.fit(table.colors.astype(np.float64), sample_weight=table.counts.astype(np.float64))
        self.cluster_centers_ = km.cluster_centers_.astype(np.float64)
        self.palette_ = np.clip(np.rint(self.cluster_centers_), 0, 255).astype(np.uint8)
        self.inertia_ = float(km.inertia_)
        self.n_iter_ = int(km.n_iter_)
        self.n_distinct_colors_ = table.n_colors
        self._fit_labels = (table, km.labels_)
        return self

    def predict(self, image):
        """Palette index of every pixel, shape (H, W), nearest in the palette."""
        self._check_fitted()
        image = _check_uint8_image(image)
        table = color_table(image)
        centers = self.palette_.astype(np.float64)
        colors = table.colors.astype(np.float64)
        d = (
            (colors**2).sum(1)[:, None]
            - 2.0 * colors @ centers.T
            + (centers**2).sum(1)[None, :]
        )
        labels = np.argmin(d, axis=1)
        dtype = np.uint8 if len(centers) <= 256 else np.uint16
        return labels[table.inverse].reshape(image.shape[:2]).astype(dtype)

    def quantize(self, image):
        """The image with every pixel replaced by its nearest palette colour."""
        return self.palette_[self.predict(image)]

    def fit_quantize(self, image):
        """Fit, then quantize the same image."""
        return self.fit(image).quantize(image)

    def _check_fitted(self):
        if not hasattr(self, "palette_"):
            raise UsageError("this KMeansQuantizer is not fitted yet; call fit(image) first")


def _check_uint8_image(image):
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise UsageError(
            f"image of shape {arr.shape} and dtype {arr.dtype} should be (H, W, 3|4) uint8"
        )
    return arr


def _check_n_colors(k, n_distinct):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"n_colors={k!r} should be an integer")
    if k < 2:
        raise UsageError(f"n_colors={k} should be >= 2")
    if k > n_distinct:
        raise UsageError(f"n_colors={k} exceeds the {n_distinct} distinct colours in the image")
    return int(k)
