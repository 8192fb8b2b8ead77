"""Shared fixtures: the bundled sample photo and the study's photo."""

from pathlib import Path

import numpy as np
import pytest

import imcompress

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ELEPHANT = SHARED_DATA / "elephant.jpg"
KODAK = SHARED_DATA / "kodak"


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
