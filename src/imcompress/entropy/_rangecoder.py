"""A binary adaptive range coder (LZMA-style carry handling) compiled with numba.

The ``enc_*`` / ``dec_*`` functions are ``@njit`` and meant to be called from
the codecs' own ``@njit`` kernels, where the context modelling lives: a codec
chooses a context index for every binary decision, the coder adapts one
probability per context.

Model
-----
A model is an ``int32`` array of shape ``(n_contexts, 3)`` (:func:`model_new`,
usable inside ``@njit`` code too). Per context it holds two estimates of the
probability that the bit is 0, in units of 2**-16, and a count of the bits
seen. The coder uses their mean. After each bit both estimates move towards
the observed value by ``1 / (count + 2)`` while few bits were seen (a running
frequency), then by ``1 / FAST_LIMIT`` and ``1 / SLOW_LIMIT`` (two exponential
windows: the fast one follows local changes, the slow one is precise on
skewed, steady statistics; the two-rate mix is what recent video coders use).
Integer arithmetic only, so encoder and decoder agree bit for bit on every
machine.

Streams
-------
The encoder state is an ``int64`` array (:func:`enc_new`); output goes to a
caller-provided ``uint8`` buffer. If the buffer is too small the encoder keeps
counting and sets the overflow flag; :func:`enc_finish` returns the length and
the caller retries with a larger buffer (the Python wrappers do this). The
decoder never reads outside ``data``: bytes past the end read as zero and are
counted, so a damaged stream is detected by :func:`dec_overrun`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._bounds import MAX_DECISIONS_PER_BYTE, max_decisions

__all__ = [
    "PROB_BITS",
    "FAST_LIMIT",
    "SLOW_LIMIT",
    "EG_CONTEXTS",
    "model_new",
    "enc_new",
    "enc_bit",
    "enc_direct",
    "enc_tree",
    "enc_expgolomb",
    "enc_finish",
    "enc_reserve",
    "dec_new",
    "dec_bit",
    "dec_direct",
    "dec_tree",
    "dec_expgolomb",
    "dec_overrun",
    "MAX_DECISIONS_PER_BYTE",
    "max_decisions",
]

PROB_BITS = 16
_PROB_ONE = 1 << PROB_BITS
_PROB_MIN = 31
_PROB_MAX = _PROB_ONE - 31
FAST_LIMIT = 20
SLOW_LIMIT = 160
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF

# encoder state slots
_LOW, _RANGE, _CACHE, _CACHE_SIZE, _POS, _OVERFLOW = 0, 1, 2, 3, 4, 5
# decoder state slots
_CODE, _DRANGE, _DPOS, _OVERRUN = 0, 1, 2, 3

# MAX_DECISIONS_PER_BYTE and max_decisions (re-exported): ._bounds, which needs no numba

#: Contexts used by one adaptive Exp-Golomb code (prefix + top suffix bits).
EG_CONTEXTS = 64
_EG_PREFIX = 24
_EG_MAX_K = 30


@njit(cache=True)
def model_new(n_contexts):
    """A fresh model: every context at probability 1/2, count 0."""
    model = np.zeros((n_contexts, 3), dtype=np.int32)
    model[:, 0] = _PROB_ONE // 2
    model[:, 1] = _PROB_ONE // 2
    return model


@njit(cache=True)
def _prob(model, ctx):
    p = (model[ctx, 0] + model[ctx, 1]) >> 1
    if p < _PROB_MIN:
        return _PROB_MIN
    if p > _PROB_MAX:
        return _PROB_MAX
    return p


@njit(cache=True)
def _adapt(model, ctx, bit):
    n = model[ctx, 2]
    df = n + 2 if n + 2 < FAST_LIMIT else FAST_LIMIT
    ds = n + 2 if n + 2 < SLOW_LIMIT else SLOW_LIMIT
    pf = model[ctx, 0]
    ps = model[ctx, 1]
    if bit == 0:
        pf += (_PROB_ONE - pf) // df
        ps += (_PROB_ONE - ps) // ds
    else:
        pf -= pf // df
        ps -= ps // ds
    model[ctx, 0] = pf
    model[ctx, 1] = ps
    if n < SLOW_LIMIT:
        model[ctx, 2] = n + 1


@njit(cache=True)
def enc_new():
    """A fresh encoder state."""
    st = np.zeros(6, dtype=np.int64)
    st[_RANGE] = _MASK32
    st[_CACHE_SIZE] = 1
    return st


@njit(cache=True)
def _put(st, out, byte):
    pos = st[_POS]
    if pos < out.shape[0]:
        out[pos] = byte
    else:
        st[_OVERFLOW] = 1
    st[_POS] = pos + 1


@njit(cache=True)
def _shift_low(st, out):
    low = st[_LOW]
    if low < 0xFF000000 or low > _MASK32:
        carry = low >> 32
        temp = st[_CACHE]
        while True:
            _put(st, out, (temp + carry) & 0xFF)
            temp = 0xFF
            st[_CACHE_SIZE] -= 1
            if st[_CACHE_SIZE] == 0:
                break
        st[_CACHE] = (low >> 24) & 0xFF
    st[_CACHE_SIZE] += 1
    st[_LOW] = (low & 0x00FFFFFF) << 8


@njit(cache=True)
def enc_bit(st, out, model, ctx, bit):
    """Encode one bit (0 or 1) under context ``ctx`` of ``model``."""
    rng = st[_RANGE]
    bound = (rng >> PROB_BITS) * _prob(model, ctx)
    if bit == 0:
        st[_RANGE] = bound
    else:
        st[_LOW] += bound
        st[_RANGE] = rng - bound
    _adapt(model, ctx, bit)
    while st[_RANGE] < _TOP:
        st[_RANGE] = (st[_RANGE] << 8) & _MASK32
        _shift_low(st, out)


@njit(cache=True)
def enc_direct(st, out, value, nbits):
    """Encode the ``nbits`` low bits of ``value``, equiprobable, MSB first."""
    for i in range(nbits - 1, -1, -1):
        st[_RANGE] = st[_RANGE] >> 1
        if (value >> i) & 1:
            st[_LOW] += st[_RANGE]
        while st[_RANGE] < _TOP:
            st[_RANGE] = (st[_RANGE] << 8) & _MASK32
            _shift_low(st, out)


@njit(cache=True)
def enc_tree(st, out, model, base, nbits, value):
    """Encode an ``nbits`` symbol with a binary tree of contexts.

    Uses contexts ``base + 1 .. base + 2**nbits - 1``.
    """
    m = 1
    for i in range(nbits - 1, -1, -1):
        b = (value >> i) & 1
        enc_bit(st, out, model, base + m, b)
        m = (m << 1) | b


@njit(cache=True)
def enc_expgolomb(st, out, model, base, value):
    """Encode a non-negative integer (< 2**30) with an adaptive Exp-Golomb code.

    Uses contexts ``base .. base + EG_CONTEXTS - 1``: the unary prefix (the
    bit length of ``value + 1``) and the top suffix bit are adaptive, the
    remaining suffix bits are direct.
    """
    v = value + 1
    k = 0
    while (v >> (k + 1)) != 0:
        k += 1
    for i in range(k):
        enc_bit(st, out, model, base + (i if i < _EG_PREFIX else _EG_PREFIX - 1), 1)
    enc_bit(st, out, model, base + (k if k < _EG_PREFIX else _EG_PREFIX - 1), 0)
    if k > 0:
        enc_bit(st, out, model, base + _EG_PREFIX + k, (v >> (k - 1)) & 1)
        if k > 1:
            enc_direct(st, out, v, k - 1)


@njit(cache=True)
def enc_finish(st, out):
    """Flush the encoder; returns the stream length in bytes.

    If the returned length exceeds ``len(out)`` the buffer was too small
    and the stream must be encoded again into a larger one.
    """
    for _ in range(5):
        _shift_low(st, out)
    return st[_POS]


def enc_reserve(st, out, n):
    """``out``, or a larger copy of it, with room for ``n`` more bytes after what ``st`` holds.

    Lets a Python loop that calls an encoding kernel piece by piece grow its
    buffer as it goes (bytes already written are final; pending carry bytes
    are counted) instead of allocating for the worst case up front. Raises
    OverflowError if the encoder already ran past the end of ``out`` (bytes
    were lost: encode again with more room reserved per call).
    """
    if st[_OVERFLOW]:
        raise OverflowError("the range coder ran past the end of its buffer; reserve more room per call")
    need = int(st[_POS]) + int(st[_CACHE_SIZE]) + n
    if need <= len(out):
        return out
    grown = np.empty(max(2 * len(out), need), dtype=np.uint8)
    pos = min(int(st[_POS]), len(out))
    grown[:pos] = out[:pos]
    return grown


@njit(cache=True)
def dec_new(data):
    """A decoder state positioned at the start of ``data`` (uint8 array)."""
    st = np.zeros(4, dtype=np.int64)
    st[_DRANGE] = _MASK32
    for _ in range(5):
        st[_CODE] = ((st[_CODE] << 8) | _get(st, data)) & _MASK32
    return st


@njit(cache=True)
def _get(st, data):
    pos = st[_DPOS]
    st[_DPOS] = pos + 1
    if pos < data.shape[0]:
        return np.int64(data[pos])
    st[_OVERRUN] += 1
    return np.int64(0)


@njit(cache=True)
def dec_bit(st, data, model, ctx):
    """Decode one bit under context ``ctx`` of ``model``."""
    rng = st[_DRANGE]
    bound = (rng >> PROB_BITS) * _prob(model, ctx)
    if st[_CODE] < bound:
        st[_DRANGE] = bound
        bit = 0
    else:
        st[_CODE] -= bound
        st[_DRANGE] = rng - bound
        bit = 1
    _adapt(model, ctx, bit)
    while st[_DRANGE] < _TOP:
        st[_DRANGE] = (st[_DRANGE] << 8) & _MASK32
        st[_CODE] = ((st[_CODE] << 8) | _get(st, data)) & _MASK32
    return bit


@njit(cache=True)
def dec_direct(st, data, nbits):
    """Decode ``nbits`` equiprobable bits, MSB first."""
    value = 0
    for _ in range(nbits):
        st[_DRANGE] = st[_DRANGE] >> 1
        bit = 0
        if st[_CODE] >= st[_DRANGE]:
            st[_CODE] -= st[_DRANGE]
            bit = 1
        value = (value << 1) | bit
        while st[_DRANGE] < _TOP:
            st[_DRANGE] = (st[_DRANGE] << 8) & _MASK32
            st[_CODE] = ((st[_CODE] << 8) | _get(st, data)) & _MASK32
    return value


@njit(cache=True)
def dec_tree(st, data, model, base, nbits):
    """Decode an ``nbits`` symbol coded by :func:`enc_tree`."""
    m = 1
    for _ in range(nbits):
        m = (m << 1) | dec_bit(st, data, model, base + m)
    return m - (1 << nbits)


@njit(cache=True)
def dec_expgolomb(st, data, model, base):
    """Decode a value coded by :func:`enc_expgolomb`; -1 if the stream is invalid."""
    k = 0
    while dec_bit(st, data, model, base + (k if k < _EG_PREFIX else _EG_PREFIX - 1)) == 1:
        k += 1
        if k > _EG_MAX_K:
            return -1
    if k == 0:
        return 0
    v = 2 | dec_bit(st, data, model, base + _EG_PREFIX + k)
    if k > 1:
        v = (v << (k - 1)) | dec_direct(st, data, k - 1)
    return v - 1


@njit(cache=True)
def dec_overrun(st):
    """Bytes read past the end of the data (a valid stream reads none)."""
    return st[_OVERRUN]
