"""The report's figures: one function per figure, each returning a matplotlib Figure.

Every function takes a :class:`~imcompress.report.StudyResult` and builds a
new :class:`matplotlib.figure.Figure` drawn with the Agg backend; pyplot and
its global state are never touched, so the functions are safe in scripts,
servers and notebooks (a notebook displays the returned figure).

Examples
--------
>>> from imcompress import sample_image
>>> from imcompress.report import study, figures
>>> r = study(sample_image()[:64, :64], ks=[2, 4, 6], codecs=False)
>>> fig = figures.inertia(r)
>>> fig.axes[0].get_xlabel()
'K (number of colours)'
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..kmeans import color_table

__all__ = [
    "FIGURES",
    "comparison",
    "distinct_colors",
    "explained_variance",
    "figure_png",
    "inertia",
    "kmeans_reconstructions",
    "original",
    "pca_channels",
    "pca_reconstructions",
    "pca_rescale",
    "pca_patch_pictures",
    "RD_FIGURES",
    "explorer_rate_distortion",
    "rate_distortion",
]

_CHANNELS = ("R", "G", "B")
_CHANNEL_COLORS = ("#d62728", "#2ca02c", "#1f77b4")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _show(ax, img, title, *, cmap=None, fontsize=10):
    ax.imshow(img, cmap=cmap, interpolation="antialiased")
    ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])


def _quality(e, p, s) -> str:
    p_text = "inf" if not np.isfinite(p) else f"{p:.1f}"
    s_text = "n/a" if not np.isfinite(s) else f"{s:.3f}"
    return f"RMSE {e:.2f} | PSNR {p_text} dB | SSIM {s_text}"


def _n_text(ns) -> str:
    return "/".join(str(n) for n in ns)


def original(result) -> Figure:
    """The original image with its shape, dtype, value range and colour count."""
    img = result.image
    h, w = img.shape[:2]
    fig = _figure(7.0, 7.0 * h / w + 0.6)
    ax = fig.add_subplot()
    _show(
        ax,
        img,
        f"Original: shape {img.shape}, dtype {img.dtype}, range {int(img.min())}..{int(img.max())}\n"
        f"{result.unique_colors:,} distinct colours",
        fontsize=11,
    )
    return fig


def inertia(result) -> Figure:
    """K-means inertia (within-cluster sum of squares) against K, elbow marked."""
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    ax.plot(result.ks, result.inertias, "o-", color="#1f77b4", label="inertia")
    if result.elbow_k is not None and result.elbow_k in result.ks:
        y = result.inertias[result.ks.index(result.elbow_k)]
        ax.axvline(result.elbow_k, color="#d62728", linestyle="--", linewidth=1)
        ax.plot([result.elbow_k], [y], "o", color="#d62728", markersize=11, fillstyle="none",
                markeredgewidth=2, label=f"elbow (kneed): K = {result.elbow_k}")
    ax.set_xlabel("K (number of colours)")
    ax.set_ylabel("inertia (sum of squared distances)")
    ax.set_title("K-means: inertia vs K")
    ax.set_xticks(result.ks)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def kmeans_reconstructions(result) -> Figure:
    """The original beside the K-means reconstructions of the shown K."""
    ks = list(result.show_ks)
    panels = [("Original", result.image, f"{result.unique_colors:,} colours")]
    for k in ks:
        r = result.kmeans[k]
        tag = " (elbow)" if k == result.elbow_k else ""
        panels.append((f"K = {k}{tag}", r.image, _quality(r.rmse, r.psnr, r.ssim)))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    h, w = result.image.shape[:2]
    cell = 4.2
    fig = _figure(cell * ncols, (cell * h / w + 0.7) * nrows)
    for i, (name, img, sub) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _show(ax, img, f"{name}\n{sub}", fontsize=9.5)
    fig.suptitle("K-means colour quantization: reconstructions")
    return fig


def distinct_colors(result) -> Figure:
    """Distinct colours of the original and of each K-means reconstruction."""
    fig = _figure(8.0, 4.2)
    ax, pal = fig.subplots(1, 2, width_ratios=[2.2, 1])
    labels = ["original"] + [f"K={k}" for k in result.show_ks]
    counts = [result.unique_colors] + [result.kmeans[k].unique_colors for k in result.show_ks]
    colors = ["#7f7f7f"] + ["#1f77b4"] * len(result.show_ks)
    bars = ax.bar(labels, counts, color=colors)
    ax.set_yscale("log")
    ax.set_ylim(1, max(counts) * 6)
    for bar, c in zip(bars, counts):
        ax.text(bar.get_x() + bar.get_width() / 2, c * 1.15, f"{c:,}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("distinct colours (log scale)")
    ax.set_title("Distinct colours before and after")
    ax.grid(axis="y", alpha=0.3)
    # the palette of the study's K (6 when available)
    k = result.study_k
    img = result.kmeans[k].image
    table = color_table(img)  # packed-integer counting: fast on large images
    colours, counts_k = table.colors, table.counts
    order = np.argsort(-counts_k)
    colours, counts_k = colours[order], counts_k[order]
    share = counts_k / counts_k.sum()
    pal.imshow(colours[:, None, :], aspect="auto", interpolation="nearest")
    pal.set_xticks([])
    pal.set_yticks(range(len(colours)))
    pal.set_yticklabels([f"#{r:02x}{g:02x}{b:02x}  {s:.0%}" for (r, g, b), s in zip(colours, share)],
                        fontsize=8 if len(colours) <= 20 else 6)
    pal.yaxis.tick_right()
    pal.set_title(f"Palette, K = {k}\n(share of pixels)", fontsize=10)
    return fig


def explained_variance(result) -> Figure:
    """Cumulative explained variance of row PCA per channel, thresholds and n marked."""
    fig = _figure(8.0, 4.6)
    ax = fig.add_subplot()
    n_max = 0
    for c, ratio in enumerate(result.explained_variance_ratio):
        cum = np.cumsum(ratio)
        ax.plot(np.arange(1, cum.size + 1), cum, color=_CHANNEL_COLORS[c], label=_CHANNELS[c])
        n_max = max(n_max, cum.size)
    styles = ["--", ":", "-.", (0, (5, 1))]
    for i, p in enumerate(result.pca):
        ls = styles[i % len(styles)]
        ax.axhline(p.variance, color="black", linestyle=ls, linewidth=0.9)
        ax.text(1.08, p.variance + 0.004, f"{p.variance:.0%}: n = {_n_text(p.n_components)} (R/G/B)",
                ha="left", va="bottom", fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        for c, n in enumerate(p.n_components):
            cum_n = float(np.sum(result.explained_variance_ratio[c][:n]))
            ax.plot([n], [cum_n], marker="o", color=_CHANNEL_COLORS[c], markersize=5)
            ax.vlines(n, 0, cum_n, colors=_CHANNEL_COLORS[c], linestyles=ls, linewidth=0.8, alpha=0.7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlim(1, n_max)
    lo = min(float(np.cumsum(r)[0]) for r in result.explained_variance_ratio)
    ax.set_ylim(max(0.0, lo - 0.05), 1.005)
    ax.set_xlabel("number of components n (log scale)")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title("Row PCA: cumulative explained variance per channel\n"
                 "n by the study's rule argmax(cumsum > t): the kept n explain at most t", fontsize=10.5)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return fig


def pca_channels(result, *, variance=None) -> Figure:
    """Original channels (H x W) above the compressed channels (scores, H x n).

    Titles give the value counts and their share of H * W (the study's
    counting, scores only), and the true count with components and means.
    """
    p = _pick_pca(result, variance)
    h, w = result.image.shape[:2]
    fig = _figure(11.0, 6.6)
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1])
    for c in range(3):
        ax = fig.add_subplot(grid[0, c])
        _show(ax, result.image[:, :, c], f"{_CHANNELS[c]} channel: {h} x {w}\n{h * w:,} values",
              cmap="gray", fontsize=9.5)
        ax = fig.add_subplot(grid[1, c])
        scores = p.scores[c]
        n = scores.shape[1]
        lim = np.percentile(np.abs(scores), 99) or 1.0
        ax.imshow(scores, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_xticks([0, n - 1])
        ax.set_xticklabels(["1", str(n)], fontsize=8)
        ax.set_yticks([])
        ax.set_xlabel("component", fontsize=8, labelpad=-2)
        ax.set_title(
            f"{_CHANNELS[c]} scores: {h} x {n} = {scores.size:,} values ({scores.size / (h * w):.1%})\n"
            f"+ components & mean: {p.stored_values[c]:,} ({p.stored_values[c] / (h * w):.1%})",
            fontsize=9,
        )
    fig.suptitle(f"Row PCA at {p.variance:.0%} explained variance: original vs compressed channels "
                 "(scores drawn stretched)", fontsize=11)
    return fig


def pca_reconstructions(result) -> Figure:
    """Row-PCA reconstructions (rounded and clipped) at each threshold."""
    panels = [("Original", result.image, f"{result.unique_colors:,} colours")]
    for p in result.pca:
        panels.append((f"row PCA {p.variance:.0%} (n = {_n_text(p.n_components)})", p.image,
                       _quality(p.rmse, p.psnr, p.ssim)))
    return _row_of_images(panels, "Row PCA reconstructions (rounded and clipped to 0..255)")


def pca_rescale(result, *, variance=None) -> Figure:
    """The study's min-max rescale beside correct clipping, same PCA values.

    ``variance`` defaults to the highest threshold of the study.
    """
    p = result.pca[-1] if variance is None else _pick_pca(result, variance)
    panels = [
        ("Original", result.image, ""),
        (f"clip (correct), {p.variance:.0%}", p.image, _quality(p.rmse, p.psnr, p.ssim)),
        (f"min-max rescale (study), {p.variance:.0%}", p.image_minmax,
         _quality(p.rmse_minmax, p.psnr_minmax, p.ssim_minmax)),
    ]
    return _row_of_images(panels, "Back to 0..255: clipping vs the study's per-channel min-max rescale")


def comparison(result) -> Figure:
    """The study's closing comparison: K-means, original, row PCA."""
    k = result.comparison_k
    km = result.kmeans[k]
    p = result.pca[-1]
    tag = " (elbow)" if k == result.elbow_k else ""
    file_text = f", file {result.file_bytes:,} B" if result.file_bytes else ""
    km_bytes = km.imc_bytes if km.imc_bytes is not None else km.stored_bytes
    p_bytes = p.imc_bytes if p.imc_bytes is not None else p.stored_bytes
    panels = [
        (f"K-means, K = {k}{tag}: {km_bytes:,} B", km.image, _quality(km.rmse, km.psnr, km.ssim)),
        ("Original", result.image, f"raw {result.raw_bytes:,} B{file_text}"),
        (f"row PCA {p.variance:.0%}: {p_bytes:,} B", p.image, _quality(p.rmse, p.psnr, p.ssim)),
    ]
    return _row_of_images(panels, "K-means vs original vs row PCA (bytes: what must be stored)")


def _row_of_images(panels, title) -> Figure:
    h, w = panels[0][1].shape[:2]
    cell = 4.4
    fig = _figure(cell * len(panels), cell * h / w + 0.9)
    for i, (name, img, sub) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        _show(ax, img, f"{name}\n{sub}" if sub else name, fontsize=9.5)
    fig.suptitle(title)
    return fig


def _pick_pca(result, variance):
    if variance is None:
        return result.pca[0]
    for p in result.pca:
        if abs(p.variance - variance) < 1e-12:
            return p
    from .._errors import UsageError

    raise UsageError(
        f"variance={variance} is not in this study ({', '.join(str(p.variance) for p in result.pca)})"
    )


def _need_rd(result):
    if getattr(result, "rd", None) is None:
        from .._errors import UsageError

        raise UsageError("this study has no rate-distortion numbers; run study(image) with codecs=True and rd=True")
    return result.rd


def rate_distortion(result) -> Figure:
    """PSNR (and SSIM) against bits per pixel for every method of the section.

    Drawn by :func:`imcompress.rd.plot_rd`; dotted lines mark the rates of the
    report's table.
    """
    from .. import rd as _rd_mod
    from ._results import RD_BPPS

    r = _need_rd(result)
    h, w = r.shape
    fig = _rd_mod.plot_rd(r.as_rd_data(), bpp_range=(0.06, 4.0),
                          title=f"Rate-distortion on this image ({h} x {w}{'' if r.shape == result.image.shape[:2] else ', central region'}): "
                                "every point is a real file, decoded")
    for ax in fig.axes:
        if ax.get_visible():
            for b in RD_BPPS:
                ax.axvline(b, color="#999999", linestyle=":", linewidth=0.8, zorder=0)
            ax.set_xticks([0.1, *RD_BPPS, 4.0])
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if r.ssim_measured and len(fig.axes) > 1:
        fig.axes[1].set_ylabel("SSIM (transform codecs)")
    return fig


def pca_patch_pictures(result) -> Figure:
    """A detailed crop: pca-patch at each shown rate beside JPEG and WebP at the same bytes."""
    r = _need_rd(result)
    if not r.shown:
        from .._errors import UsageError

        raise UsageError("this study has no pca-patch pictures (pca-patch could not encode the image)")
    top, left, size = r.crop
    cut = np.s_[top:top + size, left:left + size]
    from ..rd import method_facts
    from ._results import PICTURE_PEERS

    cols = [(r.subject, r.subject)] + [(m, method_facts(m).label) for m in PICTURE_PEERS]
    cols = [c for c in cols if any(s.get(c[0]) is not None for s in r.shown)]
    ncols = 1 + len(cols)
    cell = 3.3
    fig = _figure(cell * ncols, (cell + 0.75) * len(r.shown) + 0.5)
    for i, shown in enumerate(r.shown):
        ax = fig.add_subplot(len(r.shown), ncols, i * ncols + 1)
        _show(ax, r.measured(result.image)[cut], f"Original (crop)\nfor ~{shown['target_bpp']:g} bpp", fontsize=9)
        for j, (key, label) in enumerate(cols):
            ax = fig.add_subplot(len(r.shown), ncols, i * ncols + j + 2)
            e = shown.get(key)
            if e is None:
                ax.set_axis_off()
                ax.set_title(f"{label}: no file this small", fontsize=9)
                continue
            ax.imshow(e.image[cut], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            s_text = "n/a" if not np.isfinite(e.ssim) else f"{e.ssim:.3f}"
            ax.set_title(f"{label} q={e.setting:g}: {e.nbytes:,} B ({e.bpp:.3f} bpp)\n"
                         f"PSNR {e.psnr:.2f} dB | SSIM {s_text}", fontsize=9)
    whole = "whole image" if r.shape == result.image.shape[:2] else "measured region"
    fig.suptitle(f"{r.subject} vs JPEG and WebP at the same bytes: crop {size} x {size} at "
                 f"({top + r.region[0]}, {left + r.region[1]}), enlarged without smoothing;\n"
                 f"PSNR and SSIM of the {whole}",
                 fontsize=10)
    return fig


def explorer_rate_distortion(result) -> Figure:
    """The explorer's chart as a static figure: every slider position beside Pillow's codecs."""
    ex = getattr(result, "explorer", None)
    if ex is None:
        from .._errors import UsageError

        raise UsageError("this study has no explorer; run study(image) with codecs=True")
    fig = _figure(11, 4.4)
    axes = fig.subplots(1, 2)
    for ax, key, label in zip(axes, ("psnr", "ssim"), ("PSNR (dB)", "SSIM")):
        for m in ex.methods:
            pts = sorted((s.bpp, getattr(s, key)) for s in m.settings)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=4, lw=1.6, label=m.label)
        for name, peer in ex.peers.items():
            pts = sorted((p.bpp, getattr(p, key)) for p in peer)
            from ..rd import method_facts

            ax.plot([p[0] for p in pts], [p[1] for p in pts], ".--", ms=3, lw=1.1,
                    label=f"{method_facts(name).label} (Pillow)")
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (bytes on disk x 8 / pixels)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("The explorer's files: every slider position is a real file, decoded")
    return fig


#: The figures of the patch-PCA / rate-distortion section (need ``result.rd``).
RD_FIGURES = (
    ("rate-distortion", rate_distortion),
    ("pca-patch-vs-jpeg", pca_patch_pictures),
)

#: The study's figures in report order: (file stem, function).
FIGURES = (
    ("original", original),
    ("kmeans-inertia", inertia),
    ("kmeans-reconstructions", kmeans_reconstructions),
    ("kmeans-distinct-colours", distinct_colors),
    ("pca-explained-variance", explained_variance),
    ("pca-channels", pca_channels),
    ("pca-reconstructions", pca_reconstructions),
    ("pca-rescale", pca_rescale),
    ("comparison", comparison),
)
