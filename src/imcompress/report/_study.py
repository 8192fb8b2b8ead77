"""The study, recomputed: every number of the report, without any plotting.

:func:`study` runs the two methods of the study on one image (a K-means
sweep with its elbow, row PCA at two variance thresholds), measures each
result against the original in float64, and counts the bytes each method
truly needs. It also recomputes the study's three wrong numbers on the same
image, so the report can show where and why they differ.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from .._errors import InputError, UsageError
from .._json import json_safe
from .._validation import check_image, to_uint8
from ..kmeans import KMeansQuantizer, kmeans_sweep
from ..metrics import psnr, rmse, ssim, unique_colors
from ..metrics import bits_per_pixel
from ..pca_rows import RowPCA
from ..rd import method_facts as rd_facts
from ._rd import PICTURE_PEERS, RDResult, default_methods
from ._rd import rate_distortion as _rate_distortion

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_SHOW_KS",
    "DEFAULT_VARIANCES",
    "KMeansResult",
    "PCAResult",
    "StudyResult",
    "kmeans_stored_bytes",
    "parse_ks",
    "parse_variances",
    "study",
    "wrapped_uint8_rmse",
]

#: The K swept by default: 2, 4, ..., 20.
DEFAULT_KS = tuple(range(2, 21, 2))
#: The K whose reconstructions the study showed.
DEFAULT_SHOW_KS = (2, 4, 6)
#: The study's explained-variance thresholds.
DEFAULT_VARIANCES = (0.90, 0.95)
#: The methods of the rate-distortion section, its subject first (the study is about these three).
RD_METHODS = ("pca-patch", "pca-rows", "kmeans")


# -- parsing of user-given lists ---------------------------------------------------

_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def parse_ks(text) -> list:
    """Parse a list of K: ``"2..20"``, ``"2..20:2"`` (step 2), ``"2,4,6"`` or a mix.

    Returns the sorted distinct values. Raises :class:`UsageError` for bad
    syntax, empty ranges and K < 2 (the upper bound depends on the image and
    is checked by :func:`study`).

    Examples
    --------
    >>> parse_ks("2..10:4,16")
    [2, 6, 10, 16]
    """
    if not isinstance(text, str):
        values = [int(k) for k in text]
    else:
        values = []
        for part in text.split(","):
            if not part.strip():
                continue
            m = _RANGE.match(part)
            if m:
                lo, hi, step = int(m[1]), int(m[2]), int(m[3] or 1)
                if step < 1 or hi < lo:
                    raise UsageError(f"ks range {part.strip()!r} is empty; write it as LOW..HIGH[:STEP]")
                values.extend(range(lo, hi + 1, step))
            elif part.strip().lstrip("-").isdigit():
                values.append(int(part))
            else:
                raise UsageError(
                    f"ks={text!r}: cannot read {part.strip()!r}; use a list like 2,4,6 or a range like 2..20:2"
                )
    if not values:
        raise UsageError("ks is empty; give at least one K, e.g. 2..20:2")
    bad = [k for k in values if k < 2]
    if bad:
        raise UsageError(f"K={bad[0]} should be >= 2 (a palette needs at least 2 colours)")
    return sorted(set(values))


def parse_variances(text) -> list:
    """Parse explained-variance thresholds, e.g. ``"0.9,0.95"``; each in (0, 1]."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UsageError(f"variances={text!r} should be numbers in (0, 1], e.g. 0.9,0.95") from None
    else:
        values = [float(v) for v in text]
    if not values:
        raise UsageError("variances is empty; give at least one threshold, e.g. 0.9,0.95")
    for v in values:
        if not (0.0 < v <= 1.0) or math.isnan(v):
            raise UsageError(f"variance={v} should be in (0, 1]")
    return sorted(set(values))


# -- the study's wrong numbers -----------------------------------------------------

def wrapped_uint8_rmse(reference, test) -> float:
    """The study's RMSE: ``sqrt(mean((a - b) ** 2))`` evaluated in uint8.

    Both the difference and its square wrap around modulo 256, so the result
    is meaningless (6-means on the study's photo gives 8.32 instead of the
    true 12.65). Kept only to show the error; use :func:`imcompress.metrics.rmse`.
    """
    a = np.asarray(reference, dtype=np.uint8)
    b = np.asarray(test, dtype=np.uint8)
    with np.errstate(over="ignore"):
        wrapped = (a - b) ** 2  # uint8 arithmetic on purpose: the study's bug
    return float(np.sqrt(np.mean(wrapped)))


def kmeans_stored_bytes(k: int, n_pixels: int, channels: int = 3) -> int:
    """Bytes a K-colour image truly needs without entropy coding.

    The palette (``k * channels`` bytes) plus one index per pixel packed at
    ``ceil(log2 k)`` bits.
    """
    bits = max(1, math.ceil(math.log2(k)))
    return k * channels + math.ceil(n_pixels * bits / 8)


# -- results -------------------------------------------------------------------------

@dataclass
class KMeansResult:
    """One K of the sweep, measured.

    ``image`` is the quantized image for the K shown in the report, None for
    the others (so a sweep over a large photo does not hold every result).
    ``stored_bytes`` is palette + packed indices; ``imc_bytes`` the size of
    the real ``.imc`` file (None when the codec is not available) and
    ``imc_rmse`` the error of the decoded file.
    """

    k: int
    inertia: float
    image: np.ndarray | None = field(repr=False)  # kept for the shown K only (memory)
    rmse: float
    psnr: float
    ssim: float
    unique_colors: int
    stored_bytes: int
    rmse_wrapped: float
    imc_bytes: int | None = None
    imc_rmse: float | None = None
    imc_psnr: float | None = None
    imc_ssim: float | None = None

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "inertia": self.inertia,
            "rmse": self.rmse,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "unique_colors": self.unique_colors,
            "stored_bytes": self.stored_bytes,
            "rmse_uint8_wrapped": self.rmse_wrapped,
            "imc_bytes": self.imc_bytes,
            "imc_rmse": self.imc_rmse,
            "imc_psnr": self.imc_psnr,
            "imc_ssim": self.imc_ssim,
        }


@dataclass
class PCAResult:
    """Row PCA at one variance threshold, measured.

    ``image`` is the reconstruction rounded and clipped (correct);
    ``image_minmax`` the study's per-channel min-max rescale of the same
    values. ``stored_values`` counts scores + components + means per channel;
    ``stored_bytes`` stores them as float32; ``scores_values`` is what the
    study counted (scores only).
    """

    variance: float
    n_components: tuple
    stored_values: tuple
    scores_values: tuple
    image: np.ndarray = field(repr=False)
    image_minmax: np.ndarray = field(repr=False)
    scores: list = field(repr=False)
    rmse: float
    psnr: float
    ssim: float
    rmse_minmax: float
    psnr_minmax: float
    ssim_minmax: float
    explained: tuple
    imc_bytes: int | None = None
    imc_rmse: float | None = None
    imc_psnr: float | None = None
    imc_ssim: float | None = None

    @property
    def stored_bytes(self) -> int:
        return 4 * sum(self.stored_values)

    @property
    def scores_bytes(self) -> int:
        return 4 * sum(self.scores_values)

    def to_dict(self) -> dict:
        return {
            "variance": self.variance,
            "n_components": list(self.n_components),
            "explained_variance": list(self.explained),
            "rmse": self.rmse,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "stored_values": sum(self.stored_values),
            "stored_values_per_channel": list(self.stored_values),
            "stored_bytes_float32": self.stored_bytes,
            "scores_only_values": sum(self.scores_values),
            "scores_only_values_per_channel": list(self.scores_values),
            "rmse_minmax": self.rmse_minmax,
            "psnr_minmax": self.psnr_minmax,
            "ssim_minmax": self.ssim_minmax,
            "imc_bytes": self.imc_bytes,
            "imc_rmse": self.imc_rmse,
            "imc_psnr": self.imc_psnr,
            "imc_ssim": self.imc_ssim,
        }


@dataclass
class StudyResult:
    """Everything the report shows, as numbers and arrays.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    source : str
        Where the image came from.
    file_bytes : int or None
        Size of the source file (the reference the methods are compared to).
    unique_colors : int
    ks : list of int
        The K of the sweep.
    inertias : list of float
    elbow_k : int or None
    kmeans : dict of int to KMeansResult
        Every K of the sweep, plus the shown K and the elbow.
    show_ks : list of int
        The K whose reconstructions are shown (study's 2, 4, 6 and the elbow).
    explained_variance_ratio : list of 3 ndarray
        Row-PCA spectrum per channel.
    pca : list of PCAResult
        One per variance threshold, increasing.
    notes : list of str
        Warnings met while computing (e.g. a codec that failed).
    extra : dict
        Free room for sections added later (see ``write_report``).
    rd : RDResult or None
        Patch PCA and the rate-distortion comparison (None when skipped).
    """

    image: np.ndarray = field(repr=False)
    source: str
    file_bytes: int | None
    unique_colors: int
    ks: list
    inertias: list
    elbow_k: int | None
    kmeans: dict = field(repr=False)
    show_ks: list
    explained_variance_ratio: list = field(repr=False)
    pca: list = field(repr=False)
    random_state: int = 0
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict, repr=False)
    rd: RDResult | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple:
        return tuple(self.image.shape)

    @property
    def raw_bytes(self) -> int:
        return int(self.image.size)

    @property
    def comparison_k(self) -> int:
        """The K of the closing comparison: the elbow, else the largest shown K."""
        return self.elbow_k if self.elbow_k is not None else max(self.show_ks)

    @property
    def study_k(self) -> int | None:
        """K = 6 when present (the study's worked example), else the comparison K."""
        return 6 if 6 in self.kmeans else self.comparison_k

    def methods_table(self) -> list:
        """One row per method: what it stores and how close it comes.

        Rows are dicts with keys ``method``, ``setting``, ``bytes`` (the
        stored-size estimate, everything needed to decode, no entropy coding),
        ``bpp``, ``rmse``, ``psnr``, ``ssim`` (of the reconstruction), and
        ``imc_bytes``, ``imc_bpp``, ``imc_rmse``, ``imc_psnr``, ``imc_ssim``
        (of the real ``.imc`` file decoded, None when its codec is absent),
        and ``note``.
        """
        n = self.image.shape
        rows = []
        if self.file_bytes is not None:
            rows.append(_row("original file", "as given", self.file_bytes, n, (0.0, math.inf, 1.0),
                             None, None, "the reference: bytes of the source file"))
        rows.append(_row("raw pixels", "uint8 RGB", self.raw_bytes, n, (0.0, math.inf, 1.0), None, None,
                         "H x W x 3 bytes"))
        for k in self.show_ks:
            r = self.kmeans[k]
            tag = " (elbow)" if k == self.elbow_k else ""
            rows.append(_row("K-means", f"K={k}{tag}", r.stored_bytes, n, (r.rmse, r.psnr, r.ssim),
                             r.imc_bytes, (r.imc_rmse, r.imc_psnr, r.imc_ssim), "palette + packed indices"))
        for p in self.pca:
            rows.append(_row("row PCA", f"{p.variance:.0%}: n={'/'.join(map(str, p.n_components))}",
                             p.stored_bytes, n, (p.rmse, p.psnr, p.ssim),
                             p.imc_bytes, (p.imc_rmse, p.imc_psnr, p.imc_ssim),
                             "scores + components + means, float32"))
        for shown in self.rd.shown if self.rd is not None else ():
            subject = rd_facts(self.rd.subject)
            e = shown[subject.name]
            q = (e.rmse, e.psnr, e.ssim)
            rows.append(_row(subject.label, f"{subject.rate_label} {e.setting:g} (~{shown['target_bpp']:g} bpp)",
                             e.nbytes, n, q, e.nbytes, q,
                             "the real .imc file: learned patch basis + range-coded coefficients"))
            for ref in PICTURE_PEERS:
                r = shown.get(ref)
                if r is not None:
                    label = rd_facts(ref).label
                    rows.append(_row(f"{label} (Pillow)", f"quality {r.setting:g}", r.nbytes, n,
                                     (r.rmse, r.psnr, r.ssim), None, None,
                                     f"the largest {label} file not above the {subject.label} file above"))
        return rows

    def to_dict(self) -> dict:
        """All numbers, JSON-ready (NaN and infinity become None)."""
        h, w, c = self.image.shape
        sweep = [self.kmeans[k].to_dict() for k in self.ks]
        shown = [self.kmeans[k].to_dict() for k in self.show_ks]
        out = {
            "source": self.source,
            "image": {
                "height": h,
                "width": w,
                "channels": c,
                "unique_colors": self.unique_colors,
                "file_bytes": self.file_bytes,
                "raw_bytes": self.raw_bytes,
            },
            "kmeans": {
                "random_state": self.random_state,
                "sweep": sweep,
                "elbow_k": self.elbow_k,
                "shown": shown,
            },
            "pca_rows": {
                "thresholds": [p.to_dict() for p in self.pca],
                "rule": "n = argmax(cumsum(explained_variance_ratio) > t), per channel",
            },
            "methods": self.methods_table(),
            "corrections": self.corrections(),
            "notes": list(self.notes),
        }
        if self.rd is not None:
            out.update(self.rd.to_dict())  # "pca_patch" and "rate_distortion"
        return json_safe(out)

    def corrections(self) -> dict:
        """The study's three wrong numbers recomputed on this image, beside the right ones."""
        k = self.study_k
        km = self.kmeans[k]
        top = self.pca[-1]
        return {
            "rmse_uint8_wraparound": {
                "k": k,
                "wrapped": km.rmse_wrapped,
                "true": km.rmse,
                "study_photo": {"k": 6, "wrapped": 8.32, "true": 12.65},
            },
            "pca_rescale": {
                "variance": top.variance,
                "clip": {"rmse": top.rmse, "psnr": top.psnr, "ssim": top.ssim},
                "minmax": {"rmse": top.rmse_minmax, "psnr": top.psnr_minmax, "ssim": top.ssim_minmax},
            },
            "pca_size": {
                "variance": top.variance,
                "scores_only_values": sum(top.scores_values),
                "true_values": sum(top.stored_values),
                "true_bytes_float32": top.stored_bytes,
                "original_file_bytes": self.file_bytes,
                "raw_bytes": self.raw_bytes,
            },
        }


def _row(method, setting, nbytes, shape, quality, imc_bytes, imc_quality, note):
    imc_quality = imc_quality or (None, None, None)
    return {
        "method": method,
        "setting": setting,
        "bytes": int(nbytes),
        "bpp": bits_per_pixel(nbytes, shape),
        "rmse": quality[0],
        "psnr": quality[1],
        "ssim": quality[2],
        "imc_bytes": None if imc_bytes is None else int(imc_bytes),
        "imc_bpp": None if imc_bytes is None else bits_per_pixel(imc_bytes, shape),
        "imc_rmse": imc_quality[0],
        "imc_psnr": imc_quality[1],
        "imc_ssim": imc_quality[2],
        "note": note,
    }


# -- the computation -------------------------------------------------------------

def _check_image(image) -> np.ndarray:
    arr = check_image(image, channels=3, hint="load it with imcompress.load_image")
    if arr.shape[0] < 2 or arr.shape[1] < 2:  # the user's image, not the caller's code: an input error
        raise InputError(f"image of shape {arr.shape} is too small for the study; it needs at least 2 x 2 pixels")
    return arr


def _codec_bytes(image, method, params, notes):
    """Size and decoded quality of the real ``.imc`` file, if the codec exists."""
    from ..codecs import available_methods, compress_to_target

    if method not in available_methods():
        return None, None, None, None
    try:
        res = compress_to_target(image, method, **params)
        data, decoded = res.data, res.decoded
    except Exception as exc:  # noqa: BLE001 - a report must not die for one codec
        notes.append(f"codec {method!r} with {params} failed: {type(exc).__name__}: {exc}")
        return None, None, None, None
    return len(data), rmse(image, decoded), psnr(image, decoded), ssim(image, decoded)


def study(
    image,
    *,
    ks=None,
    show_ks=DEFAULT_SHOW_KS,
    variances=DEFAULT_VARIANCES,
    random_state: int = 0,
    source: str = "<array>",
    file_bytes: int | None = None,
    codecs: bool = True,
    rd: bool = True,
    progress: bool = False,
) -> StudyResult:
    """Run the study on one image and measure everything.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    ks : iterable of int or str, optional
        The K of the sweep (a string is read by :func:`parse_ks`). Each must be
        >= 2 and at most the number of distinct colours. Default: 2, 4, ..., 20,
        leaving out K above the number of distinct colours.
    show_ks : iterable of int, default=(2, 4, 6)
        K whose reconstructions are shown, besides the elbow; K above the
        number of distinct colours are left out.
    variances : iterable of float, default=(0.90, 0.95)
        Row-PCA explained-variance thresholds, each in (0, 1].
    random_state : int, default=0
    source : str
        Printable name of the image's origin.
    file_bytes : int, optional
        Size of the source file, shown as the reference size.
    codecs : bool, default=True
        Also write the real ``.imc`` files in memory (when the ``kmeans`` and
        ``pca-rows`` codecs are registered) and measure their size.
    rd : bool, default=True
        Also measure patch PCA (``pca-patch``) and the rate-distortion curves
        of every method beside Pillow's JPEG, WebP and AVIF
        (:func:`~imcompress.report.rate_distortion`; needs ``codecs=True``).
        About as long as the rest of the study.
    progress : bool, default=False
        Show progress on stderr.

    Returns
    -------
    StudyResult

    Examples
    --------
    >>> from imcompress import sample_image
    >>> from imcompress.report import study
    >>> r = study(sample_image()[:64, :64], ks=[2, 4, 6, 8], codecs=False)
    >>> r.kmeans[4].unique_colors
    4
    """
    image = _check_image(image)
    variances = parse_variances(variances)
    n_distinct = unique_colors(image)
    if n_distinct < 2:
        raise UsageError("the image has a single colour; K-means needs at least 2 distinct colours")
    if ks is None:
        ks = [k for k in DEFAULT_KS if k <= n_distinct]
    ks = parse_ks(ks)
    too_many = [k for k in ks if k > n_distinct]
    if too_many:
        raise UsageError(
            f"n_colors={too_many[0]} exceeds the {n_distinct} distinct colours in the image; "
            f"use K <= {n_distinct}"
        )
    notes: list = []

    def say(msg):
        if progress:
            print(f"imcompress: {msg}", file=sys.stderr, flush=True)

    say(f"K-means sweep over K = {', '.join(map(str, ks))}")
    sweep = kmeans_sweep(image, ks, random_state=random_state, progress=False)
    quantizers = dict(zip(sweep.ks, sweep.quantizers))
    elbow = sweep.elbow_k
    shown = [k for k in sorted(set(show_ks)) if 2 <= k <= n_distinct]
    if elbow is not None and elbow not in shown:
        shown.append(elbow)
    if not shown:
        shown = [ks[0]]
    for k in shown:
        if k not in quantizers:
            quantizers[k] = KMeansQuantizer(k, random_state=random_state).fit(image)

    say("measuring K-means reconstructions")
    kmeans = {}
    for k in sorted(quantizers):
        q = quantizers[k]
        rec = q.quantize(image)
        imc = (None, None, None, None)
        if codecs and k in shown:
            imc = _codec_bytes(image, "kmeans", {"n_colors": k, "random_state": random_state}, notes)
        kmeans[k] = KMeansResult(
            k=k,
            inertia=float(q.inertia_),
            image=rec if k in shown else None,
            rmse=rmse(image, rec),
            psnr=psnr(image, rec),
            ssim=ssim(image, rec),
            unique_colors=unique_colors(rec),
            stored_bytes=kmeans_stored_bytes(k, image.shape[0] * image.shape[1]),
            rmse_wrapped=wrapped_uint8_rmse(image, rec),
            imc_bytes=imc[0],
            imc_rmse=imc[1],
            imc_psnr=imc[2],
            imc_ssim=imc[3],
        )

    say("row PCA per channel")
    h = image.shape[0]
    pcas = []
    base = None
    for t in variances:
        # one SVD per channel for all thresholds
        if base is None:
            base = pca = RowPCA(variance=t).fit(image)
        else:
            pca = base.select(variance=t)
        scores = pca.transform(image)
        raw = pca.inverse_transform(scores)
        rec = to_uint8(raw)
        rec_mm = to_uint8(raw, in_range="image")  # the study's per-channel min-max rescale
        explained = tuple(
            float(np.sum(pca.explained_variance_ratio_[c][: pca.n_components_[c]])) for c in range(3)
        )
        imc = _codec_bytes(image, "pca-rows", {"variance": t}, notes) if codecs else (None,) * 4
        pcas.append(
            PCAResult(
                variance=t,
                n_components=pca.n_components_,
                stored_values=pca.stored_values_,
                scores_values=tuple(h * n for n in pca.n_components_),
                image=rec,
                image_minmax=rec_mm,
                scores=scores,
                rmse=rmse(image, rec),
                psnr=psnr(image, rec),
                ssim=ssim(image, rec),
                rmse_minmax=rmse(image, rec_mm),
                psnr_minmax=psnr(image, rec_mm),
                ssim_minmax=ssim(image, rec_mm),
                explained=explained,
                imc_bytes=imc[0],
                imc_rmse=imc[1],
                imc_psnr=imc[2],
                imc_ssim=imc[3],
            )
        )

    rd_result = None
    if codecs and rd:
        from ..codecs import available_methods

        if RD_METHODS[0] in available_methods():
            rd_result = _rate_distortion(image, methods=default_methods(RD_METHODS), random_state=random_state,
                                         progress=say)
            notes.extend(rd_result.notes)
        else:
            notes.append("the pca-patch codec is not installed: no rate-distortion section")

    return StudyResult(
        image=image,
        source=str(source),
        file_bytes=None if file_bytes is None else int(file_bytes),
        unique_colors=n_distinct,
        ks=list(sweep.ks),
        inertias=[float(v) for v in sweep.inertias],
        elbow_k=elbow,
        kmeans=kmeans,
        show_ks=sorted(shown),
        explained_variance_ratio=[np.asarray(r) for r in base.explained_variance_ratio_],
        pca=pcas,
        random_state=int(random_state),
        notes=notes,
        rd=rd_result,
    )

