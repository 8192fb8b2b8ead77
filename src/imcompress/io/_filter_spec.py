"""What PNG's row-filter kernel (:mod:`._filters`) takes, as data that needs no numba.

``setup.py`` compiles :data:`EXPORTS` ahead of time with these signatures
(:func:`imcompress._aot.build`); :mod:`._filtering` checks every call into that
build against them.
"""

from __future__ import annotations

__all__ = ["EXPORTS", "SOURCES"]

#: name -> (numba return type, argument types): the (H, N) uint8 rows (an RGB(A)
#: image's rows as a C-contiguous view, or freshly packed palette indices), the
#: bytes per pixel, the first and the end row, and the (H, N + 1) filtered
#: scanlines (the writer's buffer, or a band of its rows: C-contiguous either way).
EXPORTS = {
    "filter_rows": ("void", ("u1[:, ::1]", "i8", "i8", "i8", "u1[:, ::1]")),
}

#: The files of this package a build is checked against.
SOURCES = ("_filters.py", "_filter_spec.py")
