"""PNG's per-row adaptive filtering as a numba kernel (numba is imported only when a PNG is filtered).

The choice is libpng's heuristic, as Pillow's writer makes it: each row gets
the filter (0 none, 1 sub, 2 up, 3 average, 4 Paeth) whose filtered bytes,
read as signed, have the smallest sum of absolute values; ties go to the
lower filter number.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["filter_rows"]


@njit(cache=True, nogil=True)
def _signed_abs(v):
    # a filtered byte (any integer, taken modulo 256) read as int8, absolute value; no branch
    return abs(((v + 128) & 255) - 128)


@njit(cache=True, nogil=True)
def _paeth(a, b, d):
    # the PNG spec's predictor: left, above or upper-left, whichever is nearest a + b - d
    pa, pb, pc = abs(b - d), abs(a - d), abs(a + b - 2 * d)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else d)


@njit(cache=True, nogil=True)
def filter_rows(rows, bpp, y0, y1, out):
    """Filter rows ``y0 .. y1 - 1`` of (H, N) uint8 ``rows`` (``bpp`` bytes per pixel) into
    ``out[y, 0]`` (the filter) and ``out[y, 1:]`` (the filtered bytes); only those rows of ``out``
    are written, so bands of rows may be filtered in parallel.

    The first pixel of a row (no left neighbour: sub is none there, Paeth is up) is done apart,
    so that the loop over the others reads four shifted views without an edge test.
    """
    n = rows.shape[1]
    zero = np.zeros(n, dtype=np.uint8)  # the row above the first
    k = min(bpp, n)
    for y in range(y0, y1):
        cur = rows[y]
        prev = rows[y - 1] if y > 0 else zero
        dst = out[y, 1:]
        c0 = 0
        c1 = 0
        c2 = 0
        c3 = 0
        c4 = 0
        for x in range(k):
            c = np.int32(cur[x])
            b = np.int32(prev[x])
            c0 += _signed_abs(c)
            c1 += _signed_abs(c)
            c2 += _signed_abs(c - b)
            c3 += _signed_abs(c - (b >> 1))
            c4 += _signed_abs(c - b)
        here, left, up, upleft = cur[k:], cur[: n - k], prev[k:], prev[: n - k]
        for i in range(n - k):
            c = np.int32(here[i])
            a = np.int32(left[i])
            b = np.int32(up[i])
            d = np.int32(upleft[i])
            c0 += _signed_abs(c)
            c1 += _signed_abs(c - a)
            c2 += _signed_abs(c - b)
            c3 += _signed_abs(c - ((a + b) >> 1))
            c4 += _signed_abs(c - _paeth(a, b, d))
        # the smallest cost, the lower filter number on ties
        best, cost = 0, c0
        if c1 < cost:
            best, cost = 1, c1
        if c2 < cost:
            best, cost = 2, c2
        if c3 < cost:
            best, cost = 3, c3
        if c4 < cost:
            best = 4
        out[y, 0] = best
        if best == 0:
            dst[:] = cur
        elif best == 1:
            dst[:k] = cur[:k]
            for i in range(n - k):
                dst[k + i] = here[i] - left[i]
        elif best == 2:
            for x in range(n):
                dst[x] = cur[x] - prev[x]
        elif best == 3:
            for x in range(k):
                dst[x] = cur[x] - (prev[x] >> 1)
            for i in range(n - k):
                dst[k + i] = np.uint8(np.int32(here[i]) - ((np.int32(left[i]) + np.int32(up[i])) >> 1))
        else:
            for x in range(k):
                dst[x] = cur[x] - prev[x]
            for i in range(n - k):
                dst[k + i] = np.uint8(np.int32(here[i]) - _paeth(np.int32(left[i]), np.int32(up[i]),
                                                                np.int32(upleft[i])))
