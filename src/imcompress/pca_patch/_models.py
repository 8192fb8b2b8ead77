"""Encoder-side models of one plane at one patch size: a basis and its levels.

:class:`PlaneModel` holds a plane's patches in the DCT domain and one basis
(the DCT, or the PCA learned from the plane); :class:`ClassifiedModel` gives
each luma block one of several bases (the DCT and a few KLTs learned per
class). Both quantize at a step and report what the file would store.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._errors import UsageError
from ._coder import MAX_COEF
from ._params import BASIS_CLS, BASIS_DCT, BASIS_PCA, n_learned
from ._quantize import AC_ROUND, RDOQ_LAMBDA, block_costs, fit_rho, lagrangian, used_components
from ._rdoq import rdoq
from ._transform import dct_matrix, from_patches, learn_basis, quantize_basis, to_patches

__all__ = ["ClassifiedModel", "PlaneModel"]

#: Classes of ``basis="classified"`` (DCT + 3 learned) and its refinement passes.
N_CLASSES = 4
_CLS_ITERS = 3
#: Extra bits charged (in the encoder's choice) for a class change along a row.
_CLS_SWITCH_BITS = 6.0


class PlaneModel:
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
            self.mode = BASIS_PCA
            self.qbasis, self.basis = quantize_basis(target, 2.0**-basis_exp)
        else:
            self.mode = BASIS_DCT
            pp = p * p
            self.qbasis = np.zeros((pp - 1, pp), dtype=np.int32)
            self.qbasis[np.arange(pp - 1), np.arange(1, pp)] = 1
            self.basis = self.qbasis.astype(np.float64)
        self.ac = d @ self.basis.T  # (n, P-1) coefficients on the basis
        self.cmap = None

    @property
    def n_classes(self) -> int:
        return self.mode & 0x0F if self.mode & BASIS_CLS else 0

    def stored(self, k):
        """Integer basis the file stores for K = ``k`` components."""
        return self.qbasis[:k] if self.mode == BASIS_PCA else self.qbasis[:0]

    def quantize(self, step: float):
        """Levels (nby, nbx, K + 1), the number K of components kept, and rho (1/256)."""
        qdc = np.rint(self.dc / step).astype(np.int32)
        a = np.abs(self.ac) / step
        qac = (np.sign(self.ac) * np.floor(a + AC_ROUND)).astype(np.int32)
        k = used_components(qac)
        qac = qac[:, :k]
        rho_q = fit_rho(qac, a[:, :k])
        q = np.empty((self.dc.size, k + 1), dtype=np.int32)
        q[:, 0] = qdc
        q[:, 1:] = qac
        if np.abs(q).max(initial=0) > MAX_COEF:
            raise UsageError(f"step {step} too fine for this image; use a lower quality")
        q = q.reshape(self.grid + (k + 1,))
        if k:
            rdoq(q, a[:, :k].reshape(self.grid + (k,)), rho_q / 256.0, RDOQ_LAMBDA)
            flat = q.reshape(-1, k + 1)
            k2 = used_components(flat[:, 1:])
            rho_q = fit_rho(flat[:, 1 : k2 + 1], a[:, :k2])
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


class ClassifiedModel(PlaneModel):
    """Several bases per plane: the DCT (class 0) and KLTs learned per class.

    At each step: blocks are clustered (K-means on their normalised AC energy
    profile in the DCT domain), a KLT is learned per class, and each block
    then moves to the basis that codes it cheapest (D + lambda R proxy),
    for a few passes. A learned class whose gain does not pay for its stored
    basis is dropped (its blocks go back to the DCT).
    """

    def __init__(self, plane, p, basis_exp, n_classes=N_CLASSES):
        super().__init__(plane, p, "dct", basis_exp)
        self.classes = n_classes
        self.d_ac = self.ac.copy()  # identity basis: DCT AC coefficients
        self._cache = {}

    def _learn(self, step):
        from sklearn.cluster import KMeans

        pp = self.p * self.p
        nl = n_learned(self.p)
        a = self.d_ac
        n = a.shape[0]
        e = a * a
        tot = e.sum(axis=1)
        active = tot > 4.0 * step * step
        cmap = np.zeros(n, dtype=np.int64)
        n_learn = self.classes - 1
        if active.sum() < 8 * n_learn:
            return cmap, []
        prof = np.sqrt(e[active] / tot[active, None])
        km = KMeans(n_clusters=n_learn, n_init=1, random_state=0, max_iter=50).fit(prof)
        cmap[active] = km.labels_ + 1
        step_b = 2.0**-self.basis_exp
        lam = lagrangian(step)
        bases = []
        lo = a[:, :nl]
        base_cost = block_costs(a[:, nl:], step)
        for _ in range(_CLS_ITERS):
            bases, costs = [], [block_costs(lo, step) + base_cost]
            for c in range(1, self.classes):
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
                costs.append(block_costs(lo @ dec[:, 1 : nl + 1].T, step) + base_cost)
            costs = np.array(costs)
            # the class map's bits: -log2 of each class's share
            share = np.bincount(cmap, minlength=self.classes) + 1.0
            costs += lam * -np.log2(share / share.sum())[:, None]
            cmap = _assign_smooth(np.ascontiguousarray(costs), self.grid[1], lam * _CLS_SWITCH_BITS)
            # drop classes whose gain over the DCT does not pay for the basis
            for c in range(1, self.classes):
                if bases[c - 1] is None:
                    continue
                sel = cmap == c
                gain = float(np.sum(costs[0, sel] - costs[c, sel]))
                if gain < lam * 6.0 * np.count_nonzero(bases[c - 1][0]):
                    cmap[sel] = 0
                    bases[c - 1] = None
        # renumber the surviving classes 1..
        keep = [c for c in range(1, self.classes) if bases[c - 1] is not None and np.any(cmap == c)]
        remap = np.zeros(self.classes, dtype=np.int64)
        for j, c in enumerate(keep):
            remap[c] = j + 1
        return remap[cmap], [bases[c - 1] for c in keep]

    def quantize(self, step):
        if step not in self._cache:
            cmap, bases = self._learn(step)
            ac = self.d_ac.copy()
            nl = n_learned(self.p)
            for j, (_, dec) in enumerate(bases):
                sel = cmap == j + 1
                ac[sel, :nl] = self.d_ac[sel, :nl] @ dec[:, 1 : nl + 1].T
            self._cache = {step: (cmap, bases, ac)}
        cmap, bases, ac = self._cache[step]
        self.ac = ac
        if bases:
            self.mode = BASIS_CLS | (len(bases) + 1)
            self.cmap = cmap.reshape(self.grid).astype(np.int32)
            self.qbasis = np.stack([b[0] for b in bases])
        else:
            self.mode = BASIS_DCT
            self.cmap = None
        return super().quantize(step)

    def stored(self, k):
        if self.mode == BASIS_DCT:
            return np.zeros((0, self.p * self.p), dtype=np.int32)
        return np.ascontiguousarray(self.qbasis[:, : min(k, n_learned(self.p))])
