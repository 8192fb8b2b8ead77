"""What the coder's Python side needs without numba: the decisions bound and the encoder's retry loop.

Re-exported by :mod:`._rangecoder` and :mod:`._streams`; a module of its own so
that the palette-index coder runs on its ahead-of-time build without importing
numba (:mod:`._indices`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_DECISIONS_PER_BYTE", "max_decisions", "run_encoder"]

#: An adaptive decision costs at least -log2(_PROB_MAX / 2**16) bits (about
#: 0.00068, ``_rangecoder._PROB_MAX``): a stream of n bytes holds fewer than
#: 8 / 0.00068 = 11726 decisions per byte. Decoders compare the count a header
#: implies with :func:`max_decisions` before allocating anything for it.
MAX_DECISIONS_PER_BYTE = 12000


def max_decisions(n_bytes: int) -> int:
    """Upper bound on the adaptive decisions a stream of ``n_bytes`` can hold.

    A decoder given ``n_bytes`` of payload refuses to decode more values than
    this (each value costs at least one decision), so a damaged header cannot
    make it allocate more than the bytes justify. Eight bytes of slack cover
    the flush.

    Examples
    --------
    >>> max_decisions(0) == 8 * MAX_DECISIONS_PER_BYTE
    True
    """
    return MAX_DECISIONS_PER_BYTE * (int(n_bytes) + 8)


def run_encoder(kernel, *args, capacity: int = 1024) -> bytes:
    """Run an ``@njit`` encoding kernel until its output fits.

    ``kernel(out, *args)`` must encode into the ``uint8`` buffer ``out`` and
    return :func:`enc_finish`'s length. The buffer doubles until it fits.
    """
    while True:
        out = np.empty(capacity, dtype=np.uint8)
        n = int(kernel(out, *args))
        if n <= capacity:
            return out[:n].tobytes()
        capacity = max(2 * capacity, n + 16)
