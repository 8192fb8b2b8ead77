"""Queued decisions for the range coder: the same stream as :mod:`._rangecoder`'s one call
per decision, coded in one tight loop.

An encoder whose contexts depend on the pixels only, never on the coder's state,
can queue a row of decisions (a context and a bit, or a run of direct bits) and
hand them to :func:`enc_decisions`. Under numba every call that passes arrays
costs reference counting, so a call per decision (``enc_bit(st, out, model,
...)``) runs at about 60 ns where this loop, its state in registers, runs at
about 20 ns. The probability, its adaptation and the carry handling are
:mod:`._rangecoder`'s own functions; the tests check the two paths give the
same bytes. It is a module of its own so that the on-disk numba caches
of the kernels built on ``_rangecoder`` (pca-patch) stay valid.
"""

from __future__ import annotations

from numba import njit

from ._rangecoder import _EG_PREFIX, _MASK32, _TOP, PROB_BITS, _adapt, _prob, _shift_low  # noqa: I001
from ._rangecoder import _CACHE, _CACHE_SIZE, _LOW, _POS, _RANGE  # the encoder state slots

__all__ = ["enc_decisions", "queue_expgolomb"]


@njit(cache=True)
def _normalize(st, out, low, rng, cache, cache_size, pos):
    # _rangecoder's renormalisation, once per output byte (rare next to the decisions):
    # the registers go through ``st`` for _shift_low and come back
    st[_LOW], st[_RANGE], st[_CACHE], st[_CACHE_SIZE], st[_POS] = low, rng, cache, cache_size, pos
    while st[_RANGE] < _TOP:
        st[_RANGE] = (st[_RANGE] << 8) & _MASK32
        _shift_low(st, out)
    return st[_LOW], st[_RANGE], st[_CACHE], st[_CACHE_SIZE], st[_POS]


@njit(cache=True)
def queue_expgolomb(ctx, val, n, base, value):
    """Queue the decisions :func:`~._rangecoder.enc_expgolomb` makes for ``value``.

    Writes them at ``ctx[n:]``, ``val[n:]`` and returns the new queue length:
    at most ``k + 3`` entries for a value below ``2**k - 1``.
    """
    v = value + 1
    k = 0
    while (v >> (k + 1)) != 0:
        k += 1
    for i in range(k):
        ctx[n] = base + (i if i < _EG_PREFIX else _EG_PREFIX - 1)
        val[n] = 1
        n += 1
    ctx[n] = base + (k if k < _EG_PREFIX else _EG_PREFIX - 1)
    val[n] = 0
    n += 1
    if k > 0:
        ctx[n] = base + _EG_PREFIX + k
        val[n] = (v >> (k - 1)) & 1
        n += 1
        if k > 1:
            ctx[n] = -(k - 1)
            val[n] = v
            n += 1
    return n


@njit(cache=True)
def enc_decisions(st, out, model, ctx, val, n):
    """Encode ``n`` queued decisions: the stream of one call per decision.

    ``ctx[i] >= 0``: the bit ``val[i]`` under that context of ``model``
    (:func:`~._rangecoder.enc_bit`); ``ctx[i] < 0``: the ``-ctx[i]`` low bits of
    ``val[i]``, direct (:func:`~._rangecoder.enc_direct`). ``st`` and ``model``
    are updated as those calls would (a buffer too small sets the overflow flag).
    """
    low, rng, cache, cache_size, pos = st[_LOW], st[_RANGE], st[_CACHE], st[_CACHE_SIZE], st[_POS]
    for i in range(n):
        c = ctx[i]
        if c >= 0:  # enc_bit
            bound = (rng >> PROB_BITS) * _prob(model, c)
            if val[i] == 0:
                rng = bound
            else:
                low += bound
                rng -= bound
            _adapt(model, c, val[i])
            if rng < _TOP:
                low, rng, cache, cache_size, pos = _normalize(st, out, low, rng, cache, cache_size, pos)
        else:  # enc_direct
            value = val[i]
            for j in range(-c - 1, -1, -1):
                rng = rng >> 1
                if (value >> j) & 1:
                    low += rng
                if rng < _TOP:
                    low, rng, cache, cache_size, pos = _normalize(st, out, low, rng, cache, cache_size, pos)
    st[_LOW], st[_RANGE], st[_CACHE], st[_CACHE_SIZE], st[_POS] = low, rng, cache, cache_size, pos
