"""The ``pca-patch`` codec: a patch transform learned from each image.

Pipeline (encoder; the decoder runs the last steps backwards)::

    RGB -> YCbCr (JPEG matrix) -> chroma 4:2:0 or 4:4:4 (chosen per image)
        -> p x p patches per plane -> DCT domain
        -> PCA of the non-DC part (learned from this image; basis stored
           quantized in the DCT domain, sparse, only the components used)
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
from ._coder import MAX_COEF, decode_stream, encode_stream, rdoq
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
    nby, nbx, kp1 = qc.shape
    out = np.zeros((nby, nbx, p2))
    for by in range(nby):
        for bx in range(nbx):
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
        the best size of the patch-size study (docs/readme/pca_patch.md).
    chroma : {"auto", "420", "444"}, default="auto"
        Chroma subsampling; ``"auto"`` keeps the cheaper at equal quality.
    basis : {"auto", "pca", "dct"}, default="auto"
        ``"pca"``: learn the basis from each plane and store it; ``"dct"``:
        the fixed DCT (nothing stored); ``"auto"``: for luma, the one with
        the lower rate-distortion cost, basis bytes included (chroma: DCT).

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
        if self.basis not in ("auto", "pca", "dct"):
            raise UsageError(f"basis={self.basis!r} should be 'auto', 'pca' or 'dct'")
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
            if mode not in (_BASIS_DCT, _BASIS_PCA):
                raise CorruptFileError(f"unknown pca-patch basis mode {mode}")
            if not 3 <= bexp <= 10:
                raise CorruptFileError(f"pca-patch basis precision 2**-{bexp} out of range")
            if k > p * p - 1:
                raise CorruptFileError(f"pca-patch plane {i} claims {k} components for {p}x{p} patches")
            if rho > 127:
                raise CorruptFileError(f"pca-patch reconstruction offset {rho}/256 out of range")
            if dbk > MAX_STRENGTH:
                raise CorruptFileError(f"pca-patch deblocking strength {dbk} out of range (0..{MAX_STRENGTH})")
            planes.append({"patch": p, "basis": mode, "basis_exp": bexp, "components": k, "rho": rho,
                           "deblock": dbk})
        return {"subsample": bool(flags & _FLAG_420), "step": step, "chroma_step": cstep, "planes": planes}

    @classmethod
    def describe(cls, container):
        prm = cls._params(container)
        return {
            "chroma": "4:2:0" if prm["subsample"] else "4:4:4",
            "step": round(prm["step"], 4),
            "chroma_step": round(prm["chroma_step"], 4),
            "patch_sizes": [pl["patch"] for pl in prm["planes"]],
            "basis": ["pca" if pl["basis"] == _BASIS_PCA else "dct" for pl in prm["planes"]],
            "components": [pl["components"] for pl in prm["planes"]],
            "deblock": [pl["deblock"] for pl in prm["planes"]],
        }

    @classmethod
    def decode(cls, container):
        prm = cls._params(container)
        h, w, nch = container.height, container.width, container.channels
        shapes = _plane_shapes(h, w, nch, prm["subsample"])
        return _decode(container.section(b"PDAT"), prm, shapes, (h, w, nch))


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
        basis_shapes.append((stored, p * p))
        freqs.append(dct_freq(p))
        classes.append(_class_of(i))
        plane_shapes.append((nby, nbx, k + 1))
    limit = max((1 << pl["basis_exp"]) + 2 for pl in prm["planes"])
    bases, coefs = decode_stream(data, basis_shapes, freqs, classes, plane_shapes, basis_limit=limit)
    return _reconstruct(prm, shapes, bases, coefs, out_shape)


def _plane_patches(i, pl, prm, qb, qc):
    """One plane's integers -> its padded patch-grid plane (before deblocking)."""
    p, k = pl["patch"], pl["components"]
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


def _reconstruct(prm, shapes, bases, coefs, out_shape, grids=None):
    """Integers -> pixels; the encoder calls this too, so both agree exactly.

    ``grids`` may hold planes already synthesised by :func:`_plane_patches`.
    """
    planes = []
    for i, (pl, shape, qb, qc) in enumerate(zip(prm["planes"], shapes, bases, coefs)):
        grid = grids[i] if grids is not None else _plane_patches(i, pl, prm, qb, qc)
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
            else:
                kinds = [self.basis]
            self._models[key] = [_PlaneModel(plane, p, kind, _BASIS_EXP) for kind in kinds]
        return self._models[key]

    def _choose(self, i, subsample, p, step):
        """Quantize plane ``i`` with each candidate basis; keep the lowest D + lambda R.

        A learned basis is coded in full only when a cheap rate proxy says it
        could win; it rarely does on photos (see docs/readme/pca_patch.md).
        """
        models = self._models_for(i, subsample, p)
        cands = [(m,) + m.quantize(step) for m in models]
        if len(cands) == 1:
            return cands[0]
        proxies = [_rate_proxy(q, m.qbasis[:k] if m.mode == _BASIS_PCA else None)
                   + m.sse(q, k, rho, step) / (_lambda(step) * 1.0)
                   for m, q, k, rho in cands]
        dct = cands[0]
        if min(proxies[1:]) >= proxies[0] * 0.98:
            return dct
        best = None
        for m, q, k, rho in cands:
            qb = m.qbasis[:k] if m.mode == _BASIS_PCA else m.qbasis[:0]
            nbytes = len(encode_stream([qb], [dct_freq(m.p)], [_class_of(i)], [q]))
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
        bases, freqs, classes, coefs, grids = [], [], [], [], []
        for i, (m, q, k, rho) in enumerate(choices):
            pl = {"patch": m.p, "basis": m.mode, "basis_exp": m.basis_exp,
                  "components": k, "rho": rho, "deblock": 0}
            prm["planes"].append(pl)
            qb = m.qbasis[:k] if m.mode == _BASIS_PCA else m.qbasis[:0]
            bases.append(qb)
            freqs.append(dct_freq(m.p))
            classes.append(_class_of(i))
            coefs.append(q)
            key = (i, id(m), id(q))
            if key not in self._grids:
                # luma and alpha are shared by the chroma options: synthesise once
                grid = _plane_patches(i, pl, prm, qb, q)
                self._grids[key] = (grid, _best_deblock(grid, m, _plane_step(prm, i)), q)
            grid, pl["deblock"], _ = self._grids[key]
            grids.append(grid)
        return prm, bases, freqs, classes, coefs, grids

    def _sections(self, prm, bases, freqs, classes, coefs, grids=None):
        data = encode_stream(bases, freqs, classes, coefs)
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
            prm, bases, freqs, classes, coefs, grids = cfg
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
