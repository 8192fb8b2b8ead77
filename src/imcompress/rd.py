"""Rate-distortion curves: PSNR and SSIM against bits per pixel, for the
project's methods and for Pillow's JPEG, WebP and AVIF, measured alike.

Every point is a real file: the bytes of everything needed to decode it,
decoded and compared with the original in float64.

Examples
--------
>>> import imcompress
>>> from imcompress.rd import rd_curves, psnr_at
>>> img = imcompress.sample_image()[:64, :64]
>>> data = rd_curves([("crop", img)], ["pca-patch", "jpeg"], n_points=4, ssim=False)
>>> sorted(data["methods"])
['jpeg', 'pca-patch']
>>> psnr_at(data["methods"]["pca-patch"]["crop"], 1.0) > psnr_at(data["methods"]["jpeg"]["crop"], 1.0)
True
"""

from __future__ import annotations

import inspect
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from ._errors import ImcompressError, UsageError
from ._validation import check_image

__all__ = [
    "PEERS",
    "PILLOW_METHODS",
    "MethodFacts",
    "available_peers",
    "peer_encode",
    "Peer",
    "method_facts",
    "make_codec",
    "rd_curves",
    "curve_psnr_at",
    "psnr_at",
    "ssim_at",
    "bd_rate",
    "mean_curve",
    "plot_rd",
]

@dataclass(frozen=True)
class Peer:
    """A reference codec, described as data (peers are not codec plugins).

    ``library`` says who encodes: ``"pillow"`` (``pillow_format`` with
    ``options``), ``"imagecodecs"`` (its ``pillow_format``-named encoder,
    e.g. ``avif``, with ``options``) or ``"pillow-heif"``. ``qualities`` is
    the ladder of :func:`rd_curves`, ``rate_ladder`` the report's shorter one
    (about 0.06..4 bpp on photos), ``rate_label`` what the knob is called.
    ``knob`` is the keyword the encoder takes the ladder's values by.
    ``anchor`` peers come from the ``bench`` extra and are slow (libaom at
    speed 2); the report measures them only when asked.
    """

    label: str
    pillow_format: str
    options: dict
    qualities: tuple
    rate_ladder: tuple
    feature: str  # PIL.features.check name, or the imagecodecs codec to check
    library: str = "pillow"
    rate_label: str = "quality"
    anchor: bool = False
    knob: str = "quality"


#: The reference codecs, by method name: Pillow's, then the anchors of the
#: ``bench`` extra (imagecodecs and pillow-heif), used when installed.
PEERS = {
    "jpeg": Peer("JPEG", "JPEG", {"optimize": True, "subsampling": "4:2:0"}, tuple(range(2, 96, 6)) + (98,),
                 (2, 8, 14, 26, 38, 50, 62, 74, 86, 92, 98), "jpg"),
    "webp": Peer("WebP", "WEBP", {"method": 6}, tuple(range(0, 101, 8)), (0, 8, 24, 40, 56, 72, 80, 88, 96),
                 "webp"),
    "avif": Peer("AVIF", "AVIF", {"speed": 6, "subsampling": "4:2:0"}, tuple(range(0, 101, 8)),
                 (0, 16, 32, 48, 64, 80, 96), "avif"),
    "avif-aom-s2-444": Peer("AVIF libaom s2 4:4:4", "avif", {"speed": 2, "codec": "aom", "pixelformat": "YUV444"},
                            (4, 10, 20, 32, 44, 56, 68, 80, 90, 95), (10, 44, 80, 95), "AVIF", "imagecodecs",
                            anchor=True, knob="level"),
    "heic-x265-444": Peer("HEIC x265 4:4:4", "HEIF", {"chroma": 444}, (10, 20, 32, 44, 56, 68, 80, 90),
                          (10, 44, 68, 90), "heif", "pillow-heif", anchor=True),
    "jpegxl-e7": Peer("JPEG XL e7", "jpegxl", {"effort": 7}, (0.3, 0.45, 0.6, 1.0, 1.6, 2.5, 4.0, 6.0, 9.0, 13.0, 18.0),
                      (0.45, 1.6, 6.0, 18.0), "JPEGXL", "imagecodecs", "distance", anchor=True,
                      knob="distance"),
    # OpenJPEG's level is a target PSNR in dB
    "jpeg2000": Peer("JPEG 2000", "jpeg2k", {}, (21, 23.5, 26, 29, 32, 35, 38, 41, 44, 47, 50), (23.5, 32, 41, 50),
                     "JPEG2K",
                     "imagecodecs", "target PSNR", anchor=True, knob="level"),
}


def _peer_available(peer: Peer) -> bool:
    if peer.library == "pillow":
        from PIL import features

        return bool(features.check(peer.feature))
    try:
        if peer.library == "imagecodecs":
            import imagecodecs

            return bool(getattr(imagecodecs, peer.feature).available)
        import pillow_heif  # noqa: F401

        return True
    except (ImportError, AttributeError):
        return False


def available_peers(*, anchors: bool = False) -> list:
    """The names of :data:`PEERS` installed here (the anchors only with ``anchors=True``)."""
    return [m for m, p in PEERS.items() if (anchors or not p.anchor) and _peer_available(p)]


#: ``{method: (Pillow format, save options, qualities)}``: Pillow's :data:`PEERS` as tuples.
PILLOW_METHODS = {m: (p.pillow_format, p.options, list(p.qualities)) for m, p in PEERS.items()
                  if p.library == "pillow"}

@dataclass(frozen=True)
class MethodFacts:
    """What rate-distortion code needs to know about a method, codec or peer alike."""

    name: str
    label: str
    rate_label: str
    rate_ladder: tuple
    continuous: bool
    peer: bool


def method_facts(method: str) -> MethodFacts:
    """The facts of a Pillow peer (:data:`PEERS`) or of a registered codec (its class attributes).

    Examples
    --------
    >>> method_facts("jpeg").label
    'JPEG'
    """
    if method in PEERS:
        p = PEERS[method]
        return MethodFacts(method, p.label, p.rate_label, p.rate_ladder, False, True)
    from .codecs import get_codec

    c = get_codec(method)
    return MethodFacts(method, c.display_name(), c.rate_label, tuple(c.rate_ladder), bool(c.rate_continuous),
                       False)


def make_codec(method: str, *, random_state: int = 0, **params):
    """An instance of the codec registered as ``method``, seeded when it takes ``random_state``."""
    from .codecs import get_codec

    cls = get_codec(method)
    if "random_state" in inspect.signature(cls).parameters:
        params.setdefault("random_state", random_state)
    return cls(**params)


def peer_encode(img, method, quality):
    """Encode ``img`` with the peer codec ``method`` of :data:`PEERS` and decode it.

    Returns
    -------
    n_bytes : int
        Size of the encoded file (all of it).
    decoded : ndarray of shape (H, W, 3), uint8
    """
    from PIL import Image

    peer = PEERS[method]
    if peer.library == "imagecodecs":
        import imagecodecs

        opts = dict(peer.options)
        if "pixelformat" in opts:  # named in the table, an enum member for the encoder
            opts["pixelformat"] = getattr(imagecodecs.AVIF.PIXEL_FORMAT, opts["pixelformat"])
        data = getattr(imagecodecs, f"{peer.pillow_format}_encode")(img, **{peer.knob: quality}, **opts)
        return len(data), np.asarray(getattr(imagecodecs, f"{peer.pillow_format}_decode")(data))[..., :3]
    if peer.library == "pillow-heif":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, peer.pillow_format, quality=int(quality), **peer.options)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert("RGB"))
    return len(data), out


def _pick(candidates, n):
    """About ``n`` values spread geometrically over a candidate list."""
    cands = list(candidates)
    if len(cands) <= n:
        return cands
    idx = np.unique(np.rint(np.geomspace(1, len(cands), n)).astype(int) - 1)
    return [cands[i] for i in idx]


def _parse_variant(method):
    """``"pca-patch:patch_size=4,basis=pca"`` -> ("pca-patch", {...})."""
    name, _, rest = method.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"method variant {method!r}: write options as key=value")
        try:
            params[key] = int(value)
        except ValueError:
            try:
                params[key] = float(value)
            except ValueError:
                params[key] = value
    return name, params


def _codec_points(img, method, n_points):
    from .codecs import get_codec

    name, params = _parse_variant(method)
    codec = get_codec(name)(**params)
    if codec.rate_span is not None:  # a continuous knob: evenly spread over its useful range
        values = [float(v) for v in np.linspace(*codec.rate_span, max(n_points, 2))]
    else:
        values = _pick(codec.rate_candidates(img), n_points)
    from .codecs import compress_to_target

    prepared = codec.prepare(img)  # the per-image work (colour table, decomposition), once per curve
    for v in values:
        try:
            res = compress_to_target(img, codec.with_rate(v), prepared=prepared)
        except UsageError:
            raise  # a bad option: the user's to fix
        except ImcompressError:
            continue  # a rate this method cannot produce for this image
        yield v, res.bytes, res.decoded


def _as_named(images):
    out = []
    for i, item in enumerate(images):
        if isinstance(item, tuple):
            name, img = item
        elif isinstance(item, (str, Path)):
            from .io import load_image

            name, img = Path(item).stem, load_image(item)
        else:
            name, img = f"image{i}", item
        img = check_image(img, channels=3, name=f"image {name!r}")
        out.append((str(name), img))
    return out


def rd_curves(images, methods, *, n_points: int = 12, ssim: bool = True, progress=None) -> dict:
    """Measure rate-distortion points of ``methods`` on ``images``.

    Parameters
    ----------
    images : list of (name, ndarray) pairs, arrays or paths
        RGB images, (H, W, 3) uint8.
    methods : list of str
        Registered ``imcompress`` methods (``"pca-patch"``, ``"kmeans"``...)
        and/or the peers of :data:`PEERS` (Pillow's ``"jpeg"``, ``"webp"``,
        ``"avif"``; the anchors ``"avif-aom-s2-444"``, ``"heic-x265-444"``,
        ``"jpegxl-e7"``, ``"jpeg2000"`` when installed). A method may carry
        fixed options: ``"pca-patch:patch_size=16,basis=dct"``.
    n_points : int, default=12
        Points per curve for the imcompress methods (Pillow's use fixed
        quality ladders, :data:`PEERS`).
    ssim : bool, default=True
        Also measure SSIM (slower).
    progress : callable, optional
        Called as ``progress(method, image_name)`` before each curve.

    Returns
    -------
    dict
        ``{"images": {name: (H, W)}, "methods": {method: {name: points}},
        "seconds": {method: encode+decode seconds}}`` where ``points`` is an
        array of shape (n, 4): bpp, PSNR (dB), SSIM (NaN if not measured),
        bytes; sorted by bpp.
    """
    from .codecs import available_methods

    named = _as_named(images)
    known = set(available_methods()) | set(PEERS)
    for m in methods:
        if _parse_variant(m)[0] not in known:
            raise UsageError(f"unknown method {m!r}; choose from {', '.join(sorted(known))}")
    result = {"images": {n: img.shape[:2] for n, img in named}, "methods": {}, "seconds": {}}
    for m in methods:
        per = {}
        t0 = time.perf_counter()
        for name, img in named:
            if progress is not None:
                progress(m, name)
            if m in PEERS:
                qs = PEERS[m].qualities
                pts = ((q,) + peer_encode(img, m, q) for q in qs)
            else:
                pts = _codec_points(img, m, n_points)
            rows = []
            for _, nbytes, out in pts:
                p = metrics.psnr(img, out)
                s = metrics.ssim(img, out) if ssim else float("nan")
                rows.append((metrics.bits_per_pixel(nbytes, img.shape), p, s, nbytes))
            arr = np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)
            per[name] = arr
        result["seconds"][m] = time.perf_counter() - t0
        result["methods"][m] = per
    return result


def _monotone(points, col):
    """Keep the points on the upper envelope: quality strictly rising with rate."""
    pts = points[np.isfinite(points[:, col])]
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    keep, best = [], -np.inf
    for row in pts:
        if row[col] > best + 1e-9:
            keep.append(row)
            best = row[col]
    return np.array(keep).reshape(-1, points.shape[1])


def curve_psnr_at(points, bpp, *, col: int = 1) -> float:
    """Quality (column ``col``) at ``bpp`` by piecewise cubic interpolation in
    log-rate; NaN outside the measured range."""
    from scipy.interpolate import PchipInterpolator

    pts = _monotone(np.asarray(points, dtype=np.float64), col)
    if pts.shape[0] == 0 or not (pts[0, 0] <= bpp <= pts[-1, 0]):
        return float("nan")
    if pts.shape[0] == 1:
        return float(pts[0, col])
    return float(PchipInterpolator(np.log(pts[:, 0]), pts[:, col])(np.log(bpp)))


def psnr_at(points, bpp) -> float:
    """PSNR (dB) at ``bpp`` on a curve from :func:`rd_curves`; NaN if unreachable."""
    return curve_psnr_at(points, bpp, col=1)


def ssim_at(points, bpp) -> float:
    """SSIM at ``bpp`` on a curve from :func:`rd_curves`; NaN if unreachable."""
    return curve_psnr_at(points, bpp, col=2)


def bd_rate(reference, test, *, bpp_range=(0.25, 2.0), samples: int = 200) -> float:
    """Bjøntegaard delta rate of ``test`` against ``reference``, in percent.

    Both curves are restricted to ``bpp_range``; log-rate is interpolated as a
    piecewise cubic (PCHIP) function of PSNR and the mean difference over the
    common PSNR interval gives the rate change at equal PSNR (negative: test
    needs fewer bytes). NaN when the curves share no PSNR interval.
    """
    from scipy.interpolate import PchipInterpolator

    lo, hi = bpp_range
    curves = []
    for pts in (reference, test):
        pts = _monotone(np.asarray(pts, dtype=np.float64), 1)
        if pts.shape[0] < 2:
            return float("nan")
        a, b = max(lo, pts[0, 0]), min(hi, pts[-1, 0])
        if a >= b:
            return float("nan")
        grid = np.geomspace(a, b, samples)
        ps = PchipInterpolator(np.log(pts[:, 0]), pts[:, 1])(np.log(grid))
        curves.append((ps, np.log(grid)))
    p_lo = max(c[0][0] for c in curves)
    p_hi = min(c[0][-1] for c in curves)
    if p_hi - p_lo < 1e-6:
        return float("nan")
    pgrid = np.linspace(p_lo, p_hi, samples)
    lr = [np.interp(pgrid, ps, lrate) for ps, lrate in curves]
    return float((np.exp(np.mean(lr[1] - lr[0])) - 1.0) * 100.0)


def mean_curve(data: dict, method: str, bpps, *, col: int = 1) -> np.ndarray:
    """Mean over images of quality column ``col`` at each of ``bpps``; NaN where
    some image's curve does not reach the rate."""
    per = data["methods"][method]
    vals = np.array([[curve_psnr_at(pts, b, col=col) for b in bpps] for pts in per.values()])
    return vals.mean(axis=0) if vals.size else np.full(len(bpps), np.nan)


def plot_rd(data: dict, *, methods=None, bpp_range=(0.05, 4.0), title: str | None = None, highlight=None):
    """Figure of mean PSNR and SSIM against bpp for the measured methods.

    Uses the Agg backend through :class:`matplotlib.figure.Figure` (no pyplot
    global state). Curves are averaged over the images at each rate where every
    image's curve reaches it; with one image they are its measured points.

    ``highlight`` (default: the first method) is drawn with a thicker line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = list(data["methods"]) if methods is None else list(methods)
    highlight = methods[0] if highlight is None and methods else highlight
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    has_ssim = any(
        np.isfinite(pts[:, 2]).any() for m in methods for pts in data["methods"][m].values()
    )
    grid = np.geomspace(bpp_range[0], bpp_range[1], 120)
    for m in methods:
        for ax, col in zip(axes, (1, 2)):
            if col == 2 and not has_ssim:
                continue
            y = mean_curve(data, m, grid, col=col)
            (line,) = ax.plot(grid, y, label=m, lw=2 if m == highlight else 1.3)
            if len(data["methods"][m]) == 1:
                pts = next(iter(data["methods"][m].values()))
                ax.plot(pts[:, 0], pts[:, col], ".", color=line.get_color(), ms=4)
    n = len(data["images"])
    for ax, label in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xscale("log")
        ax.set_xlim(*bpp_range)
        ax.set_xlabel("bits per pixel (bytes on disk x 8 / pixels)")
        ax.set_ylabel(label + (f", mean of {n} images" if n > 1 else ""))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(loc="lower right")
    if not has_ssim:
        axes[1].set_visible(False)
    if title:
        fig.suptitle(title)
    return fig
