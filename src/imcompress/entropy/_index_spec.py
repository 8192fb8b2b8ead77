"""What the palette-index coder's kernels (:mod:`._index_kernels`) take, as data that needs no numba.

``setup.py`` compiles :data:`EXPORTS` ahead of time with these signatures
(:func:`imcompress._aot.build`); :mod:`._indices` checks every call into that
build against them.
"""

from __future__ import annotations

__all__ = ["EXPORTS", "SOURCES"]

#: name -> (numba return type, argument types): the output buffer, the (H, W)
#: indices or the stream, the palette as (4, K) float32 channel rows.
EXPORTS = {
    "_encode_kernel": ("i8", ("u1[::1]", "u1[:, ::1]", "f4[:, ::1]")),
    "_decode_kernel": ("Tuple((u1[:, ::1], i8))", ("u1[::1]", "f4[:, ::1]", "i8", "i8")),
}

#: The files of this package a build is checked against: the kernels and the
#: coder primitives they are compiled with.
SOURCES = ("_index_kernels.py", "_index_spec.py", "_rangecoder.py", "_queued.py")

