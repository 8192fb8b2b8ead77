"""K-means colour quantization as a scikit-learn-style estimator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import UsageError
from .._validation import check_image, check_scalar, to_uint8
from . import _solver
from ._colors import ColorTable, color_table, palette_order
from ._quality import mse_to_quality
from ._spaces import COLOR_SPACES, to_rgb_float, to_space

__all__ = ["KMeansQuantizer", "PreparedColors", "SPEED_LEVELS", "prepare_colors"]

#: What each ``speed`` level does: (histogram bits per channel, k-means++
#: restarts at K <= RESTART_MAX_K, Lloyd iterations allowed on the full set of
#: distinct colours, halved above K = REFINE_FULL_MAX_K). Bits 0 means no
#: histogram (K-means on the distinct colours directly); the histogram also
#: gains bits, or is skipped, when it is too coarse for K (see
#: ``_solver.BINS_PER_CENTER``). "max" means up to
#: ``max_iter`` (run to convergence).
SPEED_LEVELS = {
    1: (0, 16, "max"),
    2: (6, 12, "max"),
    3: (5, 10, "max"),
    4: (5, 8, 40),
    5: (5, 4, 20),
    6: (5, 2, 10),
    7: (4, 1, 10),
    8: (4, 1, 5),
    9: (4, 1, 2),
    10: (4, 1, 0),
}

#: Restarts pay at small K, where k-means++ seeds fall into different local
#: optima; above this K a single run is kept (more cost time, gain < 0.01 dB).
RESTART_MAX_K = 64

#: Above this K the refinement on the distinct colours gets half its level's
#: Lloyd iterations (speed 4: 20 instead of 40), over-relaxed by REFINE_RELAX
#: (each update moves the centres 1.8 times the way to their means; see
#: ``_lloyd.lloyd``). The refinement is most of the fit there (the 12 MP photo
#: at K = 256: 1.4 of 1.5 CPU-s); 20 plain iterations gave up 0.015-0.03 dB
#: against 40, 20 over-relaxed ones are within 0.01 dB of 40 or above them
#: (K = 256: study photo -0.005, 12 MP -0.010, Kodak -0.01..+0.04) at 1.0-1.2x
#: the time of 20 plain ones.
REFINE_FULL_MAX_K = 128
REFINE_RELAX = 1.8


@dataclass(frozen=True)
class PreparedColors:
    """An image's distinct colours, prepared once for many fits.

    Built by :func:`prepare_colors`; :meth:`KMeansQuantizer.fit` accepts it in
    place of the image, so a sweep over K or a quality search builds the
    colour table and the colour histogram once. The histogram levels are
    built lazily and kept with it.

    Attributes
    ----------
    table : ColorTable
        Distinct colours, their counts, and the colour of every pixel.
    color_space : str
        The clustering space the points are in.
    speed : int
        The speed level whose base histogram resolution was used.
    """

    table: ColorTable
    color_space: str
    speed: int
    problem: _solver.Problem

    @property
    def channels(self) -> int:
        return int(self.table.colors.shape[1])

    @property
    def n_colors(self) -> int:
        """Number of distinct colours in the image."""
        return self.table.n_colors


def prepare_colors(image, *, color_space="rgb", speed=4) -> PreparedColors:
    """Prepare an image for several :class:`KMeansQuantizer` fits.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3|4), dtype uint8
    color_space, speed
        As for :class:`KMeansQuantizer`; a quantizer fitted on the result
        must have the same two.

    Returns
    -------
    PreparedColors

    Examples
    --------
    >>> from imcompress import KMeansQuantizer, sample_image
    >>> prepared = prepare_colors(sample_image())
    >>> [KMeansQuantizer(k).fit(prepared).palette_.shape[0] for k in (4, 8)]
    [4, 8]
    """
    image = check_image(image)
    KMeansQuantizer(color_space=color_space, speed=speed)._check_params(image.shape[2])
    table = color_table(image)
    bits = SPEED_LEVELS[speed][0]
    problem = _solver.make_problem(table.colors, table.counts, color_space, bits)
    return PreparedColors(table=table, color_space=color_space, speed=int(speed), problem=problem)


class KMeansQuantizer:
    """Quantize an image to ``n_colors`` colours with K-means.

    Pixels of the same colour are one weighted point, so K-means runs over the
    distinct colours with their counts: the same objective as over all
    pixels, on far fewer points. At speed >= 2 a coarser colour histogram
    (bins carrying their mean colour and weight) does the seeding and most
    iterations; Lloyd then refines on the full set of distinct colours.

    Parameters
    ----------
    n_colors : int, default=16
        Number of palette entries K, 2 <= K <= number of distinct colours.
    random_state : int, default=0
        Seed; the same image, K and seed give the same palette and indices,
        on every run and machine.
    n_init : int or None, default=None
        Number of k-means++ restarts; the lowest inertia wins. None: the
        ``speed`` level's (see :data:`SPEED_LEVELS`) for K <= 64, else 1.
    max_iter : int, default=300
        Cap on Lloyd iterations per stage.
    tol : float, default=1e-4
        Stop when the sum of squared centre shifts falls below ``tol`` times
        the mean per-channel variance of the pixels (scikit-learn's rule), or
        when no label changes.
    speed : int, default=4
        1 (slowest, best) .. 10 (fastest); see :data:`SPEED_LEVELS`.
    color_space : {"rgb", "lab", "oklab"}, default="rgb"
        Space the clustering runs in. The palette is always sRGB uint8.
        RGBA images are clustered in premultiplied RGBA and need "rgb".
    dither : float, default=0.0
        Floyd–Steinberg error-diffusion strength in 0..1, used by
        :meth:`predict` and :meth:`quantize`; 0 maps every pixel to its nearest
        palette colour.
    fixed_colors : array-like of shape (m, C), uint8, optional
        Colours kept exactly in the palette (m <= K, no duplicates); the
        other K - m centroids move.
    init : "k-means++" or array-like of shape (j, C), default="k-means++"
        Initial centres, as scikit-learn's ``KMeans(init=...)``, in sRGB(A)
        0..255 units (a previous fit's ``cluster_centers_`` for instance).
        With K rows (after the fixed colours are set aside) a single Lloyd
        run starts from exactly these centres on the distinct colours, and
        ``n_init`` is not used: the result is the one scikit-learn's
        ``KMeans(init=init, n_init=1)`` reaches on the pixels. With fewer rows
        (a warm start from a smaller K) they seed one more run, its missing
        centres added by greedy k-means++, which competes with the ``n_init``
        k-means++ runs: the lowest inertia wins (``init_won_``). Rows equal to
        a fixed colour are that fixed colour.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (K, C), float64
        Centroids as sRGB(A) in 0..255 units, in palette order.
    palette_ : ndarray of shape (K, C), uint8
        Centroids rounded and clipped to 0..255, sorted (see Notes).
    inertia_ : float
        Sum over all pixels of the squared sRGB distance (0..255 units) to
        their centroid.
    mse_ : float
        Mean squared error (over pixels and channels, sRGB 0..255 units) of
        the undithered quantization of the fitted image, with the rounded
        palette: ``metrics.mse(image, quantize(image))`` at ``dither=0``.
        Premultiplied for RGBA.
    quality_ : int
        ``mse_`` on pngquant's 0..100 quality scale
        (:func:`~imcompress.kmeans.mse_to_quality`).
    n_iter_ : int
        Lloyd iterations of the kept run (histogram + refinement).
    n_distinct_colors_ : int
        Distinct colours in the fitted image.
    init_won_ : bool
        True when the run seeded from ``init`` was kept (always, for K rows).

    Notes
    -----
    Determinism and ties: k-means++ draws from NumPy's PCG64 seeded with
    ``random_state``; all arithmetic is sequential float64. A pixel goes to
    the palette entry at the smallest squared distance in the clustering
    space; on an exact tie the lowest index wins. The palette is sorted by
    luma ``299 R + 587 G + 114 B``, then R, G, B (and alpha); for RGBA
    images the fully transparent entry, when present, comes first.

    Examples
    --------
    >>> from imcompress import KMeansQuantizer, sample_image
    >>> q = KMeansQuantizer(n_colors=8).fit(sample_image())
    >>> q.palette_.shape
    (8, 3)
    """

    def __init__(
        self,
        n_colors=16,
        *,
        random_state=0,
        n_init=None,
        max_iter=300,
        tol=1e-4,
        speed=4,
        color_space="rgb",
        dither=0.0,
        fixed_colors=None,
        init="k-means++",
    ):
        self.n_colors = n_colors
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.speed = speed
        self.color_space = color_space
        self.dither = dither
        self.fixed_colors = fixed_colors
        self.init = init

    # -- fitting -----------------------------------------------------------------

    def fit(self, image):
        """Fit the palette to an image.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3|4), dtype uint8, or PreparedColors
            The image, or its :func:`prepare_colors` result (prepared with
            this quantizer's ``color_space`` and ``speed``).

        Returns
        -------
        self
        """
        self._fit_prepared(self._prepare_for_fit(image))
        return self

    def fit_predict(self, image, *, colors=None):
        """Fit the palette to ``image`` and return its palette indices.

        The same result as ``fit(image).predict(image)``, without a second
        search for the nearest palette entries: the fit has found them for
        every colour of the image already.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3|4), dtype uint8
        colors : PreparedColors, optional
            :func:`prepare_colors` of this same image, to fit on instead of
            building the colour table again.

        Returns
        -------
        ndarray of shape (H, W), uint8 (uint16 if K > 256)

        Examples
        --------
        >>> from imcompress import KMeansQuantizer, sample_image
        >>> img = sample_image()
        >>> idx = KMeansQuantizer(8).fit_predict(img)
        >>> bool((idx == KMeansQuantizer(8).fit(img).predict(img)).all())
        True
        """
        image = check_image(image)
        prepared = self._prepare_for_fit(image if colors is None else self._check_colors(colors, image))
        labels = self._fit_prepared(prepared)
        return self._indices(image, prepared.table, labels)

    def _prepare_for_fit(self, image):
        """``image`` (or its PreparedColors) checked against the parameters, as PreparedColors."""
        if isinstance(image, PreparedColors):
            prepared = image
            self._check_params(prepared.channels)
            if (prepared.color_space, prepared.speed) != (self.color_space, self.speed):
                raise UsageError(
                    f"colours prepared with color_space={prepared.color_space!r}, speed={prepared.speed} "
                    f"cannot fit a quantizer with color_space={self.color_space!r}, speed={self.speed}; "
                    "prepare them with the quantizer's own"
                )
            return prepared
        image = check_image(image)
        self._check_params(image.shape[2])
        return prepare_colors(image, color_space=self.color_space, speed=self.speed)

    def _settings(self, k):
        bits, n_init, refine = SPEED_LEVELS[self.speed]
        if self.n_init is not None:
            n_init = self.n_init
        elif k > RESTART_MAX_K:
            n_init = 1
        relax = 1.0
        if refine == "max":
            refine = self.max_iter
        elif k > REFINE_FULL_MAX_K:
            refine, relax = min(refine // 2, self.max_iter), REFINE_RELAX
        else:
            refine = min(refine, self.max_iter)
        return n_init, refine, relax

    def _fixed_points(self, table, channels):
        """Fixed colours (uint8) and their clustering coordinates."""
        fixed = _check_fixed(self.fixed_colors, channels, self.n_colors)
        if channels == 4 and np.any(table.colors[:, 3] == 0):
            # every fully transparent pixel maps to one (0, 0, 0, 0) entry
            clear = np.zeros((1, 4), dtype=np.uint8)
            keep = ~np.all(fixed[:, 3:4] == 0, axis=1)
            fixed = np.concatenate([clear, fixed[keep]], axis=0)
        return fixed, to_space(fixed, self.color_space)

    def _fit_prepared(self, prepared):
        """Fit on ``prepared``; returns the palette index of every colour of its table."""
        k = _check_n_colors(self.n_colors, prepared.n_colors)
        table, problem, channels = prepared.table, prepared.problem, prepared.channels
        fixed_u8, fixed_X = self._fixed_points(table, channels)
        if fixed_u8.shape[0] > k:
            raise UsageError(
                f"{fixed_u8.shape[0]} fixed colours (including the transparent entry) "
                f"do not fit in n_colors={k}; raise n_colors or drop fixed colours"
            )
        seeds = self._init_points(fixed_u8, fixed_X, channels, k)
        n_init, refine, relax = self._settings(k)
        options = dict(fixed=fixed_X, max_iter=self.max_iter, tol=self.tol, refine_iter=refine, refine_relax=relax)
        sol = _solver.solve(
            problem, k, rng=np.random.default_rng(self.random_state), n_init=n_init, init=seeds, **options
        )
        order = self._set_solution(sol, problem, table, fixed_u8)
        self.init_won_ = bool(sol.from_init or (seeds is not None and seeds.shape[0] == k))
        # the solution's labels, in palette order, are a close first guess for the
        # assignment to the rounded palette
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        self.mse_, labels = _table_mse(self.palette_, self.color_space, table, problem, rank[sol.labels],
                                       _bounds_for(sol, self.palette_, rank, self.color_space))
        self.quality_ = mse_to_quality(self.mse_)
        return labels

    def _init_points(self, fixed_u8, fixed_X, channels, k):
        """``init`` as solver seeds in the clustering space, fixed colours first."""
        init = _check_init(self.init, channels, k)
        if init is None:
            return None
        is_fixed = (init[:, None, :] == fixed_u8[None, :, :].astype(np.float64)).all(axis=2).any(axis=1)
        rest = init[~is_fixed]
        if fixed_u8.shape[0] + rest.shape[0] > k:
            raise UsageError(
                f"init has {rest.shape[0]} centres besides the {fixed_u8.shape[0]} fixed colours: "
                f"more than n_colors={k}; give at most {k - fixed_u8.shape[0]}"
            )
        return np.concatenate([fixed_X, to_space(rest, self.color_space)], axis=0)

    def _set_solution(self, sol, problem, table, fixed_u8):
        space = self.color_space
        palette = to_uint8(to_rgb_float(sol.centers, space))
        m = fixed_u8.shape[0]
        palette[:m] = fixed_u8  # exact, whatever the round trip through the space
        centers_rgb = to_rgb_float(sol.centers, space)
        centers_rgb[:m] = fixed_u8
        order = palette_order(palette)
        self.palette_ = palette[order]
        self.cluster_centers_ = centers_rgb[order]
        # the objective in sRGB 0..255 units, whatever space was clustered in
        if space == "rgb":
            pts, cen = problem.X, sol.centers  # premultiplied for RGBA
        else:
            pts, cen = table.colors.astype(np.float64), to_rgb_float(sol.centers, space)
        diff = pts - cen[sol.labels]
        self.inertia_ = float((problem.w * (diff**2).sum(1)).sum())
        self.n_iter_ = int(sol.n_iter)
        self.n_distinct_colors_ = table.n_colors
        return order

    # -- mapping -----------------------------------------------------------------

    def predict(self, image, *, colors=None):
        """Palette index of every pixel, shape (H, W), uint8 (uint16 if K > 256).

        Without dithering each pixel gets its nearest palette colour (in the
        clustering space, lowest index on ties); with ``dither > 0``, the
        Floyd–Steinberg result (serpentine scan, sRGB error), deterministic.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3|4), dtype uint8
        colors : PreparedColors, optional
            :func:`prepare_colors` of this same image: its colour table is
            used instead of being built again. To fit and map the same image,
            :meth:`fit_predict` also saves the search for the nearest entries.
        """
        self._check_fitted()
        image = check_image(image)
        channels = self.palette_.shape[1]
        if image.shape[2] != channels:
            raise UsageError(
                f"image has {image.shape[2]} channels but the palette was fitted on "
                f"{channels}; fit and predict images of the same kind"
            )
        table = color_table(image) if colors is None else self._check_colors(colors, image).table
        X = to_space(table.colors, self.color_space)
        P = to_space(self.palette_, self.color_space)
        labels = _solver.assign(X, P, table.colors)
        if channels == 4:
            clear = _transparent_index(self.palette_)
            if clear is not None:
                labels[table.colors[:, 3] == 0] = clear
        return self._indices(image, table, labels)

    @staticmethod
    def _check_colors(colors, image):
        if not isinstance(colors, PreparedColors) or colors.table.shape != image.shape:
            raise UsageError("colors= should be prepare_colors(image) of the same image")
        return colors

    def _indices(self, image, table, labels):
        """Palette index of every pixel from the palette index of every colour of ``table``."""
        dtype = np.uint8 if len(self.palette_) <= 256 else np.uint16
        # narrow the labels before expanding them to every pixel: 1 byte per pixel, not 8
        indices = labels.astype(dtype)[table.inverse].reshape(image.shape[:2])
        if self.dither > 0:
            from ._dither import dither_indices

            clear = _transparent_index(self.palette_) if image.shape[2] == 4 else None
            indices = dither_indices(image, self.palette_, indices, self.dither, clear)
        return indices.astype(dtype, copy=False)

    def quantize(self, image):
        """The image with every pixel replaced by its palette colour."""
        return self.palette_[self.predict(image)]

    def fit_quantize(self, image):
        """Fit, then quantize the same image."""
        return self.fit(image).quantize(image)

    # -- checks ------------------------------------------------------------------

    def _check_params(self, channels):
        check_scalar(self.random_state, "random_state", "int", min_val=0, hint="the seed of k-means++")
        check_scalar(self.speed, "speed", "int", min_val=min(SPEED_LEVELS), max_val=max(SPEED_LEVELS),
                     hint="1 best, 10 fastest")
        if self.color_space not in COLOR_SPACES:
            raise UsageError(
                f"color_space={self.color_space!r} should be one of {', '.join(COLOR_SPACES)}"
            )
        if channels == 4 and self.color_space != "rgb":
            raise UsageError(
                f"color_space={self.color_space!r} is for RGB images; RGBA images are "
                "clustered in premultiplied RGBA: use color_space='rgb'"
            )
        check_scalar(self.dither, "dither", "real", min_val=0, max_val=1, hint="0 off, 1 full Floyd-Steinberg")
        check_scalar(self.max_iter, "max_iter", "int", min_val=1)
        check_scalar(self.n_init, "n_init", "int", min_val=1, allow_none=True)
        check_scalar(self.tol, "tol", "real", min_val=0)

    def _check_fitted(self):
        if not hasattr(self, "palette_"):
            raise UsageError("this KMeansQuantizer is not fitted yet; call fit(image) first")


def _bounds_for(sol, palette, rank, space):
    """The solver's last bounds and how far each palette entry is from its centre, or None.

    ``palette`` is the rounded palette in palette order, ``rank`` the palette
    index of each of the solution's centres; the bounds and the moves are in
    the clustering space.
    """
    if sol.bounds is None:
        return None
    moved = np.empty(palette.shape[0])
    moved[rank] = np.sqrt(((to_space(palette, space)[rank] - sol.centers) ** 2).sum(1))
    return sol.bounds[0], sol.bounds[1], moved


def _table_mse(palette, space, table, problem, guess, bounds=None):
    """Mean squared error of the undithered quantization, from the colour table,
    and the palette index of every colour of the table.

    ``guess`` (a label per distinct colour) only speeds up the exact search, as
    ``bounds`` do (:func:`_bounds_for`: the fit's last bounds prove most
    colours' nearest entry of the rounded palette without a search).
    """
    P = np.ascontiguousarray(to_space(palette, space))
    guess = np.ascontiguousarray(guess)
    if bounds is None:
        labels, _ = problem.kernels.nearest(problem.X, P, guess)
    else:
        labels = problem.kernels.nearest_bounded(problem.X, P, guess, *bounds)
    pts = table.colors.astype(np.float64)
    if pts.shape[1] == 4:
        pts = problem.X  # premultiplied
        clear = table.colors[:, 3] == 0
        if clear.any():  # then the palette has its transparent entry
            labels[clear] = _transparent_index(palette)
        pal = to_space(palette, "rgb")
    else:
        pal = palette.astype(np.float64)
    sq = ((pts - pal[labels]) ** 2).sum(1)
    return float((problem.w * sq).sum() / (problem.w.sum() * pts.shape[1])), labels


def _check_init(init, channels, k):
    """``init`` as a (j, C) float64 array of sRGB(A) centres, or None for k-means++."""
    if isinstance(init, str):
        if init != "k-means++":
            raise UsageError(f"init={init!r} should be 'k-means++' or an array of initial centres")
        return None
    if init is None:
        return None
    try:
        arr = np.array(init, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError("init should be 'k-means++' or a numeric array of shape (n_colors, C)") from None
    if arr.ndim != 2 or arr.shape[1] != channels or not 1 <= arr.shape[0] <= k:
        raise UsageError(
            f"init of shape {arr.shape} should be (n_colors, {channels}) = ({k}, {channels}), "
            "or have fewer rows for k-means++ to complete"
        )
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise UsageError("init centres should be finite sRGB values in 0..255")
    if np.unique(arr, axis=0).shape[0] != arr.shape[0]:
        raise UsageError("init contains the same centre twice; give distinct centres")
    return arr


def _transparent_index(palette):
    hits = np.flatnonzero(palette[:, 3] == 0)
    return int(hits[0]) if hits.size else None


def _check_n_colors(k, n_distinct):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"n_colors={k!r} should be an integer")
    if k < 2:
        raise UsageError(f"n_colors={k} should be >= 2")
    if k > n_distinct:
        raise UsageError(f"n_colors={k} exceeds the {n_distinct} distinct colours in the image")
    return int(k)


def _check_fixed(fixed, channels, k):
    if fixed is None:
        return np.zeros((0, channels), dtype=np.uint8)
    arr = np.asarray(fixed)
    if arr.ndim == 1 and arr.size == channels:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != channels:
        raise UsageError(
            f"fixed_colors of shape {arr.shape} should be (m, {channels}) to match the image's channels"
        )
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise UsageError("fixed_colors should be uint8 values 0..255")
        arr = arr.astype(np.uint8)
    if np.unique(arr, axis=0).shape[0] != arr.shape[0]:
        raise UsageError("fixed_colors contains duplicate colours; give each colour once")
    if isinstance(k, (int, np.integer)) and arr.shape[0] > k:
        raise UsageError(f"{arr.shape[0]} fixed colours do not fit in n_colors={k}; raise n_colors")
    return np.ascontiguousarray(arr)
