"""Shared fixtures: the bundled sample photo and the study's photo.

Under pytest-xdist, each worker gets its share of the cores for BLAS and
OpenMP thread pools (as scikit-learn's conftest does): two workers each
starting two OpenBLAS threads on two cores would oversubscribe them.
"""

import os
from pathlib import Path

import numpy as np
import pytest

import imcompress

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ELEPHANT = SHARED_DATA / "elephant.jpg"
KODAK = SHARED_DATA / "kodak"

_POOL_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        return  # not an xdist worker: use every core
    allowed = max((os.cpu_count() or 1) // int(workers), 1)
    # libraries loaded later, and subprocesses (the CLI tests), read these at start-up
    for name in _POOL_VARS:
        os.environ.setdefault(name, str(allowed))
    # libraries already loaded (NumPy's and SciPy's OpenBLAS) are limited in place
    import scipy.linalg  # noqa: F401 - load SciPy's BLAS now so the limit reaches it
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=allowed)


@pytest.fixture(scope="session")
def sample():
    """The bundled sample photo, (512, 512, 3) uint8."""
    return imcompress.sample_image()


@pytest.fixture(scope="session")
def elephant_path():
    if not ELEPHANT.exists():
        pytest.skip(f"study photo not found at {ELEPHANT} (../shared/data is absent)")
    return ELEPHANT


@pytest.fixture(scope="session")
def elephant(elephant_path):
    """The study's photo, (466, 700, 3) uint8."""
    return imcompress.load_image(elephant_path)


@pytest.fixture(scope="session")
def kodak_paths():
    paths = sorted(KODAK.glob("*.png")) if KODAK.is_dir() else []
    if not paths:
        pytest.skip(f"Kodak photos not found in {KODAK}")
    return paths


@pytest.fixture
def rng():
    return np.random.default_rng(0)
