import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from imcompress import CorruptFileError
from imcompress.entropy import (
    EG_CONTEXTS,
    dec_direct,
    dec_new,
    dec_overrun,
    dec_tree,
    decode_bits,
    decode_uints,
    enc_bit,
    enc_decisions,
    enc_direct,
    enc_expgolomb,
    enc_finish,
    enc_new,
    enc_tree,
    encode_bits,
    encode_uints,
    model_new,
    queue_expgolomb,
    run_encoder,
)


def _entropy_bits(p):
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


@pytest.mark.parametrize("p", [0.5, 0.1, 0.01])
def test_bits_roundtrip_and_rate_near_entropy(p, rng):
    n = 50_000
    bits = (rng.random(n) < p).astype(np.uint8)
    data = encode_bits(bits)
    np.testing.assert_array_equal(decode_bits(data, n), bits)
    ideal = n * _entropy_bits(p) / 8
    # adaptive model: within 8% (+ flush bytes) of the Shannon bound
    assert len(data) <= ideal * 1.08 + 16


def test_contexts_separate_statistics(rng):
    n = 40_000
    ctx = rng.integers(0, 2, n)
    # context 0 almost always 0, context 1 almost always 1: coded with contexts
    # the stream is far smaller than without
    bits = np.where(ctx == 0, rng.random(n) < 0.02, rng.random(n) < 0.98).astype(np.uint8)
    with_ctx = encode_bits(bits, ctx, n_contexts=2)
    without = encode_bits(bits)
    np.testing.assert_array_equal(decode_bits(with_ctx, n, ctx, n_contexts=2), bits)
    assert len(with_ctx) < 0.3 * len(without)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), max_size=3000), st.integers(1, 8), st.integers(0, 2**31))
def test_random_bit_streams_roundtrip(bits, n_contexts, seed):
    bits = np.array(bits, dtype=np.uint8)
    ctx = np.random.default_rng(seed).integers(0, n_contexts, bits.size)
    data = encode_bits(bits, ctx, n_contexts=n_contexts)
    np.testing.assert_array_equal(decode_bits(data, bits.size, ctx, n_contexts=n_contexts), bits)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**30 - 1), max_size=500), st.integers(1, 4), st.integers(0, 2**31))
def test_random_integer_streams_roundtrip(values, n_sets, seed):
    values = np.array(values, dtype=np.int64)
    sets = np.random.default_rng(seed).integers(0, n_sets, values.size)
    data = encode_uints(values, sets, n_sets=n_sets)
    np.testing.assert_array_equal(decode_uints(data, values.size, sets, n_sets=n_sets), values)


def test_geometric_integers_compress(rng):
    values = rng.geometric(0.2, 20_000) - 1
    data = encode_uints(values)
    # entropy of a geometric(0.2) variable is about 3.61 bits
    assert len(data) * 8 / values.size < 3.61 * 1.1


@njit(cache=True)
def _enc_mixed(out, symbols, raw):
    st = enc_new()
    model = model_new(256)
    for i in range(symbols.shape[0]):
        enc_tree(st, out, model, 0, 8, symbols[i])
        enc_direct(st, out, raw[i], 13)
    return enc_finish(st, out)


@njit(cache=True)
def _dec_mixed(data, n):
    st = dec_new(data)
    model = model_new(256)
    symbols = np.empty(n, dtype=np.int64)
    raw = np.empty(n, dtype=np.int64)
    for i in range(n):
        symbols[i] = dec_tree(st, data, model, 0, 8)
        raw[i] = dec_direct(st, data, 13)
    return symbols, raw, dec_overrun(st)


def test_tree_and_direct_symbols_roundtrip(rng):
    n = 5000
    symbols = rng.integers(0, 256, n)
    symbols[: n // 2] = rng.integers(0, 4, n // 2)  # skewed part
    raw = rng.integers(0, 2**13, n)
    data = run_encoder(_enc_mixed, symbols, raw, capacity=16)  # forces buffer growth
    got_s, got_r, overrun = _dec_mixed(np.frombuffer(data, dtype=np.uint8), n)
    assert overrun == 0
    np.testing.assert_array_equal(got_s, symbols)
    np.testing.assert_array_equal(got_r, raw)


def test_truncated_stream_is_detected(rng):
    values = rng.integers(0, 1000, 2000)
    data = encode_uints(values)
    with pytest.raises(CorruptFileError, match="damaged or truncated"):
        decode_uints(data[: len(data) // 2], values.size)


def test_model_new_is_even():
    m = model_new(3)
    assert m.shape == (3, 3) and (m[:, :2] == 1 << 15).all() and (m[:, 2] == 0).all()


def test_encode_bits_rejects_bad_input():
    with pytest.raises(ValueError, match="0 or 1"):
        encode_bits(np.array([0, 2]))
    with pytest.raises(ValueError, match="contexts should be"):
        encode_bits(np.array([0, 1]), np.array([0, 5]), n_contexts=2)


@njit(cache=True)
def _enc_one_by_one(out, ctx, val, n_contexts):
    st = enc_new()
    model = model_new(n_contexts)
    for i in range(ctx.shape[0]):
        if ctx[i] >= 0:
            enc_bit(st, out, model, ctx[i], val[i])
        else:
            enc_direct(st, out, val[i], -ctx[i])
    return enc_finish(st, out)


@njit(cache=True)
def _enc_queued(out, ctx, val, n_contexts, piece):
    st = enc_new()
    model = model_new(n_contexts)
    for start in range(0, ctx.shape[0], piece):
        stop = min(ctx.shape[0], start + piece)
        enc_decisions(st, out, model, ctx[start:stop], val[start:stop], stop - start)
    return enc_finish(st, out)


@pytest.mark.parametrize("capacity", [16, 1 << 16])
def test_queued_decisions_give_the_stream_of_one_call_each(rng, capacity):
    """enc_decisions (the index coder's fast path) against enc_bit / enc_direct, bit for bit,
    skewed and even bits, direct runs of 1..29 bits, and a buffer too small (overflow)."""
    n = 20000
    ctx = rng.integers(0, 40, n).astype(np.int32)
    val = (rng.random(n) < np.where(ctx < 20, 0.05, 0.6)).astype(np.int32)
    direct = rng.random(n) < 0.1
    widths = rng.integers(1, 30, n)
    ctx[direct] = -widths[direct]
    val[direct] = rng.integers(0, 2**30, n)[direct] & ((1 << widths[direct]) - 1)
    want = run_encoder(_enc_one_by_one, ctx, val, 40, capacity=capacity)
    assert len(want) > 1000
    for piece in (1, 7, n):
        assert run_encoder(_enc_queued, ctx, val, 40, piece, capacity=capacity) == want


@njit(cache=True)
def _eg_one_by_one(out, values, bases):
    st = enc_new()
    model = model_new(4 * EG_CONTEXTS)
    for i in range(values.shape[0]):
        enc_expgolomb(st, out, model, bases[i], values[i])
    return enc_finish(st, out)


@njit(cache=True)
def _eg_queued(out, values, bases):
    st = enc_new()
    model = model_new(4 * EG_CONTEXTS)
    ctx = np.empty(64, dtype=np.int32)
    val = np.empty(64, dtype=np.int32)
    for i in range(values.shape[0]):
        n = queue_expgolomb(ctx, val, 0, bases[i], values[i])
        enc_decisions(st, out, model, ctx, val, n)
    return enc_finish(st, out)


def test_queued_expgolomb_is_enc_expgolomb(rng):
    values = np.concatenate([rng.geometric(0.3, 3000) - 1, rng.integers(0, 2**29, 200), [0, 1, 2, 255, 256]])
    bases = rng.integers(0, 4, values.size) * EG_CONTEXTS
    want = run_encoder(_eg_one_by_one, values, bases, capacity=64)
    assert run_encoder(_eg_queued, values, bases, capacity=64) == want
    assert (decode_uints(encode_uints(values), values.size) == values).all()
