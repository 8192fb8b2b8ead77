"""A block-edge smoothing filter run by the decoder (strength chosen by the encoder).

Quantizing patches independently leaves steps at patch borders. Across each
border the filter looks at three pixels per side: where both sides are smooth
and the step is small against the quantizer step (so it is likely an artefact,
not an edge of the picture) the step is spread into a ramp; where only the
pixels next to the border are smooth a clipped two-pixel correction is applied.
Vertical borders first, then horizontal, in raster order: deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["DeblockedRows", "deblock", "deblock_tree", "deblock_tree_bands", "MAX_STRENGTH"]

#: Strengths are 0 (off) .. MAX_STRENGTH, stored per plane.
MAX_STRENGTH = 15
# thresholds per strength unit, in multiples of step / p (tuned on Kodak)
_ALPHA, _BETA, _TC = 1.2, 0.3, 0.3


@njit(cache=True, nogil=True)
def _edge(x, i0, di, alpha, beta, tc):
    # i0: index of q0 in the flat array; di: stride across the border
    p2 = x[i0 - 3 * di]
    p1 = x[i0 - 2 * di]
    p0 = x[i0 - di]
    q0 = x[i0]
    q1 = x[i0 + di]
    q2 = x[i0 + 2 * di]
    d = q0 - p0
    if abs(d) >= alpha or abs(p1 - p0) >= beta or abs(q1 - q0) >= beta:
        return
    if abs(p2 - p0) < beta and abs(q2 - q0) < beta:
        # both sides smooth: turn the step into a ramp over six pixels
        x[i0 - 3 * di] = p2 + d * 0.125
        x[i0 - 2 * di] = p1 + d * 0.25
        x[i0 - di] = p0 + d * 0.375
        x[i0] = q0 - d * 0.375
        x[i0 + di] = q1 - d * 0.25
        x[i0 + 2 * di] = q2 - d * 0.125
    else:
        delta = (4.0 * d + (p1 - q1)) * 0.125
        if delta > tc:
            delta = tc
        elif delta < -tc:
            delta = -tc
        x[i0 - di] = p0 + delta
        x[i0] = q0 - delta


@njit(cache=True)
def _deblock(plane, p, alpha, beta, tc):
    h, w = plane.shape
    x = plane.ravel()
    if w >= 6:
        for c in range(p, w - 2, p):
            if c < 3:
                continue
            for r in range(h):
                _edge(x, r * w + c, 1, alpha, beta, tc)
    if h >= 6:
        for r in range(p, h - 2, p):
            if r < 3:
                continue
            for c in range(w):
                _edge(x, r * w + c, w, alpha, beta, tc)


def deblock(plane: np.ndarray, p: int, step: float, strength: int) -> np.ndarray:
    """Filtered copy of ``plane`` (float64, patch grid of side ``p`` from (0, 0)).

    Thresholds scale with the pixel-domain quantization error, ``step / p``.
    """
    out = np.array(plane, dtype=np.float64, order="C", copy=True)
    if strength <= 0:
        return out
    unit = step / p * strength
    _deblock(out, p, _ALPHA * unit, _BETA * unit, _TC * unit)
    return out


@njit(cache=True, nogil=True)
def _tree_vertical(x, size_map, y0, alpha, beta, tc):
    # the vertical leaf edges (bitstream 2) of rows y0 .. y0 + len(x) of the
    # plane, held in x: a 4-aligned column c is a leaf's left edge where c is
    # a multiple of that leaf's side. Rows are independent of each other.
    n, w = x.shape
    flat = x.ravel()
    for r in range(n):
        yu = (y0 + r) >> 2
        for c in range(4, w - 2, 4):
            if c & ((1 << size_map[yu, c >> 2]) - 1) == 0:
                _edge(flat, r * w + c, 1, alpha, beta, tc)


@njit(cache=True, nogil=True)
def _tree_horizontal(x, size_map, y0, r0, r1, h, alpha, beta, tc):
    # the horizontal leaf edges at rows r0 <= r < r1 (r0 a multiple of 4) of a
    # plane of height h whose rows y0 .. y0 + len(x) are held in x; each edge
    # reads and writes the three rows on either side, in increasing r
    n, w = x.shape
    flat = x.ravel()
    for r in range(max(r0, 4), min(r1, h - 2), 4):
        for c in range(w):
            if r & ((1 << size_map[r >> 2, c >> 2]) - 1) == 0:
                _edge(flat, (r - y0) * w + c, w, alpha, beta, tc)


def _thresholds(step, strength):
    unit = step / 8.0 * strength
    return _ALPHA * unit, _BETA * unit, _TC * unit


def deblock_tree(plane: np.ndarray, size_map: np.ndarray, step: float, strength: int) -> np.ndarray:
    """Filtered copy of ``plane`` across the leaf edges of ``size_map`` (log2 leaf side per 4 x 4 unit).

    Thresholds scale with ``step / 8`` times the strength. Vertical edges
    first, then horizontal ones, each in raster order.
    """
    out = np.array(plane, dtype=np.float64, order="C", copy=True)
    if strength <= 0:
        return out
    a, b, t = _thresholds(step, strength)
    _tree_vertical(out, size_map, 0, a, b, t)
    _tree_horizontal(out, size_map, 0, 0, out.shape[0], out.shape[0], a, b, t)
    return out


def deblock_tree_bands(rows, height, size_map, step: float, strength: int, band: int):
    """:func:`deblock_tree` band by band: yields the filtered rows in order, as float64 arrays.

    ``rows(y0, y1)`` gives rows ``y0 .. y1`` of the plane before filtering
    (a new float64 array), for consecutive bands of ``band`` rows (a
    multiple of 4) over ``height``. The yielded bands join to exactly
    ``deblock_tree`` of the whole plane: a row's vertical edges depend on that
    row only, and a horizontal edge at row r changes rows r - 3 .. r + 2
    only, so after the edges above row y1 the rows above y1 - 3 are final;
    the four rows above y1 are carried into the next band. The bands are the
    same for every strength (0 included), so several can be zipped.
    """
    if band % 4 or band <= 0:
        raise ValueError(f"band={band} should be a positive multiple of 4")
    a, b, t = _thresholds(step, strength)
    carry, top = None, 0  # carried rows start at plane row ``top``
    for y0 in range(0, height, band):
        y1 = min(y0 + band, height)
        new = np.ascontiguousarray(rows(y0, y1), dtype=np.float64)
        if strength > 0:
            _tree_vertical(new, size_map, y0, a, b, t)
        buf = new if carry is None else np.concatenate([carry, new])
        if strength > 0:
            _tree_horizontal(buf, size_map, top, y0, y1, height, a, b, t)
        if y1 == height:
            yield buf
            return
        yield buf[:-4]
        carry, top = buf[-4:].copy(), y1 - 4


class DeblockedRows:
    """Rows of ``rec / scale`` filtered as :func:`deblock_tree` filters the whole plane, made band by band.

    ``rec``: (H, W) integer reconstruction; ``size_map``: log2 leaf side per
    4 x 4 unit. :meth:`rows` gives rows in increasing order (each request
    starts between the start and the end of the one before) of at most
    ``max_rows`` rows. The
    filtered rows live in two buffers of ``max_rows + band + 4`` rows used in
    turn, so nothing is allocated per band, and a view :meth:`rows` returned
    stays valid until the call after the next (a second thread may read it
    while the caller asks for the next rows). The same edges are filtered in
    the same order as :func:`deblock_tree_bands` does, so the values are bit
    for bit :func:`deblock_tree`'s whatever ``band`` (a multiple of 4).
    """

    def __init__(self, rec, size_map, step: float, strength: int, scale: float, *, band: int, max_rows: int):
        if band % 4 or band <= 0:
            raise ValueError(f"band={band} should be a positive multiple of 4")
        self._rec, self._map, self._scale, self._band = rec, size_map, scale, band
        self._strength = strength
        self._thr = _thresholds(step, strength)
        shape = (max_rows + band + 4, rec.shape[1])
        self._bufs = (np.empty(shape), np.empty(shape))
        self._cur = 0
        self._top = 0  # plane row of the current buffer's first row
        self._held = 0  # rows held in the current buffer
        self._next = 0  # next plane row to filter in
        self._start = 0  # start of the last request

    def _final(self) -> int:
        # rows below this one may still change: a horizontal edge at row r writes rows r - 3 .. r + 2
        return self._next if self._next == self._rec.shape[0] else self._next - 4

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Filtered rows ``y0 .. y1`` (float64, a view)."""
        if y0 < self._start:
            raise ValueError(f"row {y0} was already dropped (rows start at {self._start})")
        if y0 > self._next:
            raise ValueError(f"rows {self._next} .. {y0} were skipped (requests must follow each other)")
        h = self._rec.shape[0]
        y1 = min(y1, h)
        if y1 > self._final():
            # one move per call, into the other buffer: rows handed out before stay as they were
            src, dst = self._bufs[self._cur], self._bufs[1 - self._cur]
            keep = self._held - (y0 - self._top)
            dst[:keep] = src[y0 - self._top : self._held]
            self._cur, self._top, self._held = 1 - self._cur, y0, keep
            a, b, t = self._thr
            while y1 > self._final():
                ys, ye = self._next, min(self._next + self._band, h)
                new = dst[self._held : self._held + ye - ys]
                np.divide(self._rec[ys:ye], self._scale, out=new)
                if self._strength > 0:
                    _tree_vertical(new, self._map, ys, a, b, t)
                    _tree_horizontal(dst[: self._held + ye - ys], self._map, self._top, ys, ye, h, a, b, t)
                self._held += ye - ys
                self._next = ye
        self._start = y0
        return self._bufs[self._cur][y0 - self._top : y1 - self._top]
