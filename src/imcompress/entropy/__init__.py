"""Entropy coding: an adaptive binary range coder compiled with numba.

Codecs build context models in their own ``@njit(cache=True)`` kernels on the
primitives below (see ``_rangecoder`` for the stream and model conventions)::

    st = enc_new(); model = model_new(n_contexts)
    enc_bit(st, out, model, ctx, bit)
    n = enc_finish(st, out)                           # n > len(out): retry larger

An encoder whose contexts do not depend on the coder can queue its decisions
(``queue_expgolomb`` and plain ``ctx[n], val[n] = c, bit``) and code them with
``enc_decisions``: the same stream, several times faster under numba than one
call per decision.

    st = dec_new(data); bit = dec_bit(st, data, model, ctx)
    if dec_overrun(st): corrupt

``run_encoder`` retries a kernel with a larger buffer until the stream fits;
``encode_bits``/``encode_uints`` and their decoders are ready-made streams;
``encode_indices``/``decode_indices`` code an (H, W) plane of palette indices
(the kmeans colour plane, the pca-rows alpha plane). ``max_decisions`` is the
one bound a decoder checks a declared count against before allocating.
"""

import importlib

#: Every public name -> the module defining it, imported on first use: the
#: coder's kernels are numba's, and the palette-index coder runs on its
#: ahead-of-time build without numba (``_indices``), so ``import
#: imcompress.entropy`` imports none of them.
_LAZY = {
    **dict.fromkeys(("FAST_LIMIT", "SLOW_LIMIT", "EG_CONTEXTS", "PROB_BITS", "dec_bit", "dec_direct",
                     "dec_expgolomb", "dec_new", "dec_overrun", "dec_tree", "enc_bit", "enc_direct",
                     "enc_expgolomb", "enc_finish", "enc_new", "enc_reserve", "enc_tree", "model_new"),
                    "._rangecoder"),
    **dict.fromkeys(("MAX_DECISIONS_PER_BYTE", "max_decisions"), "._bounds"),
    **dict.fromkeys(("enc_decisions", "queue_expgolomb"), "._queued"),
    **dict.fromkeys(("decode_indices", "encode_indices", "indices_aot"), "._indices"),
    **dict.fromkeys(("decode_bits", "decode_uints", "encode_bits", "encode_uints", "run_encoder"), "._streams"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FAST_LIMIT",
    "MAX_DECISIONS_PER_BYTE",
    "SLOW_LIMIT",
    "EG_CONTEXTS",
    "PROB_BITS",
    "dec_bit",
    "dec_direct",
    "dec_expgolomb",
    "dec_new",
    "dec_overrun",
    "dec_tree",
    "decode_bits",
    "decode_indices",
    "decode_uints",
    "enc_bit",
    "enc_decisions",
    "enc_direct",
    "enc_expgolomb",
    "enc_finish",
    "enc_reserve",
    "enc_new",
    "enc_tree",
    "encode_bits",
    "encode_indices",
    "encode_uints",
    "indices_aot",
    "max_decisions",
    "model_new",
    "queue_expgolomb",
    "run_encoder",
]
