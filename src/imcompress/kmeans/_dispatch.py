"""The quantizer's kernels, from the ahead-of-time build or from numba's JIT.

:mod:`._kernels` is the one source of the kernels. ``setup.py`` also compiles
them ahead of time (:mod:`imcompress._aot`); that build loads in about a
millisecond without importing numba, where numba's import, set-up and cached
kernels cost a process about 0.5 s, but its calls hold the GIL. Both compute
the same values bit for bit (sequential IEEE float64, no fastmath; tested).
:func:`kernels_for` picks one build for a whole fit:

* the ahead-of-time build for images up to :data:`AOT_MAX_PIXELS` pixels,
  whose fit runs on one thread (Lloyd's steps use threads only from
  ``_lloyd.THREAD_MIN_POINTS`` distinct colours on, and the k-means++
  restarts run side by side only below them);
* the JIT dispatchers for larger images, where Lloyd's threads over nogil
  kernels pay for numba's start-up, and whenever numba is imported already
  (a long-running process, a batch worker whose threads run fits at once).

This module imports no numba; :mod:`._kernels` is imported on the first JIT use.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager

import numpy as np

from .._aot import AotModule
from . import _kernel_spec

__all__ = ["AOT_MAX_PIXELS", "Kernels", "aot_reason", "kernels_for", "uses_aot"]

#: Images up to this many pixels are fitted with the ahead-of-time kernels
#: (when that build is there and numba is not imported).
AOT_MAX_PIXELS = 4_000_000

_AOT = AotModule(f"{__package__}._kernels_aot", _kernel_spec.SOURCES)
_forced = None  # "aot" / "jit" inside forced()

_DTYPES = {"f8": np.float64, "i8": np.int64, "i4": np.int32, "u4": np.uint32, "u1": np.uint8}
_SCALARS = {"f8": float, "i8": int, "b1": bool}


def _to_jit(name, args):
    return getattr(_jit(), name)(*args)


def _checked(name, func):
    """``func`` (compiled ahead of time) behind a check of its arguments.

    A compiled function reads whatever memory it is given, so an argument that
    is not exactly the declared C-contiguous array (or a scalar that does not
    convert) goes to the JIT dispatcher instead, which accepts any layout; the
    callers pass the declared types, so this never happens in a fit (tested).
    Read-only arrays pass: the kernels write only into arrays their callers
    allocated for them.
    """
    specs = []
    for text in _kernel_spec.EXPORTS[name][1]:
        code, _, dims = text.partition("[")
        specs.append((_SCALARS[code], None, 0) if not dims else (None, _DTYPES[code], dims.count(",") + 1))

    def call(*args):
        if len(args) != len(specs):
            return _to_jit(name, args)
        fixed = []
        for a, (scalar, dtype, ndim) in zip(args, specs):
            if scalar is not None:
                if isinstance(a, np.ndarray):
                    return _to_jit(name, args)
                fixed.append(scalar(a))
            elif type(a) is np.ndarray and a.dtype == dtype and a.ndim == ndim and a.flags.c_contiguous:
                fixed.append(a)
            else:
                return _to_jit(name, args)
        return func(*fixed)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The ahead-of-time build of :func:`._kernels.{name}` (arguments checked)."
    return call


class Kernels:
    """One build of the kernels, with the kernel names of :mod:`._kernels` as attributes.

    Attributes
    ----------
    holds_gil : bool
        True for the ahead-of-time build: its calls hold the GIL, so running
        them in threads gains nothing (the callers then use one thread).
    name : {"aot", "jit"}
    """

    def __init__(self, name, funcs, holds_gil):
        self.name = name
        self.holds_gil = holds_gil
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


_JIT = None
_AOT_KERNELS = None


def _jit() -> Kernels:
    global _JIT
    if _JIT is None:
        mod = importlib.import_module(f"{__package__}._kernels")
        _JIT = Kernels("jit", {name: getattr(mod, name) for name in _kernel_spec.EXPORTS}, holds_gil=False)
    return _JIT


def _aot() -> Kernels | None:
    global _AOT_KERNELS
    if _AOT_KERNELS is None:
        module = _AOT.load()
        if module is None:
            return None
        funcs = {name: _checked(name, getattr(module, name)) for name in _kernel_spec.EXPORTS}
        _AOT_KERNELS = Kernels("aot", funcs, holds_gil=True)
    return _AOT_KERNELS


def aot_reason() -> str | None:
    """Why the ahead-of-time build is not available (None when it is)."""
    return _AOT.reason


def _numba_imported() -> bool:
    return "numba" in sys.modules


def uses_aot(n_pixels) -> bool:
    """Whether :func:`kernels_for` gives the ahead-of-time build for an image of ``n_pixels``.

    ``n_pixels`` None (not known yet) is answered as for a large image.
    """
    if _forced is not None:
        return _forced == "aot"
    if n_pixels is None or n_pixels > AOT_MAX_PIXELS or _numba_imported():
        return False
    return _AOT.load() is not None


def kernels_for(n_pixels) -> Kernels:
    """The build of the kernels for a fit on an image of ``n_pixels`` pixels (see the module notes)."""
    if uses_aot(n_pixels):
        aot = _aot()
        if aot is not None:
            return aot
    return _jit()


@contextmanager
def forced(name):
    """Every :func:`kernels_for` inside gives build ``name`` ("aot" or "jit"); for tests and benchmarks.

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
