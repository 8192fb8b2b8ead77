"""Bitstream 2's plane syntax: a quadtree of intra-predicted, transformed blocks.

A plane (padded to a multiple of the root block) is cut into root blocks of
side ``2**log2max`` in raster order; each is split recursively (a flag per
node larger than ``2**log2min``) into leaves coded in z-order. A leaf holds
its prediction mode (and, for chroma from luma, alpha) then its levels. The
decoder rebuilds each leaf as ``clip(pred + rint(SCALE * IDCT(levels)))``
in the order they are decoded, so later blocks predict from it.

The state of a plane, shared by encoder and decoder, is a :class:`PlaneState`
of maps over 4 x 4 units (which units are decoded, leaf size, mode, alpha,
coded-block flag); every context reads only units decoded earlier, so the
encoder, which knows the whole plane, computes the contexts the decoder will.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._errors import CorruptFileError
from ..entropy import dec_bit, dec_new, dec_overrun, model_new
from ._blockcoder import (
    CFL_FLAG,
    N_CONTEXTS2,
    SPLIT,
    dec_alpha,
    dec_block,
    dec_mode,
    mpm_list,
    scan_tables,
)
from ._intra import MODE_CFL, SCALE, cfl_luma, predict, predict_cfl, references
from ._jit import noalloc
from ._transform import dct_1d

__all__ = ["MAP_DTYPE", "REC_DTYPE", "decode_planes", "dct_stack", "recon_block", "recon_block_into"]

#: Reconstructions are clipped to [-LIMIT, LIMIT] (1/SCALE units), a little
#: beyond the centred 8-bit range.
LIMIT = 128 * SCALE
#: The narrowest exact types: reconstructions lie in [-LIMIT, LIMIT]; the unit
#: maps hold a leaf's log2 side, mode (< 36), CfL alpha (|alpha| <= 16) and cbf.
REC_DTYPE = np.int16
MAP_DTYPE = np.int8


def dct_stack():
    """(4, 32, 32): the 1-D DCT of side 4, 8, 16, 32 (rows: frequencies), zero padded."""
    out = np.zeros((4, 32, 32))
    for s in range(4):
        n = 4 << s
        out[s, :n, :n] = dct_1d(n)
    return out


@njit(cache=True)
def recon_block(pred, lev, n, s, step, rho, dct, rec, y0, x0):
    """Dequantize ``lev``, inverse DCT in a fixed order, add ``pred``, clip, write into ``rec``."""
    recon_block_into(pred, lev, n, s, step, rho, dct, rec, y0, x0, np.empty((n, n)), np.empty(n))


@noalloc
def recon_block_into(pred, lev, n, s, step, rho, dct, rec, y0, x0, tmp, acc):
    """:func:`recon_block` with its scratch given: ``tmp`` (at least n x n) and ``acc`` (n) float64."""
    c = dct[s]
    for u in range(n):
        for x in range(n):
            tmp[u, x] = 0.0
    rows = 0  # bit u: row u of tmp holds a nonzero level's contribution
    for u in range(n):
        for v in range(n):
            q = lev[u, v]
            if q == 0:
                continue
            rows |= 1 << u
            a = (q - rho) * step if q > 0 else (q + rho) * step
            for x in range(n):
                tmp[u, x] += a * c[v, x]
    if rows == 0:  # no residual: the transform would add exact zeros
        for y in range(n):
            for x in range(n):
                rec[y0 + y, x0 + x] = min(max(pred[y, x], -LIMIT), LIMIT)
        return
    for y in range(n):
        # r[x] = sum over u (in order) of c[u, y] tmp[u, x], every x at once
        for x in range(n):
            acc[x] = 0.0
        for u in range(n):
            # a row of zeros adds signed zeros, which leave acc (never -0.0: it starts at +0.0) as it is
            if not (rows >> u) & 1:
                continue
            cu = c[u, y]
            for x in range(n):
                acc[x] += cu * tmp[u, x]
        for x in range(n):
            r = acc[x] * SCALE
            if r > 4.0 * LIMIT:
                r = 4.0 * LIMIT
            elif r < -4.0 * LIMIT:
                r = -4.0 * LIMIT
            v = pred[y, x] + np.int64(np.rint(r))
            if v > LIMIT:
                v = LIMIT
            elif v < -LIMIT:
                v = -LIMIT
            rec[y0 + y, x0 + x] = v


@noalloc
def split_context(size_map, done, yu, xu, log2n):
    """Split-flag context: how many of the left and above units belong to smaller leaves."""
    c = 0
    if xu > 0 and done[yu, xu - 1] and size_map[yu, xu - 1] < log2n:
        c += 1
    if yu > 0 and done[yu - 1, xu] and size_map[yu - 1, xu] < log2n:
        c += 1
    return c


@noalloc
def neighbour_modes(mode_map, done, y0, x0, n, mpm):
    """MPM list of a block from the modes left of its last row and above its last column."""
    yl, xl = (y0 + n - 1) >> 2, (x0 >> 2) - 1
    ya, xa = (y0 >> 2) - 1, (x0 + n - 1) >> 2
    left = mode_map[yl, xl] if xl >= 0 and done[yl, xl] else -1
    above = mode_map[ya, xa] if ya >= 0 and done[ya, xa] else -1
    mpm_list(left, above, mpm)
    cfl = (1 if left == MODE_CFL else 0) + (1 if above == MODE_CFL else 0)
    return cfl


@noalloc
def cbf_context(cbf_map, done, yu, xu):
    c = 0
    if xu > 0 and done[yu, xu - 1] and cbf_map[yu, xu - 1]:
        c += 1
    if yu > 0 and done[yu - 1, xu] and cbf_map[yu - 1, xu]:
        c += 1
    return c


@noalloc
def mark_leaf(maps, done, y0, x0, n, log2n, mode, alpha, cbf):
    """Record a leaf in the unit maps (size, mode, alpha, cbf) and mark it decoded."""
    for yu in range(y0 >> 2, (y0 + n) >> 2):
        for xu in range(x0 >> 2, (x0 + n) >> 2):
            maps[0, yu, xu] = log2n
            maps[1, yu, xu] = mode
            maps[2, yu, xu] = alpha
            maps[3, yu, xu] = cbf
            done[yu, xu] = True


@njit(cache=True)
def leaf_prediction(rec, done, y0, x0, n, log2n, mode, alpha, luma, sub, ref, pred):
    references(rec, done, y0, x0, n, ref)
    if mode == MODE_CFL:
        lumac = np.empty((n, n), dtype=np.int64)
        cfl_luma(luma, y0, x0, n, sub, lumac)
        predict_cfl(ref, n, log2n, lumac, alpha, pred)
    else:
        predict(ref, n, log2n, mode, pred)


@njit(cache=True)
def _dec_node(st, data, model, rec, maps, done, y0, x0, log2n, log2min, step, rho, chroma, luma, sub,
              su, sv, dct, ref):
    n = 1 << log2n
    yu, xu = y0 >> 2, x0 >> 2
    if log2n > log2min:
        if dec_bit(st, data, model, SPLIT + (log2n - 2) * 3 + split_context(maps[0], done, yu, xu, log2n)):
            h = n >> 1
            for j in range(4):
                err = _dec_node(st, data, model, rec, maps, done, y0 + (j >> 1) * h, x0 + (j & 1) * h,
                                log2n - 1, log2min, step, rho, chroma, luma, sub, su, sv, dct, ref)
                if err:
                    return err
            return 0
    s = log2n - 2
    mpm = np.empty(3, dtype=np.int64)
    ncfl = neighbour_modes(maps[1], done, y0, x0, n, mpm)
    alpha = 0
    if chroma and dec_bit(st, data, model, CFL_FLAG + ncfl) == 1:
        mode = MODE_CFL
        alpha = dec_alpha(st, data, model)
    else:
        mode = dec_mode(st, data, model, mpm, s)
    lev = np.zeros((n, n), dtype=np.int64)
    if dec_block(st, data, model, lev, n, s, cbf_context(maps[3], done, yu, xu), su, sv):
        return 1
    pred = np.empty((n, n), dtype=np.int64)
    leaf_prediction(rec, done, y0, x0, n, log2n, mode, alpha, luma, sub, ref, pred)
    recon_block(pred, lev, n, s, step, rho, dct, rec, y0, x0)
    cbf = 0
    for u in range(n):
        for v in range(n):
            if lev[u, v] != 0:
                cbf = 1
    mark_leaf(maps, done, y0, x0, n, log2n, mode, alpha, cbf)
    if dec_overrun(st) > 8:
        return 2
    return 0


@njit(cache=True, nogil=True)
def decode_plane(st, data, model, rec, maps, log2max, log2min, step, rho, chroma, luma, sub, su, sv, dct):
    """Decode one plane's root blocks into ``rec``; 0, or an error code."""
    h, w = rec.shape
    done = np.zeros((h >> 2, w >> 2), dtype=np.bool_)
    ref = np.empty(4 * 32 + 1, dtype=np.int64)
    root = 1 << log2max
    for y0 in range(0, h, root):
        for x0 in range(0, w, root):
            err = _dec_node(st, data, model, rec, maps, done, y0, x0, log2max, log2min, step, rho, chroma,
                            luma, sub, su, sv, dct, ref)
            if err:
                return err
    return 0


def decode_planes(data: bytes, layouts):
    """Decode the ``PDAT`` stream of bitstream 2.

    ``layouts``: per plane (padded shape, kind, log2max, log2min, step, rho,
    chroma, subsampled). Returns the reconstructions (REC_DTYPE) and leaf-size maps (MAP_DTYPE).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    st = dec_new(buf)
    su, sv = scan_tables()
    dct = dct_stack()
    models = {}
    recs, sizes = [], []
    for shape, kind, log2max, log2min, step, rho, chroma, sub in layouts:
        model = models.setdefault(kind, model_new(N_CONTEXTS2))
        rec = np.zeros(shape, dtype=REC_DTYPE)
        maps = np.zeros((4, shape[0] >> 2, shape[1] >> 2), dtype=MAP_DTYPE)
        luma = recs[0] if chroma else rec
        err = decode_plane(st, buf, model, rec, maps, log2max, log2min, float(step), float(rho), chroma,
                           luma, sub, su, sv, dct)
        if err == 2:
            raise CorruptFileError("pca-patch stream is truncated")
        if err:
            raise CorruptFileError("pca-patch stream holds an out-of-range value")
        recs.append(rec)
        sizes.append(maps[0].copy())  # not the other maps
    if dec_overrun(st) > 0:
        raise CorruptFileError("pca-patch stream is truncated")
    return recs, sizes
