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

__all__ = ["BAND_PIXELS", "PIPELINE_MIN_PIXELS", "RowWindow", "band_rows", "chroma_rows", "to_image"]

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


#: Images of fewer pixels convert on the calling thread: a second thread's start
#: and hand-offs cost more than it saves on small crops.
PIPELINE_MIN_PIXELS = 1 << 20


def to_image(windows, out_shape, subsample: bool) -> np.ndarray:
    """The (H, W, C) uint8 image from row windows of the final planes (Y, Cb, Cr[, alpha]).

    Planes may be wider than the image (padding is cropped); with
    ``subsample`` the chroma planes are ``ceil(H / 2) x ceil(W / 2)`` and are
    upsampled as :func:`upsample2` does on the whole plane.

    On a large image with a second core (:func:`imcompress._threads.max_threads`)
    the inverse colour transform and the conversion to uint8 of one band run
    in a second thread while the calling thread deblocks and upsamples the
    next band: the same operations on the same values, so the same pixels,
    with at most one band in flight.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .._threads import max_threads

    h, w, nch = out_shape
    out = np.empty((h, w, nch), dtype=np.uint8)

    def finish(y0, y1, planes, alpha):
        out[y0:y1, :, :3] = ycbcr_to_rgb(planes)
        if alpha is not None:
            out[y0:y1, :, 3] = to_uint8(alpha + 128.0)

    pool = ThreadPoolExecutor(1) if h * w >= PIPELINE_MIN_PIXELS and max_threads() > 1 else None
    pending = None
    try:
        step = band_rows(w, 2)
        for y0 in range(0, h, step):
            y1 = min(y0 + step, h)
            # the windows' rows are never written once returned, so a band can be
            # read by the other thread while this one asks for the next
            luma = windows[0].rows(y0, y1)[:, :w]
            if subsample:
                chroma = [chroma_rows(win.rows, y0, y1, h, w) for win in windows[1:3]]
            else:
                chroma = [win.rows(y0, y1)[:, :w] for win in windows[1:3]]
            alpha = windows[3].rows(y0, y1)[:, :w] if nch == 4 else None
            if pool is None:
                finish(y0, y1, [luma] + chroma, alpha)
                continue
            if pending is not None:
                pending.result()
            pending = pool.submit(finish, y0, y1, [luma] + chroma, alpha)
        if pending is not None:
            pending.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return out
