"""Image quality and size metrics, computed in float64."""

from __future__ import annotations

import numpy as np

from .._errors import UsageError

__all__ = [
    "rmse",
    "mse",
    "psnr",
    "ssim",
    "unique_colors",
    "bits_per_pixel",
    "compression_ratio",
]


def _pair(reference, test):
    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        # UsageError is a ValueError too, so callers catching ValueError still work
        raise UsageError(
            f"shapes differ: reference {ref.shape} vs test {tst.shape}; compare images of the same shape"
        )
    # float64 before subtracting: uint8 - uint8 wraps around modulo 256
    return ref.astype(np.float64), tst.astype(np.float64)


def mse(reference, test) -> float:
    """Mean squared error over all pixels and channels, in float64."""
    ref, tst = _pair(reference, test)
    return float(np.mean((ref - tst) ** 2))


def rmse(reference, test) -> float:
    """Root mean squared error, in float64 (never uint8 arithmetic).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[[0, 0, 0]]], dtype=np.uint8)
    >>> b = np.array([[[10, 10, 10]]], dtype=np.uint8)
    >>> rmse(a, b)  # uint8 a - b would wrap to 246
    10.0
    """
    return float(np.sqrt(mse(reference, test)))


def psnr(reference, test, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    err = mse(reference, test)
    if err == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / err))


def ssim(reference, test, *, data_range: float = 255.0) -> float:
    """Mean structural similarity (scikit-image), over colour channels.

    Uses scikit-image's defaults (7x7 uniform window) with ``channel_axis=-1``
    for (H, W, C) images; images smaller than 7 pixels on a side use the
    largest odd window that fits.
    """
    from skimage.metrics import structural_similarity  # heavy: only when SSIM is asked for

    ref, tst = _pair(reference, test)
    channel_axis = -1 if ref.ndim == 3 else None
    win = min(7, ref.shape[0], ref.shape[1])
    if win % 2 == 0:
        win -= 1
    if win < 3:
        # too small for a local window: fall back to exact equality measure
        return 1.0 if np.array_equal(ref, tst) else float("nan")
    return float(
        structural_similarity(
            ref, tst, data_range=data_range, channel_axis=channel_axis, win_size=win
        )
    )


def unique_colors(image) -> int:
    """Number of distinct colours (distinct pixel vectors) in an image.

    Parameters
    ----------
    image : ndarray of shape (H, W, C) or (H, W)
    """
    arr = np.ascontiguousarray(image)
    if arr.ndim == 2:
        return int(np.unique(arr).size)
    flat = arr.reshape(-1, arr.shape[-1])
    if arr.dtype == np.uint8 and flat.shape[1] <= 4:
        # pack each pixel into one integer: much faster than unique(axis=0)
        packed = np.zeros(flat.shape[0], dtype=np.uint32)
        for c in range(flat.shape[1]):
            packed |= flat[:, c].astype(np.uint32) << np.uint32(8 * c)
        return int(np.unique(packed).size)
    return int(np.unique(flat, axis=0).shape[0])


def _check_size(n_bytes, shape):
    if n_bytes < 0:
        raise UsageError(f"n_bytes={n_bytes} should be >= 0")
    if len(shape) < 2 or shape[0] < 1 or shape[1] < 1:
        raise UsageError(f"shape={tuple(shape)} should be (H, W[, C]) with H, W >= 1")


def bits_per_pixel(n_bytes: int, shape) -> float:
    """Bits per pixel: ``8 * n_bytes / (H * W)``, the one definition of bpp.

    Pixels, not samples: an RGB and an RGBA image of the same size and file
    size have the same bpp.

    Parameters
    ----------
    n_bytes : int
        Size of everything needed to decode (the whole file), in bytes.
    shape : tuple (H, W) or (H, W, C)
        Shape of the decoded image.

    Examples
    --------
    >>> bits_per_pixel(1000, (100, 80, 3))
    1.0
    """
    _check_size(n_bytes, shape)
    h, w = shape[0], shape[1]
    return 8.0 * float(n_bytes) / float(h * w)


def compression_ratio(n_bytes: int, shape) -> float:
    """Raw size over compressed size: ``H * W * C / n_bytes``, the one definition.

    The raw size is the decoded uint8 array, one byte per sample: C = 3 for
    RGB, **C = 4 for RGBA** (the alpha plane is data the file must carry too),
    C = 1 for an (H, W) shape. So an RGBA image has a 4/3 larger ratio than
    its RGB version compressed to the same size; compare methods by
    :func:`bits_per_pixel`, which does not depend on C.

    ``n_bytes`` (> 0) and ``shape`` are as for :func:`bits_per_pixel`.

    Examples
    --------
    >>> compression_ratio(1000, (100, 80, 3))
    24.0
    >>> compression_ratio(1000, (100, 80, 4))
    32.0
    """
    _check_size(n_bytes, shape)
    if n_bytes == 0:
        raise UsageError("n_bytes=0: a compression ratio needs a non-empty file")
    channels = shape[2] if len(shape) > 2 else 1
    return float(shape[0] * shape[1] * channels) / float(n_bytes)
