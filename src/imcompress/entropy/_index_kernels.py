"""The numba kernels of the palette-index coder (:mod:`._indices` is its Python side).

Compiled two ways: by numba's JIT, and ahead of time by ``setup.py`` with the
signatures of :mod:`._index_spec` (see :mod:`imcompress._aot`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._rangecoder import EG_CONTEXTS, model_new
from ._rangecoder import dec_bit, dec_expgolomb, dec_new, dec_overrun  # noqa: I001 - decoder half
from ._queued import enc_decisions, queue_expgolomb  # encoder half: decisions queued per row
from ._rangecoder import enc_finish, enc_new

# model layout: 4 flag families x 64 contexts, then 16 Exp-Golomb sets
_FLAG_CONTEXTS = 64
_EG_BASE = 4 * _FLAG_CONTEXTS
_N_CONTEXTS = _EG_BASE + 16 * EG_CONTEXTS


@njit(cache=True)
def _neighbours(idx, y, x, width):
    if y == 0:
        if x == 0:
            return 0, 0, 0, 0
        left = idx[y, x - 1]
        return left, left, left, left
    up = idx[y - 1, x]
    left = idx[y, x - 1] if x > 0 else up
    upleft = idx[y - 1, x - 1] if x > 0 else up
    upright = idx[y - 1, x + 1] if x + 1 < width else up
    return left, up, upleft, upright


@njit(cache=True)
def _equalities(left, up, upleft, upright):
    e = 0
    if left == up:
        e |= 1
    if up == upleft:
        e |= 2
    if up == upright:
        e |= 4
    if left == upleft:
        e |= 8
    return e


# Distances are computed in float32 on vector lanes: every value is an integer
# below 2**24 (at most 4 * 4 * 255**2), so float32 arithmetic is exact here and
# gives the integer distances of docs/FORMAT.md; the palette is passed as four
# float32 channel rows (missing channels 0), see _channel_rows.

@njit(cache=True, inline="always")
def _distance(p0, p1, p2, p3, s0, s1, s2, s3, j):
    # squared distance of entry j to the mean of L and U, times 4: s = L + U per channel
    t0 = 2.0 * p0[j] - s0
    t1 = 2.0 * p1[j] - s1
    t2 = 2.0 * p2[j] - s2
    t3 = 2.0 * p3[j] - s3
    return t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3


_EXCLUDED = 1 << 40


@njit(cache=True)
def _select(p0, p1, p2, p3, left, up, upright, upleft, rank, keys):
    """The entry ``rank`` entries from the front, sorted by (distance, index), among
    those other than L, U, UR, UL: what :func:`_rank` counted; -1 if there are
    fewer. ``keys`` is scratch space of K entries."""
    s0, s1, s2, s3 = p0[left] + p0[up], p1[left] + p1[up], p2[left] + p2[up], p3[left] + p3[up]
    k = p0.shape[0]
    for j in range(k):
        # (distance, index) as one integer: distances are integers, indices < 256
        keys[j] = np.int64(_distance(p0, p1, p2, p3, s0, s1, s2, s3, j)) * 256 + j
    # the neighbours go last (keys above any real key), each once
    m = k
    for j in (left, up, upright, upleft):
        if keys[j] < _EXCLUDED:
            keys[j] = _EXCLUDED + j
            m -= 1
    if rank >= m:
        return -1
    # quickselect: the keys are distinct, so the rank-th is one value whatever the pivots
    lo, hi = 0, k - 1
    while lo < hi:
        pivot = keys[(lo + hi) >> 1]
        i, j = lo, hi
        while i <= j:
            while keys[i] < pivot:
                i += 1
            while keys[j] > pivot:
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                i += 1
                j -= 1
        if rank <= j:
            hi = j
        elif rank >= i:
            lo = i
        else:
            break
    return keys[rank] & 255


@njit(cache=True)
def _rank(p0, p1, p2, p3, v, left, up, upright, upleft):
    """How many entries other than v, L, U, UR, UL sort before ``v`` by (distance, index)."""
    s0, s1, s2, s3 = p0[left] + p0[up], p1[left] + p1[up], p2[left] + p2[up], p3[left] + p3[up]
    dv = _distance(p0, p1, p2, p3, s0, s1, s2, s3, v)
    rank = 0
    for j in range(p0.shape[0]):
        d = _distance(p0, p1, p2, p3, s0, s1, s2, s3, j)
        rank += (d < dv) | ((d == dv) & (j < v))
    # the neighbours (v is none of them here) were coded by the flags: not counted
    rank -= _before(_distance(p0, p1, p2, p3, s0, s1, s2, s3, left), dv, left, v)
    if up != left:
        rank -= _before(_distance(p0, p1, p2, p3, s0, s1, s2, s3, up), dv, up, v)
    if upright != left and upright != up:
        rank -= _before(_distance(p0, p1, p2, p3, s0, s1, s2, s3, upright), dv, upright, v)
    if upleft != left and upleft != up and upleft != upright:
        rank -= _before(_distance(p0, p1, p2, p3, s0, s1, s2, s3, upleft), dv, upleft, v)
    return rank


@njit(cache=True, inline="always")
def _before(d, dv, j, v):
    return 1 if d < dv or (d == dv and j < v) else 0


#: Decisions queued per pixel at most: 4 flags, then an Exp-Golomb code of a
#: rank below 256 (9 prefix bits, the top suffix bit, one run of direct bits).
_MAX_QUEUED = 15


@njit(cache=True)
def _encode_kernel(out, idx, palt):
    # the contexts depend on the pixels only, never on the coder: each row's
    # decisions are queued, then coded in one tight loop (enc_decisions)
    h, w = idx.shape
    p0, p1, p2, p3 = palt[0].copy(), palt[1].copy(), palt[2].copy(), palt[3].copy()
    st = enc_new()
    model = model_new(_N_CONTEXTS)
    ctx = np.empty(w * _MAX_QUEUED, dtype=np.int32)
    val = np.empty(w * _MAX_QUEUED, dtype=np.int32)
    prev = 0
    for y in range(h):
        n = 0
        for x in range(w):
            v = idx[y, x]
            left, up, upleft, upright = _neighbours(idx, y, x, w)
            e = _equalities(left, up, upleft, upright)
            c = e * 4 + prev
            ctx[n] = c
            n += 1
            if v == left:
                val[n - 1] = 1
                prev = 1
                continue
            val[n - 1] = 0
            if up != left:
                ctx[n] = _FLAG_CONTEXTS + c
                n += 1
                if v == up:
                    val[n - 1] = 1
                    prev = 2
                    continue
                val[n - 1] = 0
            if upright != left and upright != up:
                ctx[n] = 2 * _FLAG_CONTEXTS + c
                n += 1
                if v == upright:
                    val[n - 1] = 1
                    prev = 3
                    continue
                val[n - 1] = 0
            if upleft != left and upleft != up and upleft != upright:
                ctx[n] = 3 * _FLAG_CONTEXTS + c
                n += 1
                if v == upleft:
                    val[n - 1] = 1
                    prev = 3
                    continue
                val[n - 1] = 0
            prev = 0
            rank = _rank(p0, p1, p2, p3, v, left, up, upright, upleft)
            n = queue_expgolomb(ctx, val, n, _EG_BASE + e * EG_CONTEXTS, rank)
        enc_decisions(st, out, model, ctx, val, n)
    return enc_finish(st, out)


@njit(cache=True)
def _decode_kernel(data, palt, h, w):
    """Returns (indices, status): 0 ok, 1 invalid rank, 2 stream overrun."""
    k = palt.shape[1]
    p0, p1, p2, p3 = palt[0].copy(), palt[1].copy(), palt[2].copy(), palt[3].copy()
    idx = np.zeros((h, w), dtype=np.uint8)
    st = dec_new(data)
    model = model_new(_N_CONTEXTS)
    keys = np.empty(k, dtype=np.int64)
    prev = 0
    for y in range(h):
        for x in range(w):
            left, up, upleft, upright = _neighbours(idx, y, x, w)
            e = _equalities(left, up, upleft, upright)
            c = e * 4 + prev
            if dec_bit(st, data, model, c) == 1:
                idx[y, x] = left
                prev = 1
                continue
            if up != left:
                if dec_bit(st, data, model, _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = up
                    prev = 2
                    continue
            if upright != left and upright != up:
                if dec_bit(st, data, model, 2 * _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = upright
                    prev = 3
                    continue
            if upleft != left and upleft != up and upleft != upright:
                if dec_bit(st, data, model, 3 * _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = upleft
                    prev = 3
                    continue
            prev = 0
            rank = dec_expgolomb(st, data, model, _EG_BASE + e * EG_CONTEXTS)
            if rank < 0 or rank >= k:
                return idx, 1
            found = _select(p0, p1, p2, p3, left, up, upright, upleft, rank, keys)
            if found < 0:
                return idx, 1
            idx[y, x] = found
        if dec_overrun(st) > 8:
            return idx, 2
    if dec_overrun(st) > 0:
        return idx, 2
    return idx, 0
