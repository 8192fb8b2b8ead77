"""The weighted K-means solver shared by the quantizer and the sweep.

An image becomes a :class:`Problem` once: its distinct colours (one weighted
point each, the pixel count as weight, in the clustering space) and, at
``hist_bits`` < 8, a coarser histogram whose bins carry the weighted mean of
their colours and their total weight. K-means runs on the bins (k-means++
seeding and Lloyd, several restarts), then the best solution is refined by
Lloyd on the full set of distinct colours, whose optimum is exactly the one
over all pixels.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._threads import max_threads
from . import _dispatch
from ._dispatch import Kernels
from ._lloyd import THREAD_MIN_POINTS, lloyd
from ._spaces import to_space


#: The histogram is refined (one more bit per channel, up to 7) until it has at
#: least this many bins per centre; below that the bins are too coarse to seed
#: K centres well and the distinct colours are used directly.
BINS_PER_CENTER = 8

#: Bins that merge fewer than 1 / MAX_BIN_FRACTION colours on average cost
#: quality (coarser seeding) for little time: the distinct colours are used.
MAX_BIN_FRACTION = 0.25

#: Lloyd's re-sort threshold and scan margin, in standard deviations of the points,
#: capped in mean gaps between neighbouring centres (see :func:`scan_lengths`).
RESORT_STD = 0.2
MARGIN_STD = 0.3
RESORT_GAPS = 0.4
MARGIN_GAPS = 1.0


@dataclass
class Problem:
    """Weighted points of one image in one colour space."""

    X: np.ndarray  # (n, d) float64 distinct colours in the clustering space
    w: np.ndarray  # (n,) float64 pixel counts
    colors: np.ndarray  # (n, C) uint8 distinct colours
    hist_bits: int  # base histogram resolution (0: none)
    variance: float  # mean per-dimension weighted variance (for tol)
    kernels: Kernels  # the build of the kernels its fits run on
    _bins: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def bins(self, bits):
        """(bin means, bin weights, bin of each distinct colour) at ``bits`` bits."""
        if bits not in self._bins:
            bin_of = histogram_bins(self.colors, bits)
            nb = int(bin_of.max()) + 1
            means, weights = self.kernels.weighted_means(self.X, self.w, bin_of, nb)
            self._bins[bits] = (means, weights, bin_of)
        return self._bins[bits]

    def bins_for(self, k):
        """The coarsest histogram with enough bins for k centres, or None."""
        if not self.hist_bits:
            return None
        for bits in range(self.hist_bits, 8):
            means, weights, bin_of = self.bins(bits)
            if means.shape[0] >= BINS_PER_CENTER * k:
                return None if means.shape[0] > MAX_BIN_FRACTION * self.n else (means, weights, bin_of)
        return None


def histogram_bins(colors, bits):
    """Bin index of each uint8 colour on a grid of ``bits`` bits per channel."""
    shift = 8 - bits
    key = np.zeros(colors.shape[0], dtype=np.int64)
    for c in range(colors.shape[1]):
        key |= (colors[:, c].astype(np.int64) >> shift) << (bits * c)
    _, bin_of = np.unique(key, return_inverse=True)
    return bin_of.ravel()


def make_problem(colors, counts, space, hist_bits) -> Problem:
    """Build the weighted problem from a colour table's colours and counts."""
    X = to_space(colors, space)
    w = counts.astype(np.float64)
    mean = (w[:, None] * X).sum(0) / w.sum()
    variance = float(((w[:, None] * (X - mean) ** 2).sum(0) / w.sum()).mean())
    return Problem(X=X, w=w, colors=colors, hist_bits=int(hist_bits or 0), variance=variance,
                   kernels=_dispatch.kernels())


@dataclass
class Solution:
    centers: np.ndarray  # (k, d) clustering space
    labels: np.ndarray  # (n,) label of every distinct colour
    inertia: float  # sum of w * squared distance, clustering space
    n_iter: int
    from_init: bool = False  # won by the run seeded from a partial ``init``
    bounds: np.ndarray | None = None  # (2, n) Lloyd's last bounds on the distinct colours (see lloyd)


def _n_trials(k):
    # scikit-learn's greedy k-means++: 2 + log(k) candidates per centre
    return 2 + int(math.log(k))


def scan_lengths(problem: Problem, centers):
    """Lloyd's (re-sort threshold, scan margin) for a run starting from ``centers``.

    Lloyd re-sorts the centres' neighbour lists once they drifted by the
    first, and scans the second past the exact radius so points' bounds last
    (see :func:`~._lloyd.lloyd`); both only trade work between scans and
    sorts, the labels are exact whatever they are. 20% and 30% of a standard
    deviation of the points (measured against 5% / 10% on the study photo and
    kodim05 at K = 16..256: 10-20% less time in Lloyd), but at most 0.4 and 1
    mean gaps between neighbouring centres: at K = 256 the centres are about
    0.15-0.2 std apart, and a margin of 0.3 std made every full scan look at
    a few times more centres than bounds lasting a few iterations need (the
    12 MP photo's refinement at K = 256: 1.76 -> 1.41 CPU-s, one thread, min
    of 5 interleaved; the same at K <= 128, where the std terms are the smaller).
    """
    std = math.sqrt(problem.variance)
    half = problem.kernels.half_gaps(np.ascontiguousarray(centers, dtype=np.float64))
    finite = half[np.isfinite(half)]
    gap = 2.0 * float(finite.mean()) if finite.size else math.inf
    return min(RESORT_STD * std, RESORT_GAPS * gap), min(MARGIN_STD * std, MARGIN_GAPS * gap)


def solve(problem: Problem, k, *, fixed, rng, n_init, max_iter, tol, refine_iter, refine_relax=1.0,
          init=None) -> Solution:
    """K-means with k centres; the first ``len(fixed)`` centres stay put.

    Stage 1 runs on the histogram bins (or on the distinct colours when the
    histogram is off or too coarse for k): ``n_init`` greedy k-means++ seeds
    drawn in order from ``rng``, Lloyd to convergence, lowest inertia kept.
    ``init`` (optional (j, d) initial centres, fixed ones first): with j == k
    it replaces those runs by one, Lloyd on the distinct colours from exactly
    these centres (scikit-learn's ``init=`` array); with j < k it adds one
    more run, seeded with them plus k-means++ additions, that competes on the
    same inertia. Stage 2 refines the winner by Lloyd on the distinct colours
    (at most ``refine_iter`` iterations, over-relaxed by ``refine_relax``: see
    :func:`~._lloyd.lloyd`), whose optimum is the all-pixel one.
    """
    m = fixed.shape[0]
    tol_abs = tol * problem.variance
    exact = init is not None and init.shape[0] == k
    starts = [fixed] * max(1, n_init) if not exact else []
    if init is not None:
        starts.append(np.ascontiguousarray(init, dtype=np.float64))
    # exact initial centres run on the distinct colours, as scikit-learn's would
    hist = None if exact else problem.bins_for(k)
    use_bins = hist is not None
    PX, Pw, bin_of = hist if use_bins else (problem.X, problem.w, None)
    rands = [rng.random((k, _n_trials(k))) for _ in starts]  # in order: the draws of one run after another
    K = problem.kernels

    def run(i):
        seeds = starts[i]
        if seeds.shape[0] == k:
            C0 = seeds.copy()
            guess = K.nearest_brute(PX, C0)
        else:  # the seeding finds every point's nearest centre on the way
            C0, guess = K.kmeanspp(PX, Pw, k, seeds, rands[i])
        bounds = None if use_bins else np.empty((2, PX.shape[0]))
        return (*lloyd(PX, Pw, C0, guess, m, max_iter, tol_abs, *scan_lengths(problem, C0), kernels=K,
                       bounds=bounds), bounds)

    threads = min(len(starts), max_threads())
    if threads > 1 and PX.shape[0] < THREAD_MIN_POINTS:
        # the runs are independent (each from its own draws, the kernels release the GIL):
        # side by side, then compared in order as one after another would be
        with ThreadPoolExecutor(threads) as pool:
            runs = list(pool.map(run, range(len(starts))))
    else:  # one run at a time; on many points Lloyd itself uses the threads
        runs = map(run, range(len(starts)))
    best = None
    for seeds, (C, labels, inertia, n_iter, bounds) in zip(starts, runs):
        if best is None or inertia < best.inertia:
            best = Solution(C, labels, inertia, n_iter, from_init=seeds is not fixed, bounds=bounds)
    if use_bins:
        guess = best.labels[bin_of]
        bounds = None
        if refine_iter > 0:
            bounds = np.empty((2, problem.n))
            C, labels, inertia, n_iter = lloyd(
                problem.X, problem.w, best.centers, guess, m, refine_iter, tol_abs,
                *scan_lengths(problem, best.centers), relax=refine_relax, kernels=K, bounds=bounds
            )
        else:
            C = best.centers
            labels, d2 = K.nearest(problem.X, C, guess)
            inertia, n_iter = float((problem.w * d2).sum()), 0
        best = Solution(C, labels, inertia, best.n_iter + n_iter, best.from_init, bounds)
    return best


def assign(X, P, colors=None):
    """Nearest of the (k, d) points P for every row of X (lowest index on ties).

    A 4-bit-per-channel grid of the uint8 ``colors`` gives each row a close
    first guess, so the exact search looks at few centres.
    """
    K = _dispatch.kernels()
    X = np.ascontiguousarray(X, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    if colors is None or X.shape[0] < 4096:
        return K.nearest_brute(X, P)
    bin_of = histogram_bins(colors, 4)
    nb = int(bin_of.max()) + 1
    reps, _ = K.weighted_means(X, np.ones(X.shape[0]), bin_of, nb)
    guess = K.nearest_brute(reps, P)[bin_of]
    labels, _ = K.nearest(X, P, guess)
    return labels
