"""The ``PPAR`` section: per-image and per-plane parameters, packed and checked.

Everything the decoder reads from ``PPAR`` is validated here, before anything
is allocated (layout in docs/FORMAT.md).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from .._errors import CorruptFileError
from ._coder import MAX_CLASSES
from ._deblock import MAX_STRENGTH
from ._transform import dct_freq

__all__ = [
    "ALPHA",
    "BASIS_CLS",
    "BASIS_DCT",
    "BASIS_PCA",
    "CHROMA",
    "LUMA",
    "MAX_STEP",
    "MIN_STEP",
    "IntraParams",
    "IntraPlaneParams",
    "Params",
    "PlaneParams",
    "n_learned",
    "pack_params",
    "parse_params",
    "plane_kind",
    "plane_shapes",
]

PPAR_HEAD = struct.Struct("<BBBff")  # version, flags, n_planes, luma step, chroma step
PPAR_PLANE = struct.Struct("<BBBHBB")  # log2 patch, basis mode, basis exp, K, rho/256, deblock
PPAR_VERSION = 1
#: Bitstream 2: intra prediction and a quadtree of block sizes (docs/FORMAT.md).
PPAR_VERSION_INTRA = 2
PPAR_PLANE_INTRA = struct.Struct("<BBBB")  # log2 root block, log2 smallest block, rho/256, deblock
FLAG_420 = 1
BASIS_DCT, BASIS_PCA = 0, 1
#: Classified mode byte: ``BASIS_CLS | C`` for C classes (class 0 = DCT).
BASIS_CLS = 0x10
MIN_STEP, MAX_STEP = 1e-3, 1e5
#: Plane kinds; each has its own context model and quantizer step.
LUMA, CHROMA, ALPHA = 0, 1, 2


def plane_kind(i: int) -> int:
    """Kind of plane ``i`` of a Y, Cb, Cr[, alpha] image."""
    return LUMA if i == 0 else (CHROMA if i < 3 else ALPHA)


def plane_shapes(h: int, w: int, nch: int, subsample: bool) -> list:
    """(rows, cols) of each coded plane."""
    ch = ((h + 1) // 2, (w + 1) // 2) if subsample else (h, w)
    shapes = [(h, w), ch, ch]
    if nch == 4:
        shapes.append((h, w))
    return shapes


def n_learned(p: int) -> int:
    """AC coordinates a class KLT acts on: DCT frequencies u + v <= p / 2
    (5, 14 and 44 for p = 4, 8, 16); the higher ones stay DCT."""
    return int(np.count_nonzero(dct_freq(p) <= p // 2)) - 1


@dataclass(frozen=True)
class PlaneParams:
    """One plane's coding parameters, as stored in ``PPAR``."""

    patch: int
    basis: int  # BASIS_DCT, BASIS_PCA or BASIS_CLS | n_classes
    basis_exp: int  # stored basis entries are multiples of 2**-basis_exp
    components: int  # K: AC components coded per patch
    rho: int  # reconstruction offset of nonzero AC levels, 1/256 steps
    deblock: int  # deblocking strength 0..MAX_STRENGTH

    @property
    def n_classes(self) -> int:
        """Basis classes of a classified plane, 0 otherwise."""
        return self.basis & 0x0F if self.basis & BASIS_CLS else 0

    @property
    def basis_name(self) -> str:
        if self.n_classes:
            return f"classified ({self.n_classes} classes)"
        return "pca" if self.basis == BASIS_PCA else "dct"


@dataclass(frozen=True)
class Params:
    """The whole ``PPAR`` section."""

    subsample: bool
    step: float  # luma (and alpha) quantizer step, a float32 value
    chroma_step: float
    planes: tuple

    def plane_step(self, i: int) -> float:
        return self.chroma_step if plane_kind(i) == CHROMA else self.step


@dataclass(frozen=True)
class IntraPlaneParams:
    """One plane's parameters in bitstream 2."""

    log2max: int  # root block side 2**log2max (2..5)
    log2min: int  # smallest block side (2..log2max)
    rho: int  # reconstruction offset of nonzero levels, 1/256 steps
    deblock: int


@dataclass(frozen=True)
class IntraParams:
    """The ``PPAR`` section of bitstream 2."""

    subsample: bool
    step: float
    chroma_step: float
    planes: tuple

    plane_step = Params.plane_step


def pack_params(prm) -> bytes:
    if isinstance(prm, IntraParams):
        head = PPAR_HEAD.pack(PPAR_VERSION_INTRA, FLAG_420 if prm.subsample else 0, len(prm.planes),
                              prm.step, prm.chroma_step)
        return head + b"".join(PPAR_PLANE_INTRA.pack(pl.log2max, pl.log2min, pl.rho, pl.deblock)
                               for pl in prm.planes)
    head = PPAR_HEAD.pack(PPAR_VERSION, FLAG_420 if prm.subsample else 0, len(prm.planes),
                          prm.step, prm.chroma_step)
    body = b"".join(
        PPAR_PLANE.pack(int(math.log2(pl.patch)), pl.basis, pl.basis_exp, pl.components, pl.rho, pl.deblock)
        for pl in prm.planes
    )
    return head + body


def parse_params(raw: bytes, channels: int) -> Params:
    """Check and unpack a ``PPAR`` section for an image of ``channels`` channels.

    Raises
    ------
    CorruptFileError
        Any field out of its range, or a section of the wrong length.
    """
    if len(raw) < PPAR_HEAD.size:
        raise CorruptFileError(f"pca-patch PPAR section of {len(raw)} bytes is too short")
    version, flags, n_planes, step, cstep = PPAR_HEAD.unpack_from(raw, 0)
    if version not in (PPAR_VERSION, PPAR_VERSION_INTRA):
        raise CorruptFileError(f"unknown pca-patch parameter version {version}")
    if flags & ~FLAG_420:
        raise CorruptFileError(f"unknown pca-patch flags {flags:#x}")
    if n_planes != channels:
        raise CorruptFileError(f"pca-patch file has {n_planes} planes but the header says {channels} channels")
    for s in (step, cstep):
        if not (math.isfinite(s) and MIN_STEP <= s <= MAX_STEP):
            raise CorruptFileError(f"pca-patch quantizer step {s} out of range")
    if version == PPAR_VERSION_INTRA:
        return _parse_intra(raw, flags, n_planes, step, cstep)
    if len(raw) != PPAR_HEAD.size + n_planes * PPAR_PLANE.size:
        raise CorruptFileError(f"pca-patch PPAR section has {len(raw)} bytes for {n_planes} planes")
    planes = []
    for i in range(n_planes):
        lp, mode, bexp, k, rho, dbk = PPAR_PLANE.unpack_from(raw, PPAR_HEAD.size + i * PPAR_PLANE.size)
        if lp not in (2, 3, 4):
            raise CorruptFileError(f"pca-patch patch size 2**{lp} is not 4, 8 or 16")
        p = 1 << lp
        n_cls = mode & 0x0F if mode & BASIS_CLS else 0
        if mode not in (BASIS_DCT, BASIS_PCA) and not ((mode & ~0x1F) == 0 and 2 <= n_cls <= MAX_CLASSES):
            raise CorruptFileError(f"unknown pca-patch basis mode {mode:#x}")
        if not 3 <= bexp <= 10:
            raise CorruptFileError(f"pca-patch basis precision 2**-{bexp} out of range")
        if k > p * p - 1:
            raise CorruptFileError(f"pca-patch plane {i} claims {k} components for {p}x{p} patches")
        if rho > 127:
            raise CorruptFileError(f"pca-patch reconstruction offset {rho}/256 out of range")
        if dbk > MAX_STRENGTH:
            raise CorruptFileError(f"pca-patch deblocking strength {dbk} out of range (0..{MAX_STRENGTH})")
        planes.append(PlaneParams(p, mode, bexp, k, rho, dbk))
    return Params(bool(flags & FLAG_420), step, cstep, tuple(planes))


def _parse_intra(raw, flags, n_planes, step, cstep) -> IntraParams:
    if len(raw) != PPAR_HEAD.size + n_planes * PPAR_PLANE_INTRA.size:
        raise CorruptFileError(f"pca-patch PPAR section has {len(raw)} bytes for {n_planes} planes")
    planes = []
    for i in range(n_planes):
        lmax, lmin, rho, dbk = PPAR_PLANE_INTRA.unpack_from(raw, PPAR_HEAD.size + i * PPAR_PLANE_INTRA.size)
        if not 2 <= lmin <= lmax <= 5:
            raise CorruptFileError(f"pca-patch plane {i} block sizes 2**{lmin}..2**{lmax} are not within 4..32")
        if rho > 127:
            raise CorruptFileError(f"pca-patch reconstruction offset {rho}/256 out of range")
        if dbk > MAX_STRENGTH:
            raise CorruptFileError(f"pca-patch deblocking strength {dbk} out of range (0..{MAX_STRENGTH})")
        planes.append(IntraPlaneParams(lmax, lmin, rho, dbk))
    return IntraParams(bool(flags & FLAG_420), step, cstep, tuple(planes))
