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
from . import _dispatch
from ._kernel_spec import N_CAND

__all__ = ["lloyd"]

#: Below this many points one thread does the assignment (a thread hand-off per
#: iteration costs more than it saves on small sets).
THREAD_MIN_POINTS = 20_000


def _exact_sums(X, w) -> bool:
    """True when every partial sum of ``w * X`` is an integer below 2**52 (exact in float64)."""
    if not (np.array_equal(X, np.rint(X)) and np.array_equal(w, np.rint(w))):
        return False
    return float(w.sum()) * max(float(np.abs(X).max(initial=0.0)), 1.0) < 2.0**52


def lloyd(X, w, centers0, guess, n_fixed, max_iter, tol, resort, margin, *, relax=1.0, n_threads=None,
          kernels=None, bounds=None):
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
    relax : float, default=1.0
        Over-relaxation: each update moves the centres ``relax`` times the
        way to their points' means (1: Lloyd). Bounds follow the actual
        shifts, so the labels stay exact. Plain steps instead on the last two
        updates, on the from-scratch sums, when a cluster is empty, after an
        update that changed no label, and for good once an over-relaxed step
        raised the objective; the result is again a Lloyd fixed point
        (centres the means of their points) when it converges.
    n_threads : int, optional
        Threads for the assignment step (default :func:`imcompress._threads.max_threads`); used
        only on at least :data:`THREAD_MIN_POINTS` points with exact sums, so
        the result never depends on it.
    kernels : :class:`~._dispatch.Kernels`, optional
        The build of the kernels (default :func:`~._dispatch.kernels`).
    bounds : ndarray of shape (2, n), float64, optional
        Filled with every point's last bounds, valid for the returned centres:
        row 0 an upper bound on the distance to its centre, row 1 a lower
        bound on the distance to any other centre.

    Returns
    -------
    (centers, labels, inertia, n_iter)
    """
    n, dim = X.shape
    k = centers0.shape[0]
    C = centers0.copy()
    labels = guess.copy()
    upper = np.empty(n)
    # the first pass scans every point: it writes all of these
    lower = np.empty(n)
    cand = np.empty((n, N_CAND), dtype=np.int64)
    cand_lb = np.empty((n, N_CAND))
    sums = np.zeros((k, dim))
    wsum = np.zeros(k)
    shift = np.zeros(k)
    K = _dispatch.kernels() if kernels is None else kernels
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
    cc, order, half = K.neighbour_geometry(C)
    drift = 0.0
    stop = False
    it = -1
    # the objective from the sums, for the over-relaxation's check:
    # sum w |x|^2 - sum_j (2 c_j . S_j - W_j |c_j|^2)
    sxx = float((w * (X * X).sum(1)).sum()) if relax != 1.0 else 0.0
    J_prev = np.inf
    relaxed = False  # the last update was over-relaxed
    try:
        while True:
            it += 1
            if drift > resort:
                cc, order, half = K.neighbour_geometry(C)
                drift = 0.0
            elif not first:
                half = K.half_gaps_near(C, cc, order, 2.0 * drift)
            step = (X, w, C, labels, upper, lower, cand, cand_lb, shift, max_shift, half, cc, order,
                    2.0 * drift, margin, first)
            if pool is None:
                changed = K.lloyd_assign(*step, 0, 1, sums, wsum)
            else:
                dsums[:] = 0.0
                dwsum[:] = 0.0
                others = [pool.submit(K.lloyd_assign, *step, p, threads, dsums[p], dwsum[p])
                          for p in range(1, threads)]
                changed = K.lloyd_assign(*step, 0, threads, dsums[0], dwsum[0])
                changed += sum(f.result() for f in others)
                if not first:  # integers: the same sums whatever the order
                    sums += dsums.sum(axis=0)
                    wsum += dwsum.sum(axis=0)
            if relax != 1.0 and not first:
                J = sxx - float((2.0 * (C * sums).sum(1) - wsum * (C * C).sum(1)).sum())
                if relaxed and J > J_prev:
                    relax = 1.0  # the over-relaxed step overshot: Lloyd from here on
                J_prev = J
            if (not first and changed == 0 and not relaxed) or stop:
                break  # labels are now exact for C (the last pass ran after the last update)
            n_iter += 1
            # the sums from scratch now and then; incremental in between
            recompute = first or it % 16 == 0
            relaxed = (relax != 1.0 and not recompute and changed > 0 and n_iter < max_iter - 1
                       and bool((wsum[n_fixed:] > 1e-9).all()))
            if relaxed:
                before = C.copy()
            total_shift, max_shift = K.lloyd_update(X, w, C, labels, upper, lower, cand_lb, sums, wsum, shift,
                                                    n_fixed, recompute)
            if relaxed:
                C[n_fixed:] = before[n_fixed:] + relax * (C[n_fixed:] - before[n_fixed:])
                d2 = ((C - before) ** 2).sum(1)
                shift[:] = np.sqrt(d2)  # the bounds move by what the centres really moved
                total_shift, max_shift = float(d2.sum()), float(shift.max())
            first = False
            drift += max_shift
            if (total_shift <= tol and not relaxed) or n_iter >= max_iter:
                stop = True  # one more assignment pass, then stop
    finally:
        if pool is not None:
            pool.shutdown()
    if bounds is not None:
        bounds[0] = upper
        np.minimum(lower, cand_lb.min(axis=1), out=bounds[1])
    return C, labels, K.weighted_inertia(X, w, C, labels), n_iter
