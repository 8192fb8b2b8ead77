"""The ``palette`` command: one palette learned from a set of images."""

from __future__ import annotations

import click

from .._errors import UsageError
from ..io import atomic_write, check_writable, read_image
from ._main import cli, short_help
from ._startup import set_up_numba

__all__ = ["palette_cmd"]


@cli.command("palette", short_help=short_help("palette"))
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-k", "--colors", "n_colors", type=int, default=64, show_default=True, metavar="K",
              help="Palette size K (2..256).")
@click.option("-o", "--output", required=True, help="Palette image to write (an indexed PNG; '-' writes stdout).")
@click.option("--seed", "random_state", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              metavar="N", help="Random seed of K-means.")
@click.option("--speed", type=click.IntRange(1, 10), default=4, show_default=True, metavar="N",
              help="Speed/quality trade-off of the quantizer (1 slow .. 10 fast).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse input images with more pixels (default 100 million or IMCOMPRESS_MAX_PIXELS).")
def palette_cmd(inputs, n_colors, output, random_state, speed, force, quiet, max_pixels):
    """Learn one K-colour palette for a set of images (K-means over all their pixels).

    The palette is written as a small indexed PNG (one pixel per colour, with
    alpha when any image has it). Quantize each image to it with
    'imcompress compress IMAGE --map PALETTE.png'.
    """
    from ..kmeans import learn_palette, palette_png
    from ..kmeans._palette import palette_image

    if not 2 <= n_colors <= 256:
        raise UsageError(f"-k/--colors {n_colors} should be in 2..256 (a palette holds at most 256)")
    if inputs.count("-") > 0:
        raise UsageError("palette reads image files, not stdin; give their paths")
    if output != "-":
        check_writable(output, force=force)
    images = [read_image(src, alpha="keep", max_pixels=max_pixels).pixels for src in inputs]
    set_up_numba()
    learned = learn_palette(images, n_colors, random_state=random_state, speed=speed)
    pal, idx = palette_image(learned.palette)
    data = palette_png(pal, idx, level=0)  # a strip of K pixels: nothing for an optimizer to find
    atomic_write(output, data, force=force)
    if not quiet:
        q = learned.quantizer
        mse = q.inertia_ / (learned.n_pixels * pal.shape[1])
        text = (f"{len(inputs)} images, {learned.n_pixels} pixels, {learned.n_distinct_colors} colours -> "
                f"{output}: {pal.shape[0]} colours{' with alpha' if pal.shape[1] == 4 else ''}, "
                f"K-means MSE {mse:.2f}")
        click.echo(text, err=output == "-")
