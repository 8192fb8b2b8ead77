"""Colour transform, chroma resampling, patches, and the learned patch basis.

Everything the decoder computes from the file is done here with elementwise
float64 NumPy operations or fixed-order numba loops (no BLAS reductions), so a
decoder reproduces bit for bit what the encoder assumed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import to_uint8

__all__ = [
    "rgb_to_ycbcr",
    "ycbcr_plane",
    "ycbcr_to_rgb",
    "ycbcr_rows_to_rgb",
    "alpha_rows_to_uint8",
    "downsample2",
    "upsample2",
    "to_patches",
    "from_patches",
    "dct_1d",
    "dct_matrix",
    "dct_freq",
    "learn_basis",
    "quantize_basis",
    "decode_basis",
]

# JPEG (ITU-T T.871) full-range YCbCr, centred on 0 (128 subtracted).
_RGB2YCC = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735891647856, -0.331264108352144, 0.5],
        [0.5, -0.418687589158345, -0.081312410841655],
    ]
)
#: Values on a 2**-40 grid, so decoders agree bit for bit whatever
#: LAPACK or libm computed before rounding (errors ~1e-16 << 2**-41).
_GRID = 2.0**40
_YCC2RGB = np.rint(np.linalg.inv(_RGB2YCC) * _GRID) / _GRID


def rgb_to_ycbcr(rgb: np.ndarray) -> list:
    """(H, W, 3) uint8 RGB -> list of three float64 planes Y, Cb, Cr around 0."""
    return [ycbcr_plane(rgb, i) for i in range(3)]


def ycbcr_plane(rgb: np.ndarray, i: int) -> np.ndarray:
    """Plane ``i`` (0 Y, 1 Cb, 2 Cr) of :func:`rgb_to_ycbcr`, float64, from (H, W, >= 3) uint8."""
    m = _RGB2YCC
    out = np.empty(rgb.shape[:2], dtype=np.float64)
    _ycc_rows(rgb, m[i, 0], m[i, 1], m[i, 2], out)
    return out


@njit(cache=True, nogil=True)
def _ycc_rows(rgb, m0, m1, m2, out):
    # (m0 x0 + m1 x1) + m2 x2 with x = value - 128, in this order: the same
    # float64 operations as NumPy's elementwise expression on whole planes
    h, w = out.shape
    for y in range(h):
        for x in range(w):
            a = m0 * (np.float64(rgb[y, x, 0]) - 128.0)
            b = m1 * (np.float64(rgb[y, x, 1]) - 128.0)
            c = m2 * (np.float64(rgb[y, x, 2]) - 128.0)
            out[y, x] = (a + b) + c


def ycbcr_to_rgb(planes) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: three float64 planes -> (H, W, 3) uint8."""
    y, cb, cr = (np.asarray(p, dtype=np.float64) for p in planes)
    out = np.empty(y.shape + (3,), dtype=np.float64)
    _rgb_rows(y.reshape(-1, y.shape[-1]), cb.reshape(-1, y.shape[-1]), cr.reshape(-1, y.shape[-1]), _YCC2RGB,
              out.reshape(-1, y.shape[-1], 3))
    return to_uint8(out)


@njit(cache=True, nogil=True)
def _rgb_rows(y, cb, cr, m, out):
    # ((m0 y + m1 cb) + m2 cr) + 128, the order of the elementwise NumPy expression
    for r in range(y.shape[0]):
        for x in range(y.shape[1]):
            for i in range(3):
                out[r, x, i] = ((m[i, 0] * y[r, x] + m[i, 1] * cb[r, x]) + m[i, 2] * cr[r, x]) + 128.0


@njit(cache=True, nogil=True)
def ycbcr_rows_to_rgb(y, cb, cr, y0, c0, ch, sub, m, out):
    """Image rows ``y0 .. y0 + len(out)`` of :func:`ycbcr_to_rgb` as uint8, chroma upsampled
    (:func:`upsample2`) on the fly when ``sub``.

    ``out``: (n, W, >= 3) uint8, channels 0..2 written; ``y``: those rows of
    the luma plane; ``cb``, ``cr``: with ``sub``, rows ``c0 ..`` of the
    ``ch``-row chroma planes (every row the upsampling reads), else the same
    rows as ``y``. Inputs may be wider than ``W`` (padding is ignored); ``m``
    is :data:`_YCC2RGB`.

    Each sample is made by the float64 operations of the whole-plane steps in
    their order (:func:`_up_rows`, :func:`_rgb_rows`), then rounded half to
    even and clipped to 0..255 as ``to_uint8`` does (inputs here are finite):
    the same pixels, without a float64 image.
    """
    n, w = out.shape[0], out.shape[1]
    cw = (w + 1) // 2 if sub else w
    rb = np.empty(cw)
    rr = np.empty(cw)
    for r in range(n):
        if sub:
            i = y0 + r
            k = i >> 1
            o = max(k - 1, 0) if i & 1 == 0 else min(k + 1, ch - 1)
            for x in range(cw):
                rb[x] = 0.75 * cb[k - c0, x] + 0.25 * cb[o - c0, x]
                rr[x] = 0.75 * cr[k - c0, x] + 0.25 * cr[o - c0, x]
        for j in range(w):
            if sub:
                k = j >> 1
                o = max(k - 1, 0) if j & 1 == 0 else min(k + 1, cw - 1)
                b = 0.75 * rb[k] + 0.25 * rb[o]
                c = 0.75 * rr[k] + 0.25 * rr[o]
            else:
                b = cb[r, j]
                c = cr[r, j]
            v = y[r, j]
            for t in range(3):
                q = np.rint(((m[t, 0] * v + m[t, 1] * b) + m[t, 2] * c) + 128.0)
                out[r, j, t] = np.uint8(min(max(q, 0.0), 255.0))


@njit(cache=True, nogil=True)
def alpha_rows_to_uint8(a, out):
    """``to_uint8(a + 128.0)`` into channel 3 of ``out`` (n, W, 4) uint8; ``a`` may be wider."""
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            q = np.rint(a[r, j] + 128.0)
            out[r, j, 3] = np.uint8(min(max(q, 0.0), 255.0))


def downsample2(plane: np.ndarray) -> np.ndarray:
    """2x2 box average (edge replicated for odd sides): (H, W) -> (ceil(H/2), ceil(W/2))."""
    h, w = plane.shape
    out = np.empty(((h + 1) // 2, (w + 1) // 2), dtype=np.float64)
    _down_rows(np.ascontiguousarray(plane, dtype=np.float64), out)
    return out


@njit(cache=True, nogil=True)
def _down_rows(plane, out):
    # 0.25 * (((top-left + bottom-left) + top-right) + bottom-right), edges
    # replicated: the order of the NumPy expression on the padded plane
    h, w = plane.shape
    for i in range(out.shape[0]):
        y0, y1 = 2 * i, min(2 * i + 1, h - 1)
        for j in range(out.shape[1]):
            x0, x1 = 2 * j, min(2 * j + 1, w - 1)
            out[i, j] = 0.25 * (((plane[y0, x0] + plane[y1, x0]) + plane[y0, x1]) + plane[y1, x1])


def _up1(c: np.ndarray, n: int, axis: int) -> np.ndarray:
    # centred linear interpolation (libjpeg's "fancy" upsampling): output
    # sample 2i sits at i - 1/4, 2i + 1 at i + 1/4 in input coordinates
    c = np.moveaxis(c, axis, 0)
    prev = np.concatenate([c[:1], c[:-1]], axis=0)
    nxt = np.concatenate([c[1:], c[-1:]], axis=0)
    out = np.empty((2 * c.shape[0],) + c.shape[1:], dtype=np.float64)
    out[0::2] = 0.75 * c + 0.25 * prev
    out[1::2] = 0.75 * c + 0.25 * nxt
    return np.moveaxis(out[:n], 0, axis)


def upsample2(plane: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`downsample2` by centred bilinear interpolation to ``shape``."""
    plane = np.asarray(plane, dtype=np.float64)
    if plane.ndim != 2 or plane.size == 0 or shape[0] > 2 * plane.shape[0] or shape[1] > 2 * plane.shape[1]:
        return _up1(_up1(plane, shape[0], 0), shape[1], 1)
    out = np.empty(tuple(shape), dtype=np.float64)
    _up_rows(plane, out)
    return out


@njit(cache=True, nogil=True)
def _up_rows(c, out):
    # _up1 along rows then along columns, the same float64 operations:
    # 0.75 * sample + 0.25 * neighbour (edges replicated)
    h, w = c.shape
    n, m = out.shape
    row = np.empty(w)
    for i in range(n):
        k = i >> 1
        o = max(k - 1, 0) if i & 1 == 0 else min(k + 1, h - 1)
        for x in range(w):
            row[x] = 0.75 * c[k, x] + 0.25 * c[o, x]
        for j in range(m):
            k = j >> 1
            o = max(k - 1, 0) if j & 1 == 0 else min(k + 1, w - 1)
            out[i, j] = 0.75 * row[k] + 0.25 * row[o]


def to_patches(plane: np.ndarray, p: int) -> np.ndarray:
    """(H, W) -> (ceil(H/p), ceil(W/p), p*p) patches, edges replicated."""
    h, w = plane.shape
    ph, pw = -(-h // p) * p, -(-w // p) * p
    x = np.pad(plane, ((0, ph - h), (0, pw - w)), mode="edge")
    return np.ascontiguousarray(
        x.reshape(ph // p, p, pw // p, p).transpose(0, 2, 1, 3).reshape(ph // p, pw // p, p * p)
    )


def from_patches(patches: np.ndarray, p: int, shape) -> np.ndarray:
    """Inverse of :func:`to_patches`, cropped to ``shape``."""
    nby, nbx, _ = patches.shape
    x = patches.reshape(nby, nbx, p, p).transpose(0, 2, 1, 3).reshape(nby * p, nbx * p)
    return x[: shape[0], : shape[1]]


_DCT_CACHE: dict = {}


def dct_1d(n: int) -> np.ndarray:
    """Orthonormal 1-D DCT-II of length n, (n, n): row k is frequency k.

    Rounded onto a 2**-40 grid: libm's cos may differ in the last bit between
    machines, the rounded values do not (none lies near a grid midpoint,
    tests/test_pca_patch.py checks it), and every later step is IEEE.
    """
    i = np.arange(n)
    c = np.cos(np.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    c[0] = np.sqrt(1.0 / n)
    return np.rint(c * _GRID) / _GRID


def dct_matrix(p: int) -> np.ndarray:
    """Orthonormal 2-D DCT-II of p x p patches as a (p*p, p*p) matrix.

    Row ``u * p + v`` is the basis image of vertical frequency u and
    horizontal frequency v, flattened row-major. Rows are ordered by u + v,
    then u, so index 0 is the flat (DC) vector.
    """
    if p not in _DCT_CACHE:
        c = dct_1d(p)
        full = np.einsum("ui,vj->uvij", c, c).reshape(p * p, p * p)
        uu, vv = np.divmod(np.arange(p * p), p)
        order = np.lexsort((uu, uu + vv))
        _DCT_CACHE[p] = (np.ascontiguousarray(full[order]), order)
    return _DCT_CACHE[p][0]


def dct_freq(p: int) -> np.ndarray:
    """u + v of each row of :func:`dct_matrix`."""
    dct_matrix(p)
    order = _DCT_CACHE[p][1]
    uu, vv = np.divmod(order, p)
    return (uu + vv).astype(np.int64)


def learn_basis(patches: np.ndarray) -> np.ndarray:
    """PCA of the patches' non-DC part, as unit vectors in the DCT domain.

    Parameters
    ----------
    patches : ndarray of shape (n, P)

    Returns
    -------
    ndarray of shape (P - 1, P)
        Rows are the principal directions orthogonal to the flat vector,
        in decreasing variance, expressed in DCT coordinates (column 0, the
        DC coordinate, is zero). The sign makes the largest entry positive.
    """
    n, pp = patches.shape
    p = int(round(np.sqrt(pp)))
    d = patches @ dct_matrix(p).T
    ac = d[:, 1:]
    cov = ac.T @ ac / max(n, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(-vals, kind="stable")
    vecs = vecs[:, order].T
    idx = np.argmax(np.abs(vecs), axis=1)
    vecs *= np.sign(vecs[np.arange(vecs.shape[0]), idx])[:, None]
    out = np.zeros((pp - 1, pp))
    out[:, 1:] = vecs
    return out


@njit(cache=True)
def _gram_schmidt(v, start):
    """Orthonormalise rows ``start..`` of ``v`` in place, in order (modified
    Gram-Schmidt against all earlier rows, which must be orthonormal already).

    Returns the smallest pre-normalisation norm seen (a decoder refuses bases
    whose vectors collapse). Row j's result depends only on rows < j, so
    orthonormalising row by row gives bit-identical results to all at once.
    """
    k, n = v.shape
    min_norm = np.inf
    for j in range(start, k):
        for i in range(j):
            dot = 0.0
            for t in range(n):
                dot += v[j, t] * v[i, t]
            for t in range(n):
                v[j, t] -= dot * v[i, t]
        s = 0.0
        for t in range(n):
            s += v[j, t] * v[j, t]
        s = np.sqrt(s)
        if s < min_norm:
            min_norm = s
        if s > 0:
            for t in range(n):
                v[j, t] /= s
    return min_norm


def decode_basis(qbasis: np.ndarray, step: float):
    """Integer DCT-domain basis -> orthonormal rows (DCT domain) and min norm.

    ``qbasis`` has shape (K, P) with column 0 (DC) zero; the rows are scaled
    by ``step``, orthonormalised in order, and stay orthogonal to the DC vector.
    """
    d = np.ascontiguousarray(qbasis, dtype=np.float64) * step
    if d.shape[0] == 0:
        return d, 1.0
    return d, float(_gram_schmidt(d, 0))


def quantize_basis(target: np.ndarray, step: float):
    """Quantize learned unit vectors (DCT domain) for storage.

    Each vector is first made orthogonal to the already decoded ones, so
    quantization never collapses a vector. Returns the int32 array (K, P)
    and the decoded orthonormal basis (exactly what :func:`decode_basis`
    gives for it).
    """
    k, pp = target.shape
    q = np.zeros((k, pp), dtype=np.int32)
    dec = np.zeros((k, pp))
    for j in range(k):
        v = target[j].copy()
        if j:
            v -= dec[:j].T @ (dec[:j] @ v)
        v[0] = 0.0
        nv = np.linalg.norm(v)
        if nv < 1e-9:
            v = np.zeros(pp)
            v[1 + j] = 1.0
        else:
            v /= nv
        qj = np.rint(v / step).astype(np.int32)
        if not qj.any():
            i = 1 + int(np.argmax(np.abs(v[1:])))
            qj[i] = 1 if v[i] >= 0 else -1
        q[j] = qj
        dec[j] = qj * step
        _gram_schmidt(dec[: j + 1], j)
    return q, dec
