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

from ._transform import _YCC2RGB, alpha_rows_to_uint8, upsample2, ycbcr_rows_to_rgb

__all__ = ["BAND_PIXELS", "PIPELINE_MIN_PIXELS", "band_rows", "chroma_rows", "chroma_span", "image_bands",
           "to_image"]

#: Samples per band (about 128 K: a few MB of float64 temporaries per band).
BAND_PIXELS = 1 << 17


def band_rows(width: int, multiple: int = 8) -> int:
    """Rows per band for planes ``width`` samples wide: a multiple of ``multiple``, at least ``multiple``."""
    return max(multiple, BAND_PIXELS // max(width, 1) // multiple * multiple)


def chroma_rows(rows, y0: int, y1: int, h: int, w: int) -> np.ndarray:
    """Rows ``y0 .. y1`` of ``upsample2(plane, (h, w))``, from ``rows(a, b)`` of the
    ``ceil(h / 2) x ceil(w / 2)`` plane (which may be wider: padding is cropped).

    Output row 2i reads rows i - 1 and i of the plane, row 2i + 1 rows i and
    i + 1 (edges replicated): one row of overlap on each side.
    """
    lo, hi = chroma_span(y0, y1, h)
    return upsample2(rows(lo, hi)[:, : (w + 1) // 2], (2 * (hi - lo), w))[y0 - 2 * lo: y1 - 2 * lo]


#: Images of fewer pixels convert on the calling thread: a second thread's start
#: and hand-offs cost more than it saves on small crops.
PIPELINE_MIN_PIXELS = 1 << 20


def to_image(planes, out_shape, subsample: bool, on_rows=None) -> np.ndarray:
    """The (H, W, C) uint8 image from the final planes (Y, Cb, Cr[, alpha]), read band by band.

    ``planes``: objects whose ``rows(y0, y1)`` gives a plane's rows in
    increasing order, each view valid until the call after the next
    (:class:`~._deblock.DeblockedRows`). Planes may be wider than the image
    (padding is cropped); with ``subsample`` the chroma planes are
    ``ceil(H / 2) x ceil(W / 2)`` and are upsampled as :func:`upsample2`
    does on the whole plane.

    On a large image with a second core (:func:`imcompress._threads.max_threads`)
    the chroma upsampling, the inverse colour transform and the conversion to
    uint8 of one band (:func:`ycbcr_rows_to_rgb`, which releases the GIL) run
    in a second thread while the calling thread filters the next band: the
    same operations on the same values, so the same pixels, with at most one
    band in flight.

    ``on_rows(out, stop)``, when given, is called on the calling thread each
    time rows ``0 .. stop - 1`` of the output array ``out`` are final (after
    each band; last with H), so that a writer can compress them meanwhile.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .._threads import max_threads

    h, w, nch = out_shape
    out = np.empty((h, w, nch), dtype=np.uint8)
    ch = (h + 1) // 2

    def finish(y0, y1, luma, cb, cr, c0, alpha):
        band = out[y0:y1]
        ycbcr_rows_to_rgb(luma, cb, cr, y0, c0, ch, subsample, _YCC2RGB, band)
        if alpha is not None:
            alpha_rows_to_uint8(alpha, band)

    pool = ThreadPoolExecutor(1) if h * w >= PIPELINE_MIN_PIXELS and max_threads() > 1 else None
    pending = None
    try:
        for y0, y1 in image_bands(h, w):
            luma = planes[0].rows(y0, y1)
            if subsample:
                c0, c1 = chroma_span(y0, y1, h)
            else:
                c0, c1 = y0, y1
            cb, cr = planes[1].rows(c0, c1), planes[2].rows(c0, c1)
            alpha = planes[3].rows(y0, y1) if nch == 4 else None
            if pool is None:
                finish(y0, y1, luma, cb, cr, c0, alpha)
                if on_rows is not None:
                    on_rows(out, y1)
                continue
            if pending is not None:
                pending.result()
                if on_rows is not None:
                    on_rows(out, y0)  # the band before this one is done
            pending = pool.submit(finish, y0, y1, luma, cb, cr, c0, alpha)
        if pending is not None:
            pending.result()
            if on_rows is not None:
                on_rows(out, h)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return out


def image_bands(h: int, w: int):
    """The (y0, y1) bands of rows :func:`to_image` makes an H x W image in."""
    step = band_rows(w, 2)
    return [(y0, min(y0 + step, h)) for y0 in range(0, h, step)]


def chroma_span(y0: int, y1: int, h: int):
    """Rows ``(lo, hi)`` of a ``ceil(h / 2)``-row chroma plane that image rows ``y0 .. y1`` of
    :func:`upsample2` read: one row of overlap on each side, edges replicated."""
    return max(y0 // 2 - 1, 0), min((y1 + 1) // 2 + 1, (h + 1) // 2)
