"""The decoder: ``PDAT`` integers -> planes -> pixels.

The encoder calls :func:`plane_grid` and :func:`reconstruct` too, so its
idea of the decoded image is exactly the decoder's.
"""

from __future__ import annotations

import numpy as np

from .._errors import CorruptFileError
from .._validation import to_uint8
from ._coder import decode_stream
from ._deblock import deblock
from ._kernels import synth, synth_classified, synthesis_matrix
from ._params import BASIS_PCA, Params, PlaneParams, n_learned, plane_kind, plane_shapes
from ._transform import dct_freq, decode_basis, from_patches, upsample2, ycbcr_to_rgb

__all__ = ["decode", "plane_grid", "reconstruct"]


def decode(data: bytes, prm: Params, out_shape) -> np.ndarray:
    """Decode the ``PDAT`` stream ``data`` to an (H, W, C) uint8 image."""
    h, w, nch = out_shape
    shapes = plane_shapes(h, w, nch, prm.subsample)
    basis_shapes, freqs, kinds, grid_shapes = [], [], [], []
    for i, (pl, shape) in enumerate(zip(prm.planes, shapes)):
        p, k = pl.patch, pl.components
        nby, nbx = -(-shape[0] // p), -(-shape[1] // p)
        if pl.n_classes:
            basis_shapes.append((pl.n_classes - 1, min(k, n_learned(p)), p * p))
        else:
            basis_shapes.append((k if pl.basis == BASIS_PCA else 0, p * p))
        freqs.append(dct_freq(p))
        kinds.append(plane_kind(i))
        grid_shapes.append((nby, nbx, k + 1))
    limit = max((1 << pl.basis_exp) + 2 for pl in prm.planes)
    n_classes = [pl.n_classes for pl in prm.planes]
    bases, coefs = decode_stream(data, basis_shapes, freqs, kinds, grid_shapes, basis_limit=limit,
                                 n_classes=n_classes)
    cmaps = [c[1] if n else None for c, n in zip(coefs, n_classes)]
    coefs = [c[0] if n else c for c, n in zip(coefs, n_classes)]
    return reconstruct(prm, shapes, bases, coefs, out_shape, cmaps=cmaps)


def _identity_basis(k: int, pp: int) -> np.ndarray:
    # the first k AC DCT vectors, in DCT coordinates
    basis = np.zeros((k, pp))
    basis[np.arange(k), np.arange(1, k + 1)] = 1.0
    return basis


def plane_grid(i: int, pl: PlaneParams, step: float, qb, qc, cmap=None) -> np.ndarray:
    """One plane's integers -> its padded patch-grid plane (before deblocking)."""
    p, k = pl.patch, pl.components
    nby, nbx = qc.shape[:2]
    if pl.n_classes:
        wmats = np.empty((pl.n_classes, k + 1, p * p))
        dct = _identity_basis(k, p * p)
        wmats[0] = synthesis_matrix(dct, p)
        nl = min(k, n_learned(p))
        if np.any(qb[:, :, n_learned(p) + 1 :]):
            raise CorruptFileError(f"pca-patch class basis of plane {i} leaves its frequency range")
        for c in range(1, pl.n_classes):
            learned, min_norm = decode_basis(qb[c - 1], 2.0**-pl.basis_exp)
            if k and not min_norm > 0.25:
                raise CorruptFileError(f"pca-patch class {c} basis of plane {i} is degenerate")
            basis = dct.copy()
            basis[:nl] = learned
            wmats[c] = synthesis_matrix(basis, p)
        patches = synth_classified(qc, float(step), pl.rho / 256.0, wmats,
                                   np.ascontiguousarray(cmap, dtype=np.int64), p * p)
        return from_patches(patches, p, (nby * p, nbx * p))
    if pl.basis == BASIS_PCA:
        basis, min_norm = decode_basis(qb, 2.0**-pl.basis_exp)
        if k and not min_norm > 0.25:
            raise CorruptFileError(f"pca-patch basis of plane {i} is degenerate")
    else:
        basis = _identity_basis(k, p * p)
    patches = synth(qc, float(step), pl.rho / 256.0, synthesis_matrix(basis, p), p * p)
    return from_patches(patches, p, (nby * p, nbx * p))


def reconstruct(prm: Params, shapes, bases, coefs, out_shape, grids=None, cmaps=None) -> np.ndarray:
    """Integers -> pixels; ``grids`` may hold planes already made by :func:`plane_grid`."""
    planes = []
    if cmaps is None:
        cmaps = [None] * len(coefs)
    for i, (pl, shape, qb, qc) in enumerate(zip(prm.planes, shapes, bases, coefs)):
        step = prm.plane_step(i)
        grid = grids[i] if grids is not None else plane_grid(i, pl, step, qb, qc, cmaps[i])
        grid = deblock(grid, pl.patch, step, pl.deblock)
        planes.append(grid[: shape[0], : shape[1]])
    h, w, nch = out_shape
    if prm.subsample:
        planes[1] = upsample2(planes[1], (h, w))
        planes[2] = upsample2(planes[2], (h, w))
    rgb = ycbcr_to_rgb(planes[:3])
    if nch == 4:
        a = to_uint8(planes[3] + 128.0)
        rgb = np.concatenate([rgb, a[:, :, None]], axis=2)
    return rgb
