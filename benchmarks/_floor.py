"""The start-up floor of any numba-using command: import numpy and numba, then call one
cached kernel (numba initialises its compiler context on the first call, which also
imports scipy.linalg for its BLAS check). benchmarks/e2e.py runs this as a process."""

import numba
import numpy as np


@numba.njit(cache=True)
def _one(x):
    return x + 1.0


_one(np.float64(1.0))
