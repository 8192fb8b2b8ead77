"""The report section "Explorer", built from ``result.explorer``: sliders, viewer and the RD chart.

The section's markup comes from ``templates/explorer.html.j2``; the chart is
an inline SVG whose geometry is computed here (log-rate axis), so the page's
JavaScript only moves sliders and swaps pictures. A static PNG of the same
chart (figure ``12-explorer-rate-distortion``) is in the page for print.
"""

from __future__ import annotations

import math

from ._blocks import Figure, Section, Text

__all__ = ["DIFF_GAIN", "chart_geometry", "explorer_data", "explorer_section"]

#: The difference map shows |original - reconstruction| times this.
DIFF_GAIN = 4
#: Series colours: the sliders' methods first, then the peers.
COLORS = ("#1a5fb4", "#c01c28", "#26a269", "#e66100", "#613583", "#865e3c", "#5e5c64")

_W, _H = 480, 300
_LEFT, _TOP, _RIGHT, _BOTTOM = 48, 12, 12, 40


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _nice_step(span, n=5) -> float:
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def chart_geometry(explorer) -> dict:
    """SVG coordinates of every point: PSNR and SSIM panels, bpp on a log axis.

    Returns a dict with the frame (``width``, ``height``, ``left``, ``top``,
    ``plot_w``, ``plot_h``) and ``panels``: for each, ``ylabel``, ``xticks``,
    ``yticks`` and ``series`` (label, colour, ``peer``, ``method_index``,
    ``path`` and ``points`` with ``x``, ``y``, ``i`` and ``title``).
    """
    series = []
    for mi, m in enumerate(explorer.methods):
        series.append({"label": m.label, "peer": False, "method_index": mi,
                       "points": [{"i": i, "bpp": s.bpp, "psnr": s.psnr, "ssim": s.ssim,
                                   "title": f"{m.label}, {m.slider_label} {s.text}: {s.nbytes:,} B, {s.bpp:.3f} bpp, "
                                            f"PSNR {s.psnr:.2f} dB, SSIM {s.ssim:.4f}"}
                                  for i, s in enumerate(m.settings)]})
    from ..rd import method_facts

    for name, pts in explorer.peers.items():
        label = method_facts(name).label
        series.append({"label": f"{label} (Pillow)", "peer": True, "method_index": None,
                       "points": [{"i": i, "bpp": p.bpp, "psnr": p.psnr, "ssim": p.ssim,
                                   "title": f"{label} quality {p.quality:g}: {p.nbytes:,} B, {p.bpp:.3f} bpp, "
                                            f"PSNR {p.psnr:.2f} dB, SSIM {p.ssim:.4f}"}
                                  for i, p in enumerate(pts)]})
    for k, s in enumerate(series):
        s["color"] = COLORS[k % len(COLORS)]
    bpps = [p["bpp"] for s in series for p in s["points"] if _finite(p["bpp"]) and p["bpp"] > 0]
    x_lo, x_hi = (min(bpps) / 1.15, max(bpps) * 1.15) if bpps else (0.1, 10.0)
    lx0, lx1 = math.log10(x_lo), math.log10(x_hi)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def xpos(b):
        return round(_LEFT + (math.log10(b) - lx0) / (lx1 - lx0) * plot_w, 1)

    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if x_lo <= t <= x_hi]
    xticks = [{"pos": xpos(t), "label": f"{t:g}"} for t in ticks]
    panels = []
    for key, ylabel, digits in (("psnr", "PSNR (dB)", 0), ("ssim", "SSIM", 2)):
        ys = [p[key] for s in series for p in s["points"] if _finite(p[key])]
        if not ys:
            continue
        y_lo, y_hi = min(ys), max(ys)
        pad = max((y_hi - y_lo) * 0.06, 0.5 if key == "psnr" else 0.01)
        y_lo, y_hi = y_lo - pad, y_hi + pad
        if key == "ssim":
            y_hi = min(y_hi, 1.0)

        def ypos(v, y_lo=y_lo, y_hi=y_hi):
            return round(_TOP + (y_hi - v) / (y_hi - y_lo) * plot_h, 1)

        step = _nice_step(y_hi - y_lo)
        first = math.ceil(y_lo / step) * step
        yticks = []
        v = first
        while v <= y_hi + 1e-9:
            yticks.append({"pos": ypos(v), "label": f"{v:.{digits if step < 1 else 0}f}"})
            v += step
        out_series = []
        for s in series:
            pts = [dict(p, x=xpos(p["bpp"]), y=ypos(p[key])) for p in s["points"]
                   if _finite(p[key]) and _finite(p["bpp"]) and p["bpp"] > 0]
            path = " ".join(f"{p['x']},{p['y']}" for p in sorted(pts, key=lambda p: p["bpp"]))
            out_series.append({**s, "points": pts, "path": path})
        panels.append({"key": key, "ylabel": ylabel, "xticks": xticks, "yticks": yticks, "series": out_series})
    return {"width": _W, "height": _H, "left": _LEFT, "top": _TOP, "plot_w": plot_w, "plot_h": plot_h,
            "panels": panels}


def _start(settings) -> int:
    return (len(settings) - 1) // 2


def explorer_section(result, *, env) -> Section | None:
    """The section "Explorer", or None when the study has no explorer (``codecs=False``)."""
    from . import figures as _figs

    ex = getattr(result, "explorer", None)
    if ex is None or not ex.methods:
        return None
    h, w = ex.image.shape[:2]
    region = ""
    if (h, w) != tuple(result.image.shape[:2]):
        top, left = ex.region[:2]
        region = (f"the image is large, so the explorer works on its central {h:,} × {w:,} region "
                  f"(from row {top:,}, column {left:,})")
    methods = [{"label": m.label, "slider_label": m.slider_label, "settings": m.settings,
                "start": _start(m.settings)} for m in ex.methods]
    peer_names = ", ".join(p["label"] for p in _peer_labels(ex))
    markup = env.get_template("explorer.html.j2").render(
        methods=methods, width=w, height=h, gain=DIFF_GAIN, chart=chart_geometry(ex), region_text=region,
        preview_text="exact where a file has at most 256 colours, else lossy at the quality in metrics.json",
        peer_names=peer_names or "no reference codec")
    blocks = [Text(markup),
              Figure("12-explorer-rate-distortion", _figs.explorer_rate_distortion(result),
                     "The sliders' files (dots) beside Pillow's codecs (dashed): PSNR and SSIM against bits per "
                     "pixel, every point a real file.", css_class="print-only")]
    return Section("explorer", "Explorer: move a slider", blocks)


def _peer_labels(ex) -> list:
    from ..rd import method_facts

    return [{"name": n, "label": method_facts(n).label} for n in ex.peers]


def explorer_data(result, original, previews) -> dict:
    """The JSON the page's script reads: the numbers of ``metrics.json["explorer"]`` and the preview URIs.

    ``previews`` is a list (one per method) of lists of :class:`~._previews.Preview`.
    """
    ex = result.explorer
    h, w = ex.image.shape[:2]
    methods = []
    for m, pv in zip(ex.methods, previews):
        settings = []
        for s, p in zip(m.settings, pv):
            d = s.to_dict()
            d["psnr"] = s.psnr if math.isfinite(s.psnr) else None
            d["preview"] = p.uri
            d["preview_note"] = ("the picture is the decoded file, exactly" if p.lossless else
                                 f"the picture is a WebP preview (quality {p.quality}), "
                                 f"PSNR {p.psnr:.1f} dB against the decoded file")
            settings.append(d)
        methods.append({"label": m.label, "slider_label": m.slider_label, "start": _start(m.settings),
                        "settings": settings})
    original_note = ("exact" if original.lossless else
                     f"WebP quality {original.quality}, PSNR {original.psnr:.1f} dB") if original.uri else ""
    return {"width": w, "height": h, "gain": DIFF_GAIN, "original": original.uri, "original_note": original_note,
            "methods": methods}
