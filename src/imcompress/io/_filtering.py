"""PNG's row filter, from the ahead-of-time build or from numba's JIT.

:mod:`._filters` is the one source of the kernel; ``setup.py`` also compiles
it ahead of time (:mod:`imcompress._aot`), so that writing a PNG does not
import numba (about 0.45 s of a command). Both builds write the same bytes
(integer arithmetic only; tested) and both release the GIL, so the writer's
bands run in threads on either. As for the quantizer's kernels
(:mod:`imcompress.kmeans._dispatch`), :func:`filter_rows` runs the
ahead-of-time build while numba is not imported and the build is there (not
stale, not switched off by ``IMCOMPRESS_AOT=0``), else the JIT dispatcher.

This module imports no numba; :mod:`._filters` is imported on the first JIT use.
"""

from __future__ import annotations

from .._aot import AotModule, Builds
from . import _filter_spec

__all__ = ["filter_rows", "filters_aot"]

_BUILDS = Builds(AotModule(f"{__package__}._filters_aot", _filter_spec.SOURCES), f"{__package__}._filters",
                 _filter_spec.EXPORTS)


def filters_aot() -> bool:
    """Whether :func:`filter_rows` runs on its ahead-of-time build now, without numba
    (the build is there and numba is not imported)."""
    return _BUILDS.uses_aot()


def filter_rows(rows, bpp, y0, y1, out) -> None:
    """:func:`imcompress.io._filters.filter_rows` on the build picked now (see the module notes).

    Arguments of other types than the compiled signature (``rows`` and ``out``
    C-contiguous 2-D uint8, integer ``bpp``, ``y0``, ``y1``) run on the JIT.
    """
    _BUILDS.current().filter_rows(rows, bpp, y0, y1, out)
