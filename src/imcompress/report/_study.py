"""The study, recomputed: every number of the report, without any plotting.

:func:`study` runs the two methods of the study on one image (a K-means
sweep with its elbow, row PCA at two variance thresholds), measures each
result against the original in float64, and counts the bytes each method
truly needs. It also recomputes the study's three wrong numbers on the same
image, so the report can show where and why they differ.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .._errors import InputError, UsageError
from .._validation import check_image, to_uint8
from ..kmeans import KMeansQuantizer, kmeans_sweep
from ..metrics import psnr, rmse, ssim, unique_colors
from ..pca_rows import RowPCA
from ._explorer import explore, slider_methods
from ._parse import parse_ks, parse_variances
from ._rd import default_methods
from ._rd import rate_distortion as _rate_distortion
from ._results import KMeansResult, PCAResult, StudyResult

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_SHOW_KS",
    "DEFAULT_VARIANCES",
    "EXPLORER_METHODS",
    "RD_METHODS",
    "kmeans_stored_bytes",
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
#: The explorer's methods, in the study's order (any other codec with a slider follows).
EXPLORER_METHODS = ("kmeans", "pca-rows", "pca-patch")


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
    anchors: bool = False,
    explorer: bool = True,
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
    anchors : bool, default=False
        Also put the anchor codecs of the ``bench`` extra on those curves when
        installed (libaom AVIF at speed 2 in 4:4:4, x265 HEIC 4:4:4, JPEG XL,
        JPEG 2000: :data:`imcompress.rd.PEERS`); libaom alone takes about
        half a minute on a 0.25 MP image.
    explorer : bool, default=True
        Also write every slider position of every method with a slider
        (:func:`~imcompress.report._explorer.explore`; the K of kmeans are
        ``ks``) for the report's explorer (needs ``codecs=True``).
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
            rd_result = _rate_distortion(image, methods=default_methods(RD_METHODS, anchors=anchors), random_state=random_state,
                                         progress=say)
            notes.extend(rd_result.notes)
        else:
            notes.append("the pca-patch codec is not installed: no rate-distortion section")

    explored = None
    if codecs and explorer:
        order = [m for m in EXPLORER_METHODS if m in slider_methods()]
        order += [m for m in slider_methods() if m not in order]
        explored = explore(image, methods=order, values={"kmeans": list(sweep.ks)}, random_state=random_state,
                           rd_result=rd_result, progress=say)
        notes.extend(explored.notes)

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
        explorer=explored,
    )

