"""How many threads one call may use (the K-means assignment step, PNG compression)."""

from __future__ import annotations

import os

__all__ = ["max_threads"]


def max_threads() -> int:
    """The CPUs this process may run on, capped by ``IMCOMPRESS_NUM_THREADS`` when set.

    Results never depend on it: every threaded step in imcompress gives the
    same bytes with one thread or many (each says how).
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    cap = os.environ.get("IMCOMPRESS_NUM_THREADS", "").strip()
    if cap.isdigit() and int(cap) >= 1:
        n = min(n, int(cap))
    return max(1, n)
