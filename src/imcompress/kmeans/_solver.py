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
from dataclasses import dataclass

import numpy as np

from . import _kernels
from ._spaces import to_space


@dataclass
class Problem:
    """Weighted points of one image in one colour space."""

    X: np.ndarray  # (n, d) float64 distinct colours in the clustering space
    w: np.ndarray  # (n,) float64 pixel counts
    bins_X: np.ndarray | None  # (b, d) histogram bin means, or None
    bins_w: np.ndarray | None
    bin_of: np.ndarray | None  # (n,) bin of every distinct colour
    variance: float  # mean per-dimension weighted variance (for tol)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


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
    bins_X = bins_w = bin_of = None
    if hist_bits and hist_bits < 8:
        bin_of = histogram_bins(colors, hist_bits)
        nb = int(bin_of.max()) + 1
        bins_X, bins_w = _kernels.weighted_means(X, w, bin_of, nb)
    return Problem(X=X, w=w, bins_X=bins_X, bins_w=bins_w, bin_of=bin_of, variance=variance)


@dataclass
class Solution:
    centers: np.ndarray  # (k, d) clustering space
    labels: np.ndarray  # (n,) label of every distinct colour
    inertia: float  # sum of w * squared distance, clustering space
    n_iter: int
    warm: bool = False  # won by the warm start


def _n_trials(k):
    # scikit-learn's greedy k-means++: 2 + log(k) candidates per centre
    return 2 + int(math.log(k))


def solve(problem: Problem, k, *, fixed, rng, n_init, max_iter, tol, refine_iter, warm=None) -> Solution:
    """K-means with k centres; the first ``len(fixed)`` centres stay put.

    Stage 1 runs on the histogram bins (or on the distinct colours when the
    histogram is off or too coarse for k): ``n_init`` greedy k-means++ seeds
    drawn in order from ``rng``, Lloyd to convergence, lowest inertia kept.
    ``warm`` (optional (j, d) centres of a smaller K, fixed ones first) adds
    one more run seeded with them plus k-means++ additions; it competes on the
    same inertia. Stage 2 refines the winner by Lloyd on the distinct colours
    (at most ``refine_iter`` iterations), whose optimum is the all-pixel one.
    """
    m = fixed.shape[0]
    tol_abs = tol * problem.variance
    # re-sort the centres' neighbour lists once they drifted ~5% of a std
    resort = 0.05 * math.sqrt(problem.variance)
    # scan ~10% of a std past the exact radius so points' bounds last (see lloyd)
    margin = 0.1 * math.sqrt(problem.variance)
    use_bins = problem.bins_X is not None and problem.bins_X.shape[0] >= 2 * k
    PX, Pw = (problem.bins_X, problem.bins_w) if use_bins else (problem.X, problem.w)
    starts = [fixed] * max(1, n_init)
    if warm is not None and m <= warm.shape[0] < k:
        starts.append(np.ascontiguousarray(warm, dtype=np.float64))
    best = None
    for seeds in starts:
        rand = rng.random((k, _n_trials(k)))
        C0 = fixed.copy() if m == k else _kernels.kmeanspp(PX, Pw, k, seeds, rand)
        guess = _kernels.nearest_brute(PX, C0)
        C, labels, inertia, n_iter = _kernels.lloyd(PX, Pw, C0, guess, m, max_iter, tol_abs, resort, margin)
        if best is None or inertia < best.inertia:
            best = Solution(C, labels, inertia, n_iter)
            best.warm = seeds is not fixed
    if use_bins:
        guess = best.labels[problem.bin_of]
        if refine_iter > 0:
            C, labels, inertia, n_iter = _kernels.lloyd(
                problem.X, problem.w, best.centers, guess, m, refine_iter, tol_abs, resort, margin
            )
        else:
            C = best.centers
            labels, d2 = _kernels.nearest(problem.X, C, guess)
            inertia, n_iter = float((problem.w * d2).sum()), 0
        best = Solution(C, labels, inertia, best.n_iter + n_iter, best.warm)
    return best


def assign(X, P, colors=None):
    """Nearest of the (k, d) points P for every row of X (lowest index on ties).

    A 4-bit-per-channel grid of the uint8 ``colors`` gives each row a close
    first guess, so the exact search looks at few centres.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    if colors is None or X.shape[0] < 4096:
        return _kernels.nearest_brute(X, P)
    bin_of = histogram_bins(colors, 4)
    nb = int(bin_of.max()) + 1
    reps, _ = _kernels.weighted_means(X, np.ones(X.shape[0]), bin_of, nb)
    guess = _kernels.nearest_brute(reps, P)[bin_of]
    labels, _ = _kernels.nearest(X, P, guess)
    return labels
