"""Rate-distortion of one subject method against the others, measured for the report (numbers only).

:func:`rate_distortion` encodes one image with every method at a short
ladder of rates (its ``rate_ladder``; a method with a continuous knob also at
values aimed at given bit rates; a few more files where the ladder leaves a
wide gap), writing real files (``.imc`` for imcompress's methods, Pillow's
JPEG, WebP and AVIF for the references), decodes them and measures PSNR and
SSIM against the original in float64. It then encodes the subject (the first
method, pca-patch in the study) at a few target rates and finds the largest
JPEG and WebP files not above each, for the side-by-side pictures. Every
per-method fact comes from :func:`imcompress.rd.method_facts`. The analysis (interpolation, BD-rate,
the chart) comes from :mod:`imcompress.rd`, so the report and
``benchmarks/rd.py`` agree.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import metrics, rd
from .._errors import ImcompressError, UsageError
from .._validation import check_image
from ._results import PICTURE_PEERS, RD_BPPS, REFERENCE, SHOW_BPPS, Encoding, RDResult
from ._results import _NEAR, bracket

__all__ = [
    "RD_BPPS",
    "RD_MAX_PIXELS",
    "TARGET_BPPS",
    "Encoding",
    "RDResult",
    "default_methods",
    "ladder",
    "rate_distortion",
]

#: Larger images are measured on their central region of about this many
#: pixels: the section encodes the image some fifty times.
RD_MAX_PIXELS = 1 << 20

#: A method with a continuous rate knob (:attr:`Codec.rate_continuous`) is
#: also measured at about these rates (bits per pixel), its knob found by
#: interpolating log-rate between the files already measured (a rate within
#: 15 % of a measured file is skipped), so the points spread evenly whatever
#: the knob's scale. The other methods are measured at their ``rate_ladder``
#: (codec plugins and :data:`imcompress.rd.PEERS`).
TARGET_BPPS = (0.125, 0.25, 0.5, 1.0, 2.0, 3.5)
def default_methods(ours=None, *, anchors: bool = False) -> list:
    """``ours`` (default: every registered codec with a ``rate_ladder``) that are registered,
    then the peers installed here: Pillow's JPEG, WebP and AVIF, and with ``anchors=True``
    the anchors of the ``bench`` extra (:data:`imcompress.rd.PEERS`)."""
    from ..codecs import available_methods, get_codec

    registered = available_methods()
    if ours is None:
        ours = [m for m in registered if get_codec(m).rate_ladder]
    ours = [m for m in ours if m in registered]
    installed = rd.available_peers(anchors=anchors)
    refs = [m for m in rd.PEERS if m == REFERENCE or m in installed]
    return ours + refs


def ladder(method) -> tuple:
    """The rate-knob values a method's curve starts from."""
    return rd.method_facts(method).rate_ladder


# -- measuring -------------------------------------------------------------------------

def _codec_encode(codec, image, setting):
    from ..codecs import compress_to_target

    res = compress_to_target(image, codec.with_rate(setting))
    return res.bytes, res.decoded, res.compressed.params


class _Meter:
    """Encodes, decodes and measures; keeps the pictures only when asked."""

    def __init__(self, image, *, ssim_methods, random_state: int, subject: str):
        self.image = image
        self.n = image.shape[0] * image.shape[1]
        self.ssim_methods = set(ssim_methods)
        self.random_state = random_state
        self.subject = subject
        self._codecs = {}

    def _codec(self, method):
        # one instance per method: with_rate copies share its caches (row PCA's SVD)
        if method not in self._codecs:
            self._codecs[method] = rd.make_codec(method, random_state=self.random_state)
        return self._codecs[method]

    def __call__(self, method, setting, *, keep=False, with_ssim=None) -> Encoding:
        params = None
        if method in rd.PEERS:
            nbytes, out = rd.peer_encode(self.image, method, setting)
        else:
            nbytes, out, params = _codec_encode(self._codec(method), self.image, setting)
        if with_ssim is None:
            with_ssim = method in self.ssim_methods
        return Encoding(
            method=method,
            setting=float(setting),
            nbytes=int(nbytes),
            bpp=metrics.bits_per_pixel(nbytes, self.image.shape),
            rmse=metrics.rmse(self.image, out),
            psnr=metrics.psnr(self.image, out),
            ssim=metrics.ssim(self.image, out) if with_ssim else float("nan"),
            image=out if keep else None,
            params=params if method == self.subject else None,
        )

    def nbytes(self, method, setting) -> int:
        return rd.peer_encode(self.image, method, setting)[0]


def _quality_for(curve, target_bpp):
    """The knob value (e.g. pca-patch quality) expected to give ``target_bpp``: linear in log-rate
    between the measured files, extrapolated from the two nearest beyond them."""
    pts = sorted((e.setting, e.bpp) for e in curve)
    qs = np.array([p[0] for p in pts], dtype=np.float64)
    lb = np.maximum.accumulate(np.log([max(p[1], 1e-9) for p in pts]))  # size grows with quality
    x = math.log(target_bpp)
    if len(pts) >= 2 and (x > lb[-1] or x < lb[0]):
        i, j = (-2, -1) if x > lb[-1] else (0, 1)
        if lb[j] - lb[i] < 1e-9:
            return 100.0 if x > lb[-1] else 0.0
        q = qs[j] + (x - lb[j]) * (qs[j] - qs[i]) / (lb[j] - lb[i])
    else:
        q = np.interp(x, lb, qs)
    return float(np.clip(q, 0.0, 100.0))


def _fill_gaps(meter, method, points, notes, ratio):
    """Measure between the files that bracket each table rate when they are far apart."""
    facts = rd.method_facts(method)
    for b in RD_BPPS:
        for _ in range(2):
            lo, hi = bracket(points, b)
            if lo is None or hi is None or hi.bpp <= ratio * lo.bpp:
                break
            if any(abs(math.log(e.bpp / b)) < _NEAR for e in points):
                break
            if facts.continuous:
                if not _add_quality_for(meter, method, points, b):
                    break
                continue
            if facts.peer:
                mid = round((lo.setting + hi.setting) / 2)
            else:  # K and n: the rate grows about with their logarithm
                mid = round(math.sqrt(lo.setting * hi.setting))
            if mid in (round(lo.setting), round(hi.setting)):
                break
            try:
                points.append(meter(method, mid))
            except ImcompressError:
                break
            except Exception as exc:  # noqa: BLE001 - one codec's failure must not lose the report
                notes.append(f"{method} at {facts.rate_label} {mid} failed: {type(exc).__name__}: {exc}")
                break


def _add_quality_for(meter, method, points, target_bpp) -> bool:
    """Measure ``method`` at the knob value expected to give ``target_bpp``; False if already measured."""
    q = _quality_for(points, target_bpp)
    facts = rd.method_facts(method)
    if facts.continuous:
        q = round(q, 2)
    else:  # an integer knob, kept within the values its ladder spans
        q = int(min(max(round(q), min(facts.rate_ladder)), max(facts.rate_ladder)))
    if any(abs(e.setting - q) < 0.01 for e in points):
        return False
    try:
        points.append(meter(method, q, keep=method == meter.subject))
    except ImcompressError:
        return False
    return True


def _largest_under(meter, method, nbytes, curve=()):
    """Largest ``method`` file (Pillow quality 1..100) not above ``nbytes``, by bisection on quality.

    The measured ``curve`` of the method narrows the bracket (its sizes grow with quality).
    """
    fits = [int(e.setting) for e in curve if e.nbytes <= nbytes]
    over = [int(e.setting) for e in curve if e.nbytes > nbytes]
    lo = max(fits, default=1)
    hi = min(over, default=101) - 1
    if lo > hi:  # the curve is not monotone here: search everything
        lo, hi = 1, 100
    if not fits and meter.nbytes(method, lo) > nbytes:
        return None
    while lo < hi:  # invariant: quality lo fits
        mid = (lo + hi + 1) // 2
        if meter.nbytes(method, mid) <= nbytes:
            lo = mid
        else:
            hi = mid - 1
    return meter(method, lo, keep=True, with_ssim=True)


def central_region(shape, max_pixels) -> tuple:
    """``(top, left, H, W)``: the whole image, or its central region of about
    ``max_pixels`` pixels with the same aspect ratio when it is larger."""
    h, w = shape[:2]
    if h * w <= max_pixels:
        return (0, 0, h, w)
    scale = math.sqrt(max_pixels / (h * w))
    rh, rw = max(2, int(h * scale)), max(2, int(w * scale))
    return ((h - rh) // 2, (w - rw) // 2, rh, rw)


def _detail_crop(image, size):
    """``(top, left, size)``: the square with the most gradient energy, on a size/4 grid."""
    h, w = image.shape[:2]
    size = int(min(size, h, w))
    g = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    energy = np.zeros((h, w))
    energy[:, 1:] += np.diff(g, axis=1) ** 2
    energy[1:, :] += np.diff(g, axis=0) ** 2
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    stride = max(1, size // 4)
    best, where = -1.0, (0, 0)
    for top in range(0, h - size + 1, stride):
        for left in range(0, w - size + 1, stride):
            e = (integral[top + size, left + size] - integral[top, left + size]
                 - integral[top + size, left] + integral[top, left])
            if e > best:
                best, where = e, (top, left)
    return (int(where[0]), int(where[1]), size)


def rate_distortion(image, *, methods=None, ssim: bool = True, random_state: int = 0,
                    max_pixels: int = RD_MAX_PIXELS, progress=None) -> RDResult:
    """Measure the subject method against the other methods and Pillow's codecs on ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    methods : list of str, optional
        Default: :func:`default_methods` (the registered codecs, then JPEG,
        WebP and AVIF when available). The first is the subject, compared with
        ``"jpeg"``, which must be in the list.
    ssim : bool, default=True
        Also measure SSIM on every point of the methods in
        :attr:`RDResult.ssim_methods` (about a third of the section's time).
    random_state : int, default=0
        Seed of the codecs that take one.
    max_pixels : int, default=RD_MAX_PIXELS
        A larger image is measured on its central region of about this many
        pixels, same aspect ratio (``result.region`` says where).
    progress : callable, optional
        Called as ``progress(message)``.

    Returns
    -------
    RDResult

    Examples
    --------
    >>> from imcompress import sample_image
    >>> from imcompress.report import rate_distortion
    >>> r = rate_distortion(sample_image()[:96, :96], methods=["pca-patch", "jpeg"], ssim=False)
    >>> r.psnr_at("pca-patch", 1.0) > r.psnr_at("jpeg", 1.0)
    True
    """
    from ..codecs import available_methods

    image = check_image(image, channels=3)
    if not isinstance(max_pixels, int) or max_pixels < 4:
        raise UsageError(f"max_pixels={max_pixels!r} should be an integer >= 4")
    region = central_region(image.shape, max_pixels)
    image = image[region[0]:region[0] + region[2], region[1]:region[1] + region[3]]
    methods = default_methods() if methods is None else list(methods)
    known = set(available_methods()) | set(rd.PEERS)
    usable = sorted(m for m in known if ladder(m))
    for m in methods:
        if m not in known or not ladder(m):
            raise UsageError(f"unknown method {m!r} for the rate-distortion section; "
                             f"choose from {', '.join(usable)}")
    subject = methods[0] if methods else REFERENCE
    for m in (subject, REFERENCE):
        if m not in methods:
            raise UsageError(f"the rate-distortion section compares {subject} with JPEG: add {m!r} to methods")
    probe = RDResult(methods=methods, curves={}, shown=[], shape=(), region=(), crop=(), seconds={})
    meter = _Meter(image, ssim_methods=probe.ssim_methods if ssim else (), random_state=random_state,
                   subject=subject)
    curves, seconds, notes = {}, {}, []
    for m in methods:
        if progress is not None:
            progress(f"rate-distortion: {m}")
        facts = rd.method_facts(m)
        t0 = time.perf_counter()
        points = []
        for setting in facts.rate_ladder:
            try:
                points.append(meter(m, setting, keep=m == subject))
            except ImcompressError:
                continue  # a rate this method cannot produce for this image (e.g. K above its colours)
            except Exception as exc:  # noqa: BLE001 - one codec's failure must not lose the report
                notes.append(f"{m} at {facts.rate_label} {setting} failed: {type(exc).__name__}: {exc}")
        if facts.continuous and points:
            # the highest rate first: the others are then interpolated, not extrapolated
            for target in sorted(TARGET_BPPS, key=lambda t: (t != max(TARGET_BPPS), t)):
                if all(abs(math.log(e.bpp / target)) > _NEAR for e in points):
                    _add_quality_for(meter, m, points, target)
        if points:
            _fill_gaps(meter, m, points, notes, probe.gap_ratio(m))
        curves[m] = points
        seconds[m] = time.perf_counter() - t0
    if progress is not None:
        progress(f"{subject} pictures beside JPEG and WebP at the same bytes")
    shown = []
    pp = curves[subject]
    if not pp:
        notes.append(f"{subject} could not encode this image: no pictures")
    for target in SHOW_BPPS if pp else ():
        for _ in range(2):  # the nearest file, refined while more than 5 % off the target
            enc = min(pp, key=lambda e: abs(math.log(e.bpp / target)))
            if abs(math.log(enc.bpp / target)) < 0.05 or not _add_quality_for(meter, subject, pp, target):
                break
        enc = min(pp, key=lambda e: abs(math.log(e.bpp / target)))
        if shown and shown[-1][subject].nbytes == enc.nbytes:
            continue  # a small image: both targets gave the same file
        # a copy: the curve's points drop their pixels below
        enc = Encoding(**{**enc.__dict__, "ssim": metrics.ssim(image, enc.image) if math.isnan(enc.ssim)
                          else enc.ssim})
        entry = {"target_bpp": target, subject: enc}
        for ref in PICTURE_PEERS:
            entry[ref] = _largest_under(meter, ref, enc.nbytes, curves[ref]) if ref in methods else None
        shown.append(entry)
    for e in pp:
        e.image = None  # the shown ones keep theirs in ``shown``
    for m in curves:
        curves[m] = sorted(curves[m], key=lambda e: (e.bpp, e.setting))
    crop = _detail_crop(image, max(32, round(min(image.shape[:2]) / 3.2)))
    return RDResult(methods=methods, curves=curves, shown=shown, shape=tuple(image.shape[:2]), region=region,
                    crop=crop,
                    seconds=seconds, ssim_measured=bool(ssim), notes=notes)
