"""Array-level wrappers over the range coder, for simple streams and tests."""

from __future__ import annotations

import numpy as np
from numba import njit

from .._errors import CorruptFileError
from ._bounds import run_encoder
from ._rangecoder import (
    EG_CONTEXTS,
    dec_bit,
    dec_expgolomb,
    dec_new,
    dec_overrun,
    enc_bit,
    enc_expgolomb,
    enc_finish,
    enc_new,
    model_new,
)

__all__ = ["encode_bits", "decode_bits", "encode_uints", "decode_uints", "run_encoder"]


@njit(cache=True)
def _enc_bits(out, bits, contexts, n_contexts):
    st = enc_new()
    model = model_new(n_contexts)
    for i in range(bits.shape[0]):
        enc_bit(st, out, model, contexts[i], bits[i])
    return enc_finish(st, out)


@njit(cache=True)
def _dec_bits(data, contexts, n_contexts):
    st = dec_new(data)
    model = model_new(n_contexts)
    bits = np.empty(contexts.shape[0], dtype=np.uint8)
    for i in range(contexts.shape[0]):
        bits[i] = dec_bit(st, data, model, contexts[i])
    return bits, dec_overrun(st)


def _check_contexts(contexts, n, n_contexts):
    ctx = np.ascontiguousarray(contexts, dtype=np.int64)
    if ctx.shape != (n,):
        raise ValueError(f"contexts of shape {ctx.shape} should be ({n},)")
    if n and (ctx.min() < 0 or ctx.max() >= n_contexts):
        raise ValueError(f"contexts should be in 0..{n_contexts - 1}")
    return ctx


def encode_bits(bits, contexts=None, *, n_contexts: int = 1) -> bytes:
    """Encode a bit array, each bit under a given context, adaptively.

    Parameters
    ----------
    bits : array of 0/1, shape (n,)
    contexts : int array of shape (n,), optional
        Context index of each bit (all 0 when omitted).
    n_contexts : int, default=1

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.array([0, 0, 0, 1] * 100, dtype=np.uint8)
    >>> data = encode_bits(bits)
    >>> len(data) < 50 and bool((decode_bits(data, 400) == bits).all())
    True
    """
    bits = np.ascontiguousarray(bits, dtype=np.uint8).ravel()
    if bits.size and bits.max() > 1:
        raise ValueError("bits should be 0 or 1")
    if contexts is None:
        contexts = np.zeros(bits.size, dtype=np.int64)
    ctx = _check_contexts(contexts, bits.size, n_contexts)
    return run_encoder(_enc_bits, bits, ctx, int(n_contexts), capacity=bits.size // 4 + 64)


def decode_bits(data: bytes, count: int, contexts=None, *, n_contexts: int = 1) -> np.ndarray:
    """Decode ``count`` bits written by :func:`encode_bits` with the same contexts."""
    if contexts is None:
        contexts = np.zeros(count, dtype=np.int64)
    ctx = _check_contexts(contexts, count, n_contexts)
    bits, overrun = _dec_bits(np.frombuffer(data, dtype=np.uint8), ctx, int(n_contexts))
    if overrun > 0:
        raise CorruptFileError("entropy-coded stream is truncated")
    return bits


@njit(cache=True)
def _enc_uints(out, values, sets, n_sets):
    st = enc_new()
    model = model_new(n_sets * EG_CONTEXTS)
    for i in range(values.shape[0]):
        enc_expgolomb(st, out, model, sets[i] * EG_CONTEXTS, values[i])
    return enc_finish(st, out)


@njit(cache=True)
def _dec_uints(data, sets, n_sets):
    st = dec_new(data)
    model = model_new(n_sets * EG_CONTEXTS)
    values = np.empty(sets.shape[0], dtype=np.int64)
    for i in range(sets.shape[0]):
        v = dec_expgolomb(st, data, model, sets[i] * EG_CONTEXTS)
        if v < 0:
            return values, 1
        values[i] = v
    return values, 1 if dec_overrun(st) > 0 else 0


def encode_uints(values, sets=None, *, n_sets: int = 1) -> bytes:
    """Encode non-negative integers (< 2**30) with adaptive Exp-Golomb codes.

    ``sets`` gives, per value, which of ``n_sets`` independent adaptive
    models to use (e.g. one per frequency band).
    """
    vals = np.ascontiguousarray(values, dtype=np.int64).ravel()
    if vals.size and (vals.min() < 0 or vals.max() >= 1 << 30):
        raise ValueError("values should be in 0 .. 2**30 - 1")
    if sets is None:
        sets = np.zeros(vals.size, dtype=np.int64)
    s = _check_contexts(sets, vals.size, n_sets)
    return run_encoder(_enc_uints, vals, s, int(n_sets), capacity=vals.size + 64)


def decode_uints(data: bytes, count: int, sets=None, *, n_sets: int = 1) -> np.ndarray:
    """Decode ``count`` integers written by :func:`encode_uints`."""
    if sets is None:
        sets = np.zeros(count, dtype=np.int64)
    s = _check_contexts(sets, count, n_sets)
    values, bad = _dec_uints(np.frombuffer(data, dtype=np.uint8), s, int(n_sets))
    if bad:
        raise CorruptFileError("entropy-coded stream is damaged or truncated")
    return values
