"""The quantizer's kernels, from the ahead-of-time build or from numba's JIT.

:mod:`._kernels` is the one source of the kernels. ``setup.py`` also compiles
them ahead of time (:mod:`imcompress._aot`); that build loads in about a
millisecond without importing numba, where numba's import, set-up and cached
kernels cost a process about 0.5 s. Both compute the same values bit for bit
(sequential IEEE float64, no fastmath; tested) and both release the GIL, so
Lloyd's threads and the side-by-side restarts run on either. Fitted in-process
with the same threads, the compiled build (generic x86-64 code) took the CPU
time of the host-tuned JIT within -18 % .. +11 % from 0.3 to 12 MP, at most
0.15 CPU-s more, against the 0.57 CPU-s of numba's start-up it saves
(``benchmarks/e2e.py --sections aot``, 2026-12-01 23:58 UTC, under load 3.8-4.4),
so there is no image size from which the JIT would pay for its start-up.
:func:`kernels` picks:

* the ahead-of-time build while numba is not imported (a command, a script
  that quantizes);
* the JIT dispatchers once numba is imported (a process that runs other
  numba kernels or a batch worker that warmed them up has paid for it), or
  when the build is absent, stale or switched off (``IMCOMPRESS_AOT=0``).

This module imports no numba; :mod:`._kernels` is imported on the first JIT use.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .._aot import AotModule, Builds
from . import _kernel_spec

__all__ = ["Kernels", "aot_reason", "kernels", "uses_aot"]

_forced = None  # "aot" / "jit" inside forced()


class Kernels:
    """One build of the kernels, with the kernel names of :mod:`._kernels` as attributes.

    Attributes
    ----------
    name : {"aot", "jit"}
    """

    def __init__(self, name, funcs):
        self.name = name
        for key, func in funcs.items():
            setattr(self, key, func)

    def __repr__(self):
        return f"<Kernels {self.name}>"

    def neighbour_geometry(self, C):
        """Centre-centre distances, each row's neighbour order, and half the nearest gap.

        Sorts all rows at once with NumPy; centres at equal distances may come
        in another order than a stable sort's: every search over the order
        breaks ties by index, so its results never depend on that (the whole
        matrix sorted by NumPy takes about a quarter of the time of a stable
        sort per row in numba at K = 256).
        """
        cc = self.center_distances(np.ascontiguousarray(C, dtype=np.float64))
        k = cc.shape[0]
        key = cc.copy()
        np.fill_diagonal(key, -1.0)
        order = np.ascontiguousarray(np.argsort(key, axis=1), dtype=np.int64)
        half = 0.5 * cc[np.arange(k), order[:, 1]] if k > 1 else np.full(k, np.inf)
        return cc, order, half

    def nearest(self, X, C, guess):
        """Index of the nearest centre of every row of X (lowest index on ties), and its squared distance."""
        cc, order, _ = self.neighbour_geometry(C)
        return self._nearest_all(X, C, guess, cc, order)

    def nearest_bounded(self, X, C, guess, upper, lower, moved):
        """:meth:`nearest`'s labels, from bounds that prove most points' guess (see ``_kernels._nearest_bounded``)."""
        cc, order, _ = self.neighbour_geometry(C)
        return self._nearest_bounded(X, C, guess, upper, lower, moved, cc, order)


#: The two builds (:class:`imcompress._aot.Builds`), each made a :class:`Kernels`.
_BUILDS = Builds(AotModule(f"{__package__}._kernels_aot", _kernel_spec.SOURCES), f"{__package__}._kernels",
                 _kernel_spec.EXPORTS, make=Kernels)


def _jit() -> Kernels:
    return _BUILDS.jit()


def _aot() -> Kernels | None:
    return _BUILDS.compiled()


def aot_reason() -> str | None:
    """Why the ahead-of-time build is not available (None when it is)."""
    return _BUILDS.aot.reason


def uses_aot() -> bool:
    """Whether :func:`kernels` gives the ahead-of-time build now (see the module notes)."""
    if _forced is not None:
        return _forced == "aot"
    return _BUILDS.uses_aot()


def kernels() -> Kernels:
    """The build of the kernels for a fit starting now (see the module notes)."""
    return (_aot() or _jit()) if uses_aot() else _jit()


@contextmanager
def forced(name):
    """Every :func:`kernels` inside gives build ``name`` ("aot" or "jit"); for tests and benchmarks.

    Raises RuntimeError for "aot" when that build is not available.
    """
    global _forced
    if name == "aot" and _aot() is None:
        raise RuntimeError(f"the ahead-of-time kernels are not available: {aot_reason()}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous
