"""Image quality and size metrics, computed in float64."""

from __future__ import annotations

import numpy as np

from .._errors import UsageError

__all__ = [
    "rmse",
    "mse",
    "psnr",
    "psnr_from_mse",
    "ssim",
    "unique_colors",
    "bits_per_pixel",
    "compression_ratio",
]


#: Values per chunk in :func:`mse`: two float64 chunks of 8 MB, whatever the image size.
_CHUNK = 1 << 20


def _same_shape(reference, test):
    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        # UsageError is a ValueError too, so callers catching ValueError still work
        raise UsageError(
            f"shapes differ: reference {ref.shape} vs test {tst.shape}; compare images of the same shape"
        )
    return ref, tst


def _pair(reference, test):
    ref, tst = _same_shape(reference, test)
    # float64 before subtracting: uint8 - uint8 wraps around modulo 256
    return ref.astype(np.float64), tst.astype(np.float64)


def mse(reference, test) -> float:
    """Mean squared error over all pixels and channels, in float64.

    Computed in chunks of about a million values, so the memory it needs does
    not grow with the image (two float64 copies of a 20-megapixel image would
    be 960 MB).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 2, 3), dtype=np.uint8)
    >>> mse(a, a + 2)
    4.0
    """
    ref, tst = _same_shape(reference, test)
    if ref.size == 0:
        return float("nan")
    ref, tst = ref.reshape(-1), tst.reshape(-1)
    total = 0.0
    for start in range(0, ref.size, _CHUNK):
        # float64 before subtracting: uint8 - uint8 wraps around modulo 256
        d = ref[start : start + _CHUNK].astype(np.float64)
        d -= tst[start : start + _CHUNK]
        d *= d
        total += float(d.sum())
    return total / ref.size


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
    return psnr_from_mse(mse(reference, test), data_range=data_range)


def psnr_from_mse(err: float, *, data_range: float = 255.0) -> float:
    """PSNR in dB of a mean squared error (``inf`` for 0), the one formula.

    Examples
    --------
    >>> round(psnr_from_mse(65.025), 2)
    30.0
    """
    if err == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / err))


#: Images with more pixels than this are measured by :func:`ssim` in bands of
#: rows (the same value, memory bounded by the band instead of the image).
_SSIM_BAND_PIXELS = 1 << 20
_SSIM_BAND_ROWS = 256


def ssim(reference, test, *, data_range: float = 255.0) -> float:
    """Mean structural similarity (scikit-image), over colour channels.

    Uses scikit-image's defaults (7x7 uniform window) with ``channel_axis=-1``
    for (H, W, C) images; images smaller than 7 pixels on a side use the
    largest odd window that fits. Images above a megapixel are measured in
    bands of rows, each with the 3 rows of context its windows reach, so the
    memory is that of a band: the value is scikit-image's to rounding (the
    mean of the same SSIM map, summed in another order).
    """
    from skimage.metrics import structural_similarity  # heavy: only when SSIM is asked for

    ref, tst = _same_shape(reference, test)
    win = min(7, ref.shape[0], ref.shape[1])
    if win % 2 == 0:
        win -= 1
    if win < 3:
        # too small for a local window: fall back to exact equality measure
        return 1.0 if np.array_equal(ref, tst) else float("nan")
    h, w = ref.shape[:2]
    pad = (win - 1) // 2
    if h * w <= _SSIM_BAND_PIXELS or h <= 2 * pad + 1:
        channel_axis = -1 if ref.ndim == 3 else None
        return float(structural_similarity(ref.astype(np.float64), tst.astype(np.float64),
                                           data_range=data_range, channel_axis=channel_axis, win_size=win))
    planes = [(ref, tst)] if ref.ndim == 2 else [(ref[:, :, c], tst[:, :, c]) for c in range(ref.shape[2])]
    means = []
    for r, t in planes:
        total, count = 0.0, 0
        for top in range(pad, h - pad, _SSIM_BAND_ROWS):
            bottom = min(top + _SSIM_BAND_ROWS, h - pad)
            rows = slice(top - pad, bottom + pad)
            band = structural_similarity(r[rows].astype(np.float64), t[rows].astype(np.float64),
                                         data_range=data_range, win_size=win)
            n = (bottom - top) * (w - 2 * pad)  # the band's share of the cropped map
            total += float(band) * n
            count += n
        means.append(total / count)
    return float(np.mean(means))


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
