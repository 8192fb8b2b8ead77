"""The palette-index coder: an (H, W) plane of palette indices, entropy coded.

Shared by every codec that stores indices into a small table of values: the
``kmeans`` codec's colour indices and the ``pca-rows`` codec's alpha plane.
A small context model on the binary range coder (:mod:`._rangecoder`); see
docs/FORMAT.md for the exact model, which another program must follow bit for
bit to decode.

Model, per pixel in raster order, with neighbours L (left), U (up), UL, UR:

1. flag "same as L", context = 4 neighbour equalities x how the previous
   pixel was coded;
2. if U differs from L: flag "same as U" (same context scheme, own models);
3. if UR differs from both: flag "same as UR"; then likewise UL;
4. otherwise the *rank* of the value among the remaining palette entries
   sorted by squared distance to the mean of L and U (ties by index), with
   an adaptive Exp-Golomb code whose models are chosen by the neighbour
   equalities. Photos put the true colour near that mean, so ranks are small.
"""

from __future__ import annotations

import numpy as np

from .._aot import AotModule, Builds
from .._errors import CorruptFileError, UsageError
from . import _index_spec
from ._bounds import max_decisions, run_encoder

__all__ = ["encode_indices", "decode_indices", "indices_aot"]

#: The coder's kernels compiled ahead of time while numba is not imported and
#: that build is there, else numba's (the same streams, bit for bit).
_BUILDS = Builds(AotModule(f"{__package__}._index_aot", _index_spec.SOURCES), f"{__package__}._index_kernels",
                 _index_spec.EXPORTS)


def indices_aot() -> bool:
    """Whether :func:`encode_indices` and :func:`decode_indices` run on their
    ahead-of-time build now, without numba (the build is there and numba is not imported)."""
    return _BUILDS.uses_aot()


def _channel_rows(pal):
    """The (K, C) uint8 palette as the (4, K) float32 rows the kernels read."""
    rows = np.zeros((4, pal.shape[0]), dtype=np.float32)
    rows[: pal.shape[1]] = pal.T
    return rows


def encode_indices(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """Entropy-code an (H, W) index plane against its (K, C) uint8 palette.

    Examples
    --------
    >>> import numpy as np
    >>> pal = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    >>> idx = (np.arange(64).reshape(8, 8) % 2).astype(np.uint8)
    >>> bool((decode_indices(encode_indices(idx, pal), pal, 8, 8) == idx).all())
    True
    """
    idx = np.ascontiguousarray(indices, dtype=np.uint8)
    pal = np.ascontiguousarray(palette, dtype=np.uint8)
    if idx.ndim != 2 or idx.size == 0:
        raise UsageError(f"indices of shape {idx.shape} should be a non-empty (H, W) array")
    if int(idx.max()) >= pal.shape[0]:
        raise UsageError(f"index {int(idx.max())} is outside the palette of {pal.shape[0]} colours")
    # room for 8 bits per pixel: photos at K = 256 take about 5, and a buffer too
    # small runs the whole encoder again (np.empty: untouched pages cost no memory)
    return run_encoder(_BUILDS.current()._encode_kernel, idx, _channel_rows(pal), capacity=idx.size + 1024)


def decode_indices(data: bytes, palette: np.ndarray, height: int, width: int) -> np.ndarray:
    """Decode an index plane written by :func:`encode_indices`."""
    pal = np.ascontiguousarray(palette, dtype=np.uint8)
    arr = np.frombuffer(bytes(data), dtype=np.uint8)
    # every pixel costs at least one adaptive binary decision: refuse
    # impossible sizes before allocating the plane
    if int(height) * int(width) > max_decisions(arr.size):
        raise CorruptFileError(
            f"index plane of {arr.size} bytes is too short for {height}x{width} pixels"
        )
    idx, status = _BUILDS.current()._decode_kernel(arr, _channel_rows(pal), int(height), int(width))
    if status == 1:
        raise CorruptFileError("index plane is damaged: a palette rank is out of range")
    if status == 2:
        raise CorruptFileError("index plane is truncated or damaged")
    return idx
