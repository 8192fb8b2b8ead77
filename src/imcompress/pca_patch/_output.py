"""The decoder's last steps, band by band: filtered planes -> chroma upsampling -> RGB(A) uint8.

Deblocking, the chroma upsampling and the inverse colour transform only
look a few rows away, so the output image is made in bands of rows, each
with the overlap its steps need, and no whole-image float64 plane is ever
held. Every value is computed by the same elementwise float64 operations as
on the whole image, so the pixels are bit for bit the same whatever the band
height (tests/test_pca_patch_bands.py checks it); the peak memory above the
output is the integer reconstructions plus a few bands.
"""

from __future__ import annotations

import numpy as np

from .._validation import to_uint8
from ._transform import upsample2, ycbcr_to_rgb

__all__ = ["BAND_PIXELS", "RowWindow", "band_rows", "chroma_rows", "to_image"]

#: Samples per band (about 128 K: a few MB of float64 temporaries per band).
BAND_PIXELS = 1 << 17


def band_rows(width: int, multiple: int = 8) -> int:
    """Rows per band for planes ``width`` samples wide: a multiple of ``multiple``, at least ``multiple``."""
    return max(multiple, BAND_PIXELS // max(width, 1) // multiple * multiple)


class RowWindow:
    """Rows of a plane, read in increasing order from an iterator of consecutive bands.

    :meth:`rows` may look back to rows at or after the start of the previous
    request; rows before it are dropped.
    """

    def __init__(self, bands, width: int):
        self._bands = iter(bands)
        self._top = 0
        self._buf = np.empty((0, width))

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0 .. y1`` (a view, valid until the next call)."""
        if y0 < self._top:
            raise ValueError(f"row {y0} was already dropped (window starts at {self._top})")
        parts, end = [self._buf], self._top + len(self._buf)
        while end < y1:
            band = next(self._bands)
            parts.append(band)
            end += len(band)
        buf = np.concatenate(parts) if len(parts) > 1 else self._buf
        self._buf, self._top = buf[y0 - self._top:], y0
        return self._buf[: y1 - y0]


def chroma_rows(rows, y0: int, y1: int, h: int, w: int) -> np.ndarray:
    """Rows ``y0 .. y1`` of ``upsample2(plane, (h, w))``, from ``rows(a, b)`` of the
    ``ceil(h / 2) x ceil(w / 2)`` plane (which may be wider: padding is cropped).

    Output row 2i reads rows i - 1 and i of the plane, row 2i + 1 rows i and
    i + 1 (edges replicated): one row of overlap on each side.
    """
    ch, cw = (h + 1) // 2, (w + 1) // 2
    lo, hi = max(y0 // 2 - 1, 0), min((y1 + 1) // 2 + 1, ch)
    return upsample2(rows(lo, hi)[:, :cw], (2 * (hi - lo), w))[y0 - 2 * lo: y1 - 2 * lo]


def to_image(windows, out_shape, subsample: bool) -> np.ndarray:
    """The (H, W, C) uint8 image from row windows of the final planes (Y, Cb, Cr[, alpha]).

    Planes may be wider than the image (padding is cropped); with
    ``subsample`` the chroma planes are ``ceil(H / 2) x ceil(W / 2)`` and are
    upsampled as :func:`upsample2` does on the whole plane.
    """
    h, w, nch = out_shape
    out = np.empty((h, w, nch), dtype=np.uint8)
    step = band_rows(w, 2)
    for y0 in range(0, h, step):
        y1 = min(y0 + step, h)
        luma = windows[0].rows(y0, y1)[:, :w]
        if subsample:
            chroma = [chroma_rows(win.rows, y0, y1, h, w) for win in windows[1:3]]
        else:
            chroma = [win.rows(y0, y1)[:, :w] for win in windows[1:3]]
        out[y0:y1, :, :3] = ycbcr_to_rgb([luma] + chroma)
        if nch == 4:
            out[y0:y1, :, 3] = to_uint8(windows[3].rows(y0, y1)[:, :w] + 128.0)
    return out
