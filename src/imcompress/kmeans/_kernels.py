"""Numba kernels of the quantizer: weighted k-means++, bounded Lloyd, nearest centre.

Every loop here is sequential and runs in a fixed order with IEEE float64
arithmetic (no ``fastmath``, no parallel reductions), so the same inputs give
bit-identical outputs on every run and every x86-64/ARM64 machine. Random
numbers are drawn outside (NumPy's PCG64) and passed in.

Distances to the nearest centre are found with "sort-means" pruning: the
centres are sorted, per centre ``a``, by their distance to ``a``; a point whose
guess is ``a`` at distance ``u`` only needs the centres ``j`` with
``|c_a - c_j| <= 2u`` (any other is farther than ``a`` by the triangle
inequality). Lloyd's steps (driven by :mod:`._lloyd`) add Hamerly's bounds (an
upper bound on the distance to the own centre, a lower bound on the distance to
any other) so points whose bounds prove they keep their centre are skipped
without computing a distance.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernel_spec import N_CAND

#: The helpers that allocate nothing are compiled without numba's reference
#: counting: otherwise every array they are passed costs an atomic increment and
#: decrement per call (a seventh of a K = 256 fit on the study photo, called per
#: point and per centre scanned); the arithmetic, so the results, are the same.
_noalloc = njit(cache=True, _nrt=False)

# relative slack on the triangle-inequality pruning, so floating-point rounding
# of the centre-centre distances can never prune a centre that ties
_SLACK = 1e-9


@_noalloc
def _sqdist(X, i, C, j):
    s = 0.0
    for c in range(X.shape[1]):
        t = X[i, c] - C[j, c]
        s += t * t
    return s


@njit(cache=True, nogil=True)
def center_distances(C):
    """(k, k) distances between the rows of C."""
    k = C.shape[0]
    cc = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            d = np.sqrt(_sqdist(C, a, C, b))
            cc[a, b] = d
            cc[b, a] = d
    return cc


@njit(cache=True, nogil=True)
def center_geometry(C):
    """Centre-centre distances, each row's neighbour order, and half the nearest gap."""
    k = C.shape[0]
    cc = center_distances(C)
    order = np.empty((k, k), dtype=np.int64)
    half = np.empty(k)
    key = np.empty(k)
    for a in range(k):
        # the centre itself first, then by distance; stable sort keeps index
        # order among equal distances (deterministic)
        key[:] = cc[a]
        key[a] = -1.0
        order[a] = np.argsort(key, kind="mergesort")
        half[a] = 0.5 * cc[a, order[a, 1]] if k > 1 else np.inf
    return cc, order, half


@_noalloc
def nearest_one(X, i, C, a, cc, order, slack):
    """Nearest centre to X[i] starting from guess a; lowest index wins ties.

    ``cc``/``order`` may be stale: ``slack`` bounds by how much any current
    centre-centre distance can be below ``cc`` (twice the largest centre drift
    since they were computed).

    Returns (best, best squared distance, lower bound on the distance to any
    other centre).
    """
    k = C.shape[0]
    da2 = _sqdist(X, i, C, a)
    u = np.sqrt(da2)
    thr = 2.0 * u * (1.0 + _SLACK) + _SLACK
    best = a
    bd2 = da2
    second2 = np.inf
    rest = np.inf
    for t in range(1, k):
        j = order[a, t]
        if cc[a, j] - slack > thr:
            rest = cc[a, j] - slack - u
            break
        dj2 = _sqdist(X, i, C, j)
        if dj2 < bd2 or (dj2 == bd2 and j < best):
            second2 = bd2
            bd2 = dj2
            best = j
        elif dj2 < second2:
            second2 = dj2
    lower = min(np.sqrt(second2), rest)
    return best, bd2, lower


def nearest(X, C, guess):
    """:meth:`._dispatch.Kernels.nearest` with these kernels."""
    from ._dispatch import _jit

    return _jit().nearest(X, C, guess)


@njit(cache=True, nogil=True)
def _nearest_all(X, C, guess, cc, order):
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    d2 = np.empty(n)
    for i in range(n):
        b, bd2, _ = nearest_one(X, i, C, guess[i], cc, order, 0.0)
        labels[i] = b
        d2[i] = bd2
    return labels, d2


@njit(cache=True, nogil=True)
def _nearest_bounded(X, C, guess, upper, lower, moved, cc, order):
    """:func:`_nearest_all` for points with bounds that mostly prove their guess.

    ``upper[i]`` bounds the distance from X[i] to the centre ``guess[i]`` and
    ``lower[i]`` its distance to every other centre, for centres that have
    since moved by ``moved`` to C (a fit's last bounds, C its rounded palette).
    A point whose bounds, loosened by those moves, still prove the guess
    strictly nearer than any other centre keeps it (so no tie is possible);
    the others are searched exactly. Returns the labels only.
    """
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    most = 0.0
    for j in range(moved.shape[0]):
        if moved[j] > most:
            most = moved[j]
    for i in range(n):
        a = guess[i]
        if (upper[i] + moved[a]) * (1.0 + _SLACK) + _SLACK < (lower[i] - most) * (1.0 - _SLACK):
            labels[i] = a
        else:
            labels[i] = nearest_one(X, i, C, a, cc, order, 0.0)[0]
    return labels


@njit(cache=True, nogil=True)
def nearest_brute(X, C):
    """Brute-force nearest centre (used for small point sets and as a guess)."""
    n = X.shape[0]
    k = C.shape[0]
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        best = 0
        bd2 = _sqdist(X, i, C, 0)
        for j in range(1, k):
            d2 = _sqdist(X, i, C, j)
            if d2 < bd2:
                bd2 = d2
                best = j
        labels[i] = best
    return labels


#: k-means++ steps scored by one pass over the points in their own order; from
#: then on the points are kept grouped by nearest centre (see :func:`kmeanspp`).
KMEANSPP_GROUP_AFTER = 16


@njit(cache=True, nogil=True)
def kmeanspp(X, w, k, init, rand):
    """Greedy weighted k-means++ (as scikit-learn: several candidates per step).

    Parameters
    ----------
    X : (n, d) float64 points; w : (n,) float64 weights > 0
    k : number of centres wanted
    init : (m, d) float64 centres already chosen (m may be 0)
    rand : (k, n_trials) uniforms in [0, 1); row 0 column 0 picks the first
        centre when m == 0.

    Returns ((k, d) centres: the m given ones first, then the new ones;
    (n,) int64 index of every point's nearest centre, lowest index on ties:
    ``nearest_brute(X, centres)``, which the seeding has found on the way).

    Each step draws its candidates from the running sum of the potential
    (weight times squared distance to the nearest centre) in point order,
    as the plain algorithm does, and keeps the one that lowers the potential
    most. Scoring a candidate x skips every point p whose nearest centre c
    has |x - c| >= 2 |p - c| (x cannot be nearer to p than c is, by the
    triangle inequality). After KMEANSPP_GROUP_AFTER centres the points are
    copied into groups by nearest centre, each sorted by decreasing distance,
    so a step reads only the head of each group: the points past the first
    one that x cannot bring closer cannot be brought closer either.
    """
    n, dim = X.shape
    m = init.shape[0]
    n_trials = rand.shape[1]
    centers = np.empty((k, dim))
    closest = np.full(n, np.inf)
    owner = np.zeros(n, dtype=np.int64)
    for j in range(m):
        centers[j] = init[j]
        for i in range(n):
            d2 = _sqdist(X, i, init, j)
            if d2 < closest[i]:
                closest[i] = d2
                owner[i] = j
    start = m
    if m == 0:
        # first centre: drawn with probability proportional to weight
        total = 0.0
        for i in range(n):
            total += w[i]
        target = rand[0, 0] * total
        acc = 0.0
        first = n - 1
        for i in range(n):
            acc += w[i]
            if acc > target:
                first = i
                break
        centers[0] = X[first]
        for i in range(n):
            closest[i] = _sqdist(X, i, centers, 0)
        start = 1
    # integer points, centres and weights: every partial sum of the potential is an
    # exact integer, the same in any order, so per-block sums kept up to date
    # give the running sum's values without a pass over every point per step
    exact = _integral_potential(X, w, init)
    n_blocks = (n + KMEANSPP_BLOCK - 1) // KMEANSPP_BLOCK if exact else 0
    block_pot = np.zeros(n_blocks)
    for i in range(n if exact else 0):
        block_pot[i // KMEANSPP_BLOCK] += w[i] * closest[i]
    cum = np.empty(0 if exact else n)
    dc = np.empty(k)
    grouped = False
    # the groups: group j is rows seg_start[j] .. + seg_len[j] of gx/gw/gcl/gid
    # (point, weight, squared distance, index), new groups appended at the end
    cap = 3 * n + 16  # compacted after n rows were appended: O(n) per n moves
    gx = np.empty((0, dim))
    gw = np.empty(0)
    gcl = np.empty(0)
    gid = np.empty(0, dtype=np.int64)
    seg_start = np.zeros(k, dtype=np.int64)
    seg_len = np.zeros(k, dtype=np.int64)
    end = 0
    for c in range(start, k):
        if not grouped and c >= KMEANSPP_GROUP_AFTER:
            gx, gw, gcl, gid, end = _group_points(X, w, closest, owner, c, seg_start, seg_len, cap)
            grouped = True
        acc = 0.0
        if exact:
            for b in range(n_blocks):
                acc += block_pot[b]
        else:
            for i in range(n):
                acc += w[i] * closest[i]
                cum[i] = acc
        pot = acc
        best_gain = -np.inf
        best_idx = -1
        for t in range(n_trials):
            target = rand[c, t] * pot
            # first index whose cumulative potential exceeds the target
            if exact:
                idx = _first_above(w, closest, block_pot, target)
            else:
                lo, hi = 0, n - 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cum[mid] > target:
                        hi = mid
                    else:
                        lo = mid + 1
                idx = lo
            gain = 0.0
            if grouped:
                for j in range(c):
                    reach = _reach(_sqdist(X, idx, centers, j))
                    for s in range(seg_start[j], seg_start[j] + seg_len[j]):
                        if gcl[s] <= reach:
                            break
                        d2 = _sqdist(gx, s, X, idx)
                        if d2 < gcl[s]:
                            gain += gw[s] * (gcl[s] - d2)
            else:
                for j in range(c):
                    dc[j] = _reach(_sqdist(X, idx, centers, j))
                for i in range(n):
                    if closest[i] <= dc[owner[i]]:
                        continue
                    d2 = _sqdist(X, i, X, idx)
                    if d2 < closest[i]:
                        gain += w[i] * (closest[i] - d2)
            if gain > best_gain:
                best_gain = gain
                best_idx = idx
        centers[c] = X[best_idx]
        if not grouped:
            for j in range(c):
                dc[j] = _reach(_sqdist(centers, c, centers, j))
            for i in range(n):
                if closest[i] > dc[owner[i]]:
                    d2 = _sqdist(X, i, centers, c)
                    if d2 < closest[i]:
                        if exact:
                            block_pot[i // KMEANSPP_BLOCK] += w[i] * (d2 - closest[i])
                        closest[i] = d2
                        owner[i] = c
            continue
        # the points the new centre is nearest to leave their groups for its own
        if end + n > cap:
            gx, gw, gcl, gid, end = _compact_groups(gx, gw, gcl, gid, c, seg_start, seg_len)
        new_start = end
        for j in range(c):
            reach = _reach(_sqdist(centers, c, centers, j))
            first = seg_start[j]
            stop = first + seg_len[j]
            head = first  # rows first..head-1 may move; the rest cannot
            moved = False
            while head < stop and gcl[head] > reach:
                d2 = _sqdist(gx, head, centers, c)
                if d2 < gcl[head]:
                    p = gid[head]
                    if exact:
                        block_pot[p // KMEANSPP_BLOCK] += w[p] * (d2 - closest[p])
                    closest[p] = d2
                    owner[p] = c
                    _copy_row(gx, gw, gcl, gid, head, end)
                    gcl[end] = d2
                    gid[head] = -1
                    end += 1
                    moved = True
                head += 1
            if moved:
                # close the gaps towards the rows that stay, in order
                pos = head
                for s in range(head - 1, first - 1, -1):
                    if gid[s] >= 0:
                        pos -= 1
                        _copy_row(gx, gw, gcl, gid, s, pos)
                seg_start[j] = pos
                seg_len[j] = stop - pos
        seg_start[c] = new_start
        seg_len[c] = end - new_start
        _sort_group(gx, gw, gcl, gid, new_start, end)
    return centers, owner


#: Points per block of k-means++'s running potential on integer points.
KMEANSPP_BLOCK = 128


@_noalloc
def _integral_potential(X, w, init):
    """Whether every partial sum of weight times squared distance between rows of
    X and init (and X) is an exact integer in float64: integer values, total below 2**52."""
    top = 0.0
    for A in (X, init):
        for i in range(A.shape[0]):
            for q in range(A.shape[1]):
                v = A[i, q]
                if v != np.floor(v):
                    return False
                top = max(top, abs(v))
    total = 0.0
    for i in range(w.shape[0]):
        if w[i] != np.floor(w[i]):
            return False
        total += w[i]
    return total * X.shape[1] * (2.0 * top + 1.0) ** 2 < 2.0**52


@_noalloc
def _first_above(w, closest, block_pot, target):
    """First index whose running sum of ``w * closest`` exceeds ``target`` (the last if none),
    from the per-block sums ``block_pot`` (exact integers: the running sum's own values)."""
    n = w.shape[0]
    acc = 0.0
    for b in range(block_pot.shape[0]):
        if acc + block_pot[b] > target:
            for i in range(b * KMEANSPP_BLOCK, min(n, (b + 1) * KMEANSPP_BLOCK)):
                acc += w[i] * closest[i]
                if acc > target:
                    return i
            break
        acc += block_pot[b]
    return n - 1


@_noalloc
def _reach(d2):
    """Squared distances up to this, from a centre at squared distance ``d2`` from a
    candidate, cannot get shorter with the candidate (with slack for rounding)."""
    return 0.25 * d2 * (1.0 - _SLACK) - _SLACK


@_noalloc
def _copy_row(gx, gw, gcl, gid, src, dst):
    if src != dst:
        for q in range(gx.shape[1]):
            gx[dst, q] = gx[src, q]
        gw[dst] = gw[src]
        gcl[dst] = gcl[src]
        gid[dst] = gid[src]


@njit(cache=True)
def _sort_group(gx, gw, gcl, gid, lo, hi):
    """Sort rows lo..hi by decreasing squared distance (index order among equal ones)."""
    if hi - lo < 2:
        return
    order = np.argsort(-gcl[lo:hi], kind="mergesort") + lo
    x, ww, cl, ii = gx[order], gw[order], gcl[order], gid[order]
    gx[lo:hi] = x
    gw[lo:hi] = ww
    gcl[lo:hi] = cl
    gid[lo:hi] = ii


@njit(cache=True)
def _group_points(X, w, closest, owner, n_groups, seg_start, seg_len, cap):
    """Copy the points into groups by ``owner``, each sorted by decreasing ``closest``."""
    n, dim = X.shape
    seg_len[:] = 0
    for i in range(n):
        seg_len[owner[i]] += 1
    pos = 0
    for j in range(n_groups):
        seg_start[j] = pos
        pos += seg_len[j]
    gx = np.empty((cap, dim))
    gw = np.empty(cap)
    gcl = np.empty(cap)
    gid = np.empty(cap, dtype=np.int64)
    fill = seg_start.copy()
    for i in range(n):
        s = fill[owner[i]]
        fill[owner[i]] += 1
        gx[s] = X[i]
        gw[s] = w[i]
        gcl[s] = closest[i]
        gid[s] = i
    for j in range(n_groups):
        _sort_group(gx, gw, gcl, gid, seg_start[j], seg_start[j] + seg_len[j])
    return gx, gw, gcl, gid, pos


@njit(cache=True)
def _compact_groups(gx, gw, gcl, gid, n_groups, seg_start, seg_len):
    """The groups moved together to the front of fresh buffers; returns them and their end."""
    nx = np.empty_like(gx)
    nw = np.empty_like(gw)
    ncl = np.empty_like(gcl)
    nid = np.empty_like(gid)
    pos = 0
    for j in range(n_groups):
        a = seg_start[j]
        b = a + seg_len[j]
        nx[pos:pos + b - a] = gx[a:b]
        nw[pos:pos + b - a] = gw[a:b]
        ncl[pos:pos + b - a] = gcl[a:b]
        nid[pos:pos + b - a] = gid[a:b]
        seg_start[j] = pos
        pos += b - a
    return nx, nw, ncl, nid, pos


@njit(cache=True, nogil=True)
def half_gaps(C):
    """Half the distance from each centre to its nearest other centre."""
    k = C.shape[0]
    half = np.full(k, np.inf)
    for a in range(k):
        for b in range(a + 1, k):
            d = 0.5 * np.sqrt(_sqdist(C, a, C, b))
            if d < half[a]:
                half[a] = d
            if d < half[b]:
                half[b] = d
    return half


@njit(cache=True, nogil=True)
def half_gaps_near(C, cc, order, slack):
    """:func:`half_gaps` (the same bits) from a stale neighbour order of the centres.

    ``cc``/``order`` are :func:`center_geometry`'s of earlier centres, each
    since moved so that every centre-centre distance is at least ``cc -
    slack``; each centre's scan stops at the first neighbour that cannot be
    nearer than the nearest one found, so it reads a few centres, not k.
    """
    k = C.shape[0]
    half = np.empty(k)
    for a in range(k):
        best = np.inf
        reach = np.inf  # past this, a neighbour in the old order cannot be nearer than the best
        for t in range(1, k):
            j = order[a, t]
            if cc[a, j] - slack > reach:
                break
            d2 = _sqdist(C, a, C, j)
            if d2 < best:
                best = d2
                reach = np.sqrt(d2) * (1.0 + _SLACK) + _SLACK
        half[a] = 0.5 * np.sqrt(best)
    return half


#: Points per block of :func:`lloyd_assign`'s parts.
LLOYD_BLOCK = 4096


@_noalloc
def _nearest_one_with_candidates(X, i, C, a, cc, order, slack, cand, cand_lb, topj, topd, margin):
    """Like :func:`nearest_one`, also keeping the N_CAND next-nearest scanned centres.

    Fills ``cand[i]`` / ``cand_lb[i]`` (exact distances; -1 / inf when fewer)
    and returns (best, best distance, lower bound on every other centre).
    """
    k = C.shape[0]
    m1 = N_CAND + 1
    topj[:] = -1
    topd[:] = np.inf
    evicted = np.inf
    ua2 = _sqdist(X, i, C, a)
    u = np.sqrt(ua2)
    # scanning ``margin`` past the 2u needed for exactness leaves a lower
    # bound of u + margin on the unscanned centres, which lasts iterations
    thr = (2.0 * u + margin) * (1.0 + _SLACK) + _SLACK
    rest = np.inf
    for t in range(k):
        j = order[a, t]
        if t > 0 and cc[a, j] - slack > thr:
            rest = cc[a, j] - slack - u
            break
        # squared distances in the buffer (same order, one sqrt per kept centre
        # instead of one per scanned centre); lowest index first on ties
        d = ua2 if j == a else _sqdist(X, i, C, j)
        pos = m1
        while pos > 0 and (topd[pos - 1] > d or (topd[pos - 1] == d and topj[pos - 1] > j)):
            pos -= 1
        if pos < m1:
            if topd[m1 - 1] < evicted:
                evicted = topd[m1 - 1]
            for q in range(m1 - 1, pos, -1):
                topd[q] = topd[q - 1]
                topj[q] = topj[q - 1]
            topd[pos] = d
            topj[pos] = j
        elif d < evicted:
            evicted = d
    for q in range(N_CAND):
        cand[i, q] = topj[q + 1]
        cand_lb[i, q] = np.sqrt(topd[q + 1])
    lower = min(rest, np.sqrt(evicted))
    return topj[0], np.sqrt(topd[0]), lower


@njit(cache=True, nogil=True)
def lloyd_assign(X, w, C, labels, upper, lower, cand, cand_lb, shift, max_shift, half, cc, order, slack,
                 margin, first, part, n_parts, sums, wsum):
    """The assignment step of :func:`imcompress.kmeans._lloyd.lloyd` for part ``part`` of ``n_parts``.

    The points are cut in blocks of LLOYD_BLOCK; part ``p`` takes the blocks
    ``p, p + n_parts, p + 2 n_parts, ...`` (one part: every point in order),
    so the parts get similar mixes of colours and never write to the same
    cache line but at block edges.

    Every point keeps an upper bound on the distance to its centre, exact lower
    bounds on its N_CAND next-nearest centres (each loosened only by that
    centre's own shift, as in Elkan's algorithm) and one lower bound on all the
    other centres (loosened by the largest shift, as in Hamerly's). A point
    whose bounds prove it keeps its centre costs no distance; one whose only
    rivals are its candidates costs N_CAND + 1 distances; otherwise a
    sort-means scan re-derives everything.

    Each point reads the shared centres and writes only its own entries, so
    different parts can run at once (the GIL is released). A point that
    changes centre moves its weight between the ``sums``/``wsum`` accumulators
    (except on the ``first`` pass, after which the caller sums from scratch).

    Returns the number of points of the part whose label changed.
    """
    dim = X.shape[1]
    topj = np.empty(N_CAND + 1, dtype=np.int64)
    topd = np.empty(N_CAND + 1)
    changed = 0
    n = X.shape[0]
    for block in range(part, (n + LLOYD_BLOCK - 1) // LLOYD_BLOCK, n_parts):
        for i in range(block * LLOYD_BLOCK, min(n, (block + 1) * LLOYD_BLOCK)):
            a = labels[i]
            if not first:
                # bring the bounds up to date with the last centre shifts
                upper[i] += shift[a]
                lower[i] -= max_shift
                bound = lower[i]
                for q in range(N_CAND):
                    j = cand[i, q]
                    if j >= 0:
                        cand_lb[i, q] -= shift[j]
                        if cand_lb[i, q] < bound:
                            bound = cand_lb[i, q]
                if half[a] > bound:
                    bound = half[a]
                if upper[i] <= bound:
                    continue
                upper[i] = np.sqrt(_sqdist(X, i, C, a))
                if upper[i] <= bound:
                    continue
            if not first and lower[i] >= upper[i]:
                # only the candidates can be nearer: compare exactly with them
                b = a
                bd = upper[i]
                for q in range(N_CAND):
                    j = cand[i, q]
                    if j >= 0:
                        d = np.sqrt(_sqdist(X, i, C, j))
                        cand_lb[i, q] = d
                        if d < bd or (d == bd and j < b):
                            bd = d
                            b = j
                if b != a:
                    for q in range(N_CAND):
                        if cand[i, q] == b:
                            cand[i, q] = a
                            cand_lb[i, q] = upper[i]
                    upper[i] = bd
            else:
                b, bd, lo_bound = _nearest_one_with_candidates(
                    X, i, C, a, cc, order, slack, cand, cand_lb, topj, topd, margin
                )
                upper[i] = bd
                lower[i] = lo_bound
            if b != a:
                labels[i] = b
                changed += 1
                if not first:
                    wsum[a] -= w[i]
                    wsum[b] += w[i]
                    for q in range(dim):
                        sums[a, q] -= w[i] * X[i, q]
                        sums[b, q] += w[i] * X[i, q]
    return changed


@njit(cache=True, nogil=True)
def lloyd_update(X, w, C, labels, upper, lower, cand_lb, sums, wsum, shift, n_fixed, recompute):
    """The update step: move the centres ``n_fixed..k-1`` to their points' weighted means.

    ``recompute`` sums the points from scratch first (the assignment step
    keeps ``sums``/``wsum`` up to date incrementally in between). An empty
    cluster moves to the point farthest from its centre. Fills ``shift`` (how
    far each centre moved).

    Returns (sum of squared shifts, largest shift).
    """
    n, dim = X.shape
    k = C.shape[0]
    if recompute:
        sums[:] = 0.0
        wsum[:] = 0.0
        for i in range(n):
            a = labels[i]
            wsum[a] += w[i]
            for q in range(dim):
                sums[a, q] += w[i] * X[i, q]
    total_shift = 0.0
    max_shift = 0.0
    for j in range(n_fixed, k):
        if wsum[j] > 1e-9:
            s2 = 0.0
            for q in range(dim):
                nv = sums[j, q] / wsum[j]
                t = nv - C[j, q]
                s2 += t * t
                C[j, q] = nv
        else:
            # empty cluster: move it to the point farthest from its centre
            far = 0
            fd = -1.0
            for i in range(n):
                if upper[i] > fd:
                    fd = upper[i]
                    far = i
            s2 = 0.0
            for q in range(dim):
                t = X[far, q] - C[j, q]
                s2 += t * t
                C[j, q] = X[far, q]
            old = labels[far]
            wsum[old] -= w[far]
            wsum[j] = w[far]
            for q in range(dim):
                sums[old, q] -= w[far] * X[far, q]
                sums[j, q] = w[far] * X[far, q]
            upper[far] = 0.0
            lower[far] = 0.0
            for q in range(N_CAND):
                cand_lb[far, q] = 0.0
            labels[far] = j
        shift[j] = np.sqrt(s2)
        total_shift += s2
        if shift[j] > max_shift:
            max_shift = shift[j]
    return total_shift, max_shift


@njit(cache=True, nogil=True)
def weighted_inertia(X, w, C, labels):
    """Sum of w * squared distance of every point to its centre."""
    inertia = 0.0
    for i in range(X.shape[0]):
        inertia += w[i] * _sqdist(X, i, C, labels[i])
    return inertia


@njit(cache=True)
def weighted_means(X, w, labels, k):
    """Weighted mean and total weight of each label's points."""
    dim = X.shape[1]
    sums = np.zeros((k, dim))
    wsum = np.zeros(k)
    for i in range(X.shape[0]):
        a = labels[i]
        wsum[a] += w[i]
        for q in range(dim):
            sums[a, q] += w[i] * X[i, q]
    for j in range(k):
        if wsum[j] > 0.0:
            for q in range(dim):
                sums[j, q] /= wsum[j]
    return sums, wsum


@njit(cache=True)
def rgb_table(flat):
    """Distinct colours of (n, 3) uint8 pixels through a 2**24-bin histogram.

    Returns (keys, counts, inverse): the packed colours ``R | G << 8 | B << 16``
    in increasing order (uint32), their pixel counts (int64), and the index
    of every pixel's colour among them (int32), as ``np.unique`` would.
    """
    n = flat.shape[0]
    table = np.zeros(1 << 24, dtype=np.int32)
    for i in range(n):
        table[np.int64(flat[i, 0]) | (np.int64(flat[i, 1]) << 8) | (np.int64(flat[i, 2]) << 16)] += 1
    n_keys = 0
    for b in range(1 << 24):
        if table[b] > 0:
            n_keys += 1
    keys = np.empty(n_keys, dtype=np.uint32)
    counts = np.empty(n_keys, dtype=np.int64)
    j = 0
    for b in range(1 << 24):
        if table[b] > 0:
            keys[j] = b
            counts[j] = table[b]
            table[b] = j  # the histogram becomes the lookup from colour to index
            j += 1
    inverse = np.empty(n, dtype=np.int32)
    for i in range(n):
        inverse[i] = table[np.int64(flat[i, 0]) | (np.int64(flat[i, 1]) << 8) | (np.int64(flat[i, 2]) << 16)]
    return keys, counts, inverse


@njit(cache=True)
def packed_table(flat):
    """Distinct colours of (n, C) uint8 pixels, C <= 4, by a radix sort of their packed values.

    Returns what ``np.unique(packed, return_inverse=True, return_counts=True)``
    gives for ``packed = sum(flat[:, c] << 8 c)``: the packed colours in
    increasing order (uint32), their pixel counts (int64) and the index of
    every pixel's colour (int32). One counting pass per channel (a stable
    least-significant-byte-first sort) instead of a comparison sort.
    """
    n, n_ch = flat.shape
    keys = np.empty(n, dtype=np.uint32)
    count = np.zeros((n_ch, 257), dtype=np.int64)  # every channel's histogram, in one pass
    for i in range(n):
        v = np.uint32(0)
        for c in range(n_ch):
            count[c, np.int64(flat[i, c]) + 1] += 1
            v |= np.uint32(flat[i, c]) << np.uint32(8 * c)
        keys[i] = v
    pix = np.arange(n).astype(np.int32)
    keys2 = np.empty(n, dtype=np.uint32)
    pix2 = np.empty(n, dtype=np.int32)
    for c in range(n_ch):
        if count[c].max() == n:
            continue  # every key has the same byte here: already in order
        shift = np.uint32(8 * c)
        start = count[c]
        for b in range(256):
            start[b + 1] += start[b]
        for i in range(n):
            b = (keys[i] >> shift) & np.uint32(255)
            pos = start[b]
            start[b] = pos + 1
            keys2[pos] = keys[i]
            pix2[pos] = pix[i]
        keys, keys2 = keys2, keys
        pix, pix2 = pix2, pix
    n_keys = 0
    for s in range(n):
        if s == 0 or keys[s] != keys[s - 1]:
            n_keys += 1
    uniq = np.empty(n_keys, dtype=np.uint32)
    counts = np.zeros(n_keys, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int32)
    u = -1
    for s in range(n):
        if s == 0 or keys[s] != keys[s - 1]:
            u += 1
            uniq[u] = keys[s]
        counts[u] += 1
        inverse[pix[s]] = u
    return uniq, counts, inverse
