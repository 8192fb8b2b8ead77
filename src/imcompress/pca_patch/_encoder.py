"""The encoder search: bases, chroma subsampling, deblocking and the rate.

For one quantizer step, :meth:`Encoder.encode` quantizes every plane with
each candidate basis and keeps the lowest D + lambda R, chooses 4:2:0 or
4:4:4 likewise and the deblocking strength of each plane by its error;
:meth:`Encoder.fit_bytes` bisects the step for a byte budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .._errors import QualityError
from ._coder import encode_stream
from ._deblock import MAX_STRENGTH, deblock
from ._decoder import plane_grid, reconstruct
from ._models import ClassifiedModel, PlaneModel
from ._params import BASIS_DCT, CHROMA, MIN_STEP, Params, PlaneParams, pack_params, plane_kind, plane_shapes
from ._quantize import CHROMA_FACTOR, STEP_Q0, lagrangian, rate_proxy
from ._transform import dct_freq, downsample2, rgb_to_ycbcr, upsample2

__all__ = ["Encoder", "best_strength", "fit_bytes"]

#: Precision of the stored basis: entries are multiples of 2**-BASIS_EXP.
BASIS_EXP = 5


@dataclass(frozen=True)
class Choice:
    """One plane quantized with one model: levels, components kept, rho."""

    model: PlaneModel
    q: np.ndarray
    k: int
    rho: int


@dataclass(frozen=True)
class Config:
    """Everything one candidate file holds, plus the decoder's planes before deblocking."""

    prm: Params
    bases: list
    coefs: list
    grids: list
    cmaps: list

    @property
    def freqs(self):
        return [dct_freq(pl.patch) for pl in self.prm.planes]

    @property
    def kinds(self):
        return [plane_kind(i) for i in range(len(self.prm.planes))]

    def sections(self):
        data = encode_stream(self.bases, self.freqs, self.kinds, self.coefs, class_maps=self.cmaps)
        return [(b"PPAR", pack_params(self.prm)), (b"PDAT", data)]


def best_strength(errors):
    """Deblocking strength with the smallest squared error (0 = off).

    ``errors(strengths)`` returns ``{strength: squared error}`` for a list of
    strengths. A coarse pass over every fourth strength, then the neighbours
    of the best.
    """
    found = {}

    def best(candidates):
        candidates = list(candidates)
        missing = [s for s in candidates if s not in found]
        if missing:
            found.update(errors(missing))
        return min(candidates, key=found.__getitem__)

    coarse = best(range(0, MAX_STRENGTH + 1, 4))
    return best(s for s in range(coarse - 2, coarse + 3) if 0 <= s <= MAX_STRENGTH)


def _best_deblock(grid, model, step):
    h, w = model.shape
    ref = model.padded[:h, :w]
    return best_strength(lambda strengths: {s: float(np.sum((deblock(grid, model.p, step, s)[:h, :w] - ref) ** 2))
                                            for s in strengths})


class Encoder:
    """Holds the per-image analysis so several steps can be tried cheaply."""

    def __init__(self, image, *, patch, chroma, basis):
        self.image = image
        self.h, self.w, self.nch = image.shape
        rgb = image[:, :, :3]
        self.ycc = rgb_to_ycbcr(rgb)
        self.alpha = image[:, :, 3].astype(np.float64) - 128.0 if self.nch == 4 else None
        self.patch = 8 if patch == "auto" else patch
        self.chromas = [True, False] if chroma == "auto" else [chroma == "420"]
        self.basis = basis
        self._models = {}
        self._grids = {}
        self._sub = None
        self._sub_mse = None

    def _plane(self, i, subsample):
        if i == 0:
            return self.ycc[0]
        if i == 3:
            return self.alpha
        if subsample:
            if self._sub is None:
                self._sub = [downsample2(self.ycc[1]), downsample2(self.ycc[2])]
            return self._sub[i - 1]
        return self.ycc[i]

    def _subsampling_mse(self):
        """Mean squared error per chroma sample of 4:2:0 alone (no quantization)."""
        if self._sub_mse is None:
            errs = [np.mean((upsample2(self._plane(i, True), (self.h, self.w)) - self.ycc[i]) ** 2)
                    for i in (1, 2)]
            self._sub_mse = float(np.mean(errs))
        return self._sub_mse

    def _models_for(self, i, subsample, p):
        key = (i, subsample if i in (1, 2) else None, p)
        if key not in self._models:
            plane = self._plane(i, subsample)
            if self.basis == "auto":
                # the learned basis is a candidate for luma only: on chroma it
                # never paid in the Kodak study, and it costs encoder time
                kinds = ["dct", "pca"] if i == 0 else ["dct"]
            elif self.basis == "classified":
                kinds = ["classified"] if i == 0 else ["dct"]
            else:
                kinds = [self.basis]
            self._models[key] = [ClassifiedModel(plane, p, BASIS_EXP) if kind == "classified"
                                 else PlaneModel(plane, p, kind, BASIS_EXP) for kind in kinds]
        return self._models[key]

    def choose(self, i, subsample, step) -> Choice:
        """Quantize plane ``i`` with each candidate basis; keep the lowest D + lambda R.

        A learned basis is coded in full only when a cheap rate proxy says it
        could win; it rarely does on photos (see docs/pca-patch.md).
        """
        models = self._models_for(i, subsample, self.patch)
        cands = [Choice(m, *m.quantize(step)) for m in models]
        if len(cands) == 1:
            return cands[0]
        proxies = [rate_proxy(c.q, c.model.stored(c.k) if c.model.mode != BASIS_DCT else None)
                   + c.model.sse(c.q, c.k, c.rho, step) / (lagrangian(step) * 1.0)
                   for c in cands]
        if min(proxies[1:]) >= proxies[0] * 0.98:
            return cands[0]
        best = None
        for c in cands:
            m = c.model
            nbytes = len(encode_stream([m.stored(c.k)], [dct_freq(m.p)], [plane_kind(i)], [c.q],
                                       class_maps=[m.cmap]))
            j = m.sse(c.q, c.k, c.rho, step) + lagrangian(step) * 8.0 * nbytes
            if best is None or j < best[0]:
                best = (j, c)
        return best[1]

    def assemble(self, step, subsample, choices) -> Config:
        """The file of one configuration; ``choices[i]`` is plane i's :class:`Choice`.

        The deblocking strength of each plane is chosen here, on the
        decoder's planes before deblocking (kept in the result's ``grids``).
        """
        step32 = float(np.float32(step))
        cstep32 = float(np.float32(step * CHROMA_FACTOR))
        planes, bases, coefs, grids, cmaps = [], [], [], [], []
        for i, c in enumerate(choices):
            m = c.model
            pl = PlaneParams(m.p, m.mode, m.basis_exp, c.k, c.rho, 0)
            qb = m.stored(c.k)
            cmap = m.cmap if pl.n_classes else None
            pstep = cstep32 if plane_kind(i) == CHROMA else step32
            key = (i, id(m), id(c.q))
            if key not in self._grids:
                # luma and alpha are shared by the chroma options: synthesise once
                grid = plane_grid(i, pl, pstep, qb, c.q, cmap)
                self._grids[key] = (grid, _best_deblock(grid, m, pstep), c.q)
            grid, strength, _ = self._grids[key]
            planes.append(replace(pl, deblock=strength))
            bases.append(qb)
            cmaps.append(cmap)
            coefs.append(c.q)
            grids.append(grid)
        prm = Params(subsample, step32, cstep32, tuple(planes))
        return Config(prm, bases, coefs, grids, cmaps)

    def _sse(self, cfg: Config):
        shapes = plane_shapes(self.h, self.w, self.nch, cfg.prm.subsample)
        rec = reconstruct(cfg.prm, shapes, cfg.bases, cfg.coefs, (self.h, self.w, self.nch), cfg.grids)
        diff = rec.astype(np.float64) - self.image.astype(np.float64)
        return float(np.sum(diff * diff))

    def encode(self, step):
        """Best configuration at ``step`` by D + lambda R; returns (sections, nbytes)."""
        self._grids = {}
        step = float(np.float32(step))
        cstep = float(np.float32(step * CHROMA_FACTOR))
        fixed = {i: self.choose(i, None, step) for i in range(self.nch) if i not in (1, 2)}
        best = None
        chromas = self.chromas
        if len(chromas) == 2 and self._subsampling_mse() <= 0.6 * cstep * cstep / 12.0:
            # what 4:2:0 loses is well below the quantization noise: 4:4:4
            # cannot win (on Kodak it wins only when this ratio exceeds ~2.5)
            chromas = [True]
        for subsample in chromas:
            chroma = {i: self.choose(i, subsample, cstep) for i in (1, 2)}
            choices = [fixed[i] if i in fixed else chroma[i] for i in range(self.nch)]
            cfg = self.assemble(step, subsample, choices)
            if len(chromas) == 1:
                best = (0.0, cfg)
                break
            # luma and alpha are the same in every option: compare chroma bytes only
            nbytes = len(encode_stream(cfg.bases[1:3], cfg.freqs[1:3], cfg.kinds[1:3], cfg.coefs[1:3]))
            j = self._sse(cfg) + 3.0 * lagrangian(step) * 8.0 * nbytes
            if best is None or j < best[0]:
                best = (j, cfg)
        sections = best[1].sections()
        return sections, sum(len(x[1]) + 8 for x in sections)

    def fit_bytes(self, budget):
        """Largest encoding with section bytes + container overhead <= budget."""
        return fit_bytes(self, budget)


def fit_bytes(encoder, budget):
    """Sections of ``encoder``'s largest file within ``budget`` bytes (bisection on the step).

    ``encoder`` has ``encode(step) -> (sections, nbytes)`` and the image's ``h``, ``w``.
    """
    overhead = 17 + 4
    lo, hi = math.log(MIN_STEP * 100), math.log(STEP_Q0 * 50)
    best = None
    for _ in range(22):
        mid = 0.5 * (lo + hi)
        sections, n = encoder.encode(math.exp(mid))
        if n + overhead <= budget:
            best = sections
            hi = mid
        else:
            lo = mid
        if hi - lo < 0.01:
            break
    if best is None:
        smallest = encoder.encode(math.exp(hi))[1] + overhead
        pixels = encoder.h * encoder.w
        raise QualityError(
            f"bpp target of {8.0 * budget / pixels:.4f} cannot be reached: the smallest "
            f"pca-patch file of this image is {smallest} bytes "
            f"({8.0 * smallest / pixels:.4f} bpp); raise --bpp"
        )
    return best
