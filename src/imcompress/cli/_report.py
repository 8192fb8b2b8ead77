"""``imcompress report``: the study, recomputed on any image, as an HTML report."""

from __future__ import annotations

import math
import sys

import click

from ._main import cli, flag_names, short_help

__all__ = ["report"]


@cli.command("report", short_help=short_help("report"))
@click.argument("image", required=False, metavar="[IMAGE|URL]")
@click.option("-o", "--output", "out_dir", default="imcompress-report", show_default=True,
              metavar="DIR", help="Folder to write index.html, metrics.json and figures/ into.")
@click.option("--ks", default=None, metavar="LIST",
              help="K values of the K-means sweep: a range LOW..HIGH[:STEP] or a list like 2,4,6. "
                   "[default: 2..20:2, up to the image's number of distinct colours]")
@click.option("--variances", default="0.9,0.95", show_default=True, metavar="LIST",
              help="Row-PCA explained-variance thresholds, each in (0, 1].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Random seed of K-means.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse images with more pixels (default 100 million or IMCOMPRESS_MAX_PIXELS).")
@click.option("--no-rd", "no_rd", is_flag=True,
              help="Skip the patch-PCA / rate-distortion section (about half the run time).")
@click.option("--anchors", is_flag=True,
              help="Also measure the anchor codecs when installed (pip install 'imcompress[bench]': "
                   "libaom AVIF speed 2 4:4:4, x265 HEIC 4:4:4, JPEG XL, JPEG 2000); slow.")
@click.option("-f", "--force", is_flag=True, help="Replace an existing report folder.")
@click.option("--open", "open_page", is_flag=True, help="Open index.html in the web browser when one is there.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def report(image, out_dir, ks, variances, seed, max_pixels, no_rd, anchors, force, open_page, quiet):
    """Run the study on IMAGE (default: the bundled astronaut photo; - reads stdin) and write a report.

    Sweeps K-means over K and finds the elbow, runs row PCA per channel at each
    variance threshold, measures RMSE, PSNR, SSIM and the bytes each method
    truly needs, compares patch PCA (pca-patch) with JPEG, WebP and AVIF on
    rate-distortion curves (unless --no-rd), and writes one self-contained DIR/index.html (figures
    embedded, and an explorer: a slider per method over real files, a split view, zoom, difference
    map and an interactive rate-distortion chart), the figures as PNG files and DIR/metrics.json.
    Nothing is written until everything is computed. --open shows the page in the web browser.
    """
    with flag_names({"max_pixels": "--max-pixels", "random_state": "--seed", "force": "-f/--force"}):
        files = _report(image, out_dir, ks, variances, seed, max_pixels, no_rd, force, quiet, anchors=anchors)
    if open_page:
        _open_in_browser(files.index)


def _report(image, out_dir, ks, variances, seed, max_pixels, no_rd, force, quiet, *, anchors=False):
    from ..io import read_image, sample_image_path
    from ..report import check_report_dir, parse_ks, parse_variances, study, write_report

    ks_list = None if ks is None else parse_ks(ks)
    var_list = parse_variances(variances)
    check_report_dir(out_dir, force=force)
    if image is None:
        source = str(sample_image_path())
    elif image == "-":
        source = sys.stdin.buffer
    else:
        source = image
    data = read_image(source, max_pixels=max_pixels)
    show_progress = not quiet and sys.stderr.isatty()
    result = study(
        data.pixels,
        ks=ks_list,
        variances=var_list,
        random_state=seed,
        source=data.source,
        file_bytes=data.file_size,
        rd=not no_rd,
        anchors=anchors,
        progress=show_progress,
    )
    files = write_report(result, out_dir, force=force)
    for note in result.notes:
        click.echo(f"imcompress: warning: {note}", err=True)
    if not quiet:
        _print_summary(result, files)
    return files


def _open_in_browser(index) -> None:
    """Open the page with Python's :mod:`webbrowser`; say so (no error) when there is no browser."""
    import webbrowser

    try:
        opened = webbrowser.open(index.resolve().as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        click.echo(f"imcompress: warning: no web browser found; open {index} yourself", err=True)


def _num(v, digits=2):
    # plain ASCII: the summary must print on any terminal encoding
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _print_summary(result, files) -> None:
    from rich.console import Console
    from rich.table import Table

    h, w = result.image.shape[:2]
    console = Console(width=max(120, Console().width), highlight=False)
    elbow = "no elbow" if result.elbow_k is None else f"elbow K = {result.elbow_k}"
    table = Table(title=f"{result.source}: {h}x{w}, {result.unique_colors:,} colours, {elbow}")
    for name in ("method", "setting"):
        table.add_column(name, no_wrap=True)
    for name in ("bytes", "bpp", "RMSE", "PSNR dB", "SSIM", ".imc bytes", ".imc bpp", ".imc RMSE"):
        table.add_column(name, justify="right")
    for m in result.methods_table():
        table.add_row(
            m["method"], m["setting"], f"{m['bytes']:,}", _num(m["bpp"]), _num(m["rmse"]),
            _num(m["psnr"], 1), _num(m["ssim"], 3),
            "-" if m["imc_bytes"] is None else f"{m['imc_bytes']:,}", _num(m["imc_bpp"]), _num(m["imc_rmse"]),
        )
    console.print(table)
    wrap = result.corrections()["rmse_uint8_wraparound"]
    console.print(
        f"uint8 wrap-around: {wrap['k']}-means RMSE reads {wrap['wrapped']:.2f} in uint8, "
        f"{wrap['true']:.2f} in float64."
    )
    if result.rd is not None:
        bd = ", ".join(f"{m} {_num(v, 1)} %" if math.isfinite(v) else f"{m} n/a"
                       for m, v in ((m, result.rd.bd_rate(m)) for m in result.rd.methods if m != "jpeg"))
        console.print(f"Rate-distortion, BD-rate against JPEG at equal PSNR over 0.25-2 bpp "
                      f"(negative: fewer bytes): {bd}.")
    console.print(f"Report written to {files.index}")
