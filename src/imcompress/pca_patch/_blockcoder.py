"""Context coding of bitstream 2's syntax: partition, modes, coefficients.

Each function that writes takes a ``dry`` flag: with ``dry`` it changes
nothing and returns the bits the decisions would cost under the model's
current probabilities (the encoder's rate estimate); otherwise it codes them
and returns 0. The ``dec_*`` functions read the same syntax back.

Coefficients of an N x N block (levels ``lev[u, v]``, u vertical frequency)
are scanned by anti-diagonals (u + v, then u). A coded-block flag, the
position of the last nonzero level in scan order (its bit length coded with
contexts per size, the rest direct), then from the last position down to 0
a significance flag, "greater than 1", "greater than 2" and an Exp-Golomb
remainder, with contexts from the block size, the frequency band and the
magnitudes already coded at five higher-frequency neighbours (a template,
as in VVC); signs are direct bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..entropy import (
    EG_CONTEXTS,
    dec_bit,
    dec_direct,
    dec_expgolomb,
    dec_tree,
    enc_bit,
    enc_direct,
    enc_expgolomb,
    enc_tree,
)
from ._jit import noalloc

__all__ = ["N_CONTEXTS2", "MAX_LEVEL", "cost_table", "scan_tables"]

#: Largest magnitude of a level a decoder accepts.
MAX_LEVEL = 1 << 20
#: Largest |alpha| of chroma from luma, in 1/8.
MAX_ALPHA = 16
_SIZES = 4  # 4, 8, 16, 32
_BANDS = 5
_TCLS = 5

SPLIT = 0  # size x 3 (neighbours smaller than this node)
MPM_FLAG = SPLIT + _SIZES * 3
MPM_IDX = MPM_FLAG + _SIZES
REM_TREE = MPM_IDX + 2  # 5-bit tree: base + 1 .. base + 31
CFL_FLAG = REM_TREE + 32  # 3: CfL neighbours
CFL_ZERO = CFL_FLAG + 3
CFL_MAG = CFL_ZERO + 1  # unary, MAX_ALPHA
CBF = CFL_MAG + MAX_ALPHA  # size x 3
LAST = CBF + _SIZES * 3  # size x 11
SIG = LAST + _SIZES * 11  # size x band x template
GT1 = SIG + _SIZES * _BANDS * _TCLS
GT2 = GT1 + _SIZES * _BANDS * _TCLS
REM = GT2 + _SIZES * _BANDS * _TCLS  # size x EG_CONTEXTS
N_CONTEXTS2 = REM + _SIZES * EG_CONTEXTS


def scan_tables():
    """(4, 1024) u and v of each scan position for N = 4, 8, 16, 32 (and band of each)."""
    su = np.zeros((_SIZES, 1024), dtype=np.int64)
    sv = np.zeros((_SIZES, 1024), dtype=np.int64)
    for s in range(_SIZES):
        n = 4 << s
        uu, vv = np.divmod(np.arange(n * n), n)
        order = np.lexsort((uu, uu + vv))
        su[s, : n * n] = uu[order]
        sv[s, : n * n] = vv[order]
    return su, sv


def cost_table():
    """-log2(i / 4096) for i = 0..4096 (i = 0 clamped): bits of a probability."""
    i = np.maximum(np.arange(4097, dtype=np.float64), 1.0)
    return -np.log2(i / 4096.0)


@noalloc
def _bits(model, ctx, bit, tab):
    p = (model[ctx, 0] + model[ctx, 1]) >> 1  # P(0) in 1/65536, as the coder uses it
    if p < 31:
        p = 31
    elif p > 65505:
        p = 65505
    return tab[p >> 4] if bit == 0 else tab[(65536 - p) >> 4]


@noalloc
def put_bit(st, out, model, ctx, bit, dry, tab):
    if dry:
        return _bits(model, ctx, bit, tab)
    enc_bit(st, out, model, ctx, bit)
    return 0.0


@noalloc
def _put_direct(st, out, value, nbits, dry):
    if dry:
        return float(nbits)
    enc_direct(st, out, value, nbits)
    return 0.0


@noalloc
def _put_eg(st, out, model, base, value, dry, tab):
    if not dry:
        enc_expgolomb(st, out, model, base, value)
        return 0.0
    v = value + 1
    k = 0
    while (v >> (k + 1)) != 0:
        k += 1
    b = 0.0
    for i in range(k):
        b += _bits(model, base + (i if i < 24 else 23), 1, tab)
    b += _bits(model, base + (k if k < 24 else 23), 0, tab)
    if k > 0:
        b += _bits(model, base + 24 + k, (v >> (k - 1)) & 1, tab)
        b += k - 1
    return b


@noalloc
def _band(d):
    if d == 0:
        return 0
    if d <= 2:
        return 1
    if d <= 5:
        return 2
    if d <= 10:
        return 3
    return 4


@noalloc
def _template(lev, u, v, n):
    s = 0
    if u + 1 < n:
        s += abs(lev[u + 1, v])
        if v + 1 < n:
            s += abs(lev[u + 1, v + 1])
        if u + 2 < n:
            s += abs(lev[u + 2, v])
    if v + 1 < n:
        s += abs(lev[u, v + 1])
        if v + 2 < n:
            s += abs(lev[u, v + 2])
    return s if s < _TCLS - 1 else _TCLS - 1


@noalloc
def last_position(lev, n, s, su, sv):
    """Scan position of the last nonzero level, -1 if none."""
    for pos in range(n * n - 1, -1, -1):
        if lev[su[s, pos], sv[s, pos]] != 0:
            return pos
    return -1


@noalloc
def code_block(st, out, model, lev, n, s, cbf_ctx, dry, tab, su, sv):
    """Code the levels ``lev`` (n x n) of one block; bits if ``dry``."""
    last = last_position(lev, n, s, su, sv)
    b = put_bit(st, out, model, CBF + s * 3 + cbf_ctx, 1 if last >= 0 else 0, dry, tab)
    if last < 0:
        return b
    g = 0
    while (last >> g) != 0:
        g += 1
    gmax = 2 * (s + 2)
    for i in range(g):
        b += put_bit(st, out, model, LAST + s * 11 + i, 1, dry, tab)
    if g < gmax:
        b += put_bit(st, out, model, LAST + s * 11 + g, 0, dry, tab)
    if g >= 2:
        b += _put_direct(st, out, last, g - 1, dry)
    for pos in range(last, -1, -1):
        u = su[s, pos]
        v = sv[s, pos]
        x = lev[u, v]
        a = abs(x)
        ctx = (s * _BANDS + _band(u + v)) * _TCLS + _template(lev, u, v, n)
        if pos < last:
            b += put_bit(st, out, model, SIG + ctx, 1 if a else 0, dry, tab)
        if a == 0:
            continue
        b += _put_direct(st, out, 1 if x < 0 else 0, 1, dry)
        b += put_bit(st, out, model, GT1 + ctx, 1 if a > 1 else 0, dry, tab)
        if a > 1:
            b += put_bit(st, out, model, GT2 + ctx, 1 if a > 2 else 0, dry, tab)
            if a > 2:
                b += _put_eg(st, out, model, REM + s * EG_CONTEXTS, a - 3, dry, tab)
    return b


@njit(cache=True)
def dec_block(st, data, model, lev, n, s, cbf_ctx, su, sv):
    """Read one block's levels into ``lev`` (zeroed by the caller); 1 if invalid."""
    if dec_bit(st, data, model, CBF + s * 3 + cbf_ctx) == 0:
        return 0
    gmax = 2 * (s + 2)
    g = 0
    while g < gmax and dec_bit(st, data, model, LAST + s * 11 + g) == 1:
        g += 1
    if g == 0:
        last = 0
    elif g == 1:
        last = 1
    else:
        last = (1 << (g - 1)) | dec_direct(st, data, g - 1)
    if last >= n * n:
        return 1
    for pos in range(last, -1, -1):
        u = su[s, pos]
        v = sv[s, pos]
        ctx = (s * _BANDS + _band(u + v)) * _TCLS + _template(lev, u, v, n)
        if pos < last and dec_bit(st, data, model, SIG + ctx) == 0:
            continue
        neg = dec_direct(st, data, 1)
        a = 1
        if dec_bit(st, data, model, GT1 + ctx) == 1:
            a = 2
            if dec_bit(st, data, model, GT2 + ctx) == 1:
                r = dec_expgolomb(st, data, model, REM + s * EG_CONTEXTS)
                if r < 0 or r > MAX_LEVEL:
                    return 1
                a = 3 + r
        lev[u, v] = -a if neg else a
    return 0


@njit(cache=True)
def mpm_list(left, above, mpm):
    """HEVC's three most probable modes from the left and above modes (-1 or CfL: DC)."""
    a = left if 0 <= left < 35 else 1
    b = above if 0 <= above < 35 else 1
    if a == b:
        if a < 2:
            mpm[0], mpm[1], mpm[2] = 0, 1, 26
        else:
            mpm[0] = a
            mpm[1] = 2 + ((a + 29) % 32)
            mpm[2] = 2 + ((a - 2 + 1) % 32)
    else:
        mpm[0], mpm[1] = a, b
        if a != 0 and b != 0:
            mpm[2] = 0
        elif a != 1 and b != 1:
            mpm[2] = 1
        else:
            mpm[2] = 26


@noalloc
def code_mode(st, out, model, mode, mpm, s, dry, tab):
    """One of the 35 prediction modes: an MPM index or the 5-bit remainder."""
    for i in range(3):
        if mode == mpm[i]:
            b = put_bit(st, out, model, MPM_FLAG + s, 1, dry, tab)
            b += put_bit(st, out, model, MPM_IDX, 1 if i > 0 else 0, dry, tab)
            if i > 0:
                b += put_bit(st, out, model, MPM_IDX + 1, 1 if i > 1 else 0, dry, tab)
            return b
    b = put_bit(st, out, model, MPM_FLAG + s, 0, dry, tab)
    rem = mode
    for i in range(3):  # minus the MPMs below it
        if mpm[i] < mode:
            rem -= 1
    if dry:
        m = 1
        for i in range(4, -1, -1):
            bit = (rem >> i) & 1
            b += _bits(model, REM_TREE + m, bit, tab)
            m = (m << 1) | bit
        return b
    enc_tree(st, out, model, REM_TREE, 5, rem)
    return b


@njit(cache=True)
def dec_mode(st, data, model, mpm, s):
    if dec_bit(st, data, model, MPM_FLAG + s) == 1:
        if dec_bit(st, data, model, MPM_IDX) == 0:
            return mpm[0]
        return mpm[2] if dec_bit(st, data, model, MPM_IDX + 1) == 1 else mpm[1]
    mode = dec_tree(st, data, model, REM_TREE, 5)
    srt = np.sort(mpm)
    for i in range(3):
        if mode >= srt[i]:
            mode += 1
    return mode


@noalloc
def code_alpha(st, out, model, alpha, dry, tab):
    """CfL alpha in -MAX_ALPHA..MAX_ALPHA: zero flag, sign, unary magnitude."""
    b = put_bit(st, out, model, CFL_ZERO, 1 if alpha == 0 else 0, dry, tab)
    if alpha == 0:
        return b
    b += _put_direct(st, out, 1 if alpha < 0 else 0, 1, dry)
    a = abs(alpha)
    for i in range(1, MAX_ALPHA):
        b += put_bit(st, out, model, CFL_MAG + i, 1 if a > i else 0, dry, tab)
        if a == i:
            break
    return b


@njit(cache=True)
def dec_alpha(st, data, model):
    if dec_bit(st, data, model, CFL_ZERO) == 1:
        return 0
    neg = dec_direct(st, data, 1)
    a = 1
    while a < MAX_ALPHA and dec_bit(st, data, model, CFL_MAG + a) == 1:
        a += 1
    return -a if neg else a
