"""Bitstream 2 of pca-patch: intra prediction, quadtree partition, per-size DCT.

:class:`IntraEncoder` has the interface of the version-1 ``Encoder``
(``encode(step)`` and ``fit_bytes(budget)``); :func:`decode_intra` is its
decoder. Planes: Y, then Cb and Cr (4:2:0 or 4:4:4; chroma may be predicted
from the luma reconstruction), then alpha; all in one range-coded stream,
one context model per plane kind. Layout in docs/FORMAT.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import QualityError
from ..entropy import enc_finish, enc_new, model_new, run_encoder
from ._blockcoder import N_CONTEXTS2, cost_table, scan_tables
from ._deblock import deblock_tree, deblock_tree_bands
from ._encoder import best_strength, fit_bytes
from ._intra import SCALE
from ._params import CHROMA, IntraParams, IntraPlaneParams, pack_params, parse_params, plane_kind, plane_shapes
from ._quantize import CHROMA_FACTOR, lagrangian
from ._output import RowWindow, band_rows, to_image
from ._search import encode_plane
from ._transform import downsample2, upsample2
from ._tree import decode_planes, dct_stack

__all__ = ["IntraEncoder", "SearchSettings", "decode_intra", "padded_shapes"]

#: Lagrangian of the search, in step**2 per bit.
LAMBDA = 0.12
#: Deadzone rounding offset of the search's quantizer.
ROUND = 0.40
#: Reconstruction offset of nonzero levels (1/256 of a step).
RHO = 0
#: Below the first ratio of (what 4:2:0 loses) to (chroma quantization
#: noise) only 4:2:0 is tried, above the second only 4:4:4; between, both are
#: encoded and the lower D + lambda R kept.
_SUBSAMPLE_BOTH = (0.6, 8.0)


def padded_shapes(h, w, nch, subsample):
    """Coded (padded) shape of each plane: luma to a multiple of 32 (64 with 4:2:0)."""
    m = 64 if subsample else 32
    hp, wp = -(-h // m) * m, -(-w // m) * m
    ch = (hp // 2, wp // 2) if subsample else (hp, wp)
    shapes = [(hp, wp), ch, ch]
    if nch == 4:
        shapes.append((hp, wp))
    return shapes


@dataclass(frozen=True)
class SearchSettings:
    """What the encoder may use; the defaults follow ``speed``, the rest serve ablations.

    ``n_cand``: modes fully tried besides the most probable ones; ``prune``:
    leaves that code no level are not split further; ``modes``: the allowed
    prediction modes (None: all 35); ``cfl``: chroma from luma; block sides
    ``2**log2min .. 2**log2max``; ``deblock``: let the filter be chosen.
    """

    n_cand: int = 3
    prune: bool = True
    modes: tuple | None = None
    cfl: bool = True
    log2max: int = 5
    log2min: int = 2
    deblock: bool = True

    @classmethod
    def for_speed(cls, speed: int) -> "SearchSettings":
        return cls(n_cand=(8, 6, 5, 4, 3, 3, 2, 2, 1, 1)[speed], prune=speed >= 4, log2min=3 if speed >= 9 else 2)

    def mode_mask(self):
        mask = np.ones(35, dtype=np.bool_)
        if self.modes is not None:
            mask[:] = False
            mask[list(self.modes)] = True
        return mask


def _encode_planes(out, planes, luma_index, sub, params, settings, recs, maps):
    st = enc_new()
    tab = cost_table()
    su, sv = scan_tables()
    dct = dct_stack()
    models = {}
    mask = settings.mode_mask()
    for i, (src, (kind, step, pl)) in enumerate(zip(planes, params)):
        model = models.setdefault(kind, model_new(N_CONTEXTS2))
        chroma = kind == CHROMA
        luma = recs[luma_index] if chroma else recs[i]
        encode_plane(st, out, model, src, recs[i], maps[i], pl.log2max, pl.log2min, step, pl.rho / 256.0,
                     LAMBDA * step * step, chroma, luma, sub and chroma, settings.n_cand, settings.prune, tab, su, sv,
                     dct, ROUND, mask, settings.cfl)
    return enc_finish(st, out)


@dataclass(frozen=True)
class SearchResult:
    """What :meth:`IntraEncoder.search` produced: padded source planes, their
    steps, reconstructions (1/SCALE units), unit maps (size, mode, alpha,
    cbf) and the ``PDAT`` stream."""

    planes: list
    steps: list
    recs: list
    maps: list
    data: bytes


class IntraEncoder:
    """Encoder of bitstream 2 (same interface as the version-1 encoder)."""

    def __init__(self, image, *, chroma, speed, settings=None):
        from ._transform import rgb_to_ycbcr

        self.image = image
        self.h, self.w, self.nch = image.shape
        self.ycc = rgb_to_ycbcr(image[:, :, :3])
        self.alpha = image[:, :, 3].astype(np.float64) - 128.0 if self.nch == 4 else None
        self.chroma = chroma
        self.speed = speed
        self.settings = settings or SearchSettings.for_speed(speed)
        self._sub_mse = None

    def _subsample_options(self, cstep):
        """Chroma layouts worth trying: 4:2:0 alone when what it loses is well below the
        chroma quantization noise, 4:4:4 alone when far above, else both."""
        if self.chroma != "auto":
            return [self.chroma == "420"]
        if self._sub_mse is None:
            errs = [np.mean((upsample2(downsample2(self.ycc[i]), (self.h, self.w)) - self.ycc[i]) ** 2)
                    for i in (1, 2)]
            self._sub_mse = float(np.mean(errs))
        ratio = self._sub_mse / (cstep * cstep / 12.0)
        if ratio < _SUBSAMPLE_BOTH[0]:
            return [True]
        if ratio > _SUBSAMPLE_BOTH[1]:
            return [False]
        return [True, False]

    def _planes(self, subsample):
        chroma = [downsample2(c) for c in self.ycc[1:]] if subsample else self.ycc[1:]
        planes = [self.ycc[0]] + list(chroma) + ([self.alpha] if self.alpha is not None else [])
        shapes = padded_shapes(self.h, self.w, self.nch, subsample)
        return [np.ascontiguousarray(np.pad(p, ((0, s[0] - p.shape[0]), (0, s[1] - p.shape[1])), mode="edge"))
                for p, s in zip(planes, shapes)]

    def encode(self, step):
        """(sections, nbytes) of the file at luma step ``step``."""
        step32 = float(np.float32(step))
        cstep32 = float(np.float32(step * CHROMA_FACTOR))
        options = self._subsample_options(cstep32)
        best = None
        for subsample in options:
            sections, nbytes = self._encode(step32, cstep32, subsample)
            if len(options) == 1:
                return sections, nbytes
            prm = parse_params(sections[0][1], self.nch)
            rec = decode_intra(sections[1][1], prm, self.image.shape)
            sse = float(np.sum((rec.astype(np.float64) - self.image) ** 2))
            j = sse + 3.0 * lagrangian(step32) * 8.0 * nbytes
            if best is None or j < best[0]:
                best = (j, sections, nbytes)
        return best[1], best[2]

    def search(self, step32, cstep32, subsample) -> SearchResult:
        """Run the search and the coder on every plane (the encoder's work, before deblocking)."""
        planes = self._planes(subsample)
        cfg = self.settings
        steps = [cstep32 if plane_kind(i) == CHROMA else step32 for i in range(len(planes))]
        params = [(plane_kind(i), steps[i], IntraPlaneParams(cfg.log2max, cfg.log2min, RHO, 0))
                  for i in range(len(planes))]
        recs = [np.zeros(p.shape, dtype=np.int64) for p in planes]
        maps = [np.zeros((4, p.shape[0] >> 2, p.shape[1] >> 2), dtype=np.int64) for p in planes]
        capacity = 8 * sum(p.size for p in planes) + 65536
        data = run_encoder(_encode_planes, planes, 0, subsample, params, cfg, recs, maps, capacity=capacity)
        return SearchResult(planes, steps, recs, maps, data)

    def _encode(self, step32, cstep32, subsample):
        res = self.search(step32, cstep32, subsample)
        shapes = plane_shapes(self.h, self.w, self.nch, subsample)
        final = []
        for i, (rec, m, shape) in enumerate(zip(res.recs, res.maps, shapes)):
            grid = rec / SCALE
            ref = res.planes[i][: shape[0], : shape[1]]
            strength = 0
            if self.settings.deblock:
                strength = best_strength(lambda s: deblock_tree(grid, m[0], res.steps[i], s), ref)
            final.append(IntraPlaneParams(self.settings.log2max, self.settings.log2min, RHO, strength))
        prm = IntraParams(subsample, step32, cstep32, tuple(final))
        sections = [(b"PPAR", pack_params(prm)), (b"PDAT", res.data)]
        return sections, sum(len(x[1]) + 8 for x in sections)

    def fit_bytes(self, budget):
        """Best file with section bytes + container overhead <= budget.

        The file size jumps where the chroma layout changes, so with
        ``chroma="auto"`` each layout gets its own bisection on the step and
        the one with the smaller squared error wins.
        """
        if self.chroma != "auto":
            return fit_bytes(self, budget)
        best, error = None, None
        for layout in ("420", "444"):
            enc = IntraEncoder(self.image, chroma=layout, speed=self.speed, settings=self.settings)
            try:
                sections = fit_bytes(enc, budget)
            except QualityError:
                if layout == "444" and best is not None:
                    continue
                raise
            rec = decode_intra(sections[1][1], parse_params(sections[0][1], self.nch), self.image.shape)
            sse = float(np.sum((rec.astype(np.float64) - self.image) ** 2))
            if best is None or sse < error:
                best, error = sections, sse
        return best


def image_from_recs(recs, size_maps, prm: IntraParams, out_shape) -> np.ndarray:
    """The decoded (H, W, C) uint8 image from the planes' reconstructions (1/SCALE units) and leaf sizes:
    deblocking, chroma upsampling and the inverse colour transform, in bands (see ``_output``)."""
    windows = []
    for i, (rec, size_map, pl) in enumerate(zip(recs, size_maps, prm.planes)):
        bands = deblock_tree_bands(lambda y0, y1, rec=rec: rec[y0:y1] / SCALE, rec.shape[0], size_map,
                                   prm.plane_step(i), pl.deblock, band_rows(rec.shape[1], 4))
        windows.append(RowWindow(bands, rec.shape[1]))
    return to_image(windows, out_shape, prm.subsample)


def decode_intra(data: bytes, prm: IntraParams, out_shape) -> np.ndarray:
    """Decode bitstream 2's ``PDAT`` to an (H, W, C) uint8 image."""
    h, w, nch = out_shape
    padded = padded_shapes(h, w, nch, prm.subsample)
    layouts = []
    for i, (pl, shape) in enumerate(zip(prm.planes, padded)):
        kind = plane_kind(i)
        layouts.append((shape, kind, pl.log2max, pl.log2min, prm.plane_step(i), pl.rho / 256.0, kind == CHROMA,
                        prm.subsample and kind == CHROMA))
    recs, sizes = decode_planes(data, layouts)
    return image_from_recs(recs, sizes, prm, out_shape)
