"""Binary PPM (P6) files, the bytes Pillow's writer makes, without its copies.

A 12 MP decode written through Pillow is copied three times (into Pillow's
image, through its encoder into a ``BytesIO``, out of it); here the header and
the pixels go into one buffer, once.
"""

from __future__ import annotations

import numpy as np

from .._errors import UsageError

__all__ = ["ppm_bytes"]


def ppm_bytes(pixels: np.ndarray) -> bytearray:
    """The P6 file of an RGB image, as Pillow writes it (``P6\\n<width> <height>\\n255\\n`` then the rows).

    Parameters
    ----------
    pixels : ndarray of shape (H, W, 3), dtype uint8

    Returns
    -------
    bytearray

    Examples
    --------
    >>> import numpy as np
    >>> bytes(ppm_bytes(np.zeros((1, 2, 3), dtype=np.uint8)))
    b'P6\\n2 1\\n255\\n\\x00\\x00\\x00\\x00\\x00\\x00'
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise UsageError(f"PPM holds (H, W, 3) uint8 RGB pixels, not {pixels.dtype} of shape {pixels.shape}")
    h, w, _ = pixels.shape
    head = b"P6\n%d %d\n255\n" % (w, h)
    out = bytearray(len(head) + pixels.size)
    out[: len(head)] = head
    np.frombuffer(out, dtype=np.uint8, offset=len(head)).reshape(pixels.shape)[...] = pixels
    return out
