"""The report's content as a list of sections: the study's, the explorer and the rate-distortion one.

A report is a list of :class:`Section`; each holds blocks (text, figures,
tables) and optionally numbers for ``metrics.json``. The study's sections
come from :func:`study_sections`: the explorer first (``_explorer_section.py``),
then the study, then "Patch PCA and rate-distortion" (``_rd_section.py``)
when the study measured it; a later method adds its own with one call to
:func:`register_section` (or by passing ``extra_sections=`` to
:func:`write_report`). Rendering is in ``_render.py``, writing in ``_write.py``.
"""

from __future__ import annotations

import html

from .._errors import UsageError
from ..metrics import bits_per_pixel
from . import figures as _figs
from ._blocks import Figure, Section, Table, Text
from ._explorer_section import explorer_section
from ._rd_section import rd_section
from ._render import environment
from ._render import fmt as _fmt
from ._results import StudyResult

__all__ = ["register_section", "report_sections", "study_sections"]


_EXTRA_BUILDERS: list = []


def register_section(builder) -> None:
    """Append a section to every report from now on.

    Parameters
    ----------
    builder : callable
        ``builder(result: StudyResult) -> Section | None``; called after the
        study's own sections, in registration order (None adds nothing).
    """
    if not callable(builder):
        raise UsageError(f"register_section needs a callable, got {builder!r}")
    if builder not in _EXTRA_BUILDERS:
        _EXTRA_BUILDERS.append(builder)


def report_sections(result: StudyResult) -> list:
    """The study's sections followed by those of :func:`register_section`."""
    sections = study_sections(result)
    for builder in _EXTRA_BUILDERS:
        extra = builder(result)
        if extra is not None:
            sections.append(extra)
    return sections


def _bytes(n) -> str:
    return "–" if n is None else f"{n:,}"


# -- the study's sections ---------------------------------------------------------------

def study_sections(result: StudyResult) -> list:
    """The study's sections: the explorer (when ``result.explorer`` holds it), original, K-means,
    row PCA, comparison, corrections, then patch PCA and rate-distortion (when ``result.rd``
    holds it) and the notes."""
    h, w, c = result.image.shape
    src = html.escape(result.source)
    file_text = (f"; the file has {result.file_bytes:,} bytes, "
                 f"{bits_per_pixel(result.file_bytes, result.image.shape):.2f} bits per pixel"
                 if result.file_bytes else "")
    sections = [s for s in (explorer_section(result, env=environment()),) if s is not None]
    sections += [
        Section(
            "original",
            "The image",
            [
                Text(f"<p><code>{src}</code>: {h} × {w} pixels, {c} channels of uint8 "
                     f"({result.raw_bytes:,} raw bytes{file_text}), "
                     f"{result.unique_colors:,} distinct colours.</p>"),
                Figure("01-original", _figs.original(result)),
            ],
        ),
        _kmeans_section(result),
        _pca_section(result),
        _comparison_section(result),
        _corrections_section(result),
    ]
    rd = rd_section(result)
    if rd is not None:
        sections.append(rd)
    if result.notes:
        sections.append(Section("notes", "Notes", [
            Text("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
        ]))
    return sections


def _kmeans_section(r: StudyResult) -> Section:
    elbow = (f"The elbow of the curve (Kneedle, <code>kneed</code>) is at <b>K = {r.elbow_k}</b>."
             if r.elbow_k is not None else "The curve has no elbow over these K (give at least 3 K).")
    rows = []
    for k in r.ks:
        m = r.kmeans[k]
        rows.append([k, _fmt(m.inertia, 0), _fmt(m.rmse), _fmt(m.psnr), _fmt(m.ssim, 3),
                     _fmt(m.unique_colors), _bytes(m.stored_bytes)])
    return Section(
        "kmeans",
        "K-means colour quantization",
        [
            Text("<p>Every pixel is a point in RGB space; K-means groups them into K clusters and "
                 "each pixel is replaced by its cluster's centroid (rounded to uint8). "
                 f"K is swept over {', '.join(map(str, r.ks))} (seed {r.random_state}). {elbow}</p>"),
            Figure("02-kmeans-inertia", _figs.inertia(r)),
            Figure("03-kmeans-reconstructions", _figs.kmeans_reconstructions(r),
                   "Errors are measured in float64 against the original: RMSE and PSNR over all "
                   "pixels and channels, SSIM with scikit-image's 7×7 window."),
            Figure("04-kmeans-distinct-colours", _figs.distinct_colors(r)),
            Table(["K", "inertia", "RMSE", "PSNR (dB)", "SSIM", "distinct colours", "stored bytes"],
                  rows, "The sweep. Stored bytes: palette (3 bytes per colour) + every pixel's index "
                        "packed at ceil(log2 K) bits, before any entropy coding."),
        ],
    )


def _pca_section(r: StudyResult) -> Section:
    h, w = r.image.shape[:2]
    rows = []
    for p in r.pca:
        rows.append([
            f"{p.variance:.0%}", "/".join(map(str, p.n_components)),
            "/".join(f"{e:.3f}" for e in p.explained),
            _fmt(sum(p.scores_values)), _fmt(sum(p.stored_values)), _bytes(p.stored_bytes),
            _fmt(p.rmse), _fmt(p.psnr), _fmt(p.ssim, 3),
        ])
    first = r.pca[0]
    counts = ", ".join(f"{ch} {n:,}" for ch, n in zip("RGB", first.scores_values))
    return Section(
        "pca-rows",
        "Row PCA per channel",
        [
            Text("<p>For each of R, G and B, the H rows of the channel are observations of W features "
                 "(scikit-learn <code>PCA</code> on the H × W channel). n is chosen per channel by the "
                 "study's rule <code>n = np.argmax(cumsum &gt; t)</code>: argmax returns the 0-based index "
                 "of the first component that passes t, so the n kept components explain a little "
                 "<i>less</i> than t (listed as “kept variance” below).</p>"),
            Figure("05-pca-explained-variance", _figs.explained_variance(r)),
            Figure("06-pca-channels", _figs.pca_channels(r),
                   f"The study's “compressed channels” are the scores, H × n values per channel "
                   f"({counts} at {first.variance:.0%}). Decoding also needs the n × W components and the "
                   "W column means; the second line of each title counts them."),
            Figure("07-pca-reconstructions", _figs.pca_reconstructions(r)),
            Figure("08-pca-rescale", _figs.pca_rescale(r)),
            Table(["t", "n (R/G/B)", "kept variance (R/G/B)", "scores only (values)",
                   "scores + components + means", "true bytes (float32)", "RMSE", "PSNR (dB)", "SSIM"],
                  rows, f"H × W = {h * w:,} values per channel; {r.raw_bytes:,} bytes for the raw image."),
        ],
    )


def _comparison_section(r: StudyResult) -> Section:
    table = r.methods_table()
    rows = [[m["method"], m["setting"], _bytes(m["bytes"]), _fmt(m["bpp"]), _fmt(m["rmse"]),
             _fmt(m["psnr"]), _fmt(m["ssim"], 3), _bytes(m["imc_bytes"]), _fmt(m["imc_bpp"]),
             _fmt(m["imc_rmse"]), _fmt(m["imc_ssim"], 3)] for m in table]
    has_imc = any(m["imc_bytes"] is not None for m in table)
    imc_text = ("The .imc columns measure the real file written by 'imcompress compress' "
                "(header, entropy-coded payload, checksum) after decoding it: its codec may quantize "
                "further, so its error can differ from the reconstruction's."
                if has_imc else
                "The real .imc codecs were not available, so only the stored-size estimates are shown.")
    return Section(
        "comparison",
        "K-means vs row PCA",
        [
            Figure("09-comparison", _figs.comparison(r)),
            Text("<p>RMSE is not the whole story: K-means keeps edges sharp but flattens colour into "
                 "posterised bands, while row PCA keeps colour but blurs detail and adds horizontal "
                 f"streaks. {_disagreement(r)} Look at the pictures as well as the numbers.</p>"),
            Table(["method", "setting", "stored bytes", "bits/pixel", "RMSE", "PSNR (dB)", "SSIM",
                   ".imc bytes", ".imc bits/pixel", ".imc RMSE", ".imc SSIM"],
                  rows, "Stored bytes count everything needed to decode, without entropy coding. " + imc_text
                  + (" The patch-PCA, JPEG and WebP rows are real files, measured after decoding "
                     "(see “Patch PCA and rate–distortion”)." if r.rd is not None else "")),
        ],
    )


def _disagreement(r: StudyResult) -> str:
    """A sentence naming a K-means / row-PCA pair that RMSE and SSIM rank differently."""
    for k in r.show_ks:
        m = r.kmeans[k]
        for p in r.pca:
            if (m.rmse - p.rmse) * (m.ssim - p.ssim) > 0:  # lower error yet lower similarity
                lo, hi = (p, m) if p.rmse < m.rmse else (m, p)
                name = {id(m): f"K-means with K = {k}", id(p): f"row PCA at {p.variance:.0%}"}
                return (f"Here {name[id(lo)]} beats {name[id(hi)]} on RMSE ({lo.rmse:.2f} vs {hi.rmse:.2f}) "
                        f"but loses on SSIM ({lo.ssim:.3f} vs {hi.ssim:.3f}): SSIM compares local "
                        "structure, which RMSE ignores.")
    return "Here RMSE and SSIM rank every K-means / row-PCA pair shown the same way."


def _corrections_section(r: StudyResult) -> Section:
    c = r.corrections()
    wrap = c["rmse_uint8_wraparound"]
    res = c["pca_rescale"]
    size = c["pca_size"]
    top = r.pca[-1]
    ref = (f"the original file's {size['original_file_bytes']:,} bytes"
           if size["original_file_bytes"] else f"the raw image's {size['raw_bytes']:,} bytes")
    verdict = ("more" if size["true_bytes_float32"] > (size["original_file_bytes"] or size["raw_bytes"])
               else "fewer")
    items = [
        f"<li><b>RMSE computed in uint8 wraps around.</b> The study subtracted two uint8 arrays and squared "
        f"the result in uint8, so both <code>a - b</code> and its square wrap modulo 256. On this image, "
        f"{wrap['k']}-means gives a “wrapped” RMSE of <b>{wrap['wrapped']:.2f}</b> where the true value "
        f"(float64) is <b>{wrap['true']:.2f}</b>. On the study's photo, 6-means read 8.32 instead of 12.65.</li>",
        f"<li><b>Min-max rescaling is not a reconstruction.</b> The study stretched each reconstructed channel "
        f"so that its own minimum and maximum became 0 and 255, which changes contrast and colour balance. "
        f"Rounding and clipping to 0..255 is what a decoder does. At {res['variance']:.0%}: clipping gives "
        f"RMSE {res['clip']['rmse']:.2f} (SSIM {_fmt(res['clip']['ssim'], 3)}); min-max gives RMSE "
        f"{res['minmax']['rmse']:.2f} (SSIM {_fmt(res['minmax']['ssim'], 3)}).</li>",
        f"<li><b>Scores are not the whole file.</b> The study's “compressed size” counted only the scores "
        f"(H × n per channel): {size['scores_only_values']:,} values at {top.variance:.0%}. Decoding also "
        f"needs the components (n × W) and the means (W): {size['true_values']:,} values in all, "
        f"{size['true_bytes_float32']:,} bytes as float32, {verdict} than {ref}.</li>",
    ]
    rows = [
        ["RMSE, uint8 arithmetic", f"{wrap['k']}-means", _fmt(wrap["wrapped"]), _fmt(wrap["true"]),
         "8.32 → 12.65 (6-means)"],
        ["PCA back to uint8", f"{res['variance']:.0%}",
         f"min-max: RMSE {_fmt(res['minmax']['rmse'])}", f"clip: RMSE {_fmt(res['clip']['rmse'])}", "–"],
        ["PCA size", f"{top.variance:.0%}", f"{size['scores_only_values']:,} values (scores)",
         f"{size['true_values']:,} values = {size['true_bytes_float32']:,} B", "more bytes than the JPEG at 95%"],
    ]
    return Section(
        "corrections",
        "Where the study's numbers were wrong, and why",
        [
            Text("<ol>" + "".join(items) + "</ol>"),
            Table(["quantity", "setting", "study's way (this image)", "correct (this image)", "on the study's photo"],
                  rows),
        ],
    )
