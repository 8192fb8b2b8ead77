"""Floyd–Steinberg error diffusion onto a fixed palette (numba kernel).

The scan is serpentine (left to right on even rows, right to left on odd
rows), the error is computed in sRGB (premultiplied RGBA for RGBA images) in
float64, scaled by the strength, and clamped per channel to +-``MAX_ERROR``
so a pixel far from every palette colour does not smear error across the
image (pngquant clamps too). Fully transparent pixels keep the transparent
entry and pass no error on. Everything is sequential: the same input gives
the same indices everywhere.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import center_geometry, nearest_one
from ._spaces import to_space

__all__ = ["dither_indices", "MAX_ERROR"]

#: Largest diffused error per channel, in 0..255 units.
MAX_ERROR = 64.0


@njit(cache=True)
def _floyd_steinberg(img, P, guess, strength, clear, max_err):
    h, w, d = img.shape
    cc, order, half = center_geometry(P)
    out = np.empty((h, w), dtype=np.int64)
    err = np.zeros((2, w + 2, d))  # current and next row, one pixel margin each side
    buf = np.empty((1, d))
    for y in range(h):
        cur = y % 2
        nxt = 1 - cur
        for x in range(w + 2):
            for q in range(d):
                err[nxt, x, q] = 0.0
        forward = y % 2 == 0
        for step in range(w):
            x = step if forward else w - 1 - step
            if clear >= 0 and img[y, x, d - 1] == 0.0:
                out[y, x] = clear
                continue
            for q in range(d):
                v = img[y, x, q] + err[cur, x + 1, q]
                buf[0, q] = min(max(v, 0.0), 255.0)
            b, _, _ = nearest_one(buf, 0, P, guess[y, x], cc, order, 0.0)
            out[y, x] = b
            dx = 1 if forward else -1
            for q in range(d):
                e = (buf[0, q] - P[b, q]) * strength
                e = min(max(e, -max_err), max_err)
                err[cur, x + 1 + dx, q] += e * (7.0 / 16.0)
                err[nxt, x + 1 - dx, q] += e * (3.0 / 16.0)
                err[nxt, x + 1, q] += e * (5.0 / 16.0)
                err[nxt, x + 1 + dx, q] += e * (1.0 / 16.0)
    return out


def dither_indices(image, palette, guess, strength, clear=None):
    """Floyd–Steinberg palette indices of ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, C), uint8
    palette : ndarray of shape (K, C), uint8
    guess : ndarray of shape (H, W), int
        Undithered nearest indices (a starting point for the exact search).
    strength : float in (0, 1]
        Fraction of the quantization error passed on.
    clear : int or None
        Index of the fully transparent entry (RGBA only).

    Returns
    -------
    ndarray of shape (H, W), int64
    """
    h, w, c = image.shape
    pts = to_space(image.reshape(-1, c), "rgb").reshape(h, w, c)
    P = to_space(palette, "rgb")
    return _floyd_steinberg(
        np.ascontiguousarray(pts),
        np.ascontiguousarray(P),
        np.ascontiguousarray(guess, dtype=np.int64),
        float(strength),
        -1 if clear is None else int(clear),
        MAX_ERROR,
    )
