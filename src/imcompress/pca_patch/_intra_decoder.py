"""The decoder of bitstream 2 (intra prediction, quadtree partition, per-size DCT).

Kept apart from the encoder (``_intra_codec``) so that decoding imports no
encoder search, rate-distortion or source-plane module. Layout in
docs/FORMAT.md.
"""

from __future__ import annotations

import numpy as np

from ._deblock import DeblockedRows
from ._intra import SCALE
from ._output import band_rows, to_image
from ._params import CHROMA, IntraParams, plane_kind
from ._tree import decode_planes

__all__ = ["decode_intra", "image_from_recs", "padded_shapes"]


def padded_shapes(h, w, nch, subsample):
    """Coded (padded) shape of each plane: luma to a multiple of 32 (64 with 4:2:0)."""
    m = 64 if subsample else 32
    hp, wp = -(-h // m) * m, -(-w // m) * m
    ch = (hp // 2, wp // 2) if subsample else (hp, wp)
    shapes = [(hp, wp), ch, ch]
    if nch == 4:
        shapes.append((hp, wp))
    return shapes


def image_from_recs(recs, size_maps, prm: IntraParams, out_shape, on_rows=None) -> np.ndarray:
    """The decoded (H, W, C) uint8 image from the planes' reconstructions (1/SCALE units) and leaf sizes:
    deblocking, chroma upsampling and the inverse colour transform, in bands (see ``_output``);
    ``on_rows`` as :func:`~._output.to_image`'s."""
    max_rows = band_rows(out_shape[1], 2) + 4  # an image band, or the chroma rows it reads
    planes = [DeblockedRows(rec, size_map, prm.plane_step(i), pl.deblock, SCALE, band=band_rows(rec.shape[1], 4),
                            max_rows=max_rows)
              for i, (rec, size_map, pl) in enumerate(zip(recs, size_maps, prm.planes))]
    return to_image(planes, out_shape, prm.subsample, on_rows=on_rows)


def decode_intra(data: bytes, prm: IntraParams, out_shape, *, on_rows=None) -> np.ndarray:
    """Decode bitstream 2's ``PDAT`` to an (H, W, C) uint8 image (``on_rows``: see :func:`~._output.to_image`)."""
    h, w, nch = out_shape
    padded = padded_shapes(h, w, nch, prm.subsample)
    layouts = []
    for i, (pl, shape) in enumerate(zip(prm.planes, padded)):
        kind = plane_kind(i)
        layouts.append((shape, kind, pl.log2max, pl.log2min, prm.plane_step(i), pl.rho / 256.0, kind == CHROMA,
                        prm.subsample and kind == CHROMA))
    recs, sizes = decode_planes(data, layouts)
    return image_from_recs(recs, sizes, prm, out_shape, on_rows)
