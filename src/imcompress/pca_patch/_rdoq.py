"""Rate-distortion optimised quantization of one plane's levels.

Deadzone rounding decides each coefficient alone. The pass here revisits
every nonzero AC level L and keeps L or L - 1 (possibly 0), whichever costs
less in squared error + lambda * bits, with bits estimated from the context
statistics of the plane itself (counted with the coder's own contexts,
:mod:`._coder`). It runs in coding order, so the neighbour contexts it sees
are final.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._coder import (
    _CBF,
    _LAST,
    _UNARY,
    N_CONTEXTS,
    _band,
    _cbf_context,
    _last_nonzero,
    _mag_context,
    _prevc,
    _same_index_class,
    _sig_context,
)

__all__ = ["rdoq"]


@njit(cache=True)
def _count_plane(q, counts):
    """Count (context, bit) pairs of the AC decisions :func:`_enc_plane` codes."""
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    lasts = np.full((nby, nbx), -1, dtype=np.int32)
    for by in range(nby):
        for bx in range(nbx):
            last = _last_nonzero(q, by, bx, K)
            lasts[by, bx] = last
            c, nbl = _cbf_context(lasts, by, bx)
            counts[_CBF + c, 1 if last >= 0 else 0] += 1
            if last < 0:
                continue
            prev = 0
            for k in range(last + 1):
                v = q[by, bx, 1 + k]
                nb = _same_index_class(q, by, bx, k)
                b = _band(k)
                if k < K - 1:
                    counts[_sig_context(k, nb, prev, nbl), 1 if v != 0 else 0] += 1
                if v != 0:
                    base = _mag_context(k, nb, prev)
                    a = abs(v) - 1
                    for i in range(_UNARY):
                        if a == i:
                            counts[base + i, 0] += 1
                            break
                        counts[base + i, 1] += 1
                    if k < K - 1:
                        lc = 0 if k < nbl else (1 if k == nbl else 2)
                        counts[_LAST + b * 3 + lc, 1 if k == last else 0] += 1
                prev = _prevc(q, by, bx, k)


@njit(cache=True)
def _mag_bits(cost, base, a):
    # bits of magnitude a = |level| - 1 >= 0 with the adaptive unary code
    bits = 0.0
    for i in range(_UNARY):
        if a == i:
            return bits + cost[base + i, 0]
        bits += cost[base + i, 1]
    return bits + 2.0 * np.log2(a - _UNARY + 1.0) + 1.0


@njit(cache=True)
def _rdoq_plane(q, x, rho, lam, cost):
    """Lower AC levels where it pays. ``x``: |coefficient| / step, shape of q[..., 1:]."""
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    lasts = np.full((nby, nbx), -1, dtype=np.int32)
    for by in range(nby):
        for bx in range(nbx):
            last = _last_nonzero(q, by, bx, K)
            if last < 0:
                continue
            c, nbl = _cbf_context(lasts, by, bx)
            prev = 0
            j_block = cost[_CBF + c, 1] * lam
            e_zero = 0.0
            for k in range(last + 1):
                v = q[by, bx, 1 + k]
                xv = x[by, bx, k]
                e_zero += xv * xv
                nb = _same_index_class(q, by, bx, k)
                sctx = _sig_context(k, nb, prev, nbl)
                s0 = cost[sctx, 0] if k < K - 1 else 0.0
                s1 = cost[sctx, 1] if k < K - 1 else 0.0
                if v == 0:
                    j_block += xv * xv + lam * s0
                else:
                    base = _mag_context(k, nb, prev)
                    lv = abs(v)
                    d = xv - (lv - rho)
                    j_keep = d * d + lam * (s1 + 1.0 + _mag_bits(cost, base, lv - 1))
                    if lv > 1:
                        d = xv - (lv - 1 - rho)
                        j_low = d * d + lam * (s1 + 1.0 + _mag_bits(cost, base, lv - 2))
                    else:
                        j_low = xv * xv + lam * s0
                    if j_low < j_keep:
                        q[by, bx, 1 + k] = (lv - 1) if v > 0 else -(lv - 1)
                        j_block += j_low
                    else:
                        j_block += j_keep
                prev = _prevc(q, by, bx, k)
            for k in range(last + 1, K):
                e_zero += x[by, bx, k] * x[by, bx, k]
            # a block whose few small levels cost more than they correct
            if e_zero + lam * cost[_CBF + c, 0] < j_block:
                for k in range(K):
                    q[by, bx, 1 + k] = 0
            last = _last_nonzero(q, by, bx, K)
            lasts[by, bx] = last


def rdoq(q, x, rho, lam_bits):
    """Rate-distortion optimised levels for one plane (modifies ``q`` in place).

    Parameters
    ----------
    q : int32 array (nby, nbx, K + 1)
        Deadzone-quantized levels, DC first (DC is left alone).
    x : float64 array (nby, nbx, K)
        |AC coefficient| / step.
    rho : float
        Reconstruction offset (levels decode to |level| - rho).
    lam_bits : float
        Lagrangian in squared-step units per bit.
    """
    counts = np.ones((N_CONTEXTS, 2), dtype=np.float64) * 0.4
    _count_plane(q, counts)
    cost = -np.log2(counts / counts.sum(axis=1, keepdims=True))
    _rdoq_plane(q, np.ascontiguousarray(x), float(rho), float(lam_bits), cost)
    return q
