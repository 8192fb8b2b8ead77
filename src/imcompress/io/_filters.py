"""PNG's per-row adaptive filtering as a numba kernel (numba is imported only when a PNG is filtered).

The choice is libpng's heuristic, as Pillow's writer makes it: each row gets
the filter (0 none, 1 sub, 2 up, 3 average, 4 Paeth) whose filtered bytes,
read as signed, have the smallest sum of absolute values; ties go to the
lower filter number.
"""

from __future__ import annotations

from numba import njit

__all__ = ["filter_rows"]


@njit(cache=True, nogil=True)
def _signed_abs(v):
    # a filtered byte 0..255 read as int8, absolute value
    return v if v < 128 else 256 - v


@njit(cache=True, nogil=True)
def _paeth(a, b, d):
    # the PNG spec's predictor: left, above or upper-left, whichever is nearest a + b - d
    p = a + b - d
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - d)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else d)


@njit(cache=True, nogil=True)
def filter_rows(rows, bpp, y0, y1, out):
    """Filter rows ``y0 .. y1 - 1`` of (H, N) uint8 ``rows`` (``bpp`` bytes per pixel) into
    ``out[y, 0]`` (the filter) and ``out[y, 1:]`` (the filtered bytes); only those rows of ``out``
    are written, so bands of rows may be filtered in parallel."""
    n = rows.shape[1]
    cost = [0, 0, 0, 0, 0]
    for y in range(y0, y1):
        for f in range(5):
            cost[f] = 0
        for x in range(n):
            c = int(rows[y, x])
            a = int(rows[y, x - bpp]) if x >= bpp else 0
            b = int(rows[y - 1, x]) if y > 0 else 0
            d = int(rows[y - 1, x - bpp]) if y > 0 and x >= bpp else 0
            cost[0] += _signed_abs(c)
            cost[1] += _signed_abs((c - a) & 255)
            cost[2] += _signed_abs((c - b) & 255)
            cost[3] += _signed_abs((c - ((a + b) >> 1)) & 255)
            cost[4] += _signed_abs((c - _paeth(a, b, d)) & 255)
        best = 0
        for f in range(1, 5):
            if cost[f] < cost[best]:
                best = f
        out[y, 0] = best
        for x in range(n):
            c = int(rows[y, x])
            a = int(rows[y, x - bpp]) if x >= bpp else 0
            b = int(rows[y - 1, x]) if y > 0 else 0
            if best == 0:
                v = c
            elif best == 1:
                v = c - a
            elif best == 2:
                v = c - b
            elif best == 3:
                v = c - ((a + b) >> 1)
            else:
                d = int(rows[y - 1, x - bpp]) if y > 0 and x >= bpp else 0
                v = c - _paeth(a, b, d)
            out[y, 1 + x] = v & 255
