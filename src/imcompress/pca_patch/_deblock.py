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

__all__ = ["deblock", "deblock_tree", "MAX_STRENGTH"]

#: Strengths are 0 (off) .. MAX_STRENGTH, stored per plane.
MAX_STRENGTH = 15
# thresholds per strength unit, in multiples of step / p (tuned on Kodak)
_ALPHA, _BETA, _TC = 1.2, 0.3, 0.3


@njit(cache=True)
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


@njit(cache=True)
def _deblock_tree(plane, size_map, alpha, beta, tc):
    # edges of the leaves of a quadtree (bitstream 2): a 4-aligned column c is
    # a leaf's left edge where c is a multiple of that leaf's side
    h, w = plane.shape
    x = plane.ravel()
    for c in range(4, w - 2, 4):
        for r in range(h):
            if c & ((1 << size_map[r >> 2, c >> 2]) - 1) == 0:
                _edge(x, r * w + c, 1, alpha, beta, tc)
    for r in range(4, h - 2, 4):
        for c in range(w):
            if r & ((1 << size_map[r >> 2, c >> 2]) - 1) == 0:
                _edge(x, r * w + c, w, alpha, beta, tc)


def deblock_tree(plane: np.ndarray, size_map: np.ndarray, step: float, strength: int) -> np.ndarray:
    """Filtered copy of ``plane`` across the leaf edges of ``size_map`` (log2 leaf side per 4 x 4 unit).

    Thresholds scale with ``step / 8`` times the strength.
    """
    out = np.array(plane, dtype=np.float64, order="C", copy=True)
    if strength <= 0:
        return out
    unit = step / 8.0 * strength
    _deblock_tree(out, np.ascontiguousarray(size_map, dtype=np.int64), _ALPHA * unit, _BETA * unit, _TC * unit)
    return out
