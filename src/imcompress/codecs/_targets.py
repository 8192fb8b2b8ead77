"""Targets instead of knobs: the smallest file reaching a PSNR, the best file within a size.

Every method names one *rate parameter* whose candidate values are ordered so
that file size and quality both grow along the list (K for kmeans, the number
of components for pca-rows, the quality for pca-patch). :func:`search_target`
bisects that list; :func:`compress_to_target` is the one library call that
encodes, decodes and measures a method along it (the CLI, batch workers and
analyses all use it). Monotonicity is assumed for the search only: the result is
always one that was actually encoded, decoded and measured, so it meets the
target whatever the curve does between the probed points.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .._errors import ImcompressError, QualityError, UsageError
from .._validation import check_image

__all__ = ["Measured", "Trial", "TargetResult", "compress_to_target", "search_target"]


@dataclass
class Trial:
    """One encoded candidate.

    Attributes
    ----------
    value : object
        The rate-parameter value.
    data : bytes
        The complete file.
    psnr : float
        PSNR in dB of the decoded file against the original.
    extra : object
        Anything the encoder wants to keep (e.g. the decoded pixels).
    """

    value: Any
    data: bytes = field(repr=False)
    psnr: float
    extra: Any = field(default=None, repr=False)

    @property
    def bytes(self) -> int:
        return len(self.data)


@dataclass
class TargetResult:
    """Result of :func:`search_target`.

    Attributes
    ----------
    trial : Trial
        The chosen candidate.
    met : bool
        False only with ``best_effort=True`` when no candidate met the target.
    trials : list of Trial
        Every candidate encoded, in the order probed.
    """

    trial: Trial
    met: bool
    trials: list


def _check_targets(target_psnr, max_bytes):
    if target_psnr is None and max_bytes is None:
        raise UsageError("give target_psnr= and/or max_bytes=")
    if target_psnr is not None and not (0.0 < float(target_psnr) < 200.0):
        raise UsageError(f"target_psnr={target_psnr} should be in (0, 200) dB")
    if max_bytes is not None and int(max_bytes) < 1:
        raise UsageError(f"max_bytes={max_bytes} should be >= 1")


def search_target(
    encode_at: Callable[[Any], Trial],
    candidates: Sequence,
    *,
    target_psnr: float | None = None,
    max_bytes: int | None = None,
    best_effort: bool = False,
) -> TargetResult:
    """Find the candidate meeting a PSNR and/or size target, by bisection.

    Parameters
    ----------
    encode_at : callable
        ``encode_at(value) -> Trial``: encode with the rate parameter at
        ``value``, decode, measure.
    candidates : sequence
        Rate-parameter values, smallest file (lowest quality) first.
    target_psnr : float, optional
        Reach at least this PSNR (dB) with the smallest file.
    max_bytes : int, optional
        Stay within this many bytes with the best PSNR.
    best_effort : bool, default=False
        When the target cannot be met, return the closest candidate (the best
        quality for ``target_psnr``, the smallest file for ``max_bytes``)
        instead of raising.

    Returns
    -------
    TargetResult

    Raises
    ------
    QualityError
        No candidate meets the target(s) and ``best_effort`` is false.

    Examples
    --------
    >>> table = {1: (10, 20.0), 2: (20, 30.0), 3: (40, 40.0)}
    >>> def enc(v):
    ...     n, p = table[v]
    ...     return Trial(v, b"x" * n, p)
    >>> search_target(enc, [1, 2, 3], target_psnr=25).trial.value
    2
    >>> search_target(enc, [1, 2, 3], max_bytes=39).trial.value
    2
    """
    _check_targets(target_psnr, max_bytes)
    candidates = list(candidates)
    if not candidates:
        raise UsageError("no candidate values to search")
    cache: dict[int, Trial] = {}
    order: list[Trial] = []

    def probe(i: int) -> Trial:
        if i not in cache:
            trial = encode_at(candidates[i])
            cache[i] = trial
            order.append(trial)
        return cache[i]

    def psnr_ok(t: Trial) -> bool:
        return target_psnr is None or t.psnr >= target_psnr

    def bytes_ok(t: Trial) -> bool:
        return max_bytes is None or t.bytes <= max_bytes

    n = len(candidates)
    # first index meeting the PSNR target (quality grows along the list)
    first_psnr = 0
    if target_psnr is not None:
        # if any candidate meets the target, the first one is <= hi
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if psnr_ok(probe(mid)):
                hi = mid
            else:
                lo = mid + 1
        first_psnr = hi if psnr_ok(probe(hi)) else n
    # last index within the byte budget (size grows along the list)
    if max_bytes is not None and first_psnr < n:
        start = first_psnr
        if bytes_ok(probe(start)):
            lo, hi = start, n - 1  # invariant: candidates[lo] fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if bytes_ok(probe(mid)):
                    lo = mid
                else:
                    hi = mid - 1

    feasible = [t for t in order if psnr_ok(t) and bytes_ok(t)]
    if feasible:
        if target_psnr is not None:
            best = min(feasible, key=lambda t: (t.bytes, -t.psnr))
        else:
            best = max(feasible, key=lambda t: (t.psnr, -t.bytes))
        return TargetResult(trial=best, met=True, trials=order)

    what = []
    if target_psnr is not None:
        what.append(f"PSNR >= {target_psnr:g} dB")
    if max_bytes is not None:
        what.append(f"size <= {max_bytes} bytes")
    if not best_effort:
        best_psnr = max(t.psnr for t in order)
        smallest = min(t.bytes for t in order)
        raise QualityError(
            f"cannot reach {' and '.join(what)}: the best PSNR found is {best_psnr:.2f} dB "
            f"and the smallest file {smallest} bytes; relax the target or pass best_effort=True"
        )
    if max_bytes is not None and (target_psnr is None or first_psnr < n):
        best = min(order, key=lambda t: (t.bytes, -t.psnr))
    else:
        best = max(order, key=lambda t: (t.psnr, -t.bytes))
    return TargetResult(trial=best, met=False, trials=order)


@dataclass(frozen=True)
class Measured:
    """Result of :func:`compress_to_target`: a file, decoded again and measured.

    Attributes
    ----------
    compressed : Compressed
        The file and what the codec chose (``compressed.params``, as the file
        stores them; ``compressed.bpp``, ``compressed.ratio``).
    psnr : float or None
        PSNR in dB of the decoded file against the input (``inf`` if lossless;
        None when not measured).
    decoded : ndarray of shape (H, W, C), uint8, or None
        The file decoded again (the codec's bit-exact reconstruction when it
        returns one).
    met : bool
        False only with ``best_effort=True`` when the target was not reached.
    trials : tuple of Trial
        Every candidate encoded, in the order probed (one when no target was
        given); ``trial.extra`` is its :class:`Compressed`.
    """

    compressed: Any
    psnr: float
    decoded: np.ndarray = field(repr=False)
    met: bool = True
    trials: tuple = field(default=(), repr=False)

    @property
    def data(self) -> bytes:
        return self.compressed.data

    @property
    def bytes(self) -> int:
        return len(self.compressed.data)


def _decode_file(data: bytes) -> np.ndarray:
    """Pixels of a ``.imc`` file, or of a standard image file a codec wrote."""
    from ..format import is_container
    from ._base import decompress

    if is_container(data):
        return decompress(data)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


def compress_to_target(
    image,
    method,
    *,
    target_psnr: float | None = None,
    max_bytes: int | None = None,
    best_effort: bool = False,
    format: str = "imc",
    icc_profile: bytes | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    measure: bool = True,
    prepared=None,
    **options,
) -> Measured:
    """Compress ``image`` with ``method``, to a PSNR or size target if given, and measure it.

    Without a target this encodes once. With one it searches the method's
    rate parameter (:attr:`Codec.rate_parameter`) by bisection, sharing the
    codec's per-image work (:meth:`Codec.prepare`) between candidates. Every
    candidate is a real file, decoded and measured, so the result meets the
    target.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) or (H, W, 4), dtype uint8
    method : str or Codec
        A registered method name (``options`` are its parameters), or a codec
        instance (then ``options`` must be empty).
    target_psnr : float, optional
        The smallest file reaching at least this PSNR (dB).
    max_bytes : int, optional
        The best PSNR within this many bytes. With ``target_psnr`` both must hold.
    best_effort : bool, default=False
        When no candidate meets the target, return the closest one (``met`` is
        False) instead of raising.
    format : {"imc", "png"}, default="imc"
        The file written; ``"png"`` only for methods listing it in ``formats``.
    icc_profile : bytes, optional
        Colour profile stored in the file.
    on_trial : callable, optional
        Called with each :class:`Trial` as it is measured (e.g. to print it).
    measure : bool, default=True
        Without a target, ``False`` skips the measurement: ``psnr`` is None and
        ``decoded`` is the codec's own reconstruction or None. A target search
        always measures.
    prepared : object, optional
        ``codec.prepare(image)`` of this same image and codec settings (rate
        aside), to share that work across several calls, e.g. a rate sweep.
        Default: prepared here, once per call.
    **options
        Parameters of the method's codec (``n_colors=16``, ``quality=60``...).

    Returns
    -------
    Measured

    Raises
    ------
    UsageError
        Bad options or targets, or a target for a method without a rate parameter.
    QualityError
        The target cannot be met and ``best_effort`` is false.

    Examples
    --------
    >>> import imcompress
    >>> img = imcompress.sample_image()[:64, :64]
    >>> res = imcompress.compress_to_target(img, "kmeans", target_psnr=30, random_state=0)
    >>> bool(res.psnr >= 30), res.compressed.params["n_colors"] < 256
    (True, True)
    >>> imcompress.decompress(res.data).shape
    (64, 64, 3)
    """
    from . import _base
    from .. import metrics

    if isinstance(method, _base.Codec):
        if options:
            raise UsageError(f"give options to the codec or to compress_to_target, not both: {sorted(options)}")
        codec = method
    else:
        codec = _base.get_codec(method)(**options)
    pixels = check_image(image)
    if format not in codec.formats:
        raise UsageError(f"method {codec.name!r} writes {' or '.join(codec.formats)} files, not {format!r}")
    last = {}  # the latest decoded pixels only: a search over a large image keeps one copy

    def probe(trial_codec, value, prepared) -> Trial:
        out = trial_codec.compress(pixels, format=format, icc_profile=icc_profile, prepared=prepared)
        # the codec's own bit-exact reconstruction when it has one, else the file decoded
        decoded = out.decoded if out.decoded is not None else _decode_file(out.data)
        if decoded.shape != pixels.shape:  # pragma: no cover - a codec bug
            raise ImcompressError(f"decoded shape {decoded.shape} differs from the input {pixels.shape}")
        # the codec's exact error when it knows it (no pass over the pixels)
        err = out.mse if out.mse is not None else metrics.mse(pixels, decoded)
        trial = Trial(value, out.data, metrics.psnr_from_mse(err), extra=out)
        last.clear()
        last[id(trial)] = decoded
        if on_trial is not None:
            on_trial(trial)
        return trial

    if target_psnr is None and max_bytes is None:
        if not measure:
            out = codec.compress(pixels, format=format, icc_profile=icc_profile, prepared=prepared)
            return Measured(out, None, out.decoded, True, ())
        trial = probe(codec, None, prepared)
        return Measured(trial.extra, trial.psnr, last[id(trial)], True, (trial,))
    if codec.rate_parameter is None:
        raise UsageError(f"method {codec.name} has no rate parameter for a PSNR or size target")
    if prepared is None:
        prepared = codec.prepare(pixels)  # shared by every candidate, dropped with this call
    result = search_target(
        lambda value: probe(codec.with_rate(value), value, prepared),
        codec.rate_candidates(pixels),
        target_psnr=target_psnr,
        max_bytes=max_bytes,
        best_effort=best_effort,
    )
    chosen = result.trial
    decoded = last.get(id(chosen))
    if decoded is None:
        decoded = _decode_file(chosen.data)
    return Measured(chosen.extra, chosen.psnr, decoded, result.met, tuple(result.trials))
