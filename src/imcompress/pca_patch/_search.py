"""Bitstream 2's encoder search: partition and modes by rate-distortion cost.

Root block by root block: :func:`_node` evaluates a node as one leaf (the
best mode: every angular/DC/planar mode ranked by SAD + sqrt(lambda) x mode
bits, the best few plus the most probable modes (and chroma from luma) then
transformed, quantized and costed as D + lambda R with R from the coder's
current probabilities) and, recursively, as four children, keeps the
cheaper, and leaves the winner's reconstruction in the plane so later
blocks predict from what the decoder will have. Then :func:`_code_node`
codes the root block's decisions with the real coder (updating the
probabilities the next root block's estimates use).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._blockcoder import CFL_FLAG, MAX_ALPHA, SPLIT, code_alpha, code_block, code_mode, put_bit
from ._intra import MODE_CFL, N_MODES, SCALE, cfl_luma, predict_cfl, predict_into, references
from ._jit import noalloc
from ._tree import cbf_context, mark_leaf, neighbour_modes, recon_block_into, split_context

__all__ = ["LEVEL_DTYPE", "PlaneScratch", "code_rows", "encode_rows", "even_odd_tables"]

#: Type of the levels kept between the search and the coding (|level| <= MAX_LEVEL = 2**20): the
#: chroma thread keeps a whole plane of them (4 bytes per chroma sample).
LEVEL_DTYPE = np.int32


@noalloc
def _forward(o, pred, n, c, coef, work):
    """coef = C (o - pred / SCALE) C^T (pixel units); ``work`` (3, 32, 32) float64 scratch."""
    r, tmp, ct = work[0], work[1], work[2]
    for y in range(n):
        for x in range(n):
            r[y, x] = o[y, x] - pred[y, x] / SCALE
    for u in range(n):
        for x in range(n):
            tmp[u, x] = 0.0
    for u in range(n):
        for y in range(n):
            cu = c[u, y]
            for x in range(n):
                tmp[u, x] += cu * r[y, x]
    # coef[u, v] = sum over x (in order) of tmp[u, x] c[v, x], every v at once
    for v in range(n):
        for x in range(n):
            ct[x, v] = c[v, x]
    for u in range(n):
        for v in range(n):
            coef[u, v] = 0.0
        for x in range(n):
            t = tmp[u, x]
            for v in range(n):
                coef[u, v] += t * ct[x, v]


def even_odd_tables(dct):
    """(4, 2, 16, 16) float64: ``[s, p, x, k] = dct[s, 2k + p, x]``, the even (p = 0) and odd rows of
    each size's DCT, transposed, for :func:`_forward_even_odd` (copies of the stored values)."""
    out = np.zeros((4, 2, 16, 16))
    for s in range(4):
        h = 2 << s
        out[s, 0, :h, :h] = dct[s, 0:2 * h:2, :h].T
        out[s, 1, :h, :h] = dct[s, 1:2 * h:2, :h].T
    return out


@noalloc
def _forward_even_odd(o, pred, n, c, ct, coef, work):
    """:func:`_forward` with half the multiplications: the DCT's rows are even or odd about the
    block's centre (``c[u, n - 1 - y] == (-1)**u c[u, y]``, exactly), so each 1-D transform sums
    n / 2 products of folded inputs. The same coefficients up to rounding (a few ulps), not bit for
    bit: for the fast speed levels only, whose decisions are not pinned. ``ct``: this size's
    :func:`even_odd_tables`; ``work`` (3, 32, 32) float64 scratch."""
    h = n >> 1
    fold, tmp, acc = work[0], work[1], work[2]
    # fold[y] = r[y] + r[n - 1 - y], fold[h + y] = r[y] - r[n - 1 - y], r = o - pred / SCALE
    for y in range(h):
        for x in range(n):
            a = o[y, x] - pred[y, x] / SCALE
            b = o[n - 1 - y, x] - pred[n - 1 - y, x] / SCALE
            fold[y, x] = a + b
            fold[h + y, x] = a - b
    for u in range(n):
        for x in range(n):
            tmp[u, x] = 0.0
    for u in range(n):
        f = h if u & 1 else 0
        for y in range(h):
            cu = c[u, y]
            for x in range(n):
                tmp[u, x] += cu * fold[f + y, x]
    for u in range(n):
        for k in range(h):
            acc[0, k] = 0.0
            acc[1, k] = 0.0
        for x in range(h):
            a, b = tmp[u, x], tmp[u, n - 1 - x]
            e, d = a + b, a - b
            for k in range(h):
                acc[0, k] += e * ct[0, x, k]
                acc[1, k] += d * ct[1, x, k]
        for k in range(h):
            coef[u, 2 * k] = acc[0, k]
            coef[u, 2 * k + 1] = acc[1, k]


@noalloc
def _quantize(coef, n, step, rho, rnd, lev):
    """Deadzone levels of ``coef``; returns the squared error they leave."""
    d = 0.0
    for u in range(n):
        for v in range(n):
            x = coef[u, v]
            a = abs(x) / step
            q = np.int64(a + rnd)
            if q == 0:
                lev[u, v] = 0
                d += x * x
            else:
                e = (a - (q - rho)) * step
                d += e * e
                lev[u, v] = q if x > 0 else -q
    return d


@noalloc
def _alpha(o, pred_dc, lumac, n):
    """Least-squares CfL alpha (1/8 units, clamped) for residual o*SCALE - dc."""
    num = 0.0
    den = 0.0
    for y in range(n):
        for x in range(n):
            lc = float(lumac[y, x])
            num += (o[y, x] * SCALE - pred_dc) * lc
            den += lc * lc
    if den <= 0.0:
        return 0
    a = int(np.rint(8.0 * num / den))
    return max(-MAX_ALPHA, min(MAX_ALPHA, a))


#: Indices of the search's speed knobs (an int64 array, see ``SearchSettings``):
#: rank a coarse set of modes and refine around the best angle instead of all 35;
#: try the most probable modes in full whatever their rank; the SAD's row step
#: when ranking blocks of 16 and more (1: every row); skip splitting a leaf whose
#: squared error is below ``KNOB_SPLIT_FLOOR`` / 64 of lambda times its samples; the candidates'
#: forward DCT by :func:`_forward_even_odd` (rounded differently) instead of :func:`_forward`.
KNOB_COARSE, KNOB_MPM_FULL, KNOB_SAD_ROWS, KNOB_SPLIT_FLOOR, KNOB_FAST_DCT = 0, 1, 2, 3, 4
N_KNOBS = 5
#: Planar, DC and every fourth angle: the coarse pass of ``KNOB_COARSE`` (x265's fast intra search).
_COARSE = np.array([0, 1, 2, 6, 10, 14, 18, 22, 26, 30, 34], dtype=np.int64)


@noalloc
def _rank_batch(o, ref, n, log2n, s, batch, nb, preds, main, steps, ranked, sads, dst, dout, model, mpm, tab, slam,
                no_cfl, rows):
    """Rank the ``nb`` modes of ``batch``: SAD (every ``rows``-th row on blocks of 16 and up) + sqrt(lambda)
    x bits into ``ranked``. Each mode's SAD sums its pixels in raster order, the modes side by side
    (independent sums, so the values of one mode at a time)."""
    for j in range(nb):
        predict_into(ref, n, log2n, batch[j], preds[batch[j]], main, steps)
    ystep = rows if n >= 16 else 1
    for j in range(nb):
        sads[j] = 0.0
    for y in range(0, n, ystep):
        for x in range(n):
            v = o[y, x] * SCALE
            for j in range(nb):
                sads[j] += abs(v - preds[batch[j], y, x])
    for j in range(nb):
        m = batch[j]
        ranked[m] = sads[j] * ystep / SCALE + slam * (code_mode(dst, dout, model, m, mpm, s, True, tab) + no_cfl)


@noalloc
def _rank_coarse(o, ref, n, log2n, s, preds, main, steps, ranked, sads, batch, dst, dout, model, mpm, tab, slam,
                 no_cfl, allowed, rows):
    """Rank planar, DC, every fourth angle and the most probable modes, then the angles
    two and one away from the best one (modes not ranked stay at +inf)."""
    nb = 0
    for i in range(_COARSE.size + 3):
        m = _COARSE[i] if i < _COARSE.size else mpm[i - _COARSE.size]
        if allowed[m] and ranked[m] == np.inf:
            queued = False
            for j in range(nb):
                queued = queued or batch[j] == m
            if not queued:
                batch[nb] = m
                nb += 1
    _rank_batch(o, ref, n, log2n, s, batch, nb, preds, main, steps, ranked, sads, dst, dout, model, mpm, tab, slam,
                no_cfl, rows)
    for d in (2, 1):
        best = 2
        for m in range(3, N_MODES):
            if ranked[m] < ranked[best]:
                best = m
        nb = 0
        for m in (best - d, best + d):
            if 2 <= m < N_MODES and allowed[m] and ranked[m] == np.inf:
                batch[nb] = m
                nb += 1
        _rank_batch(o, ref, n, log2n, s, batch, nb, preds, main, steps, ranked, sads, dst, dout, model, mpm, tab,
                    slam, no_cfl, rows)


#: The search's scratch arrays (:func:`work_arrays`), sized for the largest block: allocated once per row
#: of root blocks, so that no node or leaf allocates (their kernels then need no reference counting).
Work = namedtuple("Work", ["o", "pred", "best_pred", "lumac", "lev", "coef", "fwd", "ranked", "sads", "order",
                           "stack", "cands", "mpm", "main", "steps", "node_lev", "node_rec", "recon", "recon_acc",
                           "batch"])


@njit(cache=True)
def work_arrays():
    """A fresh :data:`Work` (blocks up to 32 x 32; ``node_lev``/``node_rec``: one per quadtree depth)."""
    i8 = np.int64
    return Work(np.empty((32, 32)), np.empty((32, 32), dtype=i8), np.empty((32, 32), dtype=i8),
                np.empty((32, 32), dtype=i8), np.empty((32, 32), dtype=i8), np.empty((32, 32)), np.empty((3, 32, 32)),
                np.empty(N_MODES), np.empty(N_MODES), np.empty(N_MODES, dtype=i8), np.empty((_SORT_STACK, 2), dtype=i8),
                np.empty(N_MODES + 4, dtype=i8), np.empty(3, dtype=i8), np.empty(3 * 32 + 1, dtype=i8),
                np.empty((2, 32), dtype=i8), np.empty((4, 32, 32), dtype=i8), np.empty((4, 32, 32), dtype=i8),
                np.empty((32, 32)), np.empty(32), np.empty(N_MODES, dtype=i8))


#: Partitions numba's quicksort may stack (its ``MAX_STACK``).
_SORT_STACK = 100
#: Below this many keys numba's quicksort sorts a partition by insertion (its ``SMALL_QUICKSORT``).
_SORT_SMALL = 15


@noalloc
def _argsort(a, r, stack):
    """``r[:] = np.argsort(a)`` without allocating: numba's quicksort (``numba/misc/quicksort.py``, the
    algorithm ``np.argsort`` runs in a numba function) step for step, so keys that tie come out in the
    same order. ``a`` holds no NaN; ``stack``: (:data:`_SORT_STACK`, 2) int64."""
    size = a.size
    for i in range(size):
        r[i] = i
    if size < 2:
        return
    stack[0, 0], stack[0, 1] = 0, size - 1
    n = 1
    while n > 0:
        n -= 1
        low, high = stack[n, 0], stack[n, 1]
        while high - low >= _SORT_SMALL:
            mid = (low + high) >> 1  # median of three, then partition around it
            if a[r[mid]] < a[r[low]]:
                r[low], r[mid] = r[mid], r[low]
            if a[r[high]] < a[r[mid]]:
                r[high], r[mid] = r[mid], r[high]
            if a[r[mid]] < a[r[low]]:
                r[low], r[mid] = r[mid], r[low]
            pivot = a[r[mid]]
            r[high], r[mid] = r[mid], r[high]
            i = low
            j = high - 1
            while True:
                while i < high and a[r[i]] < pivot:
                    i += 1
                while j >= low and pivot < a[r[j]]:
                    j -= 1
                if i >= j:
                    break
                r[i], r[j] = r[j], r[i]
                i += 1
                j -= 1
            r[i], r[high] = r[high], r[i]
            if high - i > i - low:  # stack the larger part
                if high > i:
                    stack[n, 0], stack[n, 1] = i + 1, high
                    n += 1
                high = i - 1
            else:
                if i > low:
                    stack[n, 0], stack[n, 1] = low, i - 1
                    n += 1
                low = i + 1
        for i in range(low + 1, high + 1):  # insertion sort of r[low .. high]
            k = r[i]
            v = a[k]
            j = i
            while j > low and v < a[r[j - 1]]:
                r[j] = r[j - 1]
                j -= 1
            r[j] = k


@noalloc
def _leaf(dst, dout, model, src, top, rec, maps, done, y0, x0, log2n, step, rho, lam, chroma, luma, sub, n_cand, tab, su, sv,
          dct, ct, ref, preds, rnd, allowed, cfl_on, knobs, best_lev, best_rec, w):
    """Best single-leaf coding of the block into ``best_lev``, ``best_rec``; returns (J, mode, alpha).
    ``w``: the :data:`Work` arrays."""
    n = 1 << log2n
    s = log2n - 2
    c = dct[s]
    references(rec, done, y0, x0, n, ref)
    mpm = w.mpm
    ncfl = neighbour_modes(maps[1], done, y0, x0, n, mpm)
    cctx = cbf_context(maps[3], done, y0 >> 2, x0 >> 2)
    o = w.o
    for y in range(n):
        for x in range(n):
            o[y, x] = src[y0 - top + y, x0 + x]
    pred = w.pred
    no_cfl = put_bit(dst, dout, model, CFL_FLAG + ncfl, 0, True, tab) if chroma else 0.0
    slam = np.sqrt(lam)
    main, steps, ranked = w.main, w.steps, w.ranked
    for m in range(N_MODES):
        ranked[m] = np.inf
    if knobs[KNOB_COARSE]:
        _rank_coarse(o, ref, n, log2n, s, preds, main, steps, ranked, w.sads, w.batch, dst, dout, model, mpm, tab,
                     slam, no_cfl, allowed, knobs[KNOB_SAD_ROWS])
    else:
        # rank every mode by SAD + sqrt(lambda) * its bits; each mode's SAD sums
        # its pixels in raster order, the modes side by side (independent sums)
        for m in range(N_MODES):
            if allowed[m]:
                predict_into(ref, n, log2n, m, preds[m], main, steps)
        sads = w.sads
        for m in range(N_MODES):
            sads[m] = 0.0
        for y in range(n):
            for x in range(n):
                v = o[y, x] * SCALE
                for m in range(N_MODES):
                    sads[m] += abs(v - preds[m, y, x])
        for m in range(N_MODES):
            if allowed[m]:
                ranked[m] = sads[m] / SCALE + slam * (code_mode(dst, dout, model, m, mpm, s, True, tab) + no_cfl)
    order = w.order
    _argsort(ranked, order, w.stack)
    cands = w.cands
    nc = 0
    for i in range(min(n_cand, N_MODES)):
        if allowed[order[i]] and ranked[order[i]] < np.inf:
            cands[nc] = order[i]
            nc += 1
    for i in range(3 if knobs[KNOB_MPM_FULL] else 0):
        seen = not allowed[mpm[i]]
        for j in range(nc):
            if cands[j] == mpm[i]:
                seen = True
        if not seen:
            cands[nc] = mpm[i]
            nc += 1
    lumac = w.lumac
    alpha = 0
    if chroma and cfl_on:
        cfl_luma(luma, y0, x0, n, sub, lumac)
        predict_into(ref, n, log2n, 1, pred, main, steps)
        alpha = _alpha(o, pred[0, 0], lumac, n)
        if alpha != 0:
            cands[nc] = MODE_CFL
            nc += 1
    coef, lev, best_pred = w.coef, w.lev, w.best_pred
    best_j = np.inf
    best_mode = 1
    for i in range(nc):
        m = cands[i]
        if m == MODE_CFL:
            predict_cfl(ref, n, log2n, lumac, alpha, pred)
            bits = put_bit(dst, dout, model, CFL_FLAG + ncfl, 1, True, tab)
            bits += code_alpha(dst, dout, model, alpha, True, tab)
        else:
            for y in range(n):
                for x in range(n):
                    pred[y, x] = preds[m, y, x]
            bits = no_cfl + code_mode(dst, dout, model, m, mpm, s, True, tab)
        if knobs[KNOB_FAST_DCT]:
            _forward_even_odd(o, pred, n, c, ct[s], coef, w.fwd)
        else:
            _forward(o, pred, n, c, coef, w.fwd)
        d = _quantize(coef, n, step, rho, rnd, lev)
        if d + lam * bits >= best_j:
            # the levels' bits are >= 0 and rounding is monotonic: J could not be lower
            continue
        bits += code_block(dst, dout, model, lev, n, s, cctx, True, tab, su, sv)
        j = d + lam * bits
        if j < best_j:
            best_j = j
            best_mode = m
            for y in range(n):
                for x in range(n):
                    best_lev[y, x] = lev[y, x]
                    best_pred[y, x] = pred[y, x]
    recon_block_into(best_pred, best_lev, n, s, step, rho, dct, best_rec, 0, 0, w.recon, w.recon_acc)
    return best_j, best_mode, (alpha if best_mode == MODE_CFL else 0)


@noalloc
def _node(dst, dout, model, src, top, rec, maps, done, levp, y0, x0, log2n, log2min, step, rho, lam, chroma, luma, sub, n_cand,
          prune, tab, su, sv, dct, ct, ref, preds, rnd, allowed, cfl_on, knobs, w):
    n = 1 << log2n
    yu, xu = y0 >> 2, x0 >> 2
    can_split = log2n > log2min
    sctx = SPLIT + (log2n - 2) * 3 + split_context(maps[0], done, yu, xu, log2n)
    lev = w.node_lev[log2n - 2]  # this depth's: its children use the next ones
    trec = w.node_rec[log2n - 2]
    for u in range(n):
        for v in range(n):
            lev[u, v] = 0
    j_leaf, mode, alpha = _leaf(dst, dout, model, src, top, rec, maps, done, y0, x0, log2n, step, rho, lam, chroma, luma, sub,
                                n_cand, tab, su, sv, dct, ct, ref, preds, rnd, allowed, cfl_on, knobs, lev, trec, w)
    cbf = 0
    for u in range(n):
        for v in range(n):
            if lev[u, v] != 0:
                cbf = 1
    j_split = np.inf
    if can_split:
        j_leaf += lam * put_bit(dst, dout, model, sctx, 0, True, tab)
        floor = knobs[KNOB_SPLIT_FLOOR] * lam * n * n / 64.0
        if not (prune and cbf == 0) and not (floor > 0 and j_leaf < floor):
            j_split = lam * put_bit(dst, dout, model, sctx, 1, True, tab)
            h = n >> 1
            for k in range(4):
                j_split += _node(dst, dout, model, src, top, rec, maps, done, levp, y0 + (k >> 1) * h, x0 + (k & 1) * h,
                                 log2n - 1, log2min, step, rho, lam, chroma, luma, sub, n_cand, prune, tab,
                                 su, sv, dct, ct, ref, preds, rnd, allowed, cfl_on, knobs, w)
                if j_split >= j_leaf:
                    break
    if j_leaf <= j_split:
        for y in range(n):
            for x in range(n):
                rec[y0 + y, x0 + x] = trec[y, x]
                levp[y0 - top + y, x0 + x] = lev[y, x]
        mark_leaf(maps, done, y0, x0, n, log2n, mode, alpha, cbf)
        return j_leaf
    return j_split


@noalloc
def _code_node(st, out, model, maps, done, levp, top, y0, x0, log2n, log2min, chroma, tab, su, sv, cmaps, mpm, lev):
    """Code the decided partition, modes and levels (``cmaps``: the decoder's view, filled as it goes;
    ``mpm`` (3) and ``lev`` (at least n x n) int64: scratch)."""
    n = 1 << log2n
    yu, xu = y0 >> 2, x0 >> 2
    if log2n > log2min:
        split = 1 if maps[0, yu, xu] < log2n else 0
        put_bit(st, out, model, SPLIT + (log2n - 2) * 3 + split_context(cmaps[0], done, yu, xu, log2n), split,
                False, tab)
        if split:
            h = n >> 1
            for k in range(4):
                _code_node(st, out, model, maps, done, levp, top, y0 + (k >> 1) * h, x0 + (k & 1) * h, log2n - 1,
                           log2min, chroma, tab, su, sv, cmaps, mpm, lev)
            return
    s = log2n - 2
    mode = maps[1, yu, xu]
    alpha = maps[2, yu, xu]
    ncfl = neighbour_modes(cmaps[1], done, y0, x0, n, mpm)
    if chroma:
        put_bit(st, out, model, CFL_FLAG + ncfl, 1 if mode == MODE_CFL else 0, False, tab)
    if mode == MODE_CFL:
        code_alpha(st, out, model, alpha, False, tab)
    else:
        code_mode(st, out, model, mode, mpm, s, False, tab)
    for y in range(n):
        for x in range(n):
            lev[y, x] = levp[y0 - top + y, x0 + x]
    code_block(st, out, model, lev, n, s, cbf_context(cmaps[3], done, yu, xu), False, tab, su, sv)
    mark_leaf(cmaps, done, y0, x0, n, log2n, mode, alpha, maps[3, yu, xu])


@dataclass(frozen=True)
class PlaneScratch:
    """The search's working arrays for one plane (the reconstruction and unit maps are the caller's).

    ``done`` / ``cdone``: units decided by the search / coded (the decoder's
    view, whose maps are ``cmaps``); ``levp``: the levels of one row of root
    blocks; ``dst``, ``dout``: a scratch coder state and buffer the search
    only estimates bits with (never flushed).
    """

    done: np.ndarray
    cdone: np.ndarray
    cmaps: np.ndarray
    levp: np.ndarray
    ref: np.ndarray
    dst: np.ndarray
    dout: np.ndarray

    @classmethod
    def new(cls, shape, root, st, map_dtype):
        h, w = shape
        units = (h >> 2, w >> 2)
        return cls(np.zeros(units, dtype=np.bool_), np.zeros(units, dtype=np.bool_),
                   np.zeros((4,) + units, dtype=map_dtype), np.zeros((root, w), dtype=LEVEL_DTYPE),
                   np.empty(4 * 32 + 1, dtype=np.int64), st.copy(), np.empty(0, dtype=np.uint8))


@njit(cache=True, nogil=True)
def encode_rows(st, out, model, src, top, rec, maps, done, cdone, cmaps, levp, ref, dst, dout, log2max, log2min,
                step, rho, lam, chroma, luma, sub, n_cand, prune, tab, su, sv, dct, ct, rnd, allowed, cfl_on, knobs):
    """Search and code the root blocks of one row of a plane, at rows ``top .. top + 2**log2max``.

    ``src`` holds those rows of the padded source plane (float64, pixel
    units); ``rec`` and ``maps`` are the whole plane's reconstruction and unit
    maps, filled as blocks are decided; the other arrays are a
    :class:`PlaneScratch`'s, kept from one row to the next; ``ct``: the
    :func:`even_odd_tables` of ``dct``.
    """
    w = rec.shape[1]
    root = 1 << log2max
    preds = np.empty((N_MODES, root, root), dtype=np.int64)  # every mode's prediction of the block ranked
    work = work_arrays()
    for x0 in range(0, w, root):
        _node(dst, dout, model, src, top, rec, maps, done, levp, top, x0, log2max, log2min, step, rho, lam, chroma, luma,
              sub, n_cand, prune, tab, su, sv, dct, ct, ref, preds, rnd, allowed, cfl_on, knobs, work)
        _code_node(st, out, model, maps, cdone, levp, top, top, x0, log2max, log2min, chroma, tab, su, sv, cmaps,
                   work.mpm, work.lev)


@njit(cache=True, nogil=True)
def code_rows(st, out, model, maps, cdone, cmaps, levp, top, log2max, log2min, chroma, tab, su, sv):
    """Code the decisions :func:`encode_rows` left in ``maps`` and ``levp`` for the root blocks of one row
    (``cdone``, ``cmaps``: the decoder's view, as in :func:`encode_rows`)."""
    root = 1 << log2max
    mpm, lev = np.empty(3, dtype=np.int64), np.empty((root, root), dtype=np.int64)
    for x0 in range(0, maps.shape[2] << 2, root):
        _code_node(st, out, model, maps, cdone, levp, top, top, x0, log2max, log2min, chroma, tab, su, sv, cmaps,
                   mpm, lev)
