"""Parsing the lists a user gives the study: K values and variance thresholds."""

from __future__ import annotations

import math
import re

from .._errors import UsageError

__all__ = ["parse_ks", "parse_variances"]


_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def parse_ks(text) -> list:
    """Parse a list of K: ``"2..20"``, ``"2..20:2"`` (step 2), ``"2,4,6"`` or a mix.

    Returns the sorted distinct values. Raises :class:`UsageError` for bad
    syntax, empty ranges and K < 2 (the upper bound depends on the image and
    is checked by :func:`study`).

    Examples
    --------
    >>> parse_ks("2..10:4,16")
    [2, 6, 10, 16]
    """
    if not isinstance(text, str):
        values = [int(k) for k in text]
    else:
        values = []
        for part in text.split(","):
            if not part.strip():
                continue
            m = _RANGE.match(part)
            if m:
                lo, hi, step = int(m[1]), int(m[2]), int(m[3] or 1)
                if step < 1 or hi < lo:
                    raise UsageError(f"ks range {part.strip()!r} is empty; write it as LOW..HIGH[:STEP]")
                values.extend(range(lo, hi + 1, step))
            elif part.strip().lstrip("-").isdigit():
                values.append(int(part))
            else:
                raise UsageError(
                    f"ks={text!r}: cannot read {part.strip()!r}; use a list like 2,4,6 or a range like 2..20:2"
                )
    if not values:
        raise UsageError("ks is empty; give at least one K, e.g. 2..20:2")
    bad = [k for k in values if k < 2]
    if bad:
        raise UsageError(f"K={bad[0]} should be >= 2 (a palette needs at least 2 colours)")
    return sorted(set(values))


def parse_variances(text) -> list:
    """Parse explained-variance thresholds, e.g. ``"0.9,0.95"``; each in (0, 1]."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UsageError(f"variances={text!r} should be numbers in (0, 1], e.g. 0.9,0.95") from None
    else:
        values = [float(v) for v in text]
    if not values:
        raise UsageError("variances is empty; give at least one threshold, e.g. 0.9,0.95")
    for v in values:
        if not (0.0 < v <= 1.0) or math.isnan(v):
            raise UsageError(f"variance={v} should be in (0, 1]")
    return sorted(set(values))
