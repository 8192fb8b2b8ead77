"""The report section "Patch PCA and rate-distortion", built from ``result.rd``."""

from __future__ import annotations

import math

from . import figures as _figs
from ._blocks import Figure, Section, Table, Text
from ..rd import PEERS, method_facts
from ._results import BD_RANGE, PICTURE_PEERS, RD_BPPS, REFERENCE

__all__ = ["rd_section"]



def _label(method) -> str:
    """``"K-means (kmeans)"`` for a codec, ``"JPEG"`` for a peer."""
    facts = method_facts(method)
    return facts.label if facts.peer or facts.label == method else f"{facts.label} ({method})"

#: PSNR differences smaller than this are called a tie (dB).
_TIE_DB = 0.15


def _f(v, digits=2, sign=False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _rates(items) -> str:
    bpps = [f"{b:g}" for b, _ in items]
    text = bpps[0] if len(bpps) == 1 else ", ".join(bpps[:-1]) + " and " + bpps[-1]
    lo, hi = min(d for _, d in items), max(d for _, d in items)
    gap = f"{lo:+.1f} dB" if abs(hi - lo) < 0.05 else f"{lo:+.1f} to {hi:+.1f} dB"
    return f"{text} bpp ({gap})"


def _against(rd, ref) -> str:
    """Where pca-patch is ahead of, level with and behind ``ref`` at the table's rates."""
    groups = {"ahead": [], "level": [], "behind": []}
    for b in RD_BPPS:
        d = rd.psnr_at(rd.subject, b) - rd.psnr_at(ref, b)
        if math.isfinite(d):
            groups["ahead" if d > _TIE_DB else "behind" if d < -_TIE_DB else "level"].append((b, d))
    label = _label(ref)
    found = [(k, v) for k, v in groups.items() if v]
    if not found:
        return f"against {label}: no common rate in the table"
    if len(found) == 1 and len(found[0][1]) > 1:
        gap = _rates(found[0][1]).split("(", 1)[1][:-1]
        return f"against {label}: {found[0][0]} at every rate of the table ({gap})"
    return f"against {label}: " + ", ".join(f"{k} at {_rates(v)}" for k, v in found)


def _bd_phrase(v) -> str:
    if not math.isfinite(v):
        return "n/a (the curves share no PSNR range between 0.25 and 2 bpp)"
    return f"{abs(v):.0f} % {'fewer' if v < 0 else 'more'} bytes"


def _summary(rd) -> str:
    refs = [m for m in PEERS if m in rd.methods]
    bd = {m: rd.bd_rate(m) for m in rd.methods if m != REFERENCE}
    lo, hi = BD_RANGE
    others = [f"{_label(m)} {_bd_phrase(bd[m])}" for m in PEERS if m in bd and m != rd.subject]
    items = [
        f"<li><b>Against JPEG</b>, over {lo:g}–{hi:g} bpp, pca-patch needs <b>{_bd_phrase(bd[rd.subject])}</b> "
        f"for the same PSNR (Bjøntegaard delta rate)"
        + (f"; {'; '.join(others)}." if others else ".") + "</li>",
        "<li>PSNR, " + "; ".join(_against(rd, ref) for ref in refs) + ".</li>",
    ]
    best2 = max(rd.methods, key=lambda m: _finite(rd.psnr_at(m, RD_BPPS[-1])))
    best_lo = max(rd.methods, key=lambda m: _finite(rd.psnr_at(m, RD_BPPS[0])))
    items.append(f"<li>Best PSNR at {RD_BPPS[0]:g} bpp: {_label(best_lo)}; at {RD_BPPS[-1]:g} bpp: "
                 f"{_label(best2)}. pca-patch chooses its quantization for squared error, so PSNR is the "
                 "measure it is tuned for; SSIM and the eye weigh errors differently.</li>")
    choices = _choices(rd)
    if choices:
        items.append(f"<li>{choices}</li>")
    ssim_bits = []
    for s in rd.shown:
        e, j, w = s[rd.subject], s.get("jpeg"), s.get("webp")
        ref = [f"{lab} {_f(x.ssim, 3)}" for lab, x in (("JPEG", j), ("WebP", w)) if x is not None]
        ssim_bits.append(f"at {e.bpp:.2f} bpp, pca-patch {_f(e.ssim, 3)}" + (f" vs {', '.join(ref)}" if ref else ""))
    if ssim_bits:
        items.append("<li>SSIM at the same bytes (the pictures above): " + "; ".join(ssim_bits) + ".</li>")
    study_methods = [m for m in rd.methods if m != rd.subject and m not in PEERS]
    if study_methods:
        gaps = {m: rd.psnr_at(m, 1.0) - rd.psnr_at(REFERENCE, 1.0) for m in study_methods}
        behind = all(math.isfinite(d) and d < 0 for d in gaps.values())
        head = "On this image the study's methods trail JPEG" if behind else "The study's methods against JPEG"
        items.append(f"<li>{head} at 1 bpp: "
                     + ", ".join(f"{_label(m)} {_f(d, 1, sign=True)} dB" for m, d in gaps.items())
                     + ". Row PCA describes whole rows with one basis per channel, which fits local detail "
                     "poorly; K-means pays for an index at every pixel and keeps at most 256 colours, which "
                     "suits graphics more than photos.</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _choices(rd) -> str:
    """What the pca-patch encoder chose in the measured files (from their headers)."""
    files = [e for e in rd.curves[rd.subject] if e.params]
    if not files:
        return ""
    learned = [e for e in files if "pca" in (e.params.get("basis") or [])]
    if not learned:
        text = (f"In all {len(files)} pca-patch files measured here, the encoder chose the fixed DCT for every "
                "plane: on this image a learned basis did not pay for the bytes needed to store it, so "
                "pca-patch worked as a DCT codec with its own quantization, deblocking and entropy coding.")
    else:
        bpps = sorted(e.bpp for e in learned)
        text = (f"{len(learned)} of the {len(files)} pca-patch files measured use a basis learned by PCA for at "
                f"least one plane ({bpps[0]:.2f} to {bpps[-1]:.2f} bpp); the others use the fixed DCT.")
    chroma = sorted((e.bpp, e.params.get("chroma")) for e in files if e.params.get("chroma"))
    for (b0, c0), (b1, c1) in zip(chroma, chroma[1:]):
        if c0 != c1:
            text += (f" Its chroma changes from {c0} to {c1} between {b0:.2f} and {b1:.2f} bpp, which explains a "
                     "jump in its curve there.")
            break
    return text


def _finite(v) -> float:
    return v if math.isfinite(v) else -math.inf


def rd_section(result) -> Section | None:
    """The section "Patch PCA and rate-distortion", or None when ``result.rd`` is None."""
    rd = getattr(result, "rd", None)
    if rd is None:
        return None
    h, w = rd.shape
    region = ""
    if rd.shape != result.image.shape[:2]:
        H, W = result.image.shape[:2]
        region = (f" The image has {H:,} × {W:,} pixels; to keep the run short this section measures "
                  f"its central {h:,} × {w:,} region (rows {rd.region[0]:,}–{rd.region[0] + h - 1:,}, "
                  f"columns {rd.region[1]:,}–{rd.region[1] + w - 1:,}).")
    top, left = rd.crop[0] + rd.region[0], rd.crop[1] + rd.region[1]
    rows = []
    for m in rd.methods:
        n = len(rd.curves[m])
        bd = "reference" if m == REFERENCE else _f(rd.bd_rate(m), 1, sign=True)
        rows.append([_label(m)] + [_f(rd.psnr_at(m, b)) for b in RD_BPPS]
                    + [_f(rd.ssim_at(m, b), 3) for b in (0.5, 1.0)] + [bd, n])
    shown_rows = []
    for s in rd.shown:
        for key in (rd.subject, *PICTURE_PEERS):
            e = s.get(key)
            if e is None:
                continue
            shown_rows.append([f"~{s['target_bpp']:g}", _label(key), f"{e.setting:g}", f"{e.nbytes:,}",
                               _f(e.bpp, 3), _f(e.rmse), _f(e.psnr), _f(e.ssim, 3)])
    size = rd.crop[2]
    ssim_note = (f"SSIM (scikit-image, 7×7 window) is measured for {', '.join(_label(m) for m in rd.ssim_methods)}"
                 "; K-means and row PCA have theirs in their own sections."
                 if rd.ssim_measured else "SSIM was not measured.")
    blocks = [
        Text("<p><b>pca-patch</b> is this project's transform codec. It converts RGB to YCbCr (chroma "
             "subsampled 4:2:0 when that costs less), cuts each plane into 8 × 8 patches, and expresses them "
             "in a basis learned by PCA from this image (stored in the file) or in the fixed DCT, whichever "
             "costs less. The coefficients are quantized with one step per plane and "
             "range-coded with adaptive contexts. Its quality knob runs from 0 to 100.</p>"
             f"<p>Below, every method is measured on this image ({h} × {w}) the same way: a real file is "
             "written (an <code>.imc</code> file, or Pillow's JPEG, WebP and AVIF), decoded and compared with "
             "the original in float64. Its size is all the bytes needed to decode it." + region + "</p>"),
        Figure("10-rate-distortion", _figs.rate_distortion(result),
               "Higher and further left is better. Dots are measured files; lines interpolate them "
               "(PCHIP in log-rate, imcompress.rd). Dotted lines: the rates of the table. " + ssim_note),
        Table(["method"] + [f"PSNR at {b:g} bpp" for b in RD_BPPS] + ["SSIM at 0.5 bpp", "SSIM at 1 bpp",
                                                                     "BD-rate vs JPEG (%)", "files"],
              rows,
              f"PSNR in dB, interpolated between measured files; n/a where a method's files do not reach the "
              f"rate.{_gap_text(rd)} BD-rate: the mean change in bytes against JPEG at equal PSNR over {BD_RANGE[0]:g}–"
              f"{BD_RANGE[1]:g} bpp (negative: fewer bytes). Pillow {_pillow()}: {_pillow_settings(rd)}."),
    ]
    if rd.shown:
        blocks += [
            Figure("11-pca-patch-vs-jpeg", _figs.pca_patch_pictures(result),
                   f"The {size} × {size} square with the most detail (gradient energy), at row {top}, column "
                   f"{left}. JPEG and WebP are the largest files (Pillow quality 1..100) not above the pca-patch "
                   "file."),
            Table(["rate", "method", "quality", "bytes", "bpp", "RMSE", "PSNR (dB)", "SSIM"], shown_rows,
                  "The files of the pictures, measured on the " + ("whole image." if not region else "measured region.")),
        ]
    blocks += [
        Text("<p><b>Where pca-patch wins and loses on this image:</b></p>" + _summary(rd)),
    ]
    return Section("rate-distortion", "Patch PCA and rate–distortion", blocks)


def _gap_text(rd) -> str:
    gaps = rd.gaps()
    if not gaps:
        return ""
    items = [f"{_label(m)} at {b:g} bpp (files at {lo:.2f} and {hi:.2f} bpp)" for m, b, lo, hi in gaps]
    return (" Interpolated between distant files, as no file nearer was found: " + "; ".join(items)
            + ", so treat these values with care.")


def _pillow_settings(rd) -> str:
    out = []
    for m in PEERS:
        if m in rd.methods:
            opts = ", ".join(f"{k}={v}" for k, v in PEERS[m].options.items())
            via = "" if PEERS[m].library == "pillow" else f" (through {PEERS[m].library})"
            out.append(f"{_label(m)} {opts}{via}")
    return "; ".join(out)


def _pillow() -> str:
    import PIL

    return PIL.__version__
