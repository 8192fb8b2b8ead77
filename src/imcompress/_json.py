"""JSON-safe conversion shared by the CLI's ``--json`` output and the report."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["json_safe"]


def json_safe(value):
    """Replace NaN and infinities by None and NumPy scalars by Python ones, recursively.

    JSON has no NaN or infinity; ``json.dumps`` would write invalid JSON.

    Examples
    --------
    >>> json_safe({"psnr": float("inf"), "k": np.int64(3), "v": np.array([0.5])})
    {'psnr': None, 'k': 3, 'v': [0.5]}
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value
