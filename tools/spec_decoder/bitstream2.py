"""pca-patch bitstream 2 (docs/FORMAT.md §6), written from the specification alone.

Intra prediction in integer arithmetic, a quadtree of blocks from the root size
down to 4 x 4, levels of an N x N DCT, deblocking on leaf edges. Every function
cites the subsection it implements; the container, the range coder, the colour
conversion and the chroma upsampling are those of spec_decoder.py (§1, §2, 5.9).
"""

from __future__ import annotations

import numpy as np

from .spec_decoder import (
    BORDER_OFFSETS,
    CorruptError,
    Model,
    RangeDecoder,
    _need,
    dct_1d,
    edge_filter,
    parse_ppar_head,
    planes_to_pixels,
)

# 6.2 model layout (one model of 682 contexts per plane kind)
SPLIT, MPM_FLAG, MPM_IDX, REM_TREE = 0, 12, 16, 18
CFL_FLAG, CFL_ZERO, CFL_MAG = 50, 53, 54
CBF, LAST, SIG, GT1, GT2, REM = 70, 82, 126, 226, 326, 426
MODEL_SIZE = 682
LEVEL_LIMIT = 1 << 20
CFL = 35
DC, PLANAR = 1, 0

# 6.4 angles of modes 2 .. 34, and the inverse angles of the negative ones
ANGLES = [32, 26, 21, 17, 13, 9, 5, 2, 0, -2, -5, -9, -13, -17, -21, -26, -32,
          -26, -21, -17, -13, -9, -5, -2, 0, 2, 5, 9, 13, 17, 21, 26, 32]
INV_ANGLE = {-2: -4096, -5: -1638, -9: -910, -13: -630, -17: -482, -21: -390, -26: -315, -32: -256}


class Plane2:
    """One 4-byte plane record of PPAR version 2 (6.1) and its padded size."""

    def __init__(self, index: int, record: bytes, step: float, chroma_step: float):
        self.index = index
        self.log2max, self.log2min, self.rho, self.strength = record
        _need(2 <= self.log2min <= self.log2max <= 5,
              f"block sizes 2**{self.log2min}..2**{self.log2max} of plane {index} are not within 4..32")
        _need(self.rho <= 127, f"reconstruction offset {self.rho}/256 of plane {index} out of range")
        _need(self.strength <= 15, f"deblocking strength {self.strength} of plane {index} out of range")
        self.step = chroma_step if index in (1, 2) else step
        self.kind = {0: 0, 1: 1, 2: 1, 3: 2}[index]  # 6.2: luma, chroma, alpha


def parse_ppar2(ppar: bytes, channels: int):
    """6.1: the head of 5.2 (version 2), then 4 bytes per plane."""
    subsampled, step, chroma_step = parse_ppar_head(ppar, channels, 2)
    _need(len(ppar) == 11 + 4 * channels, f"PPAR section has {len(ppar)} bytes for {channels} planes")
    planes = [Plane2(i, ppar[11 + 4 * i : 15 + 4 * i], step, chroma_step) for i in range(channels)]
    return subsampled, planes


def scan_order(n: int) -> list[tuple[int, int]]:
    """6.3: the n^2 positions (u, v) by u + v, then u (the coordinate order of 5.3)."""
    return sorted(((u, v) for u in range(n) for v in range(n)), key=lambda uv: (uv[0] + uv[1], uv[0]))


def band(d: int) -> int:
    """6.3 band(u + v)."""
    return 0 if d == 0 else 1 if d <= 2 else 2 if d <= 5 else 3 if d <= 10 else 4


class PlaneDecoder:
    """Decodes one plane of bitstream 2: syntax (6.2, 6.3) and reconstruction (6.4)."""

    def __init__(self, rc: RangeDecoder, model: Model, pl: Plane2, hp: int, wp: int, luma: np.ndarray | None,
                 subsampled: bool, scans: dict, dcts: dict):
        self.rc, self.model, self.pl = rc, model, pl
        self.hp, self.wp = hp, wp
        self.luma, self.subsampled = luma, subsampled
        self.scans, self.dcts = scans, dcts
        self.rec = np.zeros((hp, wp), dtype=np.int64)  # 6.4: 1/8 of a sample, centred
        units = (hp // 4, wp // 4)
        self.done = np.zeros(units, dtype=bool)
        self.size = np.zeros(units, dtype=np.int64)
        self.mode = np.full(units, -1, dtype=np.int64)
        self.alpha = np.zeros(units, dtype=np.int64)
        self.cbf = np.zeros(units, dtype=bool)
        self.sigma = pl.step
        self.rho = pl.rho / 256

    def bit(self, c: int) -> int:
        return self.rc.bit(self.model, c)

    def decode(self) -> np.ndarray:
        """6.2: root blocks in raster order, each a quadtree node."""
        R = 1 << self.pl.log2max
        rc = self.rc
        for y0 in range(0, self.hp, R):
            for x0 in range(0, self.wp, R):
                self.node(y0, x0, self.pl.log2max)
                _need(rc.pos <= len(rc.data) + 8, "pca-patch bitstream-2 stream is truncated")
        return self.rec

    # -- 6.2 quadtree ----------------------------------------------------------------

    def _unit_is(self, uy: int, ux: int, attr: str):
        """The unit's attribute if the unit exists and is done, else None."""
        if uy < 0 or ux < 0 or uy >= self.done.shape[0] or ux >= self.done.shape[1] or not self.done[uy, ux]:
            return None
        return getattr(self, attr)[uy, ux]

    def node(self, y0: int, x0: int, log2n: int) -> None:
        if log2n > self.pl.log2min:
            ctx = 0
            for uy, ux in ((y0 // 4, x0 // 4 - 1), (y0 // 4 - 1, x0 // 4)):
                size = self._unit_is(uy, ux, "size")
                ctx += size is not None and size < log2n
            if self.bit(SPLIT + 3 * (log2n - 2) + ctx):
                h = 1 << (log2n - 1)
                self.node(y0, x0, log2n - 1)
                self.node(y0, x0 + h, log2n - 1)
                self.node(y0 + h, x0, log2n - 1)
                self.node(y0 + h, x0 + h, log2n - 1)
                return
        self.leaf(y0, x0, log2n)

    # -- 6.3 leaf syntax -------------------------------------------------------------

    def read_mode(self, y0: int, x0: int, log2n: int) -> tuple[int, int]:
        """6.3 Mode: returns (mode, CfL alpha)."""
        n = 1 << log2n
        A = self._unit_is((y0 + n - 1) // 4, x0 // 4 - 1, "mode")
        B = self._unit_is(y0 // 4 - 1, (x0 + n - 1) // 4, "mode")
        A = -1 if A is None else int(A)
        B = -1 if B is None else int(B)
        if self.pl.index in (1, 2):
            if self.bit(CFL_FLAG + (A == CFL) + (B == CFL)):
                if self.bit(CFL_ZERO):
                    return CFL, 0
                neg = self.rc.direct()
                a = 1
                while a < 16 and self.bit(CFL_MAG + a):
                    a += 1
                return CFL, -a if neg else a
        A = DC if A in (-1, CFL) else A
        B = DC if B in (-1, CFL) else B
        if A == B:
            mpm = (0, 1, 26) if A < 2 else (A, 2 + ((A + 29) % 32), 2 + ((A - 1) % 32))
        else:
            C = 0 if A != 0 and B != 0 else (1 if A != 1 and B != 1 else 26)
            mpm = (A, B, C)
        s = log2n - 2
        if self.bit(MPM_FLAG + s):
            if self.bit(MPM_IDX) == 0:
                return mpm[0], 0
            return (mpm[1], 0) if self.bit(MPM_IDX + 1) == 0 else (mpm[2], 0)
        m = 1
        for _ in range(5):  # a 5-bit binary tree, most significant bit first
            m = 2 * m + self.bit(REM_TREE + m)
        r = m - 32
        for v in sorted(mpm):
            if r >= v:
                r += 1
        return r, 0

    def read_levels(self, y0: int, x0: int, log2n: int) -> np.ndarray | None:
        """6.3 Levels: the n x n levels lev[u][v], or None when the coded-block flag is 0."""
        n = 1 << log2n
        s = log2n - 2
        rc, bit = self.rc, self.bit
        ctx = sum(bool(self._unit_is(uy, ux, "cbf")) for uy, ux in ((y0 // 4, x0 // 4 - 1), (y0 // 4 - 1, x0 // 4)))
        if bit(CBF + 3 * s + ctx) == 0:
            return None
        g = 0
        while g < 2 * (s + 2) and bit(LAST + 11 * s + g):
            g += 1
        if g < 2:
            last = g
        else:
            last = 1 << (g - 1)
            extra = 0
            for _ in range(g - 1):
                extra = (extra << 1) | rc.direct()
            last += extra
        lev = [[0] * (n + 2) for _ in range(n + 2)]  # two zero rows and columns past the block
        scan = self.scans[n]
        base = 25 * s
        for pos in range(last, -1, -1):
            u, v = scan[pos]
            row, row1, row2 = lev[u], lev[u + 1], lev[u + 2]
            t = abs(row1[v]) + abs(row1[v + 1]) + abs(row2[v]) + abs(row[v + 1]) + abs(row[v + 2])
            ctx = base + 5 * band(u + v) + (t if t < 4 else 4)
            if pos < last and bit(SIG + ctx) == 0:
                continue
            neg = rc.direct()
            a = 1
            if bit(GT1 + ctx):
                a = 2
                if bit(GT2 + ctx):
                    e = rc.exp_golomb(self.model, REM + 64 * s)
                    _need(0 <= e <= LEVEL_LIMIT, "level remainder out of range")
                    a = 3 + e
            row[v] = -a if neg else a
        return np.array([r[:n] for r in lev[:n]], dtype=np.int64)

    def leaf(self, y0: int, x0: int, log2n: int) -> None:
        n = 1 << log2n
        mode, alpha = self.read_mode(y0, x0, log2n)
        lev = self.read_levels(y0, x0, log2n)
        pred = self.predict(y0, x0, log2n, mode, alpha)
        residual = 0 if lev is None else self.residual(lev, n)  # no levels: r = 0.0, rnd(r) = 0
        block = np.clip(pred + residual, -1024, 1024)
        self.rec[y0 : y0 + n, x0 : x0 + n] = block
        u = (slice(y0 // 4, (y0 + n) // 4), slice(x0 // 4, (x0 + n) // 4))
        self.done[u] = True
        self.size[u] = log2n
        self.mode[u] = mode
        self.alpha[u] = alpha
        self.cbf[u] = lev is not None and bool(np.any(lev))

    # -- 6.4 prediction and reconstruction ---------------------------------------------

    def references(self, y0: int, x0: int, n: int) -> list[int]:
        """6.4 References: 4n + 1 integers, the corner at index 2n."""
        c = 2 * n
        ref: list[int | None] = [None] * (4 * n + 1)
        if x0 > 0:
            ux = (x0 - 1) // 4
            for i in range(2 * n):
                y = y0 + i
                if y < self.hp and self.done[y // 4, ux]:
                    ref[c - 1 - i] = int(self.rec[y, x0 - 1])
        if y0 > 0:
            uy = (y0 - 1) // 4
            for i in range(2 * n):
                x = x0 + i
                if x < self.wp and self.done[uy, x // 4]:
                    ref[c + 1 + i] = int(self.rec[y0 - 1, x])
        if x0 > 0 and y0 > 0:
            ref[c] = int(self.rec[y0 - 1, x0 - 1])
        first = next((v for v in ref if v is not None), None)
        if first is None:
            return [0] * (4 * n + 1)
        out = []
        prev = first
        for v in ref:
            prev = prev if v is None else v
            out.append(prev)
        return out

    def predict(self, y0: int, x0: int, log2n: int, mode: int, alpha: int) -> np.ndarray:
        n = 1 << log2n
        c = 2 * n
        ref = self.references(y0, x0, n)
        if mode in (DC, CFL):
            dc = (sum(ref[c - 1 - i] for i in range(n)) + sum(ref[c + 1 + i] for i in range(n)) + n) >> (log2n + 1)
            if mode == DC:
                return np.full((n, n), dc, dtype=np.int64)
            return dc + ((alpha * (self.cfl_luma(y0, x0, n, log2n)) + 4) >> 3)
        if mode == PLANAR:
            y = np.arange(n)[:, None]
            x = np.arange(n)[None, :]
            left = np.array([ref[c - 1 - i] for i in range(n)], dtype=np.int64)[:, None]
            top = np.array([ref[c + 1 + i] for i in range(n)], dtype=np.int64)[None, :]
            return ((n - 1 - x) * left + (x + 1) * ref[c + 1 + n] + (n - 1 - y) * top + (y + 1) * ref[c - 1 - n]
                    + n) >> (log2n + 1)
        A = ANGLES[mode - 2]
        vertical = mode >= 18
        sign = 1 if vertical else -1
        main = {k: ref[c + sign * k] for k in range(2 * n + 1)}
        lo = (n * A) >> 5
        if lo < -1:
            inv = INV_ANGLE[A]
            for k in range(lo, 0):
                j = (k * inv + 128) >> 8
                main[k] = ref[c - sign * j]
        pred = np.empty((n, n), dtype=np.int64)
        for a in range(n):
            pos = (a + 1) * A
            i, f = pos >> 5, pos & 31
            for b in range(n):
                k = b + i + 1
                value = main[k] if f == 0 else ((32 - f) * main[k] + f * main[k + 1] + 16) >> 5
                if vertical:
                    pred[a, b] = value
                else:
                    pred[b, a] = value
        return pred

    def cfl_luma(self, y0: int, x0: int, n: int, log2n: int) -> np.ndarray:
        """6.4 mode 35: L - mean, L the co-located luma reconstruction."""
        Y = self.luma
        if self.subsampled:
            q = Y[2 * y0 : 2 * y0 + 2 * n, 2 * x0 : 2 * x0 + 2 * n]
            L = (q[0::2, 0::2] + q[0::2, 1::2] + q[1::2, 0::2] + q[1::2, 1::2] + 2) >> 2
        else:
            L = Y[y0 : y0 + n, x0 : x0 + n]
        mean = (int(L.sum()) + n * n // 2) >> (2 * log2n)
        return L - mean

    def residual(self, lev: np.ndarray, n: int) -> np.ndarray:
        """6.4 Reconstruction: rnd(clip(8 · inverse DCT of the dequantized levels))."""
        cm = self.dcts[n]
        sigma, rho = self.sigma, self.rho
        levf = lev.astype(np.float64)
        coef = np.where(lev > 0, (levf - rho) * sigma, np.where(lev < 0, (levf + rho) * sigma, 0.0))
        tmp = np.zeros((n, n))
        for v in range(n):  # tmp[u][x] += coef[u][v] c(v, x), v in order (a zero coef adds a zero)
            tmp = tmp + coef[:, v : v + 1] * cm[v][None, :]
        r = np.zeros((n, n))
        for u in range(n):  # r[y][x] += c(u, y) tmp[u][x], u in order
            r = r + cm[u][:, None] * tmp[u][None, :]
        r = np.clip(r * 8.0, -4096.0, 4096.0)
        return np.rint(r).astype(np.int64)


def deblock_leaf_edges(plane: np.ndarray, size: np.ndarray, sigma: float, s: int) -> None:
    """6.5: the filter of 5.9 on leaf edges, in place (plane float64, size per 4 x 4 unit)."""
    unit = (sigma / 8.0) * s
    th = (1.2 * unit, 0.3 * unit, 0.3 * unit)
    hp, wp = plane.shape
    rows_unit = np.arange(hp) // 4
    cols_unit = np.arange(wp) // 4
    for x0 in range(4, wp - 2, 4):
        on = x0 % (1 << size[rows_unit, x0 // 4]) == 0
        if not on.any():
            continue
        old = [plane[:, x0 + o].copy() for o in BORDER_OFFSETS]
        for o, col, new in zip(BORDER_OFFSETS, old, edge_filter(*old, *th)):
            plane[:, x0 + o] = np.where(on, new, col)
    for y0 in range(4, hp - 2, 4):
        on = y0 % (1 << size[y0 // 4, cols_unit]) == 0
        if not on.any():
            continue
        old = [plane[y0 + o, :].copy() for o in BORDER_OFFSETS]
        for o, row, new in zip(BORDER_OFFSETS, old, edge_filter(*old, *th)):
            plane[y0 + o, :] = np.where(on, new, row)


def decode_bitstream2(ppar: bytes, pdat: bytes, channels: int, height: int, width: int) -> np.ndarray:
    """§6: decode a pca-patch file whose PPAR has version 2."""
    subsampled, planes = parse_ppar2(ppar, channels)
    m = 64 if subsampled else 32
    Hp, Wp = -(-height // m) * m, -(-width // m) * m
    rc = RangeDecoder(pdat)
    models = [Model(MODEL_SIZE) for _ in range(3)]
    scans = {n: scan_order(n) for n in (4, 8, 16, 32)}
    dcts = {n: dct_1d(n) for n in (4, 8, 16, 32)}
    out_planes = []
    luma = None
    for pl in planes:
        chroma = pl.index in (1, 2)
        hp, wp = (Hp // 2, Wp // 2) if chroma and subsampled else (Hp, Wp)
        dec = PlaneDecoder(rc, models[pl.kind], pl, hp, wp, luma, subsampled, scans, dcts)
        rec = dec.decode()
        if pl.index == 0:
            luma = rec
        plane = rec / 8.0
        if pl.strength > 0:
            deblock_leaf_edges(plane, dec.size, pl.step, pl.strength)
        h, w = ((height + 1) // 2, (width + 1) // 2) if chroma and subsampled else (height, width)
        out_planes.append(plane[:h, :w])
    _need(not rc.overrun, "pca-patch bitstream-2 stream is truncated")
    return planes_to_pixels(out_planes, subsampled, height, width)


__all__ = ["decode_bitstream2", "CorruptError"]
