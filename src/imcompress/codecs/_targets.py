"""Targets instead of knobs: the smallest file reaching a PSNR, the best file within a size.

Every method names one *rate parameter* whose candidate values are ordered so
that file size and quality both grow along the list (K for kmeans, the number
of components for pca-rows, the quality for pca-patch). :func:`search_target`
bisects that list. Monotonicity is assumed for the search only: the result is
always one that was actually encoded, decoded and measured, so it meets the
target whatever the curve does between the probed points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .._errors import QualityError, UsageError

__all__ = ["Trial", "TargetResult", "search_target"]


@dataclass
class Trial:
    """One encoded candidate.

    Attributes
    ----------
    value : object
        The rate-parameter value.
    data : bytes
        The complete file.
    psnr : float
        PSNR in dB of the decoded file against the original.
    extra : object
        Anything the encoder wants to keep (e.g. the decoded pixels).
    """

    value: Any
    data: bytes = field(repr=False)
    psnr: float
    extra: Any = field(default=None, repr=False)

    @property
    def bytes(self) -> int:
        return len(self.data)


@dataclass
class TargetResult:
    """Result of :func:`search_target`.

    Attributes
    ----------
    trial : Trial
        The chosen candidate.
    met : bool
        False only with ``best_effort=True`` when no candidate met the target.
    trials : list of Trial
        Every candidate encoded, in the order probed.
    """

    trial: Trial
    met: bool
    trials: list


def _check_targets(target_psnr, max_bytes):
    if target_psnr is None and max_bytes is None:
        raise UsageError("give target_psnr= and/or max_bytes=")
    if target_psnr is not None and not (0.0 < float(target_psnr) < 200.0):
        raise UsageError(f"target_psnr={target_psnr} should be in (0, 200) dB")
    if max_bytes is not None and int(max_bytes) < 1:
        raise UsageError(f"max_bytes={max_bytes} should be >= 1")


def search_target(
    encode_at: Callable[[Any], Trial],
    candidates: Sequence,
    *,
    target_psnr: float | None = None,
    max_bytes: int | None = None,
    best_effort: bool = False,
) -> TargetResult:
    """Find the candidate meeting a PSNR and/or size target, by bisection.

    Parameters
    ----------
    encode_at : callable
        ``encode_at(value) -> Trial``: encode with the rate parameter at
        ``value``, decode, measure.
    candidates : sequence
        Rate-parameter values, smallest file (lowest quality) first.
    target_psnr : float, optional
        Reach at least this PSNR (dB) with the smallest file.
    max_bytes : int, optional
        Stay within this many bytes with the best PSNR.
    best_effort : bool, default=False
        When the target cannot be met, return the closest candidate (the best
        quality for ``target_psnr``, the smallest file for ``max_bytes``)
        instead of raising.

    Returns
    -------
    TargetResult

    Raises
    ------
    QualityError
        No candidate meets the target(s) and ``best_effort`` is false.

    Examples
    --------
    >>> table = {1: (10, 20.0), 2: (20, 30.0), 3: (40, 40.0)}
    >>> def enc(v):
    ...     n, p = table[v]
    ...     return Trial(v, b"x" * n, p)
    >>> search_target(enc, [1, 2, 3], target_psnr=25).trial.value
    2
    >>> search_target(enc, [1, 2, 3], max_bytes=39).trial.value
    2
    """
    _check_targets(target_psnr, max_bytes)
    candidates = list(candidates)
    if not candidates:
        raise UsageError("no candidate values to search")
    cache: dict[int, Trial] = {}
    order: list[Trial] = []

    def probe(i: int) -> Trial:
        if i not in cache:
            trial = encode_at(candidates[i])
            cache[i] = trial
            order.append(trial)
        return cache[i]

    def psnr_ok(t: Trial) -> bool:
        return target_psnr is None or t.psnr >= target_psnr

    def bytes_ok(t: Trial) -> bool:
        return max_bytes is None or t.bytes <= max_bytes

    n = len(candidates)
    # first index meeting the PSNR target (quality grows along the list)
    first_psnr = 0
    if target_psnr is not None:
        # if any candidate meets the target, the first one is <= hi
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if psnr_ok(probe(mid)):
                hi = mid
            else:
                lo = mid + 1
        first_psnr = hi if psnr_ok(probe(hi)) else n
    # last index within the byte budget (size grows along the list)
    if max_bytes is not None and first_psnr < n:
        start = first_psnr
        if bytes_ok(probe(start)):
            lo, hi = start, n - 1  # invariant: candidates[lo] fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if bytes_ok(probe(mid)):
                    lo = mid
                else:
                    hi = mid - 1

    feasible = [t for t in order if psnr_ok(t) and bytes_ok(t)]
    if feasible:
        if target_psnr is not None:
            best = min(feasible, key=lambda t: (t.bytes, -t.psnr))
        else:
            best = max(feasible, key=lambda t: (t.psnr, -t.bytes))
        return TargetResult(trial=best, met=True, trials=order)

    what = []
    if target_psnr is not None:
        what.append(f"PSNR >= {target_psnr:g} dB")
    if max_bytes is not None:
        what.append(f"size <= {max_bytes} bytes")
    if not best_effort:
        best_psnr = max(t.psnr for t in order)
        smallest = min(t.bytes for t in order)
        raise QualityError(
            f"cannot reach {' and '.join(what)}: the best PSNR found is {best_psnr:.2f} dB "
            f"and the smallest file {smallest} bytes; relax the target or pass best_effort=True"
        )
    if max_bytes is not None and (target_psnr is None or first_psnr < n):
        best = min(order, key=lambda t: (t.bytes, -t.psnr))
    else:
        best = max(order, key=lambda t: (t.psnr, -t.bytes))
    return TargetResult(trial=best, met=False, trials=order)
