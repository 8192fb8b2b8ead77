"""A second decoder of the `.imc` format, written from docs/FORMAT.md alone.

Every function below cites the section of docs/FORMAT.md it implements. It
never imports imcompress: it is the independent reference that shows the
specification is complete. Plain Python and NumPy; the entropy decoding is a
Python loop (slow, readable), the pixel arithmetic is vectorised with NumPy
where the order of float64 operations stays the one the specification writes.

    from tools.spec_decoder import decode, SpecDecodeError
    pixels = decode(open("a.imc", "rb").read())   # (H, W, C) uint8
"""

from __future__ import annotations

import math
import os
import struct
import zlib

import numpy as np

__all__ = ["decode", "SpecDecodeError", "CorruptError", "UnsupportedError"]


class SpecDecodeError(Exception):
    """The file is refused (base class of the two kinds below)."""


class CorruptError(SpecDecodeError):
    """Damaged or invalid file (imcompress: CorruptFileError)."""


class UnsupportedError(SpecDecodeError):
    """A newer format version (imcompress: UnsupportedVersionError)."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise CorruptError(message)


# ---------------------------------------------------------------------------
# §2 The adaptive binary range coder
# ---------------------------------------------------------------------------


class Model:
    """An array of contexts: two probability estimates of a 0 and a count."""

    def __init__(self, size: int):
        self.pf = [32768] * size
        self.ps = [32768] * size
        self.n = [0] * size


class RangeDecoder:
    """§2: the decoder side of the LZMA-style binary range coder."""

    def __init__(self, payload: bytes):
        self.data = payload
        self.pos = 0
        self.overrun = False  # set when a byte past the end of the payload was read
        self.range = 0xFFFFFFFF
        code = 0
        for _ in range(5):
            code = ((code << 8) | self._byte()) & 0xFFFFFFFF
        self.code = code

    def _byte(self) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < len(self.data):
            return self.data[pos]
        self.overrun = True
        return 0

    def _normalize(self) -> None:
        while self.range < 0x1000000:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF

    def bit(self, model: Model, c: int) -> int:
        pf, ps, cnt = model.pf[c], model.ps[c], model.n[c]
        p = (pf + ps) >> 1
        p = 31 if p < 31 else (65505 if p > 65505 else p)
        bound = (self.range >> 16) * p
        if self.code < bound:
            self.range = bound
            b = 0
        else:
            self.code -= bound
            self.range -= bound
            b = 1
        df = cnt + 2 if cnt + 2 < 20 else 20
        ds = cnt + 2 if cnt + 2 < 160 else 160
        if b == 0:
            model.pf[c] = pf + (65536 - pf) // df
            model.ps[c] = ps + (65536 - ps) // ds
        else:
            model.pf[c] = pf - pf // df
            model.ps[c] = ps - ps // ds
        if cnt < 160:
            model.n[c] = cnt + 1
        if self.range < 0x1000000:
            self._normalize()
        return b

    def direct(self) -> int:
        self.range >>= 1
        if self.code >= self.range:
            self.code -= self.range
            b = 1
        else:
            b = 0
        if self.range < 0x1000000:
            self._normalize()
        return b

    def exp_golomb(self, model: Model, base: int) -> int:
        """Adaptive Exp-Golomb value with contexts base .. base + 63 (-1: damaged)."""
        k = 0
        while self.bit(model, base + (k if k < 23 else 23)):
            k += 1
            if k > 30:
                return -1
        if k == 0:
            return 0
        v = 2 | self.bit(model, base + 24 + k)
        for _ in range(k - 1):
            v = (v << 1) | self.direct()
        return v - 1


# ---------------------------------------------------------------------------
# §1 Container
# ---------------------------------------------------------------------------

MAGIC = b"\x89IMC"
MAX_PIXELS_DEFAULT = 100_000_000


def _max_pixels() -> int:
    value = os.environ.get("IMCOMPRESS_MAX_PIXELS")
    if value is None:
        return MAX_PIXELS_DEFAULT
    try:
        return int(value)
    except ValueError:
        return MAX_PIXELS_DEFAULT


def parse_container(data: bytes):
    """§1: check the container; return (method, channels, H, W, sections by tag)."""
    _need(len(data) >= 4 and data[:4] == MAGIC, "wrong magic: not an .imc file")
    # shorter than header + CRC: damaged, whatever byte 4 holds (it may be a CRC byte)
    _need(len(data) >= 21, f"truncated: {len(data)} bytes is shorter than the header and checksum")
    version = data[4]
    if version > 1:
        raise UnsupportedError(f"format version {version} is newer than this decoder: upgrade imcompress")
    _need(version == 1, f"format version {version} is invalid")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    _need(zlib.crc32(data[:-4]) & 0xFFFFFFFF == crc, "checksum mismatch")
    method, channels, flags = data[5], data[6], data[7]
    height, width = struct.unpack_from("<II", data, 8)
    _need(channels in (3, 4), f"invalid channel count {channels}")
    _need(flags == 0, f"unknown header flags {flags:#x}")
    _need(1 <= height <= 65536 and 1 <= width <= 65536, f"invalid dimensions {height}x{width}")
    _need(height * width <= _max_pixels(), f"{height}x{width} exceeds the pixel limit")
    count = data[16]
    _need(count <= 32, f"section count {count} > 32")
    end = len(data) - 4
    pos = 17
    sections: dict[bytes, bytes] = {}
    for _ in range(count):
        _need(pos + 8 <= end, "section header past the end of the file")
        tag = bytes(data[pos : pos + 4])
        (length,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8
        _need(pos + length <= end, f"section {tag!r} past the end of the file")
        sections.setdefault(tag, bytes(data[pos : pos + length]))
        pos += length
    _need(pos == end, "unexpected bytes after the last section")
    _need(method in (1, 2, 3), f"unknown method id {method}")
    return method, channels, height, width, sections


def _section(sections: dict, tag: bytes) -> bytes:
    _need(tag in sections, f"missing section {tag.decode('ascii')!r}")
    return sections[tag]


def decode(data: bytes) -> np.ndarray:
    """Decode an `.imc` file to its (H, W, C) uint8 pixels, or raise SpecDecodeError."""
    data = bytes(data)
    method, channels, height, width, sections = parse_container(data)
    if method == 1:
        return decode_kmeans(sections, channels, height, width)
    if method == 2:
        return decode_pca_rows(sections, channels, height, width)
    return decode_pca_patch(sections, channels, height, width)


# ---------------------------------------------------------------------------
# §3 Method 1: kmeans, and the index-plane model (also used by pca-rows ALPH)
# ---------------------------------------------------------------------------


def decode_index_plane(payload: bytes, palette: np.ndarray, height: int, width: int) -> np.ndarray:
    """§3 "Index-plane model (coder 1)": an H x W plane of indices into `palette` (K x C)."""
    K = palette.shape[0]
    _need(height * width <= 12000 * (len(payload) + 8), "index plane payload too short (truncated)")
    pal = palette.astype(np.int64)
    rc = RangeDecoder(payload)
    model = Model(1280)
    bit = rc.bit
    order_cache: dict[tuple[int, int], list[int]] = {}
    idx = [[0] * width for _ in range(height)]
    prev = 0
    for y in range(height):
        row = idx[y]
        up = idx[y - 1] if y > 0 else None
        for x in range(width):
            if y == 0:
                L = U = UL = UR = row[x - 1] if x > 0 else 0
            else:
                U = up[x]
                L = row[x - 1] if x > 0 else U
                UL = up[x - 1] if x > 0 else U
                UR = up[x + 1] if x < width - 1 else U
            e = (L == U) + 2 * (U == UL) + 4 * (U == UR) + 8 * (L == UL)
            c = 4 * e + prev
            if bit(model, c):
                value, prev = L, 1
            elif U != L and bit(model, 64 + c):
                value, prev = U, 2
            elif UR != L and UR != U and bit(model, 128 + c):
                value, prev = UR, 3
            elif UL != L and UL != U and UL != UR and bit(model, 192 + c):
                value, prev = UL, 3
            else:
                r = rc.exp_golomb(model, 256 + 64 * e)
                _need(r >= 0, "damaged Exp-Golomb code in the index plane")
                order = order_cache.get((L, U))
                if order is None:
                    d = ((2 * pal - pal[L] - pal[U]) ** 2).sum(axis=1)
                    order = np.lexsort((np.arange(K), d)).tolist()  # by (d_j, j)
                    order_cache[(L, U)] = order
                excluded = {L, U, UR, UL}
                value = -1
                for j in order:
                    if j in excluded:
                        continue
                    if r == 0:
                        value = j
                        break
                    r -= 1
                _need(value >= 0, "palette rank out of range")
                prev = 0
            row[x] = value
    _need(not rc.overrun, "index plane is truncated")
    return np.array(idx, dtype=np.int64).reshape(height, width)


def decode_kmeans(sections: dict, channels: int, height: int, width: int) -> np.ndarray:
    kpar = _section(sections, b"KPAR")
    _need(len(kpar) == 7, f"KPAR has {len(kpar)} bytes, expected 7")
    coder, pal_channels, K, flags, strength = struct.unpack("<BBHBH", kpar)
    _need(coder == 1, f"unknown kmeans coder {coder}")
    _need(pal_channels == channels, "palette channels differ from the header's")
    _need(1 <= K <= 256, f"palette size {K} out of range")
    _need(flags & ~3 == 0, f"unknown kmeans flags {flags:#x}")
    _need(strength <= 1000, f"dither strength {strength} out of range")
    plte = _section(sections, b"PLTE")
    _need(len(plte) == K * channels, f"PLTE has {len(plte)} bytes, expected {K * channels}")
    idxs = _section(sections, b"IDXS")
    palette = np.frombuffer(plte, dtype=np.uint8).reshape(K, channels)
    index = decode_index_plane(idxs, palette, height, width)
    return palette[index]


# ---------------------------------------------------------------------------
# §4 Method 2: pca-rows
# ---------------------------------------------------------------------------


def _unsigned_to_signed(u: int) -> int:
    return u >> 1 if u % 2 == 0 else -((u + 1) >> 1)


def decode_pca_rows(sections: dict, channels: int, height: int, width: int) -> np.ndarray:
    rpar = _section(sections, b"RPAR")
    _need(len(rpar) == 32, f"RPAR has {len(rpar)} bytes, expected 32")
    coder, flags = rpar[0], rpar[1]
    ns = struct.unpack_from("<3H", rpar, 2)
    score_steps = [float(s) for s in struct.unpack_from("<3f", rpar, 8)]
    axis_steps = [float(s) for s in struct.unpack_from("<3f", rpar, 20)]
    _need(coder == 1, f"unknown pca-rows coder {coder}")
    _need(flags & ~1 == 0, f"unknown pca-rows flags {flags:#x}")
    _need((flags & 1) == (channels == 4), "alpha flag disagrees with the header's channels")
    for n in ns:
        _need(1 <= n <= min(height, width), f"component count {n} out of range")
    for s in score_steps + axis_steps:
        _need(math.isfinite(s) and 0 < s < 1e6, f"step {s} out of range")
    rdat = _section(sections, b"RDAT")
    total = sum(width + n * width + height * n for n in ns)
    _need(total <= 12000 * (len(rdat) + 8), "RDAT too short for its values (truncated)")
    rc = RangeDecoder(rdat)
    model = Model(33 * 64)

    def values(count: int, s: int) -> np.ndarray:
        out = np.empty(count, dtype=np.float64)
        for i in range(count):
            u = rc.exp_golomb(model, 64 * s)
            _need(u >= 0, "damaged Exp-Golomb code in RDAT")
            out[i] = _unsigned_to_signed(u)
        return out

    planes = []
    for c in range(3):
        n = ns[c]
        M = np.cumsum(values(width, 0))  # integers: exact in float64
        V = np.stack([values(width, 1 + min(k, 15)) for k in range(n)]) * axis_steps[c]
        S = np.stack([values(height, 17 + min(k, 15)) for k in range(n)], axis=1) * score_steps[c]
        # §4 fixes the order: k = 0 .. n-1 left to right, then the mean
        X = S[:, :1] * V[:1]
        for k in range(1, n):
            X = X + S[:, k:k + 1] * V[k:k + 1]
        X = X + M / 16
        planes.append(np.clip(np.rint(X), 0, 255).astype(np.uint8))
    _need(not rc.overrun, "RDAT is truncated")
    if channels == 4:
        alph = _section(sections, b"ALPH")
        _need(len(alph) >= 1, "ALPH is empty")
        k = alph[0] + 1
        _need(len(alph) >= 1 + k, "ALPH too short for its alpha values")
        levels = np.frombuffer(alph[1 : 1 + k], dtype=np.uint8)
        index = decode_index_plane(alph[1 + k :], levels.reshape(k, 1), height, width)
        planes.append(levels[index])
    return np.stack(planes, axis=2)


# ---------------------------------------------------------------------------
# §5 Method 3: pca-patch
# ---------------------------------------------------------------------------

# 5.4 model layout
CTX_DC_ZERO, CTX_DC_UNARY, CTX_DC_ESC = 0, 6, 90
CTX_CBF, CTX_SIG, CTX_LAST, CTX_AC_UNARY, CTX_AC_ESC = 154, 163, 1075, 1189, 2029
CTX_BASIS_ZERO, CTX_BASIS_MAG, CTX_CLS_SAME, CTX_CLS_TREE = 2093, 2157, 2221, 2224
MODEL_SIZE = 2232
LEVEL_LIMIT = 1 << 20
L_OF_P = {4: 5, 8: 14, 16: 44}


def dct_order(p: int) -> list[tuple[int, int]]:
    """5.3: coordinate index t -> (u, v), by increasing u + v, ties by increasing u."""
    return sorted(((u, v) for u in range(p) for v in range(p)), key=lambda uv: (uv[0] + uv[1], uv[0]))


def dct_1d(p: int) -> np.ndarray:
    """5.3: c(u, n), the 1-D DCT-II of side p rounded to 2^-40 (p x p float64, row u)."""
    n = np.arange(p)
    c = np.empty((p, p))
    for u in range(p):
        x = math.sqrt(1 / p) if u == 0 else math.sqrt(2 / p) * np.cos(np.pi * (2 * n + 1) * u / (2 * p))
        c[u] = np.rint(np.asarray(x, dtype=np.float64) * 2.0**40) / 2.0**40
    return c


def dct_images(p: int) -> np.ndarray:
    """5.3: D[t], the p^2 flattened 2-D DCT basis images (p^2 x p^2, float64)."""
    c = dct_1d(p)
    D = np.empty((p * p, p * p))
    for t, (u, v) in enumerate(dct_order(p)):
        D[t] = (c[u][:, None] * c[v][None, :]).reshape(-1)
    return D


def _band(k: int) -> int:
    if k < 16:
        return k
    if k < 48:
        return 16 + (k - 16) // 4
    return min(37, 24 + (k - 48) // 16)


def _band5(k: int) -> int:
    if k == 0:
        return 0
    if k <= 2:
        return 1
    if k <= 7:
        return 2
    if k <= 19:
        return 3
    return 4


def _nbc(m: int) -> int:
    return 0 if m == 0 else 1 if m == 1 else 2 if m <= 3 else 3


def _act(g: int) -> int:
    return min(5, g.bit_length())


class Plane:
    """One plane record of PPAR (5.2) and what is derived from it."""

    def __init__(self, index: int, record: bytes, step: float, chroma_step: float):
        self.index = index
        self.log2p, self.mode, self.e = record[0], record[1], record[2]
        (self.K,) = struct.unpack_from("<H", record, 3)
        self.rho, self.strength = record[5], record[6]
        _need(self.log2p in (2, 3, 4), f"patch size 2^{self.log2p} of plane {index} unsupported")
        self.p = 1 << self.log2p
        _need(self.mode in (0, 1) or 0x12 <= self.mode <= 0x18, f"unknown pca-patch basis mode {self.mode:#x}")
        _need(3 <= self.e <= 10, f"basis precision {self.e} out of range")
        _need(self.K <= self.p * self.p - 1, f"K = {self.K} too large for p = {self.p}")
        _need(self.rho <= 127, f"rho {self.rho} out of range")
        _need(self.strength <= 15, f"deblocking strength {self.strength} out of range")
        self.classes = self.mode - 0x10 if self.mode >= 0x12 else 1
        self.step = chroma_step if index in (1, 2) else step
        self.model_class = {0: 0, 1: 1, 2: 1, 3: 2}[index]  # 5.4: luma, chroma, alpha

    def size(self, height: int, width: int, subsampled: bool) -> tuple[int, int]:
        if subsampled and self.index in (1, 2):
            return (height + 1) // 2, (width + 1) // 2
        return height, width


def parse_ppar_head(ppar: bytes, channels: int, version: int) -> tuple[bool, float, float]:
    """5.2 (and 6.1): the 11-byte head, checks in the order the specification lists them.

    Returns (4:2:0, step, chroma_step)."""
    _need(len(ppar) >= 11, f"PPAR has {len(ppar)} bytes, fewer than 11")
    _need(ppar[0] == version, f"unknown PPAR parameter version {ppar[0]}")
    flags, count = ppar[1], ppar[2]
    _need(flags & ~1 == 0, f"unknown PPAR flags {flags:#x}")
    _need(count == channels, f"PPAR plane count {count} differs from the header's {channels} channels")
    step, chroma_step = (float(s) for s in struct.unpack_from("<2f", ppar, 3))
    for s in (step, chroma_step):
        _need(math.isfinite(s) and 0.001 <= s <= 100000, f"quantizer step {s} out of range")
    return bool(flags & 1), step, chroma_step


def parse_ppar(ppar: bytes, channels: int):
    """5.2, checks in the order the specification lists them."""
    subsampled, step, chroma_step = parse_ppar_head(ppar, channels, 1)
    count = channels
    _need(len(ppar) == 11 + 7 * count, f"PPAR section has {len(ppar)} bytes for {count} planes")
    planes = [Plane(i, ppar[11 + 7 * i : 18 + 7 * i], step, chroma_step) for i in range(count)]
    return subsampled, planes


def read_magnitude(rc: RangeDecoder, model: Model, unary: int, escape: int) -> int:
    """5.4 MAG(U, E)."""
    for i in range(14):
        if rc.bit(model, unary + i) == 0:
            return i
    v = rc.exp_golomb(model, escape)
    _need(0 <= v <= LEVEL_LIMIT, "level magnitude out of range")
    return v + 14


def read_vector(rc: RangeDecoder, model: Model, p: int, j: int, freq: list[int], limit: int) -> np.ndarray:
    """5.5: one stored basis vector, p^2 integer entries, entry 0 = 0."""
    vec = np.zeros(p * p, dtype=np.int64)
    for t in range(1, p * p):
        if rc.bit(model, CTX_BASIS_ZERO + 2 * min(freq[t], 31) + (1 if t - 1 == j else 0)):
            neg = rc.direct()
            m = rc.exp_golomb(model, CTX_BASIS_MAG)
            _need(0 <= m < limit, "basis stream holds an out-of-range value")
            vec[t] = -(m + 1) if neg else m + 1
    return vec


def gram_schmidt(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """5.9 GS: modified Gram-Schmidt in float64, every sum in increasing t."""
    v = vectors.astype(np.float64).copy()
    min_norm = math.inf
    for j in range(v.shape[0]):
        for i in range(j):
            dot = float(np.cumsum(v[j] * v[i])[-1])  # cumsum adds strictly left to right
            v[j] = v[j] - dot * v[i]
        s = math.sqrt(float(np.cumsum(v[j] * v[j])[-1]))
        min_norm = min(min_norm, s)
        if s > 0:
            v[j] = v[j] / s
    return v, min_norm


def synthesis_rows(basis: np.ndarray, D: np.ndarray) -> np.ndarray:
    """5.9: W[0] = D[0]; W[k+1] = sum over t (increasing) of b_k[t] * D[t]."""
    K = basis.shape[0]
    W = np.zeros((K + 1, D.shape[1]))
    W[0] = D[0]
    acc = np.zeros((K, D.shape[1]))
    for t in range(D.shape[0]):
        col = basis[:, t]
        if np.any(col != 0):
            acc = acc + col[:, None] * D[t][None, :]
    W[1:] = acc
    return W


def dct_rows(K: int, p: int, first: int = 0) -> np.ndarray:
    """Unit vectors of coordinates first + 1 .. K (rows first .. K - 1 of a DCT basis)."""
    rows = np.zeros((K - first, p * p))
    for k in range(first, K):
        rows[k - first, k + 1] = 1.0
    return rows


def edge_filter(p2, p1, p0, q0, q1, q2, alpha: float, beta: float, tc: float):
    """5.9: the filter of one border sample, vectorised over arrays of border samples.

    Returns the six new values, all computed from the values passed in."""
    d = q0 - p0
    skip = (np.abs(d) >= alpha) | (np.abs(p1 - p0) >= beta) | (np.abs(q1 - q0) >= beta)
    ramp = ~skip & (np.abs(p2 - p0) < beta) & (np.abs(q2 - q0) < beta)
    weak = ~skip & ~ramp
    delta = np.clip((4.0 * d + (p1 - q1)) * 0.125, -tc, tc)
    n_p2 = np.where(ramp, p2 + d * 0.125, p2)
    n_p1 = np.where(ramp, p1 + d * 0.25, p1)
    n_p0 = np.where(ramp, p0 + d * 0.375, np.where(weak, p0 + delta, p0))
    n_q0 = np.where(ramp, q0 - d * 0.375, np.where(weak, q0 - delta, q0))
    n_q1 = np.where(ramp, q1 - d * 0.25, q1)
    n_q2 = np.where(ramp, q2 - d * 0.125, q2)
    return n_p2, n_p1, n_p0, n_q0, n_q1, n_q2


BORDER_OFFSETS = (-3, -2, -1, 0, 1, 2)  # p2, p1, p0 | q0, q1, q2


def deblock(plane: np.ndarray, p: int, sigma: float, s: int) -> None:
    """5.9 Deblocking, in place on the padded plane; vectorised along each border."""
    unit = (sigma / p) * s
    th = (1.2 * unit, 0.3 * unit, 0.3 * unit)
    hp, wp = plane.shape
    for x0 in range(p, wp - p + 1, p):
        cols = [plane[:, x0 + o].copy() for o in BORDER_OFFSETS]
        for o, new in zip(BORDER_OFFSETS, edge_filter(*cols, *th)):
            plane[:, x0 + o] = new
    for y0 in range(p, hp - p + 1, p):
        rows = [plane[y0 + o, :].copy() for o in BORDER_OFFSETS]
        for o, new in zip(BORDER_OFFSETS, edge_filter(*rows, *th)):
            plane[y0 + o, :] = new


def upsample(c: np.ndarray, axis: int, keep: int) -> np.ndarray:
    """5.9 Chroma upsampling, one pass along `axis`: 2n samples, the first `keep` kept."""
    c = np.moveaxis(c, axis, 0)
    n = c.shape[0]
    before = c[np.maximum(np.arange(n) - 1, 0)]
    after = c[np.minimum(np.arange(n) + 1, n - 1)]
    out = np.empty((2 * n,) + c.shape[1:])
    out[0::2] = 0.75 * c + 0.25 * before
    out[1::2] = 0.75 * c + 0.25 * after
    return np.moveaxis(out[:keep], 0, axis)


# 5.9 Colour: T.871 decoding constants, numerators of 2^-40
_M = np.array(
    [
        [1099511627776, 0, 1541515302142],
        [1099511627776, -378381848218, -785201150495],
        [1099511627776, 1948334604419, 0],
    ],
    dtype=np.float64,
) / 2.0**40


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def decode_pca_patch(sections: dict, channels: int, height: int, width: int) -> np.ndarray:
    ppar = _section(sections, b"PPAR")
    pdat = _section(sections, b"PDAT")
    _need(len(ppar) >= 11, f"PPAR has {len(ppar)} bytes, fewer than 11")
    if ppar[0] == 2:  # §6: bitstream 2
        from .bitstream2 import decode_bitstream2

        return decode_bitstream2(ppar, pdat, channels, height, width)
    subsampled, planes = parse_ppar(ppar, channels)
    models = [Model(MODEL_SIZE) for _ in range(3)]
    rc = RangeDecoder(pdat)
    limit = max(2**pl.e + 2 for pl in planes)
    D_of = {p: dct_images(p) for p in {pl.p for pl in planes}}
    freq_of = {p: [u + v for u, v in dct_order(p)] for p in D_of}

    # 5.4 step 1: the stored bases, plane by plane
    stored: list[list[np.ndarray]] = []  # per plane: one integer array per learned set
    for pl in planes:
        model = models[pl.model_class]
        sets = []
        if pl.mode == 1:
            sets.append(np.array([read_vector(rc, model, pl.p, j, freq_of[pl.p], limit) for j in range(pl.K)]).reshape(pl.K, pl.p**2))
        elif pl.classes > 1:
            n = min(pl.K, L_OF_P[pl.p])
            for _ in range(1, pl.classes):
                sets.append(np.array([read_vector(rc, model, pl.p, j, freq_of[pl.p], limit) for j in range(n)]).reshape(n, pl.p**2))
        stored.append(sets)

    # 5.4 step 2: per plane its class map and its patches
    levels_of = []
    for pl in planes:
        levels_of.append(decode_plane_levels(rc, models[pl.model_class], pl, *pl.size(height, width, subsampled)))
    _need(not rc.overrun, "pca-patch coefficient stream is truncated")

    # 5.5 / 5.9 checks after the stream, then the synthesis rows per plane and class
    out_planes = []
    for pl, sets, (cls, levels) in zip(planes, stored, levels_of):
        p, D = pl.p, D_of[pl.p]
        if pl.mode == 0:
            bases = [dct_rows(pl.K, p)]
        elif pl.mode == 1:
            basis, min_norm = gram_schmidt(sets[0] * 2.0**-pl.e)
            _need(pl.K == 0 or min_norm > 0.25, f"basis of plane {pl.index} is degenerate")
            bases = [basis]
        else:
            Lp = L_OF_P[p]
            bases = [dct_rows(pl.K, p)]
            for c, vecs in enumerate(sets, start=1):
                _need(not np.any(vecs[:, Lp + 1 :]), f"class {c} basis of plane {pl.index} leaves its frequency range")
            for c, vecs in enumerate(sets, start=1):
                n = vecs.shape[0]
                learned, min_norm = gram_schmidt(vecs * 2.0**-pl.e)
                _need(n == 0 or min_norm > 0.25, f"class {c} basis of plane {pl.index} is degenerate")
                bases.append(np.concatenate([learned, dct_rows(pl.K, p, n)]))
        W = np.stack([synthesis_rows(b, D) for b in bases])  # (classes, K + 1, p^2)
        h, w = pl.size(height, width, subsampled)
        out_planes.append(reconstruct_plane(pl, W, cls, levels, h, w))
    return planes_to_pixels(out_planes, subsampled, height, width)


def planes_to_pixels(out_planes: list, subsampled: bool, height: int, width: int) -> np.ndarray:
    """5.9 Chroma upsampling, Colour and alpha: cropped float64 planes Y, Cb, Cr[, alpha] to pixels."""
    channels = len(out_planes)
    if channels == 4:
        alpha = _to_uint8(out_planes[3] + 128.0)
    Y, Cb, Cr = out_planes[:3]
    if subsampled:
        Cb = upsample(upsample(Cb, 0, height), 1, width)
        Cr = upsample(upsample(Cr, 0, height), 1, width)
    rgb = [_to_uint8((_M[r, 0] * Y + _M[r, 1] * Cb) + _M[r, 2] * Cr + 128.0) for r in range(3)]
    if channels == 4:
        rgb.append(alpha)
    return np.stack(rgb, axis=2)


def decode_plane_levels(rc: RangeDecoder, model: Model, pl: Plane, h: int, w: int):
    """5.6 - 5.8: class map, then DC and AC levels of every patch in raster order.

    Returns (cls, levels): cls (nby, nbx) int, levels (nby, nbx, K + 1) int with
    the DC level at index 0 and AC level q[k] at index k + 1.
    """
    p, K = pl.p, pl.K
    nby, nbx = -(-h // p), -(-w // p)
    bit, direct = rc.bit, rc.direct

    cls = [[0] * nbx for _ in range(nby)]
    if pl.classes > 1:  # 5.8
        for by in range(nby):
            for bx in range(nbx):
                if bx > 0 and by > 0:
                    P = cls[by][bx - 1]
                    ctx = CTX_CLS_SAME if cls[by - 1][bx] == P else CTX_CLS_SAME + 1
                elif by == 0 and bx > 0:
                    P, ctx = cls[by][bx - 1], CTX_CLS_SAME + 1
                elif by > 0:
                    P, ctx = cls[by - 1][bx], CTX_CLS_SAME + 2
                else:
                    P, ctx = 0, CTX_CLS_SAME + 2
                if bit(model, ctx):
                    c = P
                else:
                    m = 1
                    for _ in range(3):
                        m = 2 * m + bit(model, CTX_CLS_TREE + m)
                    c = m - 8
                    _need(c < pl.classes, f"class {c} out of range in the class map")
                cls[by][bx] = c

    dc = [[0] * nbx for _ in range(nby)]
    last = [[-1] * nbx for _ in range(nby)]
    ac = [[None] * nbx for _ in range(nby)]
    zeros = [0] * K
    bands = [_band(k) for k in range(K)]
    band5s = [_band5(k) for k in range(K)]
    for by in range(nby):
        for bx in range(nbx):
            # 5.6 DC
            if by == 0 and bx == 0:
                P, a = 0, 0
            elif by == 0:
                P, a = dc[by][bx - 1], 2
            elif bx == 0:
                P, a = dc[by - 1][bx], 2
            else:
                A, B, Cc = dc[by][bx - 1], dc[by - 1][bx], dc[by - 1][bx - 1]
                if Cc >= max(A, B):
                    P = min(A, B)
                elif Cc <= min(A, B):
                    P = max(A, B)
                else:
                    P = A + B - Cc
                a = _act(abs(A - Cc) + abs(B - Cc))
            if bit(model, CTX_DC_ZERO + a) == 0:
                r = 0
            else:
                neg = direct()
                m = read_magnitude(rc, model, CTX_DC_UNARY + 14 * a, CTX_DC_ESC)
                r = -(m + 1) if neg else m + 1
            value = P + r
            _need(abs(value) <= LEVEL_LIMIT, "DC level out of range")
            dc[by][bx] = value
            if K == 0:
                continue
            # 5.7 AC
            ll = last[by][bx - 1] if bx > 0 else -1
            la = last[by - 1][bx] if by > 0 else -1
            qL = ac[by][bx - 1] if bx > 0 else zeros
            qU = ac[by - 1][bx] if by > 0 else zeros
            nbl = max(ll, la)
            pos = 0 if (bx > 0 and by > 0) else (2 if (bx == 0 and by == 0) else 1)
            q = [0] * K
            ac[by][bx] = q
            if bit(model, CTX_CBF + (ll >= 0) + (la >= 0) + 3 * pos) == 0:
                continue
            prev = 0
            for k in range(K):
                nb = _nbc(abs(qL[k]) + abs(qU[k]))
                band = bands[k]
                if k == K - 1:
                    sig = 1
                else:
                    sig = bit(model, CTX_SIG + 24 * band + 6 * nb + 2 * prev + (1 if k > nbl else 0))
                if sig:
                    neg = direct()
                    m = read_magnitude(rc, model, CTX_AC_UNARY + 14 * ((4 * band5s[k] + nb) * 3 + prev), CTX_AC_ESC)
                    q[k] = -(m + 1) if neg else m + 1
                    if k == K - 1:
                        end = 1
                    else:
                        lc = 0 if k < nbl else (1 if k == nbl else 2)
                        end = bit(model, CTX_LAST + 3 * band + lc)
                    if end:
                        last[by][bx] = k
                        break
                s = abs(q[k]) + (abs(q[k - 1]) if k > 0 else 0)
                prev = 0 if s == 0 else (1 if s == 1 else 2)
    levels = np.zeros((nby, nbx, K + 1), dtype=np.int64)
    for by in range(nby):
        for bx in range(nbx):
            levels[by, bx, 0] = dc[by][bx]
            if K:
                levels[by, bx, 1:] = ac[by][bx]
    return np.array(cls, dtype=np.int64).reshape(nby, nbx), levels


def reconstruct_plane(pl: Plane, W: np.ndarray, cls: np.ndarray, levels: np.ndarray, h: int, w: int) -> np.ndarray:
    """5.9 Patch, Deblocking, crop: the h x w float64 plane."""
    p, K, sigma = pl.p, pl.K, pl.step
    rho = pl.rho / 256
    nby, nbx = cls.shape
    flat_cls = cls.reshape(-1)
    flat = levels.reshape(-1, K + 1)
    out = np.zeros((flat.shape[0], p * p))
    for k in range(K + 1):
        lev = flat[:, k].astype(np.float64)
        if k == 0:
            coef = lev * sigma
        else:
            coef = np.where(lev > 0, (lev - rho) * sigma, np.where(lev < 0, (lev + rho) * sigma, 0.0))
        nz = lev != 0
        if np.any(nz):
            out[nz] = out[nz] + coef[nz, None] * W[flat_cls[nz], k]
    plane = out.reshape(nby, nbx, p, p).transpose(0, 2, 1, 3).reshape(nby * p, nbx * p)
    plane = np.ascontiguousarray(plane)
    if pl.strength > 0:
        deblock(plane, p, sigma, pl.strength)
    return plane[:h, :w]
