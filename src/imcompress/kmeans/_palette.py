"""One palette for many images, and quantizing to a given palette.

K-means over the union of the images' colour tables, each colour weighted by
its pixel count over the whole set, has exactly the optimum of K-means over all
the set's pixels pooled together (the same argument as for one image: equal
points are one weighted point). :func:`learn_palette` does that with the
quantizer's solver; :func:`map_to_palette` gives every pixel its nearest entry
of a fixed palette (pngquant's ``--map``), with the quantizer's own rules for
ties, transparency and dithering, so mapping an image of the set to the
learned palette gives the same indices as the fitted quantizer's ``predict``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .._errors import InputError, UsageError
from . import _solver
from ._colors import ColorTable, color_table, palette_order
from ._spaces import to_space

__all__ = ["LearnedPalette", "learn_palette", "map_to_palette", "pooled_colors", "read_palette"]


@dataclass(frozen=True)
class LearnedPalette:
    """A palette learned from a set of images.

    Attributes
    ----------
    palette : ndarray of shape (K, C), uint8
        In the quantizer's palette order (transparent entry first, then luma).
    quantizer : KMeansQuantizer
        The fitted quantizer; ``quantizer.predict(image)`` maps an image.
    n_images : int
    n_pixels : int
        Pixels over the whole set.
    n_distinct_colors : int
        Distinct colours over the whole set.
    """

    palette: np.ndarray
    quantizer: object
    n_images: int
    n_pixels: int
    n_distinct_colors: int


def _pack(colors: np.ndarray) -> np.ndarray:
    key = np.zeros(colors.shape[0], dtype=np.uint32)
    for c in range(colors.shape[1]):
        key |= colors[:, c].astype(np.uint32) << np.uint32(8 * c)
    return key


def _unpack(keys: np.ndarray, channels: int) -> np.ndarray:
    out = np.empty((keys.size, channels), dtype=np.uint8)
    for c in range(channels):
        out[:, c] = (keys >> np.uint32(8 * c)) & np.uint32(0xFF)
    return out


def _with_alpha(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 4:
        return image
    out = np.empty(image.shape[:2] + (4,), dtype=np.uint8)
    out[:, :, :3] = image
    out[:, :, 3] = 255
    return out


def pooled_colors(images) -> ColorTable:
    """The colour table of a set of images, as if their pixels were one image.

    Parameters
    ----------
    images : iterable of ndarray of shape (H, W, 3|4), uint8
        When any image has alpha, the others count as opaque RGBA.

    Returns
    -------
    ColorTable
        ``colors`` and ``counts`` over the set; ``inverse`` is empty (the
        pixels of a set have no single raster order) and ``shape`` is
        ``(n_pixels, 1, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 2, 3), dtype=np.uint8); b = np.full((1, 3, 3), 255, dtype=np.uint8)
    >>> t = pooled_colors([a, b])
    >>> t.colors.tolist(), t.counts.tolist()
    ([[0, 0, 0], [255, 255, 255]], [4, 3])
    """
    images = [np.asarray(im) for im in images]
    if not images:
        raise UsageError("no images given; give at least one image to learn a palette from")
    for n, im in enumerate(images):
        if im.ndim != 3 or im.shape[2] not in (3, 4) or im.dtype != np.uint8 or im.size == 0:
            raise UsageError(f"image {n} of shape {im.shape} and dtype {im.dtype} should be (H, W, 3|4) uint8")
    channels = 4 if any(im.shape[2] == 4 for im in images) else 3
    keys = np.zeros(0, dtype=np.uint32)
    counts = np.zeros(0, dtype=np.int64)
    n_pixels = 0
    for im in images:
        table = color_table(_with_alpha(im) if channels == 4 else im)
        n_pixels += table.inverse.size
        # merge this image's table into the running one
        keys, inv = np.unique(np.concatenate([keys, _pack(table.colors)]), return_inverse=True)
        counts = np.bincount(inv.ravel(), weights=np.concatenate([counts, table.counts]).astype(np.float64),
                             minlength=keys.size).astype(np.int64)
    return ColorTable(colors=_unpack(keys, channels), counts=counts, inverse=np.zeros(0, dtype=np.intp),
                      shape=(n_pixels, 1, channels))


def learn_palette(images, n_colors=64, *, random_state=0, speed=4, color_space="rgb", fixed_colors=None):
    """Learn one palette for a set of images with K-means on their pooled colours.

    Parameters
    ----------
    images : iterable of ndarray of shape (H, W, 3|4), uint8
        Every pixel of every image weighs the same (a large image counts more).
    n_colors : int, default=64
        Palette size K, 2..256 and at most the number of distinct colours.
    random_state, speed, color_space, fixed_colors
        As for :class:`~imcompress.kmeans.KMeansQuantizer`.

    Returns
    -------
    LearnedPalette

    Examples
    --------
    >>> from imcompress import sample_image
    >>> im = sample_image()
    >>> learned = learn_palette([im[:64], im[64:]], 8)
    >>> learned.palette.shape, learned.n_images
    ((8, 3), 2)
    """
    from ._quantizer import SPEED_LEVELS, KMeansQuantizer, PreparedColors

    images = list(images)
    table = pooled_colors(images)
    if isinstance(n_colors, (int, np.integer)) and not isinstance(n_colors, bool) and n_colors > 256:
        raise UsageError(f"n_colors={n_colors} should be at most 256 (a PNG palette holds 256)")
    q = KMeansQuantizer(n_colors, random_state=random_state, speed=speed, color_space=color_space,
                        fixed_colors=fixed_colors)
    q._check_params(table.colors.shape[1])  # before the problem is built in a space that may not apply
    problem = _solver.make_problem(table.colors, table.counts, color_space, SPEED_LEVELS[speed][0])
    q.fit(PreparedColors(table=table, color_space=color_space, speed=int(speed), problem=problem))
    return LearnedPalette(palette=q.palette_, quantizer=q, n_images=len(images),
                          n_pixels=int(table.counts.sum()), n_distinct_colors=table.n_colors)


def map_to_palette(image, palette, *, dither=0.0) -> np.ndarray:
    """Palette index of every pixel for a fixed palette (pngquant's ``--map``).

    Each pixel gets the nearest entry in sRGB (premultiplied RGBA when the
    palette has alpha), the lowest index on an exact tie; fully transparent
    pixels get the first fully transparent entry, if there is one. An RGB
    image mapped to an RGBA palette counts as opaque.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3|4), uint8
    palette : ndarray of shape (K, 3|4), uint8, 1 <= K <= 256
    dither : float, default=0.0
        Floyd–Steinberg strength 0..1, as the quantizer's.

    Returns
    -------
    ndarray of shape (H, W), uint8

    Examples
    --------
    >>> import numpy as np
    >>> pal = np.array([[0, 0, 0], [250, 250, 250]], dtype=np.uint8)
    >>> map_to_palette(np.array([[[10, 10, 10], [200, 180, 255]]], dtype=np.uint8), pal).tolist()
    [[0, 1]]
    """
    pal = _check_palette(palette)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise UsageError(f"image of shape {image.shape} and dtype {image.dtype} should be (H, W, 3|4) uint8")
    if image.shape[2] == 4 and pal.shape[1] == 3:
        raise UsageError("the image has alpha but the palette has none; use a palette with alpha "
                         "(learn it from images with alpha, or save it as RGBA)")
    if pal.shape[1] == 4:
        image = _with_alpha(image)
    d = float(dither)
    if isinstance(dither, bool) or not 0.0 <= d <= 1.0:
        raise UsageError(f"dither={dither!r} should be a number from 0 (off) to 1 (full Floyd-Steinberg)")
    table = color_table(image)
    labels = _solver.assign(to_space(table.colors, "rgb"), to_space(pal, "rgb"), table.colors)
    clear = None
    if pal.shape[1] == 4:
        hits = np.flatnonzero(pal[:, 3] == 0)
        if hits.size:
            clear = int(hits[0])
            labels[table.colors[:, 3] == 0] = clear
    indices = labels[table.inverse].reshape(image.shape[:2])
    if d > 0:
        from ._dither import dither_indices

        indices = dither_indices(image, pal, indices, d, clear)
    return indices.astype(np.uint8)


def _check_palette(palette) -> np.ndarray:
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] not in (3, 4) or not 1 <= pal.shape[0] <= 256:
        raise UsageError(f"palette of shape {pal.shape} should be (K, 3|4) with 1 <= K <= 256")
    if pal.dtype != np.uint8:
        raise UsageError(f"palette of dtype {pal.dtype} should be uint8")
    return np.ascontiguousarray(pal)


def read_palette(source) -> np.ndarray:
    """The palette of an image file: its distinct colours, at most 256.

    An indexed PNG (such as ``imcompress palette`` writes) keeps the order of
    its palette; any other image gives its colours in the quantizer's palette
    order. Images with transparency give an RGBA palette.

    Parameters
    ----------
    source : str, path-like or bytes

    Returns
    -------
    ndarray of shape (K, 3|4), uint8

    Raises
    ------
    InputError
        The file cannot be read as an image, or has more than 256 colours.
    """
    from ..io import read_image

    data = bytes(source) if isinstance(source, (bytes, bytearray)) else None
    name = "<bytes>" if data is not None else str(source)
    image = read_image(io.BytesIO(data) if data is not None else source, alpha="keep")
    pixels = image.pixels
    table = color_table(pixels)
    if table.n_colors > 256:
        raise InputError(f"{name}: has {table.n_colors} colours, a palette holds at most 256; "
                         "make one with 'imcompress palette IMAGES -k K -o palette.png'")
    order = _file_order(source if data is None else io.BytesIO(data), table)
    if order is None:
        order = palette_order(table.colors)
    return np.ascontiguousarray(table.colors[order])


def _file_order(source, table):
    """Order of the colours by their index in an indexed file, or None."""
    from PIL import Image

    try:
        with Image.open(source) as img:
            if img.mode != "P":
                return None
            idx = np.asarray(img).ravel()
    except (OSError, ValueError):
        return None
    if idx.size != table.inverse.size:
        return None
    _, first = np.unique(table.inverse, return_index=True)
    return np.argsort(idx[first], kind="stable")


def palette_image(palette) -> tuple:
    """The (palette, indices) of a 1-pixel-high strip showing every entry once."""
    pal = _check_palette(palette)
    return pal, np.arange(pal.shape[0], dtype=np.uint8).reshape(1, -1)
