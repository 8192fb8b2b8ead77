"""pngquant-style quality ranges: ``--quality MIN-MAX`` for the K-means quantizer.

The 0..100 quality scale
------------------------
libimagequant (pngquant's engine) maps a quality ``q`` to a largest allowed
mean squared error with a curve fitted to feel like JPEG quality (its
``quality_to_mse``; documented in libimagequant's ``liq_set_quality``):

    f(q) = max(0, 0.016 / (0.001 + q) - 0.001) + 2.5 / (210 + q)**1.2 * (100.1 - q) / 100

in its own units: squared error per pixel summed over channels scaled to
0..1 and weighted (R 0.5, G 1, B 0.45), times ``LIQ_WEIGHT_MSE = 0.45``. We
use the same curve on the plain sRGB MSE (mean over pixels and channels, 0..255
units), converted with those channel weights as if the error were equal in
every channel (0.5**2 + 1 + 0.45**2 = 1.4525):

    mse_limit(q) = f(q) * 0.45 * 255**2 / 1.4525

so quality 100 needs MSE 0, quality 80 allows MSE 11.2 (PSNR 37.6 dB),
quality 60 MSE 24.5 (34.2 dB), quality 30 MSE 53 (30.9 dB). The numbers are
comparable to pngquant's, not identical (pngquant also applies gamma and
weights edges). An image's quality is the largest integer q whose limit its
MSE meets.
"""

from __future__ import annotations

import re


from .._errors import QualityError, UsageError

__all__ = ["mse_to_quality", "parse_quality", "quality_to_mse", "quantize_quality"]

_CHANNEL_WEIGHT_SUM = 0.5**2 + 1.0**2 + 0.45**2
_LIQ_WEIGHT_MSE = 0.45


def quality_to_mse(quality) -> float:
    """Largest mean squared error (sRGB, 0..255 units) that reaches ``quality``.

    Examples
    --------
    >>> round(quality_to_mse(80), 2)
    11.23
    >>> quality_to_mse(100)
    0.0
    """
    q = float(quality)
    if q <= 0:
        return float("inf")
    if q >= 100:
        return 0.0
    fudge = max(0.0, 0.016 / (0.001 + q) - 0.001)
    f = fudge + 2.5 / (210.0 + q) ** 1.2 * (100.1 - q) / 100.0
    return f * _LIQ_WEIGHT_MSE * 255.0**2 / _CHANNEL_WEIGHT_SUM


def mse_to_quality(mse) -> int:
    """Quality 0..100 of an image with mean squared error ``mse``.

    Examples
    --------
    >>> mse_to_quality(0.0), mse_to_quality(11.0), mse_to_quality(1e6)
    (100, 80, 0)
    """
    mse = float(mse)
    for q in range(100, 0, -1):
        if mse <= quality_to_mse(q) * (1.0 + 1e-12):
            return q
    return 0


_QUALITY_RE = re.compile(r"^\s*(\d*)\s*(-?)\s*(\d*)\s*$")


def parse_quality(text) -> tuple[int, int]:
    """Parse a pngquant ``--quality`` value into ``(min_quality, max_quality)``.

    ``"MIN-MAX"`` as given; ``"MAX"`` alone means ``(MAX * 9 // 10, MAX)`` as in
    pngquant; ``"-MAX"`` means ``(0, MAX)``; ``"MIN-"`` means ``(MIN, 100)``.

    Examples
    --------
    >>> parse_quality("65-80"), parse_quality("80"), parse_quality("-70"), parse_quality("50-")
    ((65, 80), (72, 80), (0, 70), (50, 100))
    """
    hint = "give MIN-MAX with 0 <= MIN <= MAX <= 100 (e.g. 65-80) or MAX alone (e.g. 80)"
    match = _QUALITY_RE.match(str(text))
    if match is None or (match.group(1) == "" and match.group(3) == ""):
        raise UsageError(f"quality {text!r} is not a quality range; {hint}")
    lo, dash, hi = match.groups()
    if not dash:
        target = int(lo)
        limit = target * 9 // 10
    elif lo == "":
        limit, target = 0, int(hi)
    elif hi == "":
        limit, target = int(lo), 100
    else:
        limit, target = int(lo), int(hi)
    if not (0 <= limit <= 100 and 0 <= target <= 100):
        raise UsageError(f"quality {text!r} is outside 0..100; {hint}")
    if limit > target:
        raise UsageError(f"quality {text!r} has MIN {limit} above MAX {target}; {hint}")
    return limit, target


def quantize_quality(image, min_quality=0, max_quality=100, *, max_colors=256, **params):
    """Fit the fewest colours that reach ``max_quality``, like ``pngquant --quality``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3|4), dtype uint8, or PreparedColors
        The image, or its :func:`prepare_colors` result (built once, shared by
        every K tried).
    min_quality, max_quality : int, 0 <= min_quality <= max_quality <= 100
        The result must reach ``min_quality``; among palettes of at most
        ``max_colors`` colours, the smallest K that reaches ``max_quality`` is
        used, or ``max_colors`` when none does.
    max_colors : int, default=256
    **params
        Other :class:`KMeansQuantizer` options (``speed``, ``dither``, ...).

    Returns
    -------
    quantizer : KMeansQuantizer
        Fitted; its ``quality_`` (0..100) and ``mse_`` say what it reached.

    Raises
    ------
    QualityError
        When even ``max_colors`` colours stay below ``min_quality``
        (exit code 99, as pngquant).

    Examples
    --------
    >>> from imcompress import sample_image
    >>> q = quantize_quality(sample_image(), 0, 60)
    >>> q.quality_ >= 60
    True
    """
    from ._quantizer import KMeansQuantizer, PreparedColors, prepare_colors

    from .._validation import check_scalar

    check_scalar(min_quality, "min_quality", "int", min_val=0, max_val=100)
    check_scalar(max_quality, "max_quality", "int", min_val=0, max_val=100)
    if min_quality > max_quality:
        raise UsageError(
            f"min_quality={min_quality} exceeds max_quality={max_quality}; give MIN <= MAX"
        )
    check_scalar(max_colors, "max_colors", "int", min_val=2)
    template = KMeansQuantizer(2, **params)
    if isinstance(image, PreparedColors):
        prepared = image  # KMeansQuantizer.fit checks it matches color_space and speed
    else:
        prepared = prepare_colors(image, color_space=template.color_space, speed=template.speed)
    k_max = min(int(max_colors), prepared.n_colors)
    fits = {}

    def fit(k):
        if k not in fits:
            fits[k] = KMeansQuantizer(k, **params).fit(prepared)
        return fits[k]

    best = fit(k_max)
    if best.quality_ < min_quality:
        raise QualityError(
            f"quality {best.quality_} with {k_max} colours is below the minimum {min_quality}; "
            f"lower the minimum quality (e.g. {best.quality_}-{max_quality}) or allow more colours"
        )
    if best.quality_ < max_quality:
        return best
    # smallest K reaching max_quality: quality grows with K, so bisect
    lo, hi = 2, k_max
    while lo < hi:
        mid = (lo + hi) // 2
        if fit(mid).quality_ >= max_quality:
            hi = mid
        else:
            lo = mid + 1
    return fit(lo)
