"""Sweeping K and finding the elbow of the inertia curve."""

from __future__ import annotations

from dataclasses import dataclass, field


from .._errors import UsageError
from ._quantizer import KMeansQuantizer, prepare_colors

__all__ = ["KMeansSweep", "kmeans_sweep", "find_elbow"]


@dataclass
class KMeansSweep:
    """Result of :func:`kmeans_sweep`.

    Attributes
    ----------
    ks : list of int
    inertias : list of float
        Sum of squared distances of all pixels to their centroid, per K.
    quantizers : list of KMeansQuantizer
        The fitted quantizer of each K.
    elbow_k : int or None
        The K at the elbow (Kneedle), or None when the curve has none.
    warm_start_won : list of bool
        Per K, whether the fit from the previous K's centres beat the fresh
        k-means++ fit (and was kept).
    """

    ks: list
    inertias: list
    quantizers: list = field(repr=False)
    elbow_k: int | None = None
    warm_start_won: list = field(default_factory=list)

    def quantizer(self, k: int) -> KMeansQuantizer:
        """The fitted quantizer for ``k``."""
        try:
            return self.quantizers[self.ks.index(k)]
        except ValueError:
            raise UsageError(f"k={k} is not in this sweep ({self.ks})") from None


def kmeans_sweep(image, ks=range(2, 21, 2), *, random_state=0, progress=False, **params) -> KMeansSweep:
    """Fit K-means for every K in ``ks`` and locate the elbow.

    The colour table and histogram are prepared once (:func:`prepare_colors`)
    and shared by every K. Each K after the first is fitted with
    ``init=`` the previous K's centres: one more run, seeded with them and
    completed by k-means++, next to the fresh k-means++ runs; it is kept only
    when its inertia is lower, so sharing never loses quality and the inertia
    falls with K.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3|4), dtype uint8
    ks : iterable of int, default=range(2, 21, 2)
    random_state : int, default=0
    progress : bool, default=False
        Show a progress bar (rich) on stderr.
    **params
        Other :class:`KMeansQuantizer` options (``speed``, ``color_space``,
        ``fixed_colors``, ...), the same for every K; not ``init``.

    Examples
    --------
    >>> from imcompress import sample_image
    >>> sweep = kmeans_sweep(sample_image(), ks=[2, 4, 8])
    >>> sweep.ks, sweep.quantizer(4).palette_.shape
    ([2, 4, 8], (4, 3))
    """
    try:
        ks = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise UsageError(f"ks={ks!r} should be integers, e.g. range(2, 21)") from None
    if len(ks) == 0:
        raise UsageError("ks is empty; give at least one K")
    if "init" in params:
        raise UsageError("kmeans_sweep chooses init itself (the previous K's centres); do not pass init=")
    template = KMeansQuantizer(ks[0], random_state=random_state, **params)
    prepared = prepare_colors(image, color_space=template.color_space, speed=template.speed)
    quantizers, inertias, warm_won = [], [], []
    iterator = ks
    if progress:
        from rich.progress import track

        iterator = track(ks, description="K-means sweep", transient=True)
    previous = None
    for k in iterator:
        # the previous K's centres seed one more run next to the fresh k-means++ ones
        init = "k-means++" if previous is None else previous.cluster_centers_
        q = KMeansQuantizer(k, random_state=random_state, init=init, **params).fit(prepared)
        previous = q
        quantizers.append(q)
        inertias.append(q.inertia_)
        warm_won.append(q.init_won_)
    return KMeansSweep(ks=ks, inertias=inertias, quantizers=quantizers,
                       elbow_k=find_elbow(ks, inertias), warm_start_won=warm_won)


def find_elbow(ks, inertias) -> int | None:
    """K at the elbow of a decreasing convex inertia curve (Kneedle, ``kneed``).

    Returns None when fewer than 3 points are given or no knee is found.
    """
    from kneed import KneeLocator

    ks = list(ks)
    if len(ks) < 3:
        return None
    locator = KneeLocator(ks, list(inertias), curve="convex", direction="decreasing")
    return None if locator.knee is None else int(locator.knee)
