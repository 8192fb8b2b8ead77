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

Each plane class (luma, chroma, alpha) has its own model, so statistics of one
never pollute another.
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
)

__all__ = ["N_CONTEXTS", "encode_stream", "decode_stream", "MAX_COEF"]

#: Largest magnitude of a quantized coefficient a decoder accepts.
MAX_COEF = 1 << 20

_NB = 38  # coefficient bands for significance / last
_UN = 14  # adaptive unary magnitude steps before the escape

# model layout (one model per plane class)
_DC_ACT = 6
_DC_ZERO = 0
_DC_GT = _DC_ZERO + _DC_ACT  # _DC_ACT * _UN
_DC_EG = _DC_GT + _DC_ACT * _UN
_CBF = _DC_EG + EG_CONTEXTS  # 3 x 3
_SIG = _CBF + 9  # _NB * 4 * 2
_LAST = _SIG + _NB * 24  # _NB * 3
_MAG = _LAST + _NB * 3  # 5 bands * 4 nb * 3 prev * _UN
_AC_EG = _MAG + 5 * 4 * 3 * _UN
_BZ = _AC_EG + EG_CONTEXTS  # basis zero flags: 32 freq x 2
_BEG = _BZ + 64
_CLS = _BEG + EG_CONTEXTS  # class map: 3 "same as predicted" flags, then a 3-bit tree
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
    return b if b < _NB else _NB - 1


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
def _nbc(m):
    if m == 0:
        return 0
    if m == 1:
        return 1
    if m <= 3:
        return 2
    return 3


@njit(cache=True)
def _prevc(q, by, bx, k):
    # context from the two coefficients just coded in this block
    s = abs(q[by, bx, 1 + k])
    if k > 0:
        s += abs(q[by, bx, k])
    return 0 if s == 0 else (1 if s == 1 else 2)


@njit(cache=True)
def _act(g):
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
    return pred, _act(abs(a - c) + abs(b - c))


@njit(cache=True)
def _enc_mag(st, out, model, base, eg, m):
    # m >= 0: adaptive unary over _UN contexts, then Exp-Golomb escape
    for i in range(_UN):
        if m == i:
            enc_bit(st, out, model, base + i, 0)
            return
        enc_bit(st, out, model, base + i, 1)
    enc_expgolomb(st, out, model, eg, m - _UN)


@njit(cache=True)
def _dec_mag(st, data, model, base, eg):
    for i in range(_UN):
        if dec_bit(st, data, model, base + i) == 0:
            return i
    v = dec_expgolomb(st, data, model, eg)
    if v < 0 or v > MAX_COEF:
        return -1
    return v + _UN


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
                _enc_mag(st, out, model, _DC_GT + act * _UN, _DC_EG, abs(r) - 1)
            if K == 0:
                continue
            last = -1
            for k in range(K):
                if q[by, bx, 1 + k] != 0:
                    last = k
            lasts[by, bx] = last
            ll = lasts[by, bx - 1] if bx > 0 else -1
            la = lasts[by - 1, bx] if by > 0 else -1
            c = (1 if ll >= 0 else 0) + (1 if la >= 0 else 0)
            c += 3 * (0 if bx > 0 and by > 0 else (1 if bx > 0 or by > 0 else 2))
            enc_bit(st, out, model, _CBF + c, 1 if last >= 0 else 0)
            if last < 0:
                continue
            nbl = ll if ll > la else la
            prev = 0
            for k in range(K):
                v = q[by, bx, 1 + k]
                m = 0
                if bx > 0:
                    m += abs(q[by, bx - 1, 1 + k])
                if by > 0:
                    m += abs(q[by - 1, bx, 1 + k])
                nb = _nbc(m)
                b = _band(k)
                if k == K - 1:
                    sig = 1  # inferred: reached only when it is the last one
                else:
                    sig = 1 if v != 0 else 0
                    enc_bit(st, out, model, _SIG + b * 24 + nb * 6 + prev * 2 + (1 if k > nbl else 0), sig)
                if sig:
                    enc_direct(st, out, 1 if v < 0 else 0, 1)
                    _enc_mag(st, out, model, _MAG + ((_band5(k) * 4 + nb) * 3 + prev) * _UN, _AC_EG, abs(v) - 1)
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
                m = _dec_mag(st, data, model, _DC_GT + act * _UN, _DC_EG)
                if m < 0:
                    return 1
                r = -(m + 1) if neg else m + 1
            dc = pred + r
            if dc > MAX_COEF or dc < -MAX_COEF:
                return 1
            q[by, bx, 0] = dc
            if K == 0:
                continue
            ll = lasts[by, bx - 1] if bx > 0 else -1
            la = lasts[by - 1, bx] if by > 0 else -1
            c = (1 if ll >= 0 else 0) + (1 if la >= 0 else 0)
            c += 3 * (0 if bx > 0 and by > 0 else (1 if bx > 0 or by > 0 else 2))
            last = -1
            if dec_bit(st, data, model, _CBF + c) == 1:
                nbl = ll if ll > la else la
                prev = 0
                for k in range(K):
                    m = 0
                    if bx > 0:
                        m += abs(q[by, bx - 1, 1 + k])
                    if by > 0:
                        m += abs(q[by - 1, bx, 1 + k])
                    nb = _nbc(m)
                    b = _band(k)
                    if k == K - 1:
                        sig = 1
                    else:
                        sig = dec_bit(st, data, model, _SIG + b * 24 + nb * 6 + prev * 2 + (1 if k > nbl else 0))
                    if sig:
                        neg = dec_direct(st, data, 1)
                        mag = _dec_mag(st, data, model, _MAG + ((_band5(k) * 4 + nb) * 3 + prev) * _UN, _AC_EG)
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
            ctx = _BZ + f * 2 + (1 if i - 1 == j else 0)
            if v == 0:
                enc_bit(st, out, model, ctx, 0)
            else:
                enc_bit(st, out, model, ctx, 1)
                enc_direct(st, out, 1 if v < 0 else 0, 1)
                enc_expgolomb(st, out, model, _BEG, abs(v) - 1)


@njit(cache=True)
def _dec_basis(st, data, model, qb, freq, limit):
    k, pp = qb.shape
    for j in range(k):
        for i in range(1, pp):
            f = freq[i] if freq[i] < 31 else 31
            ctx = _BZ + f * 2 + (1 if i - 1 == j else 0)
            if dec_bit(st, data, model, ctx) == 1:
                neg = dec_direct(st, data, 1)
                m = dec_expgolomb(st, data, model, _BEG)
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


def encode_stream(bases, freqs, classes, planes, *, class_maps=None, capacity: int = 4096) -> bytes:
    """Range-code the bases then the coefficient planes into one stream.

    Parameters
    ----------
    bases : list of int32 arrays (K_i, P_i)
        Integer DCT-domain basis of each plane.
    freqs : list of int64 arrays (P_i,)
        DCT frequency (u + v) of each basis coordinate.
    classes : list of int
        Model (plane class) of each plane: 0 luma, 1 chroma, 2 alpha.
    planes : list of int32 arrays (nby, nbx, K_i + 1)
        Quantized coefficients, DC first.
    class_maps : list of (None or int32 array (nby, nbx)), optional
        Basis class of each block of a classified plane (coded before the
        plane's coefficients); a (n, K, P) basis holds that plane's n stored
        class bases.
    """
    n_models = max(classes) + 1
    if class_maps is None:
        class_maps = [None] * len(planes)
    while True:
        out = np.empty(capacity, dtype=np.uint8)
        st = enc_new()
        models = [model_new(N_CONTEXTS) for _ in range(n_models)]
        for qb, fr, c in zip(bases, freqs, classes):
            for b in _as_list(qb):
                _enc_basis(st, out, models[c], b, fr)
        for q, c, cm in zip(planes, classes, class_maps):
            if cm is not None:
                _enc_classmap(st, out, models[c], np.ascontiguousarray(cm, dtype=np.int32))
            lasts = np.full(q.shape[:2], -1, dtype=np.int32)
            _enc_plane(st, out, models[c], np.ascontiguousarray(q, dtype=np.int32), lasts)
        n = int(enc_finish(st, out))
        if n <= capacity:
            return out[:n].tobytes()
        capacity = n + 64


def decode_stream(data: bytes, basis_shapes, freqs, classes, plane_shapes, *, basis_limit: int,
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
    n_models = max(classes) + 1
    models = [model_new(N_CONTEXTS) for _ in range(n_models)]
    st = dec_new(buf)
    bases = []
    if n_classes is None:
        n_classes = [0] * len(plane_shapes)
    for shape, fr, c in zip(basis_shapes, freqs, classes):
        qb = np.zeros(shape, dtype=np.int32)
        for b in ([qb] if qb.ndim == 2 else qb):
            if _dec_basis(st, buf, models[c], b, fr, basis_limit):
                raise CorruptFileError("pca-patch basis stream holds an out-of-range value")
        bases.append(qb)
    planes = []
    for shape, c, nc in zip(plane_shapes, classes, n_classes):
        cm = None
        if nc:
            cm = np.zeros(shape[:2], dtype=np.int32)
            if _dec_classmap(st, buf, models[c], cm, nc):
                raise CorruptFileError("pca-patch class map names a class the plane does not have")
        q = np.zeros(shape, dtype=np.int32)
        lasts = np.full(shape[:2], -1, dtype=np.int32)
        if _dec_plane(st, buf, models[c], q, lasts):
            raise CorruptFileError("pca-patch coefficient stream holds an out-of-range value")
        planes.append(q if cm is None else (q, cm))
    if dec_overrun(st) > 0:
        raise CorruptFileError("pca-patch coefficient stream is truncated")
    return bases, planes


# -- rate-distortion optimised quantization -------------------------------------
#
# Deadzone rounding decides each coefficient alone. The pass below revisits
# every nonzero AC level L and keeps L or L - 1 (possibly 0), whichever costs
# less in squared error + lambda * bits, with bits estimated from the context
# statistics of the plane itself (counted with the encoder's own contexts).
# It runs in coding order, so the neighbour contexts it sees are final.


@njit(cache=True)
def _count_plane(q, counts):
    """Count (context, bit) pairs of the AC decisions :func:`_enc_plane` codes."""
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    lasts = np.full((nby, nbx), -1, dtype=np.int32)
    for by in range(nby):
        for bx in range(nbx):
            last = -1
            for k in range(K):
                if q[by, bx, 1 + k] != 0:
                    last = k
            lasts[by, bx] = last
            ll = lasts[by, bx - 1] if bx > 0 else -1
            la = lasts[by - 1, bx] if by > 0 else -1
            c = (1 if ll >= 0 else 0) + (1 if la >= 0 else 0)
            c += 3 * (0 if bx > 0 and by > 0 else (1 if bx > 0 or by > 0 else 2))
            counts[_CBF + c, 1 if last >= 0 else 0] += 1
            if last < 0:
                continue
            nbl = ll if ll > la else la
            prev = 0
            for k in range(last + 1):
                v = q[by, bx, 1 + k]
                m = 0
                if bx > 0:
                    m += abs(q[by, bx - 1, 1 + k])
                if by > 0:
                    m += abs(q[by - 1, bx, 1 + k])
                nb = _nbc(m)
                b = _band(k)
                if k < K - 1:
                    counts[_SIG + b * 24 + nb * 6 + prev * 2 + (1 if k > nbl else 0), 1 if v != 0 else 0] += 1
                if v != 0:
                    base = _MAG + ((_band5(k) * 4 + nb) * 3 + prev) * _UN
                    a = abs(v) - 1
                    for i in range(_UN):
                        if a == i:
                            counts[base + i, 0] += 1
                            break
                        counts[base + i, 1] += 1
                    if k < K - 1:
                        lc = 0 if k < nbl else (1 if k == nbl else 2)
                        counts[_LAST + b * 3 + lc, 1 if k == last else 0] += 1
                prev = _prevc(q, by, bx, k)


@njit(cache=True)
def _mag_bits(cost, base, a):
    # bits of magnitude a = |level| - 1 >= 0 with the adaptive unary code
    bits = 0.0
    for i in range(_UN):
        if a == i:
            return bits + cost[base + i, 0]
        bits += cost[base + i, 1]
    return bits + 2.0 * np.log2(a - _UN + 1.0) + 1.0


@njit(cache=True)
def _rdoq_plane(q, x, rho, lam, cost):
    """Lower AC levels where it pays. ``x``: |coefficient| / step, shape of q[..., 1:]."""
    nby, nbx, kp1 = q.shape
    K = kp1 - 1
    lasts = np.full((nby, nbx), -1, dtype=np.int32)
    for by in range(nby):
        for bx in range(nbx):
            last = -1
            for k in range(K):
                if q[by, bx, 1 + k] != 0:
                    last = k
            ll = lasts[by, bx - 1] if bx > 0 else -1
            la = lasts[by - 1, bx] if by > 0 else -1
            if last < 0:
                continue
            c = (1 if ll >= 0 else 0) + (1 if la >= 0 else 0)
            c += 3 * (0 if bx > 0 and by > 0 else (1 if bx > 0 or by > 0 else 2))
            nbl = ll if ll > la else la
            prev = 0
            j_block = cost[_CBF + c, 1] * lam
            e_zero = 0.0
            for k in range(last + 1):
                v = q[by, bx, 1 + k]
                xv = x[by, bx, k]
                e_zero += xv * xv
                m = 0
                if bx > 0:
                    m += abs(q[by, bx - 1, 1 + k])
                if by > 0:
                    m += abs(q[by - 1, bx, 1 + k])
                nb = _nbc(m)
                b = _band(k)
                sctx = _SIG + b * 24 + nb * 6 + prev * 2 + (1 if k > nbl else 0)
                s0 = cost[sctx, 0] if k < K - 1 else 0.0
                s1 = cost[sctx, 1] if k < K - 1 else 0.0
                if v == 0:
                    j_block += xv * xv + lam * s0
                else:
                    base = _MAG + ((_band5(k) * 4 + nb) * 3 + prev) * _UN
                    lv = abs(v)
                    d = xv - (lv - rho)
                    j_keep = d * d + lam * (s1 + 1.0 + _mag_bits(cost, base, lv - 1))
                    if lv > 1:
                        d = xv - (lv - 1 - rho)
                        j_low = d * d + lam * (s1 + 1.0 + _mag_bits(cost, base, lv - 2))
                    else:
                        j_low = xv * xv + lam * s0
                    if j_low < j_keep:
                        q[by, bx, 1 + k] = (lv - 1) if v > 0 else -(lv - 1)
                        j_block += j_low
                    else:
                        j_block += j_keep
                prev = _prevc(q, by, bx, k)
            for k in range(last + 1, K):
                e_zero += x[by, bx, k] * x[by, bx, k]
            # a block whose few small levels cost more than they correct
            if e_zero + lam * cost[_CBF + c, 0] < j_block:
                for k in range(K):
                    q[by, bx, 1 + k] = 0
            last = -1
            for k in range(K):
                if q[by, bx, 1 + k] != 0:
                    last = k
            lasts[by, bx] = last


def rdoq(q, x, rho, lam_bits):
    """Rate-distortion optimised levels for one plane (modifies ``q`` in place).

    Parameters
    ----------
    q : int32 array (nby, nbx, K + 1)
        Deadzone-quantized levels, DC first (DC is left alone).
    x : float64 array (nby, nbx, K)
        |AC coefficient| / step.
    rho : float
        Reconstruction offset (levels decode to |level| - rho).
    lam_bits : float
        Lagrangian in squared-step units per bit.
    """
    counts = np.ones((N_CONTEXTS, 2), dtype=np.float64) * 0.4
    _count_plane(q, counts)
    cost = -np.log2(counts / counts.sum(axis=1, keepdims=True))
    _rdoq_plane(q, np.ascontiguousarray(x), float(rho), float(lam_bits), cost)
    return q
