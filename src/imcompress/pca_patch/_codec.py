"""The ``pca-patch`` codec: a patch transform learned from each image.

Pipeline (encoder; the decoder runs the last steps backwards)::

    RGB -> YCbCr (JPEG matrix) -> chroma 4:2:0 or 4:4:4 (chosen per image)
        -> p x p patches per plane -> DCT domain
        -> PCA of the non-DC part (learned from this image; basis stored
           quantized in the DCT domain, sparse, only the components used)
           or, opt-in (basis="classified"), a class per luma block: the DCT or
           one of a few KLTs learned per class (class map and bases stored)
        -> one uniform step per plane, deadzone rounding
        -> context-adaptive binary range coding (imcompress.entropy)

Sections: ``PPAR`` (fixed-size parameters) and ``PDAT`` (one range-coded
stream: the bases then the coefficients). Layout in docs/FORMAT.md.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from numba import njit
from threadpoolctl import threadpool_limits

from .._errors import CorruptFileError, QualityError, UsageError
from ..codecs import Codec, register_codec
from ..codecs._base import Option
from ._coder import MAX_CLASSES, MAX_COEF, decode_stream, encode_stream, rdoq
from ._deblock import MAX_STRENGTH, deblock
from ._transform import (
    dct_freq,
    dct_matrix,
    decode_basis,
    downsample2,
    from_patches,
    learn_basis,
    quantize_basis,
    rgb_to_ycbcr,
    to_patches,
    upsample2,
    ycbcr_to_rgb,
)

__all__ = ["PCAPatchCodec", "quality_to_step"]

_PPAR_HEAD = struct.Struct("<BBBff")  # version, flags, n_planes, luma step, chroma step
_PPAR_PLANE = struct.Struct("<BBBHBB")  # log2 patch, basis mode, basis exp, K, rho/256, deblock
_PPAR_VERSION = 1
_FLAG_420 = 1
_PATCH_SIZES = (4, 8, 16)
_BASIS_DCT, _BASIS_PCA = 0, 1
#: Classified mode byte: ``_BASIS_CLS | C`` for C classes (class 0 = DCT).
_BASIS_CLS = 0x10
#: Classes of ``basis="classified"`` (DCT + 3 learned) and its refinement passes.
_N_CLASSES = 4
_CLS_ITERS = 3
#: Extra bits charged (in the encoder's choice) for a class change along a row.
_CLS_SWITCH_BITS = 6.0
#: Side, in blocks, of the regions sharing one class (1: a class per block).
_CLS_REGION = 1


def _n_learned(p):
    """AC coordinates a class KLT acts on: DCT frequencies u + v <= p / 2
    (5, 14 and 44 for p = 4, 8, 16); the higher ones stay DCT."""
    return int(np.count_nonzero(dct_freq(p) <= p // 2)) - 1
_MIN_STEP, _MAX_STEP = 1e-3, 1e5

#: Step of the coarsest quality (0) and of the finest (100), luma, in DCT units.
_STEP_Q0 = 400.0
_STEP_Q100 = 0.5
#: Chroma step relative to luma (measured on Kodak: PSNR-optimal in RGB).
_CHROMA_FACTOR = 0.55
#: Deadzone rounding offset of AC coefficients (0.5 = plain rounding).
_AC_ROUND = 0.45
#: Rate-distortion optimised quantization, and its Lagrangian in step**2 per bit
#: (high-rate theory gives 2 ln 2 / 12 = 0.116).
_RDOQ = True
_RDOQ_LAMBDA = 0.116
#: Precision of the stored basis: entries are multiples of 2**-_BASIS_EXP.
_BASIS_EXP = 5


def quality_to_step(quality: float) -> float:
    """Quantizer step (luma) for ``quality`` in 0..100, geometric in quality.

    Examples
    --------
    >>> round(quality_to_step(100), 3), round(quality_to_step(0), 1)
    (0.5, 400.0)
    """
    q = min(max(float(quality), 0.0), 100.0)
    return float(_STEP_Q0 * (_STEP_Q100 / _STEP_Q0) ** (q / 100.0))


@njit(cache=True)
def _synth(qc, step, rho, wmat, p2):
    """Dequantize (nby, nbx, K+1) ints and synthesise (nby, nbx, p2) patches.

    ``wmat`` (K+1, p2) holds the flat vector then the basis vectors in the
    pixel domain. Fixed-order loops: bit-identical on every run.
    """
    # one class for every block: the same fixed-order loops as _synth_cls
    cmap = np.zeros(qc.shape[:2], dtype=np.int64)
    return _synth_cls(qc, step, rho, wmat.reshape((1,) + wmat.shape), cmap, p2)


@njit(cache=True)
def _synth_cls(qc, step, rho, wmats, cmap, p2):
    """:func:`_synth` with the synthesis matrix ``wmats[cmap[by, bx]]`` per block."""
    nby, nbx, kp1 = qc.shape
    out = np.zeros((nby, nbx, p2))
    for by in range(nby):
        for bx in range(nbx):
            wmat = wmats[cmap[by, bx]]
            for k in range(kp1):
                v = qc[by, bx, k]
                if v == 0:
                    continue
                if k == 0:
                    c = v * step
                elif v > 0:
                    c = (v - rho) * step
                else:
                    c = (v + rho) * step
                for t in range(p2):
                    out[by, bx, t] += c * wmat[k, t]
    return out


@njit(cache=True)
def _matmul(a, b):
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for t in range(k):
            x = a[i, t]
            for j in range(m):
                out[i, j] += x * b[t, j]
    return out


def _synthesis_matrix(basis_dct: np.ndarray, p: int) -> np.ndarray:
    """(K+1, p*p): flat vector then the basis rows, in the pixel domain."""
    c = dct_matrix(p)
    k = basis_dct.shape[0]
    w = np.empty((k + 1, p * p))
    w[0] = c[0]
    if k:
        w[1:] = _matmul(np.ascontiguousarray(basis_dct), c)
    return w


def _rate_proxy(q, qbasis) -> float:
    """Rough bits of quantized coefficients (and a stored basis), for pre-selection."""
    a = np.abs(q)
    bits = float(np.count_nonzero(a)) * 2.5 + 2.0 * float(np.sum(np.log2(1.0 + a)))
    if qbasis is not None:
        bits += 7.0 * float(np.count_nonzero(qbasis))
    return bits


def _used(qac) -> int:
    """1 + index of the last component with any nonzero level (0 if none)."""
    nz = np.flatnonzero(np.count_nonzero(qac, axis=0))
    return int(nz[-1]) + 1 if nz.size else 0


def _rho(qac, a) -> int:
    """Reconstruction offset (1/256 steps) minimising the error of nonzero levels."""
    mask = qac != 0
    if not mask.any():
        return 0
    rho = float(np.mean(np.abs(qac[mask]) - a[mask]))
    return int(min(max(round(rho * 256), 0), 127))


def _lambda(step: float) -> float:
    """Lagrangian of a uniform quantizer at high rate: -dD/dR per bit, D in SSE units."""
    return 2.0 * math.log(2.0) * step * step / 12.0


class _PlaneModel:
    """Encoder-side analysis of one plane at one patch size (reused across steps)."""

    def __init__(self, plane: np.ndarray, p: int, basis: str, basis_exp: int):
        self.shape = plane.shape
        self.p = p
        patches = to_patches(plane, p)
        self.grid = patches.shape[:2]
        self.padded = from_patches(patches, p, (self.grid[0] * p, self.grid[1] * p))
        flat = patches.reshape(-1, p * p)
        d = flat @ dct_matrix(p).T
        self.dc = d[:, 0]
        self.basis_exp = basis_exp
        if basis == "pca" and p * p > 1:
            target = learn_basis(flat)
            self.mode = _BASIS_PCA
            self.qbasis, self.basis = quantize_basis(target, 2.0**-basis_exp)
        else:
            self.mode = _BASIS_DCT
            pp = p * p
            self.qbasis = np.zeros((pp - 1, pp), dtype=np.int32)
            self.qbasis[np.arange(pp - 1), np.arange(1, pp)] = 1
            self.basis = self.qbasis.astype(np.float64)
        self.ac = d @ self.basis.T  # (n, P-1) coefficients on the basis
        self.cmap = None

    def stored(self, k):
        """Integer basis the file stores for K = ``k`` components."""
        return self.qbasis[:k] if self.mode == _BASIS_PCA else self.qbasis[:0]

    def quantize(self, step: float, ac_round: float | None = None):
        """Levels (nby, nbx, K + 1), the number K of components kept, and rho (1/256)."""
        if ac_round is None:
            ac_round = _AC_ROUND
        qdc = np.rint(self.dc / step).astype(np.int32)
        a = np.abs(self.ac) / step
        qac = (np.sign(self.ac) * np.floor(a + ac_round)).astype(np.int32)
        k = _used(qac)
        qac = qac[:, :k]
        rho_q = _rho(qac, a[:, :k])
        q = np.empty((self.dc.size, k + 1), dtype=np.int32)
        q[:, 0] = qdc
        q[:, 1:] = qac
        if np.abs(q).max(initial=0) > MAX_COEF:
            raise UsageError(f"step {step} too fine for this image; use a lower quality")
        q = q.reshape(self.grid + (k + 1,))
        if _RDOQ and k:
            rdoq(q, a[:, :k].reshape(self.grid + (k,)), rho_q / 256.0, _RDOQ_LAMBDA)
            flat = q.reshape(-1, k + 1)
            k2 = _used(flat[:, 1:])
            rho_q = _rho(flat[:, 1 : k2 + 1], a[:, :k2])
            q = np.ascontiguousarray(q[..., : k2 + 1])
            k = k2
        return q, k, rho_q

    def sse(self, q, k, rho_q, step):
        """Squared error of the plane's patches (orthonormal: coefficient domain)."""
        q = q.reshape(-1, k + 1)
        e = np.sum((self.dc - q[:, 0] * step) ** 2)
        qa = q[:, 1:]
        rec = np.sign(qa) * (np.abs(qa) - rho_q / 256.0) * step
        e += np.sum((self.ac[:, :k] - rec) ** 2) + np.sum(self.ac[:, k:] ** 2)
        return float(e)


def _block_costs(ac, step):
    """Per-block D + lambda R proxy of coefficients ``ac`` (n, K) at ``step``."""
    a = np.abs(ac) / step
    lev = np.floor(a + _AC_ROUND)
    err = np.where(lev > 0, (a - lev) ** 2, a * a) * (step * step)
    bits = np.sum((lev > 0) * 2.5 + 2.0 * np.log2(1.0 + lev), axis=1)
    return np.sum(err, axis=1) + _lambda(step) * bits


@njit(cache=True)
def _assign_smooth(costs, grid_w, penalty):
    """Raster-order class choice: cost + ``penalty`` when a block's class
    differs from its left neighbour's (what the class-map coder predicts)."""
    n_cls, n = costs.shape
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        pred = out[i - 1] if i % grid_w else (out[i - grid_w] if i >= grid_w else 0)
        best, bc = np.inf, 0
        for c in range(n_cls):
            j = costs[c, i] + (0.0 if c == pred else penalty)
            if j < best:
                best, bc = j, c
        out[i] = bc
    return out


class _ClassifiedModel(_PlaneModel):
    """Several bases per plane: the DCT (class 0) and KLTs learned per class.

    At each step: blocks are clustered (K-means on their normalised AC energy
    profile in the DCT domain), a KLT is learned per class, and each block
    then moves to the basis that codes it cheapest (D + lambda R proxy),
    for a few passes. A learned class whose gain does not pay for its stored
    basis is dropped (its blocks go back to the DCT).
    """

    def __init__(self, plane, p, basis_exp, n_classes=_N_CLASSES):
        super().__init__(plane, p, "dct", basis_exp)
        self.n_classes = n_classes
        self.d_ac = self.ac.copy()  # identity basis: DCT AC coefficients
        self._cache = {}

    def _learn(self, step):
        from sklearn.cluster import KMeans

        pp = self.p * self.p
        nl = _n_learned(self.p)
        a = self.d_ac
        n = a.shape[0]
        e = a * a
        tot = e.sum(axis=1)
        active = tot > 4.0 * step * step
        cmap = np.zeros(n, dtype=np.int64)
        n_learn = self.n_classes - 1
        if active.sum() < 8 * n_learn:
            return cmap, []
        prof = np.sqrt(e[active] / tot[active, None])
        km = KMeans(n_clusters=n_learn, n_init=1, random_state=0, max_iter=50).fit(prof)
        cmap[active] = km.labels_ + 1
        step_b = 2.0**-self.basis_exp
        lam = _lambda(step)
        bases = []
        lo = a[:, :nl]
        base_cost = _block_costs(a[:, nl:], step)
        for _ in range(_CLS_ITERS):
            bases, costs = [], [_block_costs(lo, step) + base_cost]
            for c in range(1, self.n_classes):
                sel = lo[cmap == c]
                if sel.shape[0] < 2 * nl:
                    bases.append(None)
                    costs.append(np.full(n, np.inf))
                    continue
                vals, vecs = np.linalg.eigh(sel.T @ sel)
                vecs = vecs[:, np.argsort(-vals, kind="stable")].T
                vecs *= np.sign(vecs[np.arange(vecs.shape[0]), np.argmax(np.abs(vecs), axis=1)])[:, None]
                target = np.zeros((nl, pp))
                target[:, 1 : nl + 1] = vecs
                qb, dec = quantize_basis(target, step_b)
                bases.append((qb, dec))
                costs.append(_block_costs(lo @ dec[:, 1 : nl + 1].T, step) + base_cost)
            costs = np.array(costs)
            # the class map's bits: -log2 of each class's share
            share = np.bincount(cmap, minlength=self.n_classes) + 1.0
            costs += lam * -np.log2(share / share.sum())[:, None]
            if _CLS_REGION > 1:
                cmap = self._region_assign(costs)
            elif _CLS_SWITCH_BITS:
                cmap = _assign_smooth(np.ascontiguousarray(costs), self.grid[1], lam * _CLS_SWITCH_BITS)
            else:
                cmap = np.argmin(costs, axis=0)
            # drop classes whose gain over the DCT does not pay for the basis
            for c in range(1, self.n_classes):
                if bases[c - 1] is None:
                    continue
                sel = cmap == c
                gain = float(np.sum(costs[0, sel] - costs[c, sel]))
                if gain < lam * 6.0 * np.count_nonzero(bases[c - 1][0]):
                    cmap[sel] = 0
                    bases[c - 1] = None
        # renumber the surviving classes 1..
        keep = [c for c in range(1, self.n_classes) if bases[c - 1] is not None and np.any(cmap == c)]
        remap = np.zeros(self.n_classes, dtype=np.int64)
        for j, c in enumerate(keep):
            remap[c] = j + 1
        return remap[cmap], [bases[c - 1] for c in keep]

    def _region_assign(self, costs):
        """One class per region of _CLS_REGION x _CLS_REGION blocks (summed costs)."""
        r = _CLS_REGION
        nby, nbx = self.grid
        gy, gx = -(-nby // r), -(-nbx // r)
        ry = np.arange(nby)[:, None] // r
        rx = np.arange(nbx)[None, :] // r
        reg = (ry * gx + rx).ravel()
        tot = np.zeros((costs.shape[0], gy * gx))
        for c in range(costs.shape[0]):
            tot[c] = np.bincount(reg, weights=costs[c], minlength=gy * gx)
        return np.argmin(tot, axis=0)[reg]

    def quantize(self, step, ac_round=None):
        if step not in self._cache:
            cmap, bases = self._learn(step)
            ac = self.d_ac.copy()
            nl = _n_learned(self.p)
            for j, (_, dec) in enumerate(bases):
                sel = cmap == j + 1
                ac[sel, :nl] = self.d_ac[sel, :nl] @ dec[:, 1 : nl + 1].T
            self._cache = {step: (cmap, bases, ac)}
        cmap, bases, ac = self._cache[step]
        self.ac = ac
        if bases:
            self.mode = _BASIS_CLS | (len(bases) + 1)
            self.cmap = cmap.reshape(self.grid).astype(np.int32)
            self.qbasis = np.stack([b[0] for b in bases])
        else:
            self.mode = _BASIS_DCT
            self.cmap = None
        return super().quantize(step, ac_round)

    def stored(self, k):
        if self.mode == _BASIS_DCT:
            return np.zeros((0, self.p * self.p), dtype=np.int32)
        return np.ascontiguousarray(self.qbasis[:, : min(k, _n_learned(self.p))])


def _check_patch(patch_size):
    if patch_size in ("auto", None):
        return "auto"
    try:
        p = int(patch_size)
    except (TypeError, ValueError):
        p = -1
    if p not in _PATCH_SIZES:
        raise UsageError(f"patch_size={patch_size!r} should be 4, 8, 16 or 'auto'")
    return p


@register_codec
class PCAPatchCodec(Codec):
    """Patch PCA with a per-image learned basis and context-adaptive coding.

    Parameters
    ----------
    quality : float, default=50
        0 (smallest) .. 100 (best); file size and PSNR grow with it.
    bpp : float, optional
        Target bits per pixel instead of ``quality``: the largest file not
        above ``bpp`` (bisection on the quantizer step).
    patch_size : {4, 8, 16, "auto"}, default="auto"
        Side of the square patches (luma and chroma planes); ``"auto"`` is 8,
        the best size of the patch-size study (docs/pca-patch.md).
    chroma : {"auto", "420", "444"}, default="auto"
        Chroma subsampling; ``"auto"`` keeps the cheaper at equal quality.
    basis : {"auto", "pca", "dct", "classified"}, default="auto"
        ``"pca"``: learn the basis from each plane and store it; ``"dct"``:
        the fixed DCT (nothing stored); ``"classified"``: luma blocks are
        classified, each class coded with the DCT or a KLT learned for it
        (class per block and learned bases stored; chroma: DCT);
        ``"auto"``: for luma, the one with the lower rate-distortion cost,
        basis bytes included (chroma: DCT).

    Examples
    --------
    >>> import imcompress
    >>> img = imcompress.sample_image()
    >>> data = imcompress.compress(img, "pca-patch", quality=50)
    >>> imcompress.decompress(data).shape
    (512, 512, 3)
    """

    name = "pca-patch"
    method_id = 3
    rate_parameter = "quality"
    options = (
        Option("quality", ("-q", "--quality"), type="float", metavar="0..100",
               help="quality 0..100 (size and PSNR grow with it)", default=50),
        Option("bpp", ("--bpp",), type="float", metavar="X",
               help="target bits per pixel (largest file not above X)"),
        Option("patch_size", ("--patch-size",), type="str", metavar="4|8|16|auto",
               help="patch side in pixels", default="auto"),
        Option("chroma", ("--chroma",), type="str", metavar="auto|420|444",
               help="chroma subsampling", default="auto"),
    )

    def __init__(self, *, quality=50, bpp=None, patch_size="auto", chroma="auto", basis="auto"):
        self.quality = quality
        self.bpp = bpp
        self.patch_size = patch_size
        self.chroma = chroma
        self.basis = basis

    def rate_candidates(self, image):
        return [i / 2 for i in range(201)]  # quality in half steps

    def with_rate(self, value):
        params = self.get_params()
        params["quality"] = value
        params["bpp"] = None
        return type(self)(**params)

    # -- parameter validation --------------------------------------------
    def _validate(self):
        q = self.quality
        if not isinstance(q, (int, float)) or isinstance(q, bool) or not (0 <= q <= 100):
            raise UsageError(f"quality={q!r} should be a number in 0..100")
        if self.bpp is not None:
            b = self.bpp
            if not isinstance(b, (int, float)) or isinstance(b, bool) or not (0 < b <= 24):
                raise UsageError(f"bpp={b!r} should be a number in (0, 24]")
        patch = _check_patch(self.patch_size)
        if self.chroma not in ("auto", "420", "444", 420, 444):
            raise UsageError(f"chroma={self.chroma!r} should be 'auto', '420' or '444'")
        if self.basis not in ("auto", "pca", "dct", "classified"):
            raise UsageError(f"basis={self.basis!r} should be 'auto', 'pca', 'dct' or 'classified'")
        return patch, str(self.chroma)

    # -- encoder -------------------------------------------------------------
    def encode_sections(self, image, *, icc_profile=None):
        patch, chroma = self._validate()
        # small matrices only: OpenBLAS threads cost far more than they save
        # (a 63x63 eigh takes 80 ms with 2 busy threads, 0.4 ms with one)
        with threadpool_limits(1):
            enc = _Encoder(image, patch=patch, chroma=chroma, basis=self.basis)
            if self.bpp is not None:
                budget = int(self.bpp * image.shape[0] * image.shape[1] / 8.0)
                if icc_profile:
                    budget -= len(icc_profile) + 8  # the profile's section counts too
                sections = enc.fit_bytes(budget)
            else:
                sections = enc.encode(quality_to_step(self.quality))[0]
        if icc_profile:
            sections = sections + [(b"ICCP", bytes(icc_profile))]
        return sections

    # -- decoder -------------------------------------------------------------
    @classmethod
    def _params(cls, container):
        raw = container.section(b"PPAR")
        if len(raw) < _PPAR_HEAD.size:
            raise CorruptFileError(f"pca-patch PPAR section of {len(raw)} bytes is too short")
        version, flags, n_planes, step, cstep = _PPAR_HEAD.unpack_from(raw, 0)
        if version != _PPAR_VERSION:
            raise CorruptFileError(f"unknown pca-patch parameter version {version}")
        if flags & ~_FLAG_420:
            raise CorruptFileError(f"unknown pca-patch flags {flags:#x}")
        if n_planes != container.channels:
            raise CorruptFileError(
                f"pca-patch file has {n_planes} planes but the header says {container.channels} channels"
            )
        for s in (step, cstep):
            if not (math.isfinite(s) and _MIN_STEP <= s <= _MAX_STEP):
                raise CorruptFileError(f"pca-patch quantizer step {s} out of range")
        if len(raw) != _PPAR_HEAD.size + n_planes * _PPAR_PLANE.size:
            raise CorruptFileError(f"pca-patch PPAR section has {len(raw)} bytes for {n_planes} planes")
        planes = []
        for i in range(n_planes):
            lp, mode, bexp, k, rho, dbk = _PPAR_PLANE.unpack_from(raw, _PPAR_HEAD.size + i * _PPAR_PLANE.size)
            if lp not in (2, 3, 4):
                raise CorruptFileError(f"pca-patch patch size 2**{lp} is not 4, 8 or 16")
            p = 1 << lp
            n_cls = mode & 0x0F if mode & _BASIS_CLS else 0
            if mode not in (_BASIS_DCT, _BASIS_PCA) and not (
                    (mode & ~0x1F) == 0 and 2 <= n_cls <= MAX_CLASSES):
                raise CorruptFileError(f"unknown pca-patch basis mode {mode:#x}")
            if not 3 <= bexp <= 10:
                raise CorruptFileError(f"pca-patch basis precision 2**-{bexp} out of range")
            if k > p * p - 1:
                raise CorruptFileError(f"pca-patch plane {i} claims {k} components for {p}x{p} patches")
            if rho > 127:
                raise CorruptFileError(f"pca-patch reconstruction offset {rho}/256 out of range")
            if dbk > MAX_STRENGTH:
                raise CorruptFileError(f"pca-patch deblocking strength {dbk} out of range (0..{MAX_STRENGTH})")
            planes.append({"patch": p, "basis": mode, "basis_exp": bexp, "components": k, "rho": rho,
                           "deblock": dbk, "n_classes": n_cls})
        return {"subsample": bool(flags & _FLAG_420), "step": step, "chroma_step": cstep, "planes": planes}

    @classmethod
    def describe(cls, container):
        prm = cls._params(container)
        return {
            "chroma": "4:2:0" if prm["subsample"] else "4:4:4",
            "step": round(prm["step"], 4),
            "chroma_step": round(prm["chroma_step"], 4),
            "patch_sizes": [pl["patch"] for pl in prm["planes"]],
            "basis": [_basis_name(pl) for pl in prm["planes"]],
            "components": [pl["components"] for pl in prm["planes"]],
            "deblock": [pl["deblock"] for pl in prm["planes"]],
        }

    @classmethod
    def decode(cls, container):
        prm = cls._params(container)
        h, w, nch = container.height, container.width, container.channels
        shapes = _plane_shapes(h, w, nch, prm["subsample"])
        return _decode(container.section(b"PDAT"), prm, shapes, (h, w, nch))


def _basis_name(pl):
    if pl["n_classes"]:
        return f"classified ({pl['n_classes']} classes)"
    return "pca" if pl["basis"] == _BASIS_PCA else "dct"


def _plane_shapes(h, w, nch, subsample):
    ch = ((h + 1) // 2, (w + 1) // 2) if subsample else (h, w)
    shapes = [(h, w), ch, ch]
    if nch == 4:
        shapes.append((h, w))
    return shapes


def _class_of(i):
    return 0 if i == 0 else (1 if i < 3 else 2)


def _decode(data, prm, shapes, out_shape):
    basis_shapes, freqs, classes, plane_shapes = [], [], [], []
    for i, (pl, shape) in enumerate(zip(prm["planes"], shapes)):
        p, k = pl["patch"], pl["components"]
        nby, nbx = -(-shape[0] // p), -(-shape[1] // p)
        stored = k if pl["basis"] == _BASIS_PCA else 0
        if pl["n_classes"]:
            basis_shapes.append((pl["n_classes"] - 1, min(k, _n_learned(p)), p * p))
        else:
            basis_shapes.append((stored, p * p))
        freqs.append(dct_freq(p))
        classes.append(_class_of(i))
        plane_shapes.append((nby, nbx, k + 1))
    limit = max((1 << pl["basis_exp"]) + 2 for pl in prm["planes"])
    n_classes = [pl["n_classes"] for pl in prm["planes"]]
    bases, coefs = decode_stream(data, basis_shapes, freqs, classes, plane_shapes, basis_limit=limit,
                                 n_classes=n_classes)
    cmaps = [c[1] if n else None for c, n in zip(coefs, n_classes)]
    coefs = [c[0] if n else c for c, n in zip(coefs, n_classes)]
    return _reconstruct(prm, shapes, bases, coefs, out_shape, cmaps=cmaps)


def _plane_patches(i, pl, prm, qb, qc, cmap=None):
    """One plane's integers -> its padded patch-grid plane (before deblocking)."""
    p, k = pl["patch"], pl["components"]
    if pl["n_classes"]:
        wmats = np.empty((pl["n_classes"], k + 1, p * p))
        dct = np.zeros((k, p * p))
        dct[np.arange(k), np.arange(1, k + 1)] = 1.0
        wmats[0] = _synthesis_matrix(dct, p)
        nl = min(k, _n_learned(p))
        if np.any(qb[:, :, _n_learned(p) + 1 :]):
            raise CorruptFileError(f"pca-patch class basis of plane {i} leaves its frequency range")
        for c in range(1, pl["n_classes"]):
            learned, min_norm = decode_basis(qb[c - 1], 2.0 ** -pl["basis_exp"])
            if k and not min_norm > 0.25:
                raise CorruptFileError(f"pca-patch class {c} basis of plane {i} is degenerate")
            basis = dct.copy()
            basis[:nl] = learned
            wmats[c] = _synthesis_matrix(basis, p)
        patches = _synth_cls(qc, float(_plane_step(prm, i)), pl["rho"] / 256.0, wmats,
                             np.ascontiguousarray(cmap, dtype=np.int64), p * p)
        nby, nbx = qc.shape[:2]
        return from_patches(patches, p, (nby * p, nbx * p))
    if pl["basis"] == _BASIS_PCA:
        basis, min_norm = decode_basis(qb, 2.0 ** -pl["basis_exp"])
        if k and not min_norm > 0.25:
            raise CorruptFileError(f"pca-patch basis of plane {i} is degenerate")
    else:
        basis = np.zeros((k, p * p))
        basis[np.arange(k), np.arange(1, k + 1)] = 1.0
    wmat = _synthesis_matrix(basis, p)
    patches = _synth(qc, float(_plane_step(prm, i)), pl["rho"] / 256.0, wmat, p * p)
    nby, nbx = qc.shape[:2]
    return from_patches(patches, p, (nby * p, nbx * p))


def _plane_step(prm, i):
    return prm["chroma_step"] if _class_of(i) == 1 else prm["step"]


def _reconstruct(prm, shapes, bases, coefs, out_shape, grids=None, cmaps=None):
    """Integers -> pixels; the encoder calls this too, so both agree exactly.

    ``grids`` may hold planes already synthesised by :func:`_plane_patches`.
    """
    planes = []
    if cmaps is None:
        cmaps = [None] * len(coefs)
    for i, (pl, shape, qb, qc) in enumerate(zip(prm["planes"], shapes, bases, coefs)):
        grid = grids[i] if grids is not None else _plane_patches(i, pl, prm, qb, qc, cmaps[i])
        grid = deblock(grid, pl["patch"], _plane_step(prm, i), pl["deblock"])
        planes.append(grid[: shape[0], : shape[1]])
    h, w, nch = out_shape
    if prm["subsample"]:
        planes[1] = upsample2(planes[1], (h, w))
        planes[2] = upsample2(planes[2], (h, w))
    rgb = ycbcr_to_rgb(planes[:3])
    if nch == 4:
        a = np.clip(np.rint(planes[3] + 128.0), 0, 255).astype(np.uint8)
        rgb = np.concatenate([rgb, a[:, :, None]], axis=2)
    return rgb


def _best_deblock(grid, model, step):
    """Deblocking strength minimising the plane's squared error (0 = off).

    A coarse pass over every third strength, then the neighbours of the best.
    """
    h, w = model.shape
    ref = model.padded[:h, :w]
    errors = {}

    def err(s):
        if s not in errors:
            errors[s] = float(np.sum((deblock(grid, model.p, step, s)[:h, :w] - ref) ** 2))
        return errors[s]

    coarse = min(range(0, MAX_STRENGTH + 1, 4), key=err)
    return min((s for s in range(coarse - 2, coarse + 3) if 0 <= s <= MAX_STRENGTH), key=err)


class _Encoder:
    """Holds the per-image analysis so several steps can be tried cheaply."""

    def __init__(self, image, *, patch, chroma, basis):
        self.image = image
        self.h, self.w, self.nch = image.shape
        rgb = image[:, :, :3]
        self.ycc = rgb_to_ycbcr(rgb)
        self.alpha = image[:, :, 3].astype(np.float64) - 128.0 if self.nch == 4 else None
        self.patches = [8] if patch == "auto" else [patch]
        self.chromas = [True, False] if chroma == "auto" else [chroma == "420"]
        self.basis = basis
        self._models = {}
        self._grids = {}
        self._sub = None
        self._sub_mse = None

    def _plane(self, i, subsample):
        if i == 0:
            return self.ycc[0]
        if i == 3:
            return self.alpha
        if subsample:
            if self._sub is None:
                self._sub = [downsample2(self.ycc[1]), downsample2(self.ycc[2])]
            return self._sub[i - 1]
        return self.ycc[i]

    def _subsampling_mse(self):
        """Mean squared error per chroma sample of 4:2:0 alone (no quantization)."""
        if self._sub_mse is None:
            errs = [np.mean((upsample2(self._plane(i, True), (self.h, self.w)) - self.ycc[i]) ** 2)
                    for i in (1, 2)]
            self._sub_mse = float(np.mean(errs))
        return self._sub_mse

    def _models_for(self, i, subsample, p):
        key = (i, subsample if i in (1, 2) else None, p)
        if key not in self._models:
            plane = self._plane(i, subsample)
            if self.basis == "auto":
                # the learned basis is a candidate for luma only: on chroma it
                # never paid in the Kodak study, and it costs encoder time
                kinds = ["dct", "pca"] if i == 0 else ["dct"]
            elif self.basis == "classified":
                kinds = ["classified"] if i == 0 else ["dct"]
            else:
                kinds = [self.basis]
            self._models[key] = [_ClassifiedModel(plane, p, _BASIS_EXP) if kind == "classified"
                                 else _PlaneModel(plane, p, kind, _BASIS_EXP) for kind in kinds]
        return self._models[key]

    def _choose(self, i, subsample, p, step):
        """Quantize plane ``i`` with each candidate basis; keep the lowest D + lambda R.

        A learned basis is coded in full only when a cheap rate proxy says it
        could win; it rarely does on photos (see docs/pca-patch.md).
        """
        models = self._models_for(i, subsample, p)
        cands = [(m,) + m.quantize(step) for m in models]
        if len(cands) == 1:
            return cands[0]
        proxies = [_rate_proxy(q, m.stored(k) if m.mode != _BASIS_DCT else None)
                   + m.sse(q, k, rho, step) / (_lambda(step) * 1.0)
                   for m, q, k, rho in cands]
        dct = cands[0]
        if min(proxies[1:]) >= proxies[0] * 0.98:
            return dct
        best = None
        for m, q, k, rho in cands:
            nbytes = len(encode_stream([m.stored(k)], [dct_freq(m.p)], [_class_of(i)], [q],
                                       class_maps=[m.cmap]))
            j = m.sse(q, k, rho, step) + _lambda(step) * 8.0 * nbytes
            if best is None or j < best[0]:
                best = (j, m, q, k, rho)
        return best[1:]

    def _assemble(self, step, subsample, choices):
        """Parameters and sections of one configuration; ``choices[i]`` = (model, q, K, rho).

        Returns (prm, bases, freqs, classes, coefs, grids): ``grids`` are the
        decoder's planes before deblocking, whose strength is chosen here.
        """
        prm = {"subsample": subsample, "step": float(np.float32(step)),
               "chroma_step": float(np.float32(step * _CHROMA_FACTOR)), "planes": []}
        bases, freqs, classes, coefs, grids, cmaps = [], [], [], [], [], []
        for i, (m, q, k, rho) in enumerate(choices):
            ncls = m.mode & 0x0F if m.mode & _BASIS_CLS else 0
            pl = {"patch": m.p, "basis": m.mode, "basis_exp": m.basis_exp,
                  "components": k, "rho": rho, "deblock": 0, "n_classes": ncls}
            prm["planes"].append(pl)
            qb = m.stored(k)
            bases.append(qb)
            cmaps.append(m.cmap if ncls else None)
            freqs.append(dct_freq(m.p))
            classes.append(_class_of(i))
            coefs.append(q)
            key = (i, id(m), id(q))
            if key not in self._grids:
                # luma and alpha are shared by the chroma options: synthesise once
                grid = _plane_patches(i, pl, prm, qb, q, cmaps[-1])
                self._grids[key] = (grid, _best_deblock(grid, m, _plane_step(prm, i)), q)
            grid, pl["deblock"], _ = self._grids[key]
            grids.append(grid)
        return prm, bases, freqs, classes, coefs, grids, cmaps

    def _sections(self, prm, bases, freqs, classes, coefs, grids=None, cmaps=None):
        data = encode_stream(bases, freqs, classes, coefs, class_maps=cmaps)
        head = _PPAR_HEAD.pack(_PPAR_VERSION, _FLAG_420 if prm["subsample"] else 0, len(coefs),
                               prm["step"], prm["chroma_step"])
        body = b"".join(
            _PPAR_PLANE.pack(int(math.log2(pl["patch"])), pl["basis"],
                             pl["basis_exp"], pl["components"], pl["rho"], pl["deblock"])
            for pl in prm["planes"]
        )
        return [(b"PPAR", head + body), (b"PDAT", data)]

    def _sse(self, prm, bases, coefs, grids=None):
        shapes = _plane_shapes(self.h, self.w, self.nch, prm["subsample"])
        rec = _reconstruct(prm, shapes, bases, coefs, (self.h, self.w, self.nch), grids)
        diff = rec.astype(np.float64) - self.image.astype(np.float64)
        return float(np.sum(diff * diff))

    def encode(self, step):
        """Best configuration at ``step`` by D + lambda R; returns (sections, nbytes)."""
        p = self.patches[0]
        self._grids = {}
        step = float(np.float32(step))
        cstep = float(np.float32(step * _CHROMA_FACTOR))
        fixed = {i: self._choose(i, None, p, step) for i in range(self.nch) if i not in (1, 2)}
        best = None
        chromas = self.chromas
        if len(chromas) == 2 and self._subsampling_mse() <= 0.6 * cstep * cstep / 12.0:
            # what 4:2:0 loses is well below the quantization noise: 4:4:4
            # cannot win (on Kodak it wins only when this ratio exceeds ~2.5)
            chromas = [True]
        for subsample in chromas:
            chroma = {i: self._choose(i, subsample, p, cstep) for i in (1, 2)}
            choices = [fixed[i] if i in fixed else chroma[i] for i in range(self.nch)]
            cfg = self._assemble(step, subsample, choices)
            if len(chromas) == 1:
                best = (0.0, cfg)
                break
            # luma and alpha are the same in every option: compare chroma bytes only
            prm, bases, freqs, classes, coefs, grids, _ = cfg
            nbytes = len(encode_stream(bases[1:3], freqs[1:3], classes[1:3], coefs[1:3]))
            j = self._sse(prm, bases, coefs, grids) + 3.0 * _lambda(step) * 8.0 * nbytes
            if best is None or j < best[0]:
                best = (j, cfg)
        sections = self._sections(*best[1])
        return sections, sum(len(x[1]) + 8 for x in sections)

    def fit_bytes(self, budget):
        """Largest encoding with section bytes + container overhead <= budget."""
        overhead = 17 + 4
        lo, hi = math.log(_MIN_STEP * 100), math.log(_STEP_Q0 * 50)
        best = None
        for _ in range(22):
            mid = 0.5 * (lo + hi)
            sections, n = self.encode(math.exp(mid))
            if n + overhead <= budget:
                best = sections
                hi = mid
            else:
                lo = mid
            if hi - lo < 0.01:
                break
        if best is None:
            smallest = self.encode(math.exp(hi))[1] + overhead
            raise QualityError(
                f"bpp target of {8.0 * budget / (self.h * self.w):.4f} cannot be reached: the smallest "
                f"pca-patch file of this image is {smallest} bytes "
                f"({8.0 * smallest / (self.h * self.w):.4f} bpp); raise --bpp"
            )
        return best
