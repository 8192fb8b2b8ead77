"""The report's result types: what the study, the rate-distortion section and the explorer measured.

Plain dataclasses holding numbers (and the few decoded images the pictures
need), each with ``to_dict`` for ``metrics.json``. The computations are in
``_study.py``, ``_rd.py`` and ``_explorer.py``; the sections that show them
in ``_sections.py``, ``_rd_section.py`` and ``_explorer_section.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import rd
from .._json import json_safe
from ..metrics import bits_per_pixel

__all__ = [
    "BD_RANGE",
    "RD_BPPS",
    "SHOW_BPPS",
    "Encoding",
    "Explorer",
    "KMeansResult",
    "MethodExplorer",
    "PCAResult",
    "PeerPoint",
    "RDResult",
    "Setting",
    "StudyResult",
]

#: Rates (bits per pixel) of the report's PSNR table.
RD_BPPS = (0.25, 0.5, 1.0, 2.0)
#: Rates of the subject's pictures (about 0.25 and 1 bpp).
SHOW_BPPS = (0.25, 1.0)
#: BD-rate interval (bits per pixel).
BD_RANGE = (0.25, 2.0)
#: The Pillow peers shown beside the subject's pictures at the same bytes.
PICTURE_PEERS = ("jpeg", "webp")
#: The reference of BD-rates and of the comparison.
REFERENCE = "jpeg"


#: A table rate with no measured file within 15 % whose nearest files differ
#: by more than this factor in rate gets up to two files in between; a gap
#: left is reported, as the value there is interpolated between distant
#: files. Tightest for the subject; loose for the other codecs (the study's
#: methods), which trail by several dB.
GAP_RATIO = {"subject": 1.35, "peer": 1.5, "other": 2.2}
_NEAR = 0.15  # |log(bpp / rate)| below which a file counts as at the rate


def bracket(points, bpp):
    """The measured files just below and just above ``bpp`` (None where missing)."""
    below = [e for e in points if e.bpp <= bpp]
    above = [e for e in points if e.bpp >= bpp]
    return (max(below, key=lambda e: e.bpp) if below else None,
            min(above, key=lambda e: e.bpp) if above else None)



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
    explorer : Explorer or None
        Every slider position of the explorer (None when skipped).
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
    explorer: Explorer | None = field(default=None, repr=False)

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
            subject = rd.method_facts(self.rd.subject)
            e = shown[subject.name]
            q = (e.rmse, e.psnr, e.ssim)
            rows.append(_row(subject.label, f"{subject.rate_label} {e.setting:g} (~{shown['target_bpp']:g} bpp)",
                             e.nbytes, n, q, e.nbytes, q,
                             "the real .imc file: learned patch basis + range-coded coefficients"))
            for ref in PICTURE_PEERS:
                r = shown.get(ref)
                if r is not None:
                    label = rd.method_facts(ref).label
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
        if self.explorer is not None:
            out["explorer"] = self.explorer.to_dict()
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


@dataclass
class Encoding:
    """One real file, decoded and measured.

    ``setting`` is the value of the method's rate knob (quality, n or K);
    ``image`` the decoded pixels (kept only for the pictures); ``params``
    what an ``.imc`` file's header says the encoder chose (None for Pillow's).
    """

    method: str
    setting: float
    nbytes: int
    bpp: float
    rmse: float
    psnr: float
    ssim: float
    image: np.ndarray | None = field(default=None, repr=False)
    params: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = {"method": self.method, rd.method_facts(self.method).rate_label: self.setting, "bytes": self.nbytes,
               "bpp": self.bpp, "rmse": self.rmse, "psnr": self.psnr, "ssim": self.ssim}
        if self.params is not None:
            out["params"] = self.params
        return out


@dataclass
class RDResult:
    """Rate-distortion of the report's image, every method measured alike.

    Attributes
    ----------
    methods : list of str
        Methods measured, imcompress's first; the first is the subject (the
        method of the pictures, compared with JPEG).
    curves : dict of str to list of Encoding
        Every measured point, sorted by bits per pixel.
    shown : list of dict
        For each rate of :data:`SHOW_BPPS`: ``{"target_bpp", subject,
        "jpeg", "webp"}``, the last three :class:`Encoding` with decoded images
        (JPEG and WebP: the largest file not above the subject's file; None
        when the method is absent or cannot get that small).
    shape : tuple of int
        ``(H, W)`` of the image measured: the whole image, or its central
        region when it has more than ``max_pixels``.
    region : tuple of int
        ``(top, left, H, W)`` of the measured region in the image.
    crop : tuple of int
        ``(top, left, size)`` of the detailed square shown in the pictures,
        in the measured region.
    seconds : dict of str to float
        Encode + decode + measure time per method, on this machine.
    ssim_measured : bool
    notes : list of str
    """

    methods: list
    curves: dict = field(repr=False)
    shown: list = field(repr=False)
    shape: tuple
    region: tuple
    crop: tuple
    seconds: dict
    ssim_measured: bool = True
    notes: list = field(default_factory=list)

    @property
    def subject(self) -> str:
        """The method the section is about (the first measured)."""
        return self.methods[0]

    @property
    def ssim_methods(self) -> list:
        """Methods whose curves carry SSIM: the subject and the peers."""
        return [m for m in self.methods if m == self.subject or m in rd.PEERS]

    def gap_ratio(self, method) -> float:
        """See :data:`GAP_RATIO`."""
        if method == self.subject:
            return GAP_RATIO["subject"]
        return GAP_RATIO["peer" if method in rd.PEERS else "other"]

    def measured(self, image) -> np.ndarray:
        """The part of ``image`` that was measured (all of it unless it was large)."""
        top, left, h, w = self.region
        return image[top:top + h, left:left + w]

    def points(self, method) -> np.ndarray:
        """(n, 4) array of bpp, PSNR, SSIM, bytes: the format of :func:`imcompress.rd.rd_curves`."""
        rows = [(e.bpp, e.psnr, e.ssim, e.nbytes) for e in self.curves[method]]
        return np.array(rows, dtype=np.float64).reshape(-1, 4)

    def as_rd_data(self, name: str = "image") -> dict:
        """The curves in :func:`imcompress.rd.rd_curves`'s format, for :func:`imcompress.rd.plot_rd`."""
        return {"images": {name: tuple(self.shape)}, "methods": {m: {name: self.points(m)} for m in self.methods},
                "seconds": dict(self.seconds)}

    def psnr_at(self, method, bpp) -> float:
        """PSNR of ``method`` at ``bpp`` (PCHIP in log-rate); NaN outside its measured range."""
        return rd.psnr_at(self.points(method), bpp)

    def ssim_at(self, method, bpp) -> float:
        return rd.ssim_at(self.points(method), bpp) if self.ssim_measured else float("nan")

    def gaps(self) -> list:
        """``(method, bpp, below, above)`` for each table rate interpolated between
        files more than :data:`GAP_RATIO` apart in rate, none of them within 15 %."""
        out = []
        for m in self.methods:
            for b in RD_BPPS:
                lo, hi = bracket(self.curves[m], b)
                if (lo is not None and hi is not None and hi.bpp > self.gap_ratio(m) * lo.bpp
                        and all(abs(math.log(e.bpp / b)) >= _NEAR for e in self.curves[m])):
                    out.append((m, b, lo.bpp, hi.bpp))
        return out

    def bd_rate(self, method, reference=REFERENCE) -> float:
        """Bjøntegaard delta rate of ``method`` against ``reference`` over :data:`BD_RANGE`, in percent."""
        if method not in self.curves or reference not in self.curves:
            return float("nan")
        return rd.bd_rate(self.points(reference), self.points(method), bpp_range=BD_RANGE)

    def to_dict(self) -> dict:
        """``{"pca_patch": ..., "rate_distortion": ...}`` for metrics.json (may hold NaN: see json_safe)."""
        shown = []
        for s in self.shown:
            entry = {"target_bpp": s["target_bpp"]}
            for m in (self.subject, *PICTURE_PEERS):
                entry[m.replace("-", "_")] = None if s.get(m) is None else s[m].to_dict()
            shown.append(entry)
        keys = {f"{b:g}": b for b in RD_BPPS}
        return {
            self.subject.replace("-", "_"): {
                "encodings": shown,
                "crop": {"top": self.crop[0], "left": self.crop[1], "size": self.crop[2]},
                "measured_region": dict(zip(("top", "left", "height", "width"), self.region)),
                "rule": f"JPEG and WebP: the largest file not above the {self.subject} file (Pillow)",
            },
            "rate_distortion": {
                "methods": list(self.methods),
                "bpps": list(RD_BPPS),
                "psnr_at": {m: {k: self.psnr_at(m, b) for k, b in keys.items()} for m in self.methods},
                "ssim_at": {m: {k: self.ssim_at(m, b) for k, b in keys.items()} for m in self.methods},
                "bd_rate_vs_jpeg_percent": {m: self.bd_rate(m) for m in self.methods if m != REFERENCE},
                "bd_range_bpp": list(BD_RANGE),
                "interpolated_over_gaps": [{"method": m, "bpp": b, "file_below_bpp": lo, "file_above_bpp": hi}
                                           for m, b, lo, hi in self.gaps()],
                "curves": {m: [e.to_dict() for e in self.curves[m]] for m in self.methods},
                "seconds": dict(self.seconds),
                "pillow": _pillow_version(),
                "notes": list(self.notes),
            },
        }


def _pillow_version() -> str:
    import PIL

    return PIL.__version__


@dataclass(frozen=True)
class Setting:
    """One slider position, measured on its real file.

    ``image`` is the decoded file (what the preview shows); ``explain`` the
    codec's :meth:`~imcompress.codecs.Codec.explain` of it.
    """

    value: float
    text: str
    nbytes: int
    bpp: float
    rmse: float
    psnr: float
    ssim: float
    explain: dict
    image: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"value": self.value, "text": self.text, "bytes": self.nbytes, "bpp": self.bpp,
                "rmse": self.rmse, "psnr": self.psnr, "ssim": self.ssim, **self.explain}


@dataclass(frozen=True)
class MethodExplorer:
    """A method's slider and the settings measured at its positions."""

    method: str
    label: str
    parameter: str
    slider_label: str
    settings: tuple

    def to_dict(self) -> dict:
        return {"method": self.method, "label": self.label, "parameter": self.parameter,
                "slider_label": self.slider_label, "settings": [s.to_dict() for s in self.settings]}


@dataclass(frozen=True)
class PeerPoint:
    """A file of a Pillow peer (JPEG, WebP, AVIF) on the explorer's chart."""

    quality: float
    nbytes: int
    bpp: float
    psnr: float
    ssim: float

    def to_dict(self) -> dict:
        return {"quality": self.quality, "bytes": self.nbytes, "bpp": self.bpp, "psnr": self.psnr,
                "ssim": self.ssim}


@dataclass
class Explorer:
    """Everything the explorer section shows, for ``metrics.json["explorer"]`` and the page.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
        The image explored: the whole image, or its central region when it
        is larger than the rate-distortion section's limit (``region``).
    region : tuple of int
        ``(top, left, H, W)`` of ``image`` in the report's image.
    methods : list of MethodExplorer
    peers : dict of str to list of PeerPoint
        The references of the chart, by method name.
    notes : list of str
    """

    image: np.ndarray = field(repr=False)
    region: tuple
    methods: list
    peers: dict
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "region": dict(zip(("top", "left", "height", "width"), self.region)),
            "methods": [m.to_dict() for m in self.methods],
            "peers": {name: {"label": rd.method_facts(name).label, "points": [p.to_dict() for p in pts]}
                      for name, pts in self.peers.items()},
            "notes": list(self.notes),
        }
