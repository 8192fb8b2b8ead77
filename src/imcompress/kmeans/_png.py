"""Palette PNGs: a plain zlib writer on every core, or oxipng for the smallest file.

The pixels of a palette PNG are fixed by the quantization; what is left to
choose is how they are stored: the order of the palette entries, the bit depth
and the per-row PNG filters, then the DEFLATE effort. oxipng (through the
``pyoxipng-ng`` binding) makes these choices by trial; measured on the study
photo and the Kodak photos (docs/quantizer.md, "Palette PNGs"):

* Palette order: oxipng's own candidates (luma order with the most common edge
  colour first, and co-occurrence orders after Zeng and Battiato) with its
  adaptive row filters beat luma, popularity and nearest-neighbour orders fed
  to it as they are, by 3-7 % at K >= 64.
* At 16 colours or fewer oxipng packs 4 bits per pixel and leaves the order
  alone; there a file whose palette follows a co-occurrence chain
  (:func:`cooccurrence_order`) with oxipng's per-row "Entropy" filter choice
  is 5-9 % smaller on most photos (and 9 % larger on kodim03), so both are
  made and the smaller kept.

Every candidate stores the same pixels: decoding any of them gives
``palette[indices]`` exactly (tested bit for bit).
"""

from __future__ import annotations

import numpy as np

from .._errors import UsageError

__all__ = ["AUTO_LEVEL_MAX_PIXELS", "DEFAULT_PNG_LEVEL", "PNG_LEVELS", "cooccurrence_order", "palette_png"]

#: ``png_level`` values: 0 is :func:`imcompress.io.png_bytes` (what Pillow's writer
#: with ``optimize=True`` does: DEFLATE level 9, no filter trials, but zlib-ng's
#: DEFLATE on every core; on the study photo 0.05-1.4 % smaller than Pillow's file),
#: 1..6 are oxipng's presets (more filter and palette-order trials, stronger
#: DEFLATE).
PNG_LEVELS = range(0, 7)

#: The level used when none is given (``level=None``), for images of at most
#: :data:`AUTO_LEVEL_MAX_PIXELS` pixels. Chosen by ``benchmarks/png.py``: the
#: study photo at K = 256 costs about 0.07 s more than level 0 (idle)
#: for a file 7 % smaller.
DEFAULT_PNG_LEVEL = 2

#: Above this many pixels ``level=None`` means level 0: oxipng's trials grow
#: with the pixels (12 MP, K = 256: 1.2 CPU-seconds for zlib level 9, 3.9 for
#: level 1, about 8 for level 2) while the 12 MP photo's level-0 file is
#: already 8-17 % smaller than pngquant's.
AUTO_LEVEL_MAX_PIXELS = 4_000_000

#: Palettes up to this size also get the co-occurrence candidate.
_COOCCURRENCE_MAX_K = 16


def palette_png(palette, indices, *, icc_profile=None, level=None) -> bytes:
    """An indexed PNG of ``palette[indices]`` (a tRNS chunk for RGBA palettes).

    Parameters
    ----------
    palette : ndarray of shape (K, 3|4), dtype uint8
    indices : ndarray of shape (H, W), dtype uint8
        Every value below K.
    icc_profile : bytes, optional
        Stored as an iCCP chunk.
    level : int or None, default=None
        0: :func:`imcompress.io.png_bytes` (zlib level 9); 1..6: oxipng's preset of
        that level (see the module notes). None: :data:`DEFAULT_PNG_LEVEL` up
        to :data:`AUTO_LEVEL_MAX_PIXELS` pixels, 0 above.

    Returns
    -------
    bytes
        A PNG file that decodes to exactly ``palette[indices]``.

    Examples
    --------
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> pal = np.array([[0, 0, 0], [255, 128, 0]], dtype=np.uint8)
    >>> idx = (np.arange(64).reshape(8, 8) % 3 == 0).astype(np.uint8)
    >>> data = palette_png(pal, idx, level=2)
    >>> bool((np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) == pal[idx]).all())
    True
    """
    pal = np.ascontiguousarray(palette, dtype=np.uint8)
    idx = np.ascontiguousarray(indices, dtype=np.uint8)
    if level is None:
        level = auto_level(idx.size)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in PNG_LEVELS:
        raise UsageError(f"png_level={level!r} should be an integer 0..6 (0: plain zlib)")
    if pal.ndim != 2 or pal.shape[1] not in (3, 4) or not 1 <= pal.shape[0] <= 256:
        raise UsageError(f"palette of shape {pal.shape} should be (K, 3|4) with 1 <= K <= 256")
    if idx.ndim != 2 or idx.size == 0:
        raise UsageError(f"indices of shape {idx.shape} should be a non-empty (H, W) array")
    if int(idx.max()) >= pal.shape[0]:
        raise UsageError(f"index {int(idx.max())} is outside the palette of {pal.shape[0]} colours")
    if level == 0:
        from ..io import png_bytes

        return png_bytes(idx, palette=pal, icc_profile=icc_profile, level=9)
    best = _oxipng(pal, idx, icc_profile, level=int(level))
    if pal.shape[0] <= _COOCCURRENCE_MAX_K and pal.shape[0] > 2:
        order = cooccurrence_order(idx, pal.shape[0])
        rank = np.empty(order.size, dtype=np.uint8)
        rank[order] = np.arange(order.size, dtype=np.uint8)
        alt = _oxipng(pal[order], rank[idx], icc_profile, level=int(level), keep_order=True)
        if len(alt) < len(best):
            best = alt
    return best


def auto_level(n_pixels: int) -> int:
    """The level ``level=None`` stands for: 2 up to 4 MP, 0 (plain zlib) above."""
    return DEFAULT_PNG_LEVEL if n_pixels <= AUTO_LEVEL_MAX_PIXELS else 0


def _oxipng(pal, idx, icc_profile, *, level, keep_order=False) -> bytes:
    import oxipng

    h, w = idx.shape
    alpha = pal[:, 3] if pal.shape[1] == 4 else np.full(pal.shape[0], 255, dtype=np.uint8)
    entries = [(int(r), int(g), int(b), int(a)) for (r, g, b), a in zip(pal[:, :3], alpha)]
    raw = oxipng.RawImage(idx.tobytes(), w, h, color_type=oxipng.ColorType.indexed(entries), bit_depth=8)
    if icc_profile:
        raw.add_icc_profile(bytes(icc_profile))
    if keep_order:
        # our palette order kept (no re-sorting), per-row "Entropy" filters
        return raw.create_optimized_png(level=level, filter=[oxipng.RowFilter.Entropy], palette_reduction=False)
    return raw.create_optimized_png(level=level)


def cooccurrence_order(indices, n_colors) -> np.ndarray:
    """A palette order that puts colours that touch in the image next to each other.

    The modified Zeng reindexing (Pinho et al. 2004, as in libwebp): start from
    the pair of entries that are horizontal or vertical neighbours most often,
    then add, one at a time, the entry with the most contacts with those
    already placed, at whichever end of the chain its contacts pull it to.

    Parameters
    ----------
    indices : ndarray of shape (H, W), uint8
    n_colors : int
        Palette size K (entries never used go last).

    Returns
    -------
    ndarray of shape (K,), intp
        ``order[i]`` is the old index of new entry ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> idx = np.array([[0, 2, 2, 1], [0, 2, 1, 1]], dtype=np.uint8)
    >>> cooccurrence_order(idx, 3).tolist()
    [1, 2, 0]
    """
    k = int(n_colors)
    idx = np.asarray(indices, dtype=np.int64)
    pairs = np.concatenate([
        (idx[:, 1:] * k + idx[:, :-1]).ravel(),
        (idx[1:, :] * k + idx[:-1, :]).ravel(),
    ])
    m = np.bincount(pairs, minlength=k * k).reshape(k, k).astype(np.int64)
    m = m + m.T
    np.fill_diagonal(m, 0)
    used = np.bincount(idx.ravel(), minlength=k) > 0
    first = np.unravel_index(int(np.argmax(np.triu(m, 1))), (k, k)) if k > 1 else (0, 0)
    chain = [int(first[0]), int(first[1])] if first[0] != first[1] else [int(first[0])]
    placed = np.zeros(k, dtype=bool)
    placed[chain] = True
    sums = m[:, chain].sum(axis=1)
    while not placed[used].all():
        cand = np.where(placed | ~used, -1, sums)
        best = int(np.argmax(cand))
        # pull toward the front when its contacts sit mostly in the first half
        n = len(chain)
        weights = n - 1 - 2 * np.arange(n)
        if int((weights * m[best, chain]).sum()) > 0:
            chain.insert(0, best)
        else:
            chain.append(best)
        placed[best] = True
        sums = sums + m[:, best]
    chain += [j for j in range(k) if not placed[j]]
    return np.asarray(chain, dtype=np.intp)
