"""Input validation and the one conversion to uint8, shared by the whole library.

Modelled on scikit-learn's ``utils/validation.py`` (``check_array``: validate,
return the array to use, never touch the caller's) and scikit-image's
``util/dtype.py`` (``img_as_ubyte``: the dtype and range of a conversion are
explicit). Every image entering a codec, an estimator or an analysis goes
through :func:`check_image`; every float reconstruction leaving one goes
through :func:`to_uint8`, the only place the library rounds and clips pixels.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._errors import UsageError

__all__ = ["check_image", "check_scalar", "to_uint8"]


def _channel_spec(channels) -> str:
    return "|".join(str(c) for c in channels)


def check_image(image, *, channels=(3, 4), min_shape=(1, 1), name="image", hint=None) -> np.ndarray:
    """Check that ``image`` is an (H, W, C) uint8 array and return it as one.

    Parameters
    ----------
    image : array-like of shape (H, W, C), dtype uint8
        The image to check. It is never modified.
    channels : int or tuple of int, default=(3, 4)
        Allowed values of C (3 for RGB, 4 for RGBA).
    min_shape : tuple of 2 int, default=(1, 1)
        Smallest allowed (H, W).
    name : str, default="image"
        What the error messages call the argument.
    hint : str, optional
        How to fix a bad image, appended to the error message.

    Returns
    -------
    ndarray of shape (H, W, C), dtype uint8
        ``np.asarray(image)``: no copy when ``image`` already is such an
        array, so callers must not write into it.

    Raises
    ------
    UsageError
        Wrong number of dimensions, of channels, wrong dtype, or smaller than
        ``min_shape``. ``UsageError`` is a ``ValueError`` too.

    Examples
    --------
    >>> import numpy as np
    >>> check_image(np.zeros((2, 3, 3), dtype=np.uint8)).shape
    (2, 3, 3)
    >>> check_image(np.zeros((2, 3), dtype=np.uint8))
    Traceback (most recent call last):
    ...
    imcompress._errors.UsageError: image of shape (2, 3) and dtype uint8 should be (H, W, 3|4) uint8
    """
    allowed = (channels,) if isinstance(channels, numbers.Integral) else tuple(channels)
    arr = np.asarray(image)
    tail = f"; {hint}" if hint else ""
    if arr.ndim != 3 or arr.shape[2] not in allowed or arr.dtype != np.uint8:
        raise UsageError(
            f"{name} of shape {arr.shape} and dtype {arr.dtype} should be "
            f"(H, W, {_channel_spec(allowed)}) uint8{tail}"
        )
    min_h, min_w = (int(v) for v in min_shape)
    h, w = arr.shape[:2]
    if h < min_h or w < min_w:
        rows = "row" if min_h == 1 else "rows"
        cols = "column" if min_w == 1 else "columns"
        raise UsageError(
            f"{name} of shape {arr.shape} is too small: it needs at least {min_h} {rows} "
            f"and {min_w} {cols}{tail}"
        )
    return arr


def check_scalar(value, name, kind, *, min_val=None, max_val=None, allow_none=False, hint=None):
    """Check a scalar parameter's type and closed range (scikit-learn's ``check_scalar``).

    Parameters
    ----------
    value : object
        The parameter's value. ``bool`` is never accepted as a number.
    name : str
        The keyword, as the user wrote it (``"max_iter"``).
    kind : {"int", "real"}
        ``"int"``: a Python or NumPy integer; ``"real"``: any real number.
    min_val, max_val : number, optional
        Inclusive bounds.
    allow_none : bool, default=False
        Accept ``None`` (returned as is).
    hint : str, optional
        What the value means, appended to the error message in parentheses.

    Returns
    -------
    int, float or None
        The value as a Python ``int`` or ``float``.

    Raises
    ------
    UsageError
        ``name=value should be an integer from 1 to 10 (hint)`` and the like.

    Examples
    --------
    >>> check_scalar(3, "n_init", "int", min_val=1)
    3
    >>> check_scalar(0, "n_init", "int", min_val=1, allow_none=True)
    Traceback (most recent call last):
    ...
    imcompress._errors.UsageError: n_init=0 should be an integer >= 1 or None
    """
    if value is None and allow_none:
        return None
    if kind == "int":
        noun, ok_type = "an integer", isinstance(value, (numbers.Integral, np.integer))
    elif kind == "real":
        noun, ok_type = "a number", isinstance(value, (numbers.Real, np.integer, np.floating))
    else:  # pragma: no cover - a programming error
        raise ValueError(f"kind={kind!r} should be 'int' or 'real'")
    ok_type = ok_type and not isinstance(value, (bool, np.bool_))
    ok = ok_type and (min_val is None or value >= min_val) and (max_val is None or value <= max_val)
    if not ok:
        if min_val is not None and max_val is not None:
            span = f" from {min_val} to {max_val}"
        elif min_val is not None:
            span = f" >= {min_val}"
        elif max_val is not None:
            span = f" <= {max_val}"
        else:
            span = ""
        none = " or None" if allow_none else ""
        why = f" ({hint})" if hint else ""
        raise UsageError(f"{name}={value!r} should be {noun}{span}{none}{why}")
    return int(value) if kind == "int" else float(value)


def _check_range(in_range):
    if isinstance(in_range, str):
        if in_range != "image":
            raise UsageError(f"in_range={in_range!r} should be 'image' or a (low, high) pair")
        return in_range
    try:
        lo, hi = (float(v) for v in in_range)
    except (TypeError, ValueError):
        raise UsageError(f"in_range={in_range!r} should be 'image' or a (low, high) pair") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise UsageError(f"in_range={in_range!r} should be finite with low < high")
    return lo, hi


def to_uint8(values, *, in_range=(0.0, 255.0), channel_axis=-1) -> np.ndarray:
    """Convert values to uint8 pixels: scale, round half to even, clip to 0..255.

    The one place the library rounds and clips (scikit-image's
    ``img_as_ubyte`` with the input range made explicit). Arithmetic is in
    float64 whatever the input dtype.

    Parameters
    ----------
    values : array-like
        Pixel values of any shape, e.g. an (H, W, 3) float reconstruction.
    in_range : (low, high) or "image", default=(0.0, 255.0)
        The values mapped to 0 and 255. The default is the identity (values
        already in 0..255 units); ``(0, 65535)`` converts 16-bit data
        (``rint(v / 257)``, as ``img_as_ubyte``); ``(0.0, 1.0)`` converts
        unit floats. ``"image"`` maps each channel's own minimum and maximum
        to 0 and 255 (a constant channel becomes 0), as the study's
        ``minmax`` rescale did.
    channel_axis : int or None, default=-1
        The channel axis for ``in_range="image"``; None stretches the whole
        array as one channel. Ignored for an explicit range.

    Returns
    -------
    ndarray of the shape of ``values``, dtype uint8

    Raises
    ------
    UsageError
        ``values`` contain NaN, or ``in_range`` is not a valid range.

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([-3.0, 0.5, 1.5, 254.6, 300.0])).tolist()
    [0, 0, 2, 255, 255]
    >>> to_uint8(np.array([0, 128, 65535]), in_range=(0, 65535)).tolist()
    [0, 0, 255]
    >>> to_uint8(np.array([[2.0, 4.0]]), in_range="image", channel_axis=None).tolist()
    [[0, 255]]
    """
    in_range = _check_range(in_range)
    x = np.asarray(values, dtype=np.float64)
    # min propagates NaN: one pass, no boolean temporary (decoders call this on every band)
    if x.size and np.isnan(x.min()):
        raise UsageError("values contain NaN; a reconstruction went wrong before the conversion to uint8")
    if in_range == "image":
        x = _stretch(x, channel_axis)
    elif in_range != (0.0, 255.0):
        lo, hi = in_range
        x = (x - lo) * (255.0 / (hi - lo))
    r = np.rint(x)  # a new array: the caller's values are never changed
    np.clip(r, 0, 255, out=r)
    return r.astype(np.uint8)


def _stretch(x, channel_axis):
    """Each channel's min..max mapped onto 0..255 (float64, not rounded)."""
    if x.size == 0:
        return x
    if channel_axis is None:
        axes = None
    else:
        axis = channel_axis % x.ndim
        axes = tuple(a for a in range(x.ndim) if a != axis)
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    span = hi - lo
    flat = span == 0
    scale = np.where(flat, 0.0, 255.0 / np.where(flat, 1.0, span))
    return (x - lo) * scale
