"""Quantizer steps, the rate-distortion Lagrangian and level statistics (encoder side)."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "AC_ROUND",
    "CHROMA_FACTOR",
    "RDOQ_LAMBDA",
    "STEP_Q0",
    "block_costs",
    "fit_rho",
    "lagrangian",
    "quality_to_step",
    "rate_proxy",
    "used_components",
]

#: Step of the coarsest quality (0) and of the finest (100), luma, in DCT units.
STEP_Q0 = 400.0
STEP_Q100 = 0.5
#: Chroma step relative to luma (measured on Kodak: PSNR-optimal in RGB).
CHROMA_FACTOR = 0.55
#: Deadzone rounding offset of AC coefficients (0.5 = plain rounding).
AC_ROUND = 0.45
#: Lagrangian of rate-distortion optimised quantization, in step**2 per bit
#: (high-rate theory gives 2 ln 2 / 12 = 0.116).
RDOQ_LAMBDA = 0.116


def quality_to_step(quality: float) -> float:
    """Quantizer step (luma) for ``quality`` in 0..100, geometric in quality.

    Examples
    --------
    >>> round(quality_to_step(100), 3), round(quality_to_step(0), 1)
    (0.5, 400.0)
    """
    q = min(max(float(quality), 0.0), 100.0)
    return float(STEP_Q0 * (STEP_Q100 / STEP_Q0) ** (q / 100.0))


def lagrangian(step: float) -> float:
    """Lagrangian of a uniform quantizer at high rate: -dD/dR per bit, D in SSE units."""
    return 2.0 * math.log(2.0) * step * step / 12.0


def used_components(qac) -> int:
    """1 + index of the last component with any nonzero level (0 if none)."""
    nz = np.flatnonzero(np.count_nonzero(qac, axis=0))
    return int(nz[-1]) + 1 if nz.size else 0


def fit_rho(qac, a) -> int:
    """Reconstruction offset (1/256 steps) minimising the error of nonzero levels."""
    mask = qac != 0
    if not mask.any():
        return 0
    rho = float(np.mean(np.abs(qac[mask]) - a[mask]))
    return int(min(max(round(rho * 256), 0), 127))


def rate_proxy(q, qbasis) -> float:
    """Rough bits of quantized coefficients (and a stored basis), for pre-selection."""
    a = np.abs(q)
    bits = float(np.count_nonzero(a)) * 2.5 + 2.0 * float(np.sum(np.log2(1.0 + a)))
    if qbasis is not None:
        bits += 7.0 * float(np.count_nonzero(qbasis))
    return bits


def block_costs(ac, step):
    """Per-block D + lambda R proxy of coefficients ``ac`` (n, K) at ``step``."""
    a = np.abs(ac) / step
    lev = np.floor(a + AC_ROUND)
    err = np.where(lev > 0, (a - lev) ** 2, a * a) * (step * step)
    bits = np.sum((lev > 0) * 2.5 + 2.0 * np.log2(1.0 + lev), axis=1)
    return np.sum(err, axis=1) + lagrangian(step) * bits
