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
from numba import njit

from .._errors import CorruptFileError, UsageError
from ._rangecoder import EG_CONTEXTS, max_decisions, model_new
from ._rangecoder import dec_bit, dec_expgolomb, dec_new, dec_overrun  # noqa: I001 - decoder half
from ._rangecoder import enc_bit, enc_expgolomb, enc_finish, enc_new  # encoder half
from ._streams import run_encoder

__all__ = ["encode_indices", "decode_indices"]

# model layout: 4 flag families x 64 contexts, then 16 Exp-Golomb sets
_FLAG_CONTEXTS = 64
_EG_BASE = 4 * _FLAG_CONTEXTS
_N_CONTEXTS = _EG_BASE + 16 * EG_CONTEXTS


@njit(cache=True)
def _neighbours(idx, y, x, width):
    if y == 0:
        if x == 0:
            return 0, 0, 0, 0
        left = idx[y, x - 1]
        return left, left, left, left
    up = idx[y - 1, x]
    left = idx[y, x - 1] if x > 0 else up
    upleft = idx[y - 1, x - 1] if x > 0 else up
    upright = idx[y - 1, x + 1] if x + 1 < width else up
    return left, up, upleft, upright


@njit(cache=True)
def _equalities(left, up, upleft, upright):
    e = 0
    if left == up:
        e |= 1
    if up == upleft:
        e |= 2
    if up == upright:
        e |= 4
    if left == upleft:
        e |= 8
    return e


@njit(cache=True)
def _distances(pal, left, up, dist):
    # squared distance of every entry to the mean of L and U, times 4 (integers)
    k, c = pal.shape
    for j in range(k):
        s = 0
        for ch in range(c):
            t = 2 * np.int64(pal[j, ch]) - np.int64(pal[left, ch]) - np.int64(pal[up, ch])
            s += t * t
        dist[j] = s


@njit(cache=True)
def _encode_kernel(out, idx, pal):
    h, w = idx.shape
    k = pal.shape[0]
    st = enc_new()
    model = model_new(_N_CONTEXTS)
    dist = np.empty(k, dtype=np.int64)
    prev = 0
    for y in range(h):
        for x in range(w):
            v = idx[y, x]
            left, up, upleft, upright = _neighbours(idx, y, x, w)
            e = _equalities(left, up, upleft, upright)
            c = e * 4 + prev
            if v == left:
                enc_bit(st, out, model, c, 1)
                prev = 1
                continue
            enc_bit(st, out, model, c, 0)
            if up != left:
                if v == up:
                    enc_bit(st, out, model, _FLAG_CONTEXTS + c, 1)
                    prev = 2
                    continue
                enc_bit(st, out, model, _FLAG_CONTEXTS + c, 0)
            if upright != left and upright != up:
                if v == upright:
                    enc_bit(st, out, model, 2 * _FLAG_CONTEXTS + c, 1)
                    prev = 3
                    continue
                enc_bit(st, out, model, 2 * _FLAG_CONTEXTS + c, 0)
            if upleft != left and upleft != up and upleft != upright:
                if v == upleft:
                    enc_bit(st, out, model, 3 * _FLAG_CONTEXTS + c, 1)
                    prev = 3
                    continue
                enc_bit(st, out, model, 3 * _FLAG_CONTEXTS + c, 0)
            prev = 0
            _distances(pal, left, up, dist)
            dv = dist[v]
            rank = 0
            for j in range(k):
                if j == v or j == left or j == up or j == upright or j == upleft:
                    continue
                if dist[j] < dv or (dist[j] == dv and j < v):
                    rank += 1
            enc_expgolomb(st, out, model, _EG_BASE + e * EG_CONTEXTS, rank)
    return enc_finish(st, out)


@njit(cache=True)
def _decode_kernel(data, pal, h, w):
    """Returns (indices, status): 0 ok, 1 invalid rank, 2 stream overrun."""
    k = pal.shape[0]
    idx = np.zeros((h, w), dtype=np.uint8)
    st = dec_new(data)
    model = model_new(_N_CONTEXTS)
    dist = np.empty(k, dtype=np.int64)
    used = np.zeros(k, dtype=np.uint8)
    prev = 0
    for y in range(h):
        for x in range(w):
            left, up, upleft, upright = _neighbours(idx, y, x, w)
            e = _equalities(left, up, upleft, upright)
            c = e * 4 + prev
            if dec_bit(st, data, model, c) == 1:
                idx[y, x] = left
                prev = 1
                continue
            if up != left:
                if dec_bit(st, data, model, _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = up
                    prev = 2
                    continue
            if upright != left and upright != up:
                if dec_bit(st, data, model, 2 * _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = upright
                    prev = 3
                    continue
            if upleft != left and upleft != up and upleft != upright:
                if dec_bit(st, data, model, 3 * _FLAG_CONTEXTS + c) == 1:
                    idx[y, x] = upleft
                    prev = 3
                    continue
            prev = 0
            rank = dec_expgolomb(st, data, model, _EG_BASE + e * EG_CONTEXTS)
            if rank < 0 or rank >= k:
                return idx, 1
            _distances(pal, left, up, dist)
            # the rank-th smallest (distance, index) among the entries not
            # already excluded by the flags: select by repeated minimum
            for j in range(k):
                used[j] = 0
            used[left] = 1
            used[up] = 1
            used[upright] = 1
            used[upleft] = 1
            found = -1
            for _ in range(rank + 1):
                best = -1
                for j in range(k):
                    if used[j] == 0 and (best < 0 or dist[j] < dist[best]):
                        best = j
                if best < 0:
                    return idx, 1
                used[best] = 1
                found = best
            idx[y, x] = found
        if dec_overrun(st) > 8:
            return idx, 2
    if dec_overrun(st) > 0:
        return idx, 2
    return idx, 0


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
    return run_encoder(_encode_kernel, idx, pal, capacity=idx.size + 1024)


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
    idx, status = _decode_kernel(arr, pal, int(height), int(width))
    if status == 1:
        raise CorruptFileError("index plane is damaged: a palette rank is out of range")
    if status == 2:
        raise CorruptFileError("index plane is truncated or damaged")
    return idx
