"""Lloyd's iterations over the numba steps, on several cores when that cannot change the result.

The assignment step (:func:`~._kernels.lloyd_assign`) treats every point on its
own, so disjoint parts of the points run at once in threads (the kernel
releases the GIL; each part takes every T-th block of points, so the parts get
similar work). What they share is the running sum of each cluster's weighted points;
each part adds into its own accumulator and the accumulators are added
afterwards. That reorders floating-point additions, which in general changes
the last bits of the centres, so it is done only when every partial sum is
exact: integer coordinates and integer weights whose total stays below 2**52
(the sRGB colour table: 0..255 values weighted by pixel counts). Then the
order of the additions cannot matter and the result is bit for bit the
single-threaded one, whatever the number of threads; otherwise (Lab, Oklab,
premultiplied RGBA, histogram bin means) one thread runs every step in order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._threads import max_threads
from ._kernels import N_CAND, half_gaps, lloyd_assign, lloyd_update, neighbour_geometry, weighted_inertia

__all__ = ["lloyd"]

#: Below this many points one thread does the assignment (a thread hand-off per
#: iteration costs more than it saves on small sets).
THREAD_MIN_POINTS = 20_000


def _exact_sums(X, w) -> bool:
    """True when every partial sum of ``w * X`` is an integer below 2**52 (exact in float64)."""
    if not (np.array_equal(X, np.rint(X)) and np.array_equal(w, np.rint(w))):
        return False
    return float(w.sum()) * max(float(np.abs(X).max(initial=0.0)), 1.0) < 2.0**52


def lloyd(X, w, centers0, guess, n_fixed, max_iter, tol, resort, margin, *, n_threads=None):
    """Weighted Lloyd iterations with bounds, so few points are looked at twice.

    Parameters
    ----------
    X : ndarray of shape (n, d), float64
    w : ndarray of shape (n,), float64, > 0
    centers0 : ndarray of shape (k, d), float64
        Initial centres; the first ``n_fixed`` never move.
    guess : ndarray of shape (n,), int64
        A first label per point (any; a close one saves work).
    max_iter, tol
        Stop when no label changes, when the sum of squared centre shifts is
        <= ``tol``, or after ``max_iter`` iterations; the labels are then exact
        for the returned centres (lowest index on ties).
    resort, margin
        The neighbour order of the centres is re-sorted only once they drifted
        by ``resort`` since the last sort (in between, the scan widens its
        pruning by the drift); a full scan looks ``margin`` past the exact
        radius so the bounds it leaves last. Both trade work, never results.
    n_threads : int, optional
        Threads for the assignment step (default :func:`imcompress._threads.max_threads`); used
        only on at least :data:`THREAD_MIN_POINTS` points with exact sums, so
        the result never depends on it.

    Returns
    -------
    (centers, labels, inertia, n_iter)
    """
    n, dim = X.shape
    k = centers0.shape[0]
    C = centers0.copy()
    labels = guess.copy()
    upper = np.empty(n)
    lower = np.zeros(n)
    cand = np.full((n, N_CAND), -1, dtype=np.int64)
    cand_lb = np.full((n, N_CAND), np.inf)
    sums = np.zeros((k, dim))
    wsum = np.zeros(k)
    shift = np.zeros(k)
    threads = max_threads() if n_threads is None else max(1, int(n_threads))
    if threads > 1 and (n < THREAD_MIN_POINTS or not _exact_sums(X, w)):
        threads = 1
    # the calling thread runs part 0, the pool the others: one hand-off per
    # extra thread and iteration
    pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
    dsums = np.zeros((threads, k, dim))
    dwsum = np.zeros((threads, k))
    max_shift = 0.0
    n_iter = 0
    first = True
    cc, order, half = neighbour_geometry(C)
    drift = 0.0
    stop = False
    it = -1
    try:
        while True:
            it += 1
            if drift > resort:
                cc, order, half = neighbour_geometry(C)
                drift = 0.0
            elif not first:
                half = half_gaps(C)
            step = (X, w, C, labels, upper, lower, cand, cand_lb, shift, max_shift, half, cc, order,
                    2.0 * drift, margin, first)
            if pool is None:
                changed = lloyd_assign(*step, 0, 1, sums, wsum)
            else:
                dsums[:] = 0.0
                dwsum[:] = 0.0
                others = [pool.submit(lloyd_assign, *step, p, threads, dsums[p], dwsum[p]) for p in range(1, threads)]
                changed = lloyd_assign(*step, 0, threads, dsums[0], dwsum[0])
                changed += sum(f.result() for f in others)
                if not first:  # integers: the same sums whatever the order
                    sums += dsums.sum(axis=0)
                    wsum += dwsum.sum(axis=0)
            if (not first and changed == 0) or stop:
                break  # labels are now exact for C (the last pass ran after the last update)
            n_iter += 1
            # the sums from scratch now and then; incremental in between
            total_shift, max_shift = lloyd_update(X, w, C, labels, upper, lower, cand_lb, sums, wsum, shift,
                                                  n_fixed, first or it % 16 == 0)
            first = False
            drift += max_shift
            if total_shift <= tol or n_iter >= max_iter:
                stop = True  # one more assignment pass, then stop
    finally:
        if pool is not None:
            pool.shutdown()
    return C, labels, weighted_inertia(X, w, C, labels), n_iter
