"""Context-adaptive coding of the quantized patch coefficients and the basis.

The kernels drive the project's numba range coder (:mod:`imcompress.entropy`)
with their own context models:

* DC: predicted from the left, upper and upper-left blocks (the median edge
  detector of LOCO-I); the residual is coded with contexts chosen by the local
  DC gradient.
* AC, per block in basis order (decreasing variance): a coded-block flag
  (context: do the left/upper blocks have AC?), then significance and "last"
  flags per coefficient (contexts: coefficient band, magnitudes at the same
  index in the left and upper blocks, last positions of the neighbours), then
  magnitudes (adaptive unary with an Exp-Golomb escape) and a direct sign bit.
* Basis: the integer DCT-domain vectors, zero flags by DCT frequency.

Each plane kind (luma, chroma, alpha) has its own model, so statistics of one
never pollute another. Rate-distortion optimised quantization, which counts
bits with these same contexts, is in :mod:`._rdoq`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._errors import CorruptFileError
from ..entropy import (
    EG_CONTEXTS,
    model_new,
    dec_bit,
    dec_direct,
    dec_expgolomb,
    dec_new,
    dec_overrun,
    enc_bit,
    enc_direct,
    enc_expgolomb,
    enc_finish,
    enc_new,
    enc_tree,
    dec_tree,
    run_encoder,
)

__all__ = ["N_CONTEXTS", "MAX_CLASSES", "MAX_COEF", "encode_stream", "decode_stream"]

#: Largest magnitude of a quantized coefficient a decoder accepts.
MAX_COEF = 1 << 20

_N_BANDS = 38  # coefficient bands for significance / last
_UNARY = 14  # adaptive unary magnitude steps before the escape

# model layout (one model per plane class)
_DC_GRADIENTS = 6
_DC_ZERO = 0
_DC_GT = _DC_ZERO + _DC_GRADIENTS  # _DC_GRADIENTS * _UNARY
_DC_EG = _DC_GT + _DC_GRADIENTS * _UNARY
_CBF = _DC_EG + EG_CONTEXTS  # 3 x 3
_SIG = _CBF + 9  # _N_BANDS * 4 * 2
_LAST = _SIG + _N_BANDS * 24  # _N_BANDS * 3
_MAG = _LAST + _N_BANDS * 3  # 5 bands * 4 nb * 3 prev * _UNARY
_AC_EG = _MAG + 5 * 4 * 3 * _UNARY
_BASIS_ZERO = _AC_EG + EG_CONTEXTS  # basis zero flags: 32 freq x 2
_BASIS_EG = _BASIS_ZERO + 64
_CLS = _BASIS_EG + EG_CONTEXTS  # class map: 3 "same as predicted" flags, then a 3-bit tree
N_CONTEXTS = _CLS + 3 + 8
#: Largest number of basis classes of a classified plane.
MAX_CLASSES = 8


@njit(cache=True)
def _band(k):
    if k < 16:
        return k
    if k < 48:
        return 16 + (k - 16) // 4
    b = 24 + (k - 48) // 16
    return b if b < _N_BANDS else _N_BANDS - 1


@njit(cache=True)
def _band5(k):
    if k == 0:
        return 0
    if k < 3:
        return 1
    if k < 8:
        return 2
    if k < 20:
        return 3
    return 4


@njit(cache=True)
def _neighbour_class(m):
    if m == 0:
        return 0
    if m == 1:
        return 1
    if m <= 3:
        return 2
    return 3


@njit(cache=True)
def _last_nonzero(q, by, bx, K):
    """Index of the last nonzero AC level of block (by, bx), -1 if none."""
    last = -1
    for k in range(K):
        if q[by, bx, 1 + k] != 0:
            last = k
    return last


@njit(cache=True)
def _cbf_context(lasts, by, bx):
    """Coded-block-flag context (do the left/upper blocks have AC, are they
    there at all) and the larger of their last positions."""
    ll = lasts[by, bx - 1] if bx > 0 else -1
    la = lasts[by - 1, bx] if by > 0 else -1
    c = (1 if ll >= 0 else 0) + (1 if la >= 0 else 0)
    c += 3 * (0 if bx > 0 and by > 0 else (1 if bx > 0 or by > 0 else 2))
    return c, (ll if ll > la else la)


@njit(cache=True)
def _same_index_class(q, by, bx, k):
    """Class of the magnitudes at AC index k in the left and upper blocks."""
    m = 0
    if bx > 0:
        m += abs(q[by, bx - 1, 1 + k])
    if by > 0:
        m += abs(q[by - 1, bx, 1 + k])
    return _neighbour_class(m)


@njit(cache=True)
def _sig_context(k, nb, prev, nbl):
    return _SIG + _band(k) * 24 + nb * 6 + prev * 2 + (1 if k > nbl else 0)


@njit(cache=True)
def _mag_context(k, nb, prev):
    return _MAG + ((_band5(k) * 4 + nb) * 3 + prev) * _UNARY


@njit(cache=True)
def _prevc(q, by, bx, k):
    # context from the two coefficients just coded in this block
    s = abs(q[by, bx, 1 + k])
    if k > 0:
        s += abs(q[by, bx, k])
    return 0 if s == 0 else (1 if s == 1 else 2)


@njit(cache=True)
def _gradient_class(g):
    if g == 0:
        return 0
    if g == 1:
        return 1
    if g <= 3:
        return 2
    if g <= 7:
        return 3
    if g <= 15:
        return 4
    return 5


@njit(cache=True)
def _dc_pred_ctx(q, by, bx):
    if by == 0 and bx == 0:
        return 0, 0
    if by == 0:
        return q[by, bx - 1, 0], 2
    if bx == 0:
        return q[by - 1, bx, 0], 2
    a = q[by, bx - 1, 0]
    b = q[by - 1, bx, 0]
    c = q[by - 1, bx - 1, 0]
    mx = a if a > b else b
    mn = a if a < b else b
    if c >= mx:
        pred = mn
    elif c <= mn:
        pred = mx
    else:
        pred = a + b - c
    return pred, _gradient_class(abs(a - c) + abs(b - c))


@njit(cache=True)
def _enc_mag(st, out, model, base, eg, m):
    # m >= 0: adaptive unary over _UNARY contexts, then Exp-Golomb escape
    for i in range(_UNARY):
        if m == i:
            enc_bit(st, out, model, base + i, 0)
            return
        enc_bit(st, out, model, base + i, 1)
    enc_expgolomb(st, out, model, eg, m - _UNARY)


@njit(cache=True)
def _dec_mag(st, data, model, base, eg):
    for i in range(_UNARY):
        if dec_bit(st, data, model, base + i) == 0:
            return i
    v = dec_expgolomb(st, data, model, eg)
    if v < 0 or v > MAX_COEF:
        return -1
    return v + _UNARY


@njit(cache=True)
def _enc_plane(st, out, model, q, lasts):
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    for by in range(nby):
        for bx in range(nbx):
            pred, act = _dc_pred_ctx(q, by, bx)
            r = q[by, bx, 0] - pred
            if r == 0:
                enc_bit(st, out, model, _DC_ZERO + act, 0)
            else:
                enc_bit(st, out, model, _DC_ZERO + act, 1)
                enc_direct(st, out, 1 if r < 0 else 0, 1)
                _enc_mag(st, out, model, _DC_GT + act * _UNARY, _DC_EG, abs(r) - 1)
            if K == 0:
                continue
            last = _last_nonzero(q, by, bx, K)
            lasts[by, bx] = last
            c, nbl = _cbf_context(lasts, by, bx)
            enc_bit(st, out, model, _CBF + c, 1 if last >= 0 else 0)
            if last < 0:
                continue
            prev = 0
            for k in range(K):
                v = q[by, bx, 1 + k]
                nb = _same_index_class(q, by, bx, k)
                b = _band(k)
                if k == K - 1:
                    sig = 1  # inferred: reached only when it is the last one
                else:
                    sig = 1 if v != 0 else 0
                    enc_bit(st, out, model, _sig_context(k, nb, prev, nbl), sig)
                if sig:
                    enc_direct(st, out, 1 if v < 0 else 0, 1)
                    _enc_mag(st, out, model, _mag_context(k, nb, prev), _AC_EG, abs(v) - 1)
                    if k < K - 1:
                        lc = 0 if k < nbl else (1 if k == nbl else 2)
                        enc_bit(st, out, model, _LAST + b * 3 + lc, 1 if k == last else 0)
                    if k == last:
                        break
                prev = _prevc(q, by, bx, k)


@njit(cache=True)
def _dec_plane(st, data, model, q, lasts):
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    for by in range(nby):
        if dec_overrun(st) > 0:
            return 0  # past the end: decode_stream reports the truncation, without decoding zeros
        for bx in range(nbx):
            pred, act = _dc_pred_ctx(q, by, bx)
            r = 0
            if dec_bit(st, data, model, _DC_ZERO + act) == 1:
                neg = dec_direct(st, data, 1)
                m = _dec_mag(st, data, model, _DC_GT + act * _UNARY, _DC_EG)
                if m < 0:
                    return 1
                r = -(m + 1) if neg else m + 1
            dc = pred + r
            if dc > MAX_COEF or dc < -MAX_COEF:
                return 1
            q[by, bx, 0] = dc
            if K == 0:
                continue
            c, nbl = _cbf_context(lasts, by, bx)
            last = -1
            if dec_bit(st, data, model, _CBF + c) == 1:
                prev = 0
                for k in range(K):
                    nb = _same_index_class(q, by, bx, k)
                    b = _band(k)
                    if k == K - 1:
                        sig = 1
                    else:
                        sig = dec_bit(st, data, model, _sig_context(k, nb, prev, nbl))
                    if sig:
                        neg = dec_direct(st, data, 1)
                        mag = _dec_mag(st, data, model, _mag_context(k, nb, prev), _AC_EG)
                        if mag < 0:
                            return 1
                        q[by, bx, 1 + k] = -(mag + 1) if neg else mag + 1
                        is_last = 1
                        if k < K - 1:
                            lc = 0 if k < nbl else (1 if k == nbl else 2)
                            is_last = dec_bit(st, data, model, _LAST + b * 3 + lc)
                        if is_last:
                            last = k
                            break
                    prev = _prevc(q, by, bx, k)
            lasts[by, bx] = last
    return 0


@njit(cache=True)
def _enc_basis(st, out, model, qb, freq):
    k, pp = qb.shape
    for j in range(k):
        for i in range(1, pp):
            v = qb[j, i]
            f = freq[i] if freq[i] < 31 else 31
            ctx = _BASIS_ZERO + f * 2 + (1 if i - 1 == j else 0)
            if v == 0:
                enc_bit(st, out, model, ctx, 0)
            else:
                enc_bit(st, out, model, ctx, 1)
                enc_direct(st, out, 1 if v < 0 else 0, 1)
                enc_expgolomb(st, out, model, _BASIS_EG, abs(v) - 1)


@njit(cache=True)
def _dec_basis(st, data, model, qb, freq, limit):
    k, pp = qb.shape
    for j in range(k):
        for i in range(1, pp):
            f = freq[i] if freq[i] < 31 else 31
            ctx = _BASIS_ZERO + f * 2 + (1 if i - 1 == j else 0)
            if dec_bit(st, data, model, ctx) == 1:
                neg = dec_direct(st, data, 1)
                m = dec_expgolomb(st, data, model, _BASIS_EG)
                if m < 0 or m >= limit:
                    return 1
                qb[j, i] = -(m + 1) if neg else m + 1
    return 0


@njit(cache=True)
def _enc_classmap(st, out, model, cmap):
    """Block classes: a flag "same as the left block's" (context: does the
    upper block agree with the left one?), else the class in a 3-bit tree."""
    nby, nbx = cmap.shape
    for by in range(nby):
        for bx in range(nbx):
            if bx > 0:
                pred = cmap[by, bx - 1]
                ctx = 0 if by > 0 and cmap[by - 1, bx] == pred else 1
            elif by > 0:
                pred = cmap[by - 1, bx]
                ctx = 2
            else:
                pred = 0
                ctx = 2
            v = cmap[by, bx]
            if v == pred:
                enc_bit(st, out, model, _CLS + ctx, 1)
            else:
                enc_bit(st, out, model, _CLS + ctx, 0)
                enc_tree(st, out, model, _CLS + 3, 3, v)


@njit(cache=True)
def _dec_classmap(st, data, model, cmap, n_classes):
    nby, nbx = cmap.shape
    for by in range(nby):
        for bx in range(nbx):
            if bx > 0:
                pred = cmap[by, bx - 1]
                ctx = 0 if by > 0 and cmap[by - 1, bx] == pred else 1
            elif by > 0:
                pred = cmap[by - 1, bx]
                ctx = 2
            else:
                pred = 0
                ctx = 2
            if dec_bit(st, data, model, _CLS + ctx) == 1:
                cmap[by, bx] = pred
            else:
                v = dec_tree(st, data, model, _CLS + 3, 3)
                if v >= n_classes:
                    return 1
                cmap[by, bx] = v
    return 0


def _as_list(qb):
    # a plane's basis: one (K, P) array, or (n, K, P) for classified planes
    qb = np.ascontiguousarray(qb, dtype=np.int32)
    return [qb] if qb.ndim == 2 else list(qb)


def _encode_into(out, bases, freqs, kinds, planes, class_maps):
    # one stream for every plane: one model per plane kind, bases first
    st = enc_new()
    models = [model_new(N_CONTEXTS) for _ in range(max(kinds) + 1)]
    for qb, fr, kind in zip(bases, freqs, kinds):
        for b in _as_list(qb):
            _enc_basis(st, out, models[kind], b, fr)
    for q, kind, cm in zip(planes, kinds, class_maps):
        if cm is not None:
            _enc_classmap(st, out, models[kind], np.ascontiguousarray(cm, dtype=np.int32))
        lasts = np.full(q.shape[:2], -1, dtype=np.int32)
        _enc_plane(st, out, models[kind], np.ascontiguousarray(q, dtype=np.int32), lasts)
    return enc_finish(st, out)


def encode_stream(bases, freqs, kinds, planes, *, class_maps=None) -> bytes:
    """Range-code the bases then the coefficient planes into one stream.

    Parameters
    ----------
    bases : list of int32 arrays (K_i, P_i)
        Integer DCT-domain basis of each plane.
    freqs : list of int64 arrays (P_i,)
        DCT frequency (u + v) of each basis coordinate.
    kinds : list of int
        Plane kind of each plane (its context model): ``LUMA``, ``CHROMA``
        or ``ALPHA``.
    planes : list of int32 arrays (nby, nbx, K_i + 1)
        Quantized coefficients, DC first.
    class_maps : list of (None or int32 array (nby, nbx)), optional
        Basis class of each block of a classified plane (coded before the
        plane's coefficients); a (n, K, P) basis holds that plane's n stored
        class bases.
    """
    if class_maps is None:
        class_maps = [None] * len(planes)
    return run_encoder(_encode_into, bases, freqs, kinds, planes, class_maps, capacity=4096)


def decode_stream(data: bytes, basis_shapes, freqs, kinds, plane_shapes, *, basis_limit: int,
                  n_classes=None):
    """Inverse of :func:`encode_stream`; returns (bases, planes) or raises.

    ``n_classes[i]`` > 0 marks plane i as classified with that many classes;
    then the planes come back as (levels, class map) pairs.

    Raises
    ------
    CorruptFileError
        A value out of range or a stream that runs past its end.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    models = [model_new(N_CONTEXTS) for _ in range(max(kinds) + 1)]
    st = dec_new(buf)
    bases = []
    if n_classes is None:
        n_classes = [0] * len(plane_shapes)
    for shape, fr, kind in zip(basis_shapes, freqs, kinds):
        qb = np.zeros(shape, dtype=np.int32)
        for b in ([qb] if qb.ndim == 2 else qb):
            if _dec_basis(st, buf, models[kind], b, fr, basis_limit):
                raise CorruptFileError("pca-patch basis stream holds an out-of-range value")
        bases.append(qb)
    planes = []
    for shape, kind, nc in zip(plane_shapes, kinds, n_classes):
        cm = None
        if nc:
            cm = np.zeros(shape[:2], dtype=np.int32)
            if _dec_classmap(st, buf, models[kind], cm, nc):
                raise CorruptFileError("pca-patch class map names a class the plane does not have")
        q = np.zeros(shape, dtype=np.int32)
        lasts = np.full(shape[:2], -1, dtype=np.int32)
        if _dec_plane(st, buf, models[kind], q, lasts):
            raise CorruptFileError("pca-patch coefficient stream holds an out-of-range value")
        planes.append(q if cm is None else (q, cm))
    if dec_overrun(st) > 0:
        raise CorruptFileError("pca-patch coefficient stream is truncated")
    return bases, planes
