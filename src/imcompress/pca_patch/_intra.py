"""Intra prediction from decoded neighbours, in integer arithmetic (bitstream 2).

Reconstructed planes are int32 in units of 1/8 (``SCALE``), centred on 0.
A block of side N at (y0, x0) is predicted from the row above it (2N
samples: above and above-right), the column left of it (2N: left and
below-left) and the corner, HEVC's way:

* samples not yet decoded (``done`` is the map of decoded 4 x 4 units) or
  outside the plane are substituted by the nearest decoded one, in the order
  below-left -> left -> corner -> above -> above-right; none decoded: 0;
* mode 0 planar, 1 DC, 2..34 angular (HEVC's 33 angles, 1/32-sample
  interpolation, the side reference projected for negative angles);
* chroma mode 35, chroma from luma (CfL): the DC prediction plus
  alpha / 8 times the co-located luma reconstruction minus its block mean.

No floating point: every machine predicts the same integers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import noalloc

__all__ = ["N_MODES", "MODE_CFL", "MODE_DC", "MODE_PLANAR", "SCALE", "predict", "predict_into", "references"]

#: Reconstruction units per pixel value.
SCALE = 8
MODE_PLANAR, MODE_DC = 0, 1
#: Angular modes 2..34; 35 is chroma from luma.
N_MODES = 35
MODE_CFL = 35
MODE_H, MODE_V = 10, 26

# intraPredAngle of modes 2..34 (HEVC), and 8192 / angle for the negative ones
_ANGLE = np.array([0, 0, 32, 26, 21, 17, 13, 9, 5, 2, 0, -2, -5, -9, -13, -17, -21, -26,
                   -32, -26, -21, -17, -13, -9, -5, -2, 0, 2, 5, 9, 13, 17, 21, 26, 32], dtype=np.int64)
_INV_ANGLE = {-2: -4096, -5: -1638, -9: -910, -13: -630, -17: -482, -21: -390, -26: -315, -32: -256}
_INV = np.array([_INV_ANGLE.get(int(a), 0) for a in _ANGLE], dtype=np.int64)


#: Marks a reference sample not decoded yet in :func:`references` (reconstructions lie in [-1024, 1024]).
_MISSING = np.int64(-(1 << 62))


@noalloc
def references(rec, done, y0, x0, n, ref):
    """Fill ``ref`` (4n + 1 int64) with the substituted reference samples.

    Layout: ``ref[2n - 1 - i]`` = left sample of row y0 + i (i < 2n),
    ``ref[2n]`` = corner, ``ref[2n + 1 + i]`` = above sample of column x0 + i.
    """
    h, w = rec.shape
    m = 4 * n + 1
    for i in range(m):
        ref[i] = _MISSING
    for i in range(2 * n):
        y = y0 + i
        if x0 > 0 and y < h and done[y >> 2, (x0 - 1) >> 2]:
            ref[2 * n - 1 - i] = rec[y, x0 - 1]
        x = x0 + i
        if y0 > 0 and x < w and done[(y0 - 1) >> 2, x >> 2]:
            ref[2 * n + 1 + i] = rec[y0 - 1, x]
    if x0 > 0 and y0 > 0:
        ref[2 * n] = rec[y0 - 1, x0 - 1]
    first = -1
    for i in range(m):
        if ref[i] != _MISSING:
            first = i
            break
    if first < 0:
        for i in range(m):
            ref[i] = 0
        return
    for i in range(first):
        ref[i] = ref[first]
    for i in range(first + 1, m):
        if ref[i] == _MISSING:
            ref[i] = ref[i - 1]


@noalloc
def _dc_value(ref, n, log2n):
    s = 0
    for i in range(n):
        s += ref[2 * n - 1 - i] + ref[2 * n + 1 + i]
    return (s + n) >> (log2n + 1)


@njit(cache=True)
def predict(ref, n, log2n, mode, pred):
    """Prediction of mode 0..34 into ``pred`` (n x n int64) from ``ref``."""
    predict_into(ref, n, log2n, mode, pred, np.empty(3 * n + 1, dtype=np.int64), np.empty((2, n), dtype=np.int64))


@noalloc
def predict_into(ref, n, log2n, mode, pred, main, steps):
    """:func:`predict` with its scratch arrays given: ``main`` (3n + 1) and ``steps`` (2, n) int64."""
    c = 2 * n  # index of the corner
    if mode == MODE_DC:
        dc = _dc_value(ref, n, log2n)
        for y in range(n):
            for x in range(n):
                pred[y, x] = dc
        return
    if mode == MODE_PLANAR:
        tr = ref[c + 1 + n]  # above-right
        bl = ref[c - 1 - n]  # below-left
        for y in range(n):
            left = ref[c - 1 - y]
            for x in range(n):
                top = ref[c + 1 + x]
                pred[y, x] = ((n - 1 - x) * left + (x + 1) * tr + (n - 1 - y) * top + (y + 1) * bl + n) >> (log2n + 1)
        return
    angle = _ANGLE[mode]
    vertical = mode >= 18
    # main reference main[k], k = -n..2n (offset n): k = 0 is the corner
    for k in range(2 * n + 1):
        if vertical:
            main[n + k] = ref[c + k]
        else:
            main[n + k] = ref[c - k]
    lo = (n * angle) >> 5
    if lo < -1:  # (HEVC: only then is the projected part read)
        inv = _INV[mode]
        for k in range(lo, 0):
            j = (k * inv + 128) >> 8  # index on the side reference (0 = corner)
            main[n + k] = ref[c - j] if vertical else ref[c + j]
    # row a (distance from the main reference - 1) starts at main[n + idx + 1]
    # with weight frac / 32 on the next sample
    for a in range(n):
        pos = (a + 1) * angle
        steps[0, a] = n + (pos >> 5) + 1
        steps[1, a] = pos & 31
    if vertical:
        for a in range(n):
            k0, frac = steps[0, a], steps[1, a]
            if frac:
                for b in range(n):
                    pred[a, b] = ((32 - frac) * main[k0 + b] + frac * main[k0 + b + 1] + 16) >> 5
            else:
                for b in range(n):
                    pred[a, b] = main[k0 + b]
    elif angle & 31 == 0:  # whole-sample steps only
        for b in range(n):
            for a in range(n):
                pred[b, a] = main[steps[0, a] + b]
    else:  # the same along columns, written row by row (frac = 0 gives main[k] exactly)
        for b in range(n):
            for a in range(n):
                k, frac = steps[0, a] + b, steps[1, a]
                pred[b, a] = ((32 - frac) * main[k] + frac * main[k + 1] + 16) >> 5
@noalloc
def cfl_luma(luma, y0, x0, n, sub, out):
    """Co-located luma of a chroma block (2 x 2 averaged when ``sub``), minus its mean."""
    s = 0
    for y in range(n):
        for x in range(n):
            if sub:
                yy, xx = 2 * (y0 + y), 2 * (x0 + x)
                v = (luma[yy, xx] + luma[yy, xx + 1] + luma[yy + 1, xx] + luma[yy + 1, xx + 1] + 2) >> 2
            else:
                v = luma[y0 + y, x0 + x]
            out[y, x] = v
            s += v
    log2nn = 0
    while (1 << log2nn) < n * n:
        log2nn += 1
    mean = (s + (n * n >> 1)) >> log2nn
    for y in range(n):
        for x in range(n):
            out[y, x] -= mean


@noalloc
def predict_cfl(ref, n, log2n, lumac, alpha, pred):
    """Chroma from luma: DC + (alpha * (luma - mean) + 4) >> 3, alpha in 1/8."""
    dc = _dc_value(ref, n, log2n)
    for y in range(n):
        for x in range(n):
            pred[y, x] = dc + ((alpha * lumac[y, x] + 4) >> 3)
