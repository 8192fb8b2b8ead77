"""What the kernels of :mod:`._kernels` take, as data that needs no numba.

``setup.py`` compiles the :data:`EXPORTS` ahead of time with these signatures
(:func:`imcompress._aot.build`); :mod:`._dispatch` checks every call into that
build against them, since a compiled function trusts the types it is given.
"""

from __future__ import annotations

__all__ = ["EXPORTS", "N_CAND", "SOURCES"]

#: Candidate centres remembered per point, each with its own lower bound (4 measured
#: 7-23 % faster than 8 on the study photo and kodim05 at K = 16..256, same labels).
N_CAND = 4

_F2 = "f8[:, ::1]"  # C-contiguous float64 points / centres
_F1 = "f8[::1]"
_I2 = "i8[:, ::1]"
_I1 = "i8[::1]"  # int64 labels
_TABLE = "Tuple((u4[::1], i8[::1], i4[::1]))"

#: The kernels compiled ahead of time: name -> (numba return type, argument types).
EXPORTS = {
    "center_distances": (_F2, (_F2,)),
    "_nearest_all": (f"Tuple(({_I1}, {_F1}))", (_F2, _F2, _I1, _F2, _I2)),
    "_nearest_bounded": (_I1, (_F2, _F2, _I1, _F1, _F1, _F1, _F2, _I2)),
    "nearest_brute": (_I1, (_F2, _F2)),
    "kmeanspp": (f"Tuple(({_F2}, {_I1}))", (_F2, _F1, "i8", _F2, _F2)),
    "half_gaps": (_F1, (_F2,)),
    "half_gaps_near": (_F1, (_F2, _F2, _I2, "f8")),
    "lloyd_assign": ("i8", (_F2, _F1, _F2, _I1, _F1, _F1, _I2, _F2, _F1, "f8", _F1, _F2, _I2, "f8", "f8", "b1",
                            "i8", "i8", _F2, _F1)),
    "lloyd_update": ("UniTuple(f8, 2)", (_F2, _F1, _F2, _I1, _F1, _F1, _F2, _F2, _F1, _F1, "i8", "b1")),
    "weighted_inertia": ("f8", (_F2, _F1, _F2, _I1)),
    "weighted_means": (f"Tuple(({_F2}, {_F1}))", (_F2, _F1, _I1, "i8")),
    "rgb_table": (_TABLE, ("u1[:, ::1]",)),
    "packed_table": (_TABLE, ("u1[:, ::1]",)),
}

#: The files of this package an ahead-of-time build is checked against.
SOURCES = ("_kernels.py", "_kernel_spec.py")

