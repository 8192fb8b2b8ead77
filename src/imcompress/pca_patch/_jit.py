"""How the codec's innermost numba kernels are compiled.

A kernel that allocates nothing is compiled without numba's reference counting
(NRT): otherwise every array it is passed, and every view it takes, costs an
atomic increment and decrement per call, which was a third of the encoder
search's time (the kernels run millions of times on a photo). Such a kernel
must not allocate, return or keep an array: numba refuses to compile one that
does. The arithmetic is the same, so are the results.
"""

from __future__ import annotations

from numba import njit

__all__ = ["noalloc"]

#: Decorator of the kernels that allocate nothing (``njit(cache=True)`` without reference counting).
noalloc = njit(cache=True, _nrt=False)
