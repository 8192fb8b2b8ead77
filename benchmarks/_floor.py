"""The start-up floor of any numba-using command: import numpy and numba, then call one
cached kernel (numba initialises its compiler context on the first call, which also
imports scipy.linalg for its BLAS check and cffi). benchmarks/e2e.py runs this as a process.

``python benchmarks/_floor.py --lean`` imports and sets numba up the way the imcompress
command does first (``imcompress.cli._startup.import_numba`` and ``set_up_numba``: without
the scipy, PyYAML, scipy.linalg and cffi imports, which its kernels do not need); that
imports the light ``imcompress`` package too.

Both end with ``os._exit`` after flushing, as the imcompress console script does
(``imcompress.cli.run``): the interpreter's teardown with numba loaded costs about
0.2 s and is avoidable, so it is not part of the floor.
"""

import os
import sys

if "--lean" in sys.argv[1:]:
    from imcompress.cli._startup import import_numba, set_up_numba

    import_numba()
    set_up_numba()

import numba
import numpy as np


@numba.njit(cache=True)
def _one(x):
    return x + 1.0


_one(np.float64(1.0))
sys.stdout.flush()
os._exit(0)
