"""Synthesis: dequantized coefficients -> pixel patches (decoder and encoder).

Fixed-order numba loops, no BLAS: bit-identical on every run and machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._transform import dct_matrix

__all__ = ["synth", "synth_classified", "synthesis_matrix"]


@njit(cache=True)
def synth(qc, step, rho, wmat, p2):
    """Dequantize (nby, nbx, K+1) ints and synthesise (nby, nbx, p2) patches.

    ``wmat`` (K+1, p2) holds the flat vector then the basis vectors in the
    pixel domain.
    """
    # one class for every block: the same fixed-order loops as synth_classified
    cmap = np.zeros(qc.shape[:2], dtype=np.int64)
    return synth_classified(qc, step, rho, wmat.reshape((1,) + wmat.shape), cmap, p2)


@njit(cache=True)
def synth_classified(qc, step, rho, wmats, cmap, p2):
    """:func:`synth` with the synthesis matrix ``wmats[cmap[by, bx]]`` per block."""
    nby, nbx, kp1 = qc.shape
    out = np.zeros((nby, nbx, p2))
    for by in range(nby):
        for bx in range(nbx):
            wmat = wmats[cmap[by, bx]]
            for k in range(kp1):
                v = qc[by, bx, k]
                if v == 0:
                    continue
                if k == 0:
                    c = v * step
                elif v > 0:
                    c = (v - rho) * step
                else:
                    c = (v + rho) * step
                for t in range(p2):
                    out[by, bx, t] += c * wmat[k, t]
    return out


@njit(cache=True)
def _matmul(a, b):
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for t in range(k):
            x = a[i, t]
            for j in range(m):
                out[i, j] += x * b[t, j]
    return out


def synthesis_matrix(basis_dct: np.ndarray, p: int) -> np.ndarray:
    """(K+1, p*p): flat vector then the basis rows, in the pixel domain."""
    c = dct_matrix(p)
    k = basis_dct.shape[0]
    w = np.empty((k + 1, p * p))
    w[0] = c[0]
    if k:
        w[1:] = _matmul(np.ascontiguousarray(basis_dct), c)
    return w
