"""Random valid pca-patch bitstream-2 files (FORMAT.md §6), for differential tests.

    python -m tools.spec_decoder.synth --count 200 [--seed 0] [--save DIR]

imcompress's encoder makes only the files its search picks: root blocks of 32,
CfL weights near the least-squares fit, levels of a real residual. A decoder
has branches no such file reaches (root blocks of 4, 8 or 16, |alpha| = 16, a
prediction or a residual past its clipping bounds, remainders near 2^20). This
module writes files whose every syntax element is drawn at random, so those
branches are reached; decoded by imcompress and by the spec decoder, they must
give the same pixels.

How: the spec decoder's own bitstream-2 parser (bitstream2.PlaneDecoder) is
run against a *choosing* coder: each time the parser asks for a bit or an
Exp-Golomb value, the coder draws one, range-*encodes* it in the same context
(§2, LZMA's encoder) and hands it back. The bytes written are therefore the
stream that parser reads. A parser that selected a wrong context or read an
element in the wrong order writes a file that imcompress decodes to other
pixels, which the comparison catches: sharing the parser does not hide its bugs.
This module never imports imcompress (the comparison lives in fuzz.py and the
tests).
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from . import bitstream2 as b2
from .spec_decoder import Model


class RangeEncoder:
    """§2: LZMA's binary range encoder (33-bit low with carry through a cached byte)."""

    def __init__(self):
        self.low, self.range, self.cache, self.cache_size = 0, 0xFFFFFFFF, 0, 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low << 8) & 0xFFFFFFFF

    def _normalize(self) -> None:
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self._shift_low()

    def encode(self, model: Model, c: int, b: int) -> None:
        pf, ps, cnt = model.pf[c], model.ps[c], model.n[c]
        p = min(max((pf + ps) >> 1, 31), 65505)
        bound = (self.range >> 16) * p
        if b == 0:
            self.range = bound
        else:
            self.low += bound
            self.range -= bound
        df, ds = min(cnt + 2, 20), min(cnt + 2, 160)
        if b == 0:
            model.pf[c], model.ps[c] = pf + (65536 - pf) // df, ps + (65536 - ps) // ds
        else:
            model.pf[c], model.ps[c] = pf - pf // df, ps - ps // ds
        if cnt < 160:
            model.n[c] = cnt + 1
        self._normalize()

    def encode_direct(self, b: int) -> None:
        self.range >>= 1
        if b:
            self.low += self.range
        self._normalize()

    def encode_exp_golomb(self, model: Model, base: int, value: int) -> None:
        """§2 adaptive Exp-Golomb, the inverse of its decoder: k ones and a 0, then the bits of value + 1."""
        k = (value + 1).bit_length() - 1
        for i in range(k):
            self.encode(model, base + min(i, 23), 1)
        self.encode(model, base + min(k, 23), 0)
        if k:
            self.encode(model, base + 24 + k, (value + 1) >> (k - 1) & 1)
            for j in range(k - 2, -1, -1):
                self.encode_direct((value + 1) >> j & 1)

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


@dataclass
class Policy:
    """Probabilities of a 1 per syntax element, and the shape of Exp-Golomb values."""

    split: float = 0.5
    cfl: float = 0.4
    cfl_zero: float = 0.15
    cfl_more: float = 0.85  # "|alpha| > i": high, so |alpha| = 16 is reached
    mpm: float = 0.5
    cbf: float = 0.6
    last_more: float = 0.6
    sig: float = 0.4
    gt: float = 0.45
    big_remainder: float = 0.03  # share of remainders drawn up to 2^20 (residual clipping)
    other: float = 0.5

    def p_one(self, c: int) -> float:
        if c < b2.MPM_FLAG:
            return self.split
        if c < b2.MPM_IDX:
            return self.mpm
        if b2.CFL_FLAG <= c < b2.CFL_ZERO:
            return self.cfl
        if c == b2.CFL_ZERO:
            return self.cfl_zero
        if b2.CFL_MAG <= c < b2.CBF:
            return self.cfl_more
        if b2.CBF <= c < b2.LAST:
            return self.cbf
        if b2.LAST <= c < b2.SIG:
            return self.last_more
        if b2.SIG <= c < b2.GT1:
            return self.sig
        if b2.GT1 <= c < b2.REM:
            return self.gt
        return self.other


class ChoosingCoder:
    """Stands in for RangeDecoder: draws each value, encodes it, returns it."""

    def __init__(self, rng: random.Random, policy: Policy):
        self.rng, self.policy = rng, policy
        self.enc = RangeEncoder()
        self.models: dict[int, Model] = {}  # the encoder's copy of each decoder model, by id
        self.data, self.pos, self.overrun = b"", 0, False  # what PlaneDecoder's truncation check reads

    def _model(self, model: Model) -> Model:
        mine = self.models.get(id(model))
        if mine is None:
            mine = self.models[id(model)] = Model(len(model.pf))
        return mine

    def bit(self, model: Model, c: int) -> int:
        b = int(self.rng.random() < self.policy.p_one(c))
        self.enc.encode(self._model(model), c, b)
        return b

    def direct(self) -> int:
        b = self.rng.getrandbits(1)
        self.enc.encode_direct(b)
        return b

    def exp_golomb(self, model: Model, base: int) -> int:
        if self.rng.random() < self.policy.big_remainder:
            value = self.rng.randrange(1 << 20)
        else:
            value = int(self.rng.expovariate(0.3))
        self.enc.encode_exp_golomb(self._model(model), base, value)
        return value


class RecordingPlane(b2.PlaneDecoder):
    """The parser of 6.2 - 6.4, counting the branches the stream takes (for the facts of a file)."""

    def __init__(self, *args, counts: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts = counts

    def count(self, key) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def predict(self, y0, x0, log2n, mode, alpha):
        pred = super().predict(y0, x0, log2n, mode, alpha)
        if pred.min() < -1024 or pred.max() > 1024:
            self.count("prediction beyond +-1024")
        if pred.min() < -3072 or pred.max() > 3072:  # pred + clipped residual can land inside +-1024
            self.count("prediction beyond +-3072 (the residual clip shows)")
        if mode == b2.CFL:
            self.count(f"cfl alpha {alpha}")
        return pred

    def residual(self, lev, n):
        r = super().residual(lev, n)
        if abs(r).max() >= 4096:
            self.count("residual clipped to +-4096")
        return r


@dataclass
class Synthetic:
    """One generated file and the branches its stream took."""

    data: bytes
    what: str
    facts: dict = field(default_factory=dict)


def seal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def container(channels: int, height: int, width: int, sections: list[tuple[bytes, bytes]]) -> bytes:
    """§1: header, sections, CRC-32 (method 3, pca-patch)."""
    body = bytearray(b"\x89IMC" + bytes([1, 3, channels, 0]) + struct.pack("<II", height, width))
    body.append(len(sections))
    for tag, payload in sections:
        body += tag + struct.pack("<I", len(payload)) + payload
    return seal(bytes(body))


def synthesize(rng: random.Random, *, height: int, width: int, channels: int, subsampled: bool,
               records: list[tuple[int, int, int, int]], step: float, chroma_step: float,
               policy: Policy | None = None) -> Synthetic:
    """A valid bitstream-2 file with these PPAR fields and random syntax elements.

    records: per plane (log2max, log2min, rho, deblocking strength)."""
    policy = policy or Policy()
    ppar = bytes([2, int(subsampled), channels]) + struct.pack("<2f", step, chroma_step)
    ppar += b"".join(bytes(r) for r in records)
    sub, planes = b2.parse_ppar2(ppar, channels)
    coder = ChoosingCoder(rng, policy)
    facts: dict = {"leaf sizes": set(), "modes": set(), "counts": {}}
    models = [Model(b2.MODEL_SIZE) for _ in range(3)]
    m = 64 if sub else 32
    Hp, Wp = -(-height // m) * m, -(-width // m) * m
    scans = {n: b2.scan_order(n) for n in (4, 8, 16, 32)}
    dcts = {n: b2.dct_1d(n) for n in (4, 8, 16, 32)}
    luma = None
    for pl in planes:
        chroma = pl.index in (1, 2)
        hp, wp = (Hp // 2, Wp // 2) if chroma and sub else (Hp, Wp)
        dec = RecordingPlane(coder, models[pl.kind], pl, hp, wp, luma, sub, scans, dcts, counts=facts["counts"])
        rec = dec.decode()
        if pl.index == 0:
            luma = rec
        facts["leaf sizes"] |= {(pl.index, int(s)) for s in set(dec.size.ravel().tolist())}
        facts["modes"] |= {(pl.kind, int(x)) for x in set(dec.mode.ravel().tolist())}
    pdat = coder.enc.finish()
    data = container(channels, height, width, [(b"PPAR", ppar), (b"PDAT", pdat)])
    what = (f"{height}x{width}x{channels} {'4:2:0' if sub else '4:4:4'} blocks "
            + ",".join(f"{r[1]}..{r[0]}" for r in records))
    return Synthetic(data, what, facts)


def random_file(rng: random.Random) -> Synthetic:
    """Random size, planes, block sizes, steps, rho and strengths."""
    channels = rng.choice([3, 3, 4])
    height, width = rng.choice([1, 2, 3, 5, 17, 33, 40, 64, 65]), rng.choice([1, 2, 7, 16, 31, 47, 64, 70])
    records = []
    for _ in range(channels):
        log2max = rng.randint(2, 5)
        records.append((log2max, rng.randint(2, log2max), rng.choice([0, 0, 37, 127]), rng.choice([0, 1, 5, 15])))
    step = rng.choice([0.001, 0.5, 4.0, 30.0, 500.0])
    chroma_step = rng.choice([0.25, 6.0, 100.0])
    policy = Policy(split=rng.choice([0.3, 0.6, 0.9]), sig=rng.choice([0.2, 0.5, 0.8]),
                    big_remainder=rng.choice([0.0, 0.01, 0.1]))
    return synthesize(rng, height=height, width=width, channels=channels, subsampled=rng.random() < 0.5,
                      records=records, step=step, chroma_step=chroma_step, policy=policy)


def conformance_cases() -> list[tuple[str, Synthetic, list[str]]]:
    """The synthetic files of tests/conformance/: (stem, file, count keys its stream must have taken).

    Fixed seeds; pure Python integer arithmetic and random.Random, so the same bytes on every machine."""
    blocks = synthesize(random.Random(61), height=40, width=70, channels=4, subsampled=False,
                        records=[(2, 2, 0, 3), (3, 2, 37, 5), (4, 3, 127, 15), (5, 5, 0, 1)],
                        step=4.0, chroma_step=6.0)
    blocks.what = ("synthetic (random syntax), RGBA 4:4:4: root blocks 4, 8, 16, 32 (log2max 2..5), "
                   "log2min = log2max (no split flag), rho 0/37/127, deblocking 3, 5, 15, 1")
    blocks420 = synthesize(random.Random(62), height=33, width=47, channels=3, subsampled=True,
                           records=[(4, 2, 20, 2), (2, 2, 0, 9), (3, 3, 100, 15)], step=2.0, chroma_step=1.5,
                           policy=Policy(split=0.7))
    blocks420.what = "synthetic, 4:2:0 odd size: roots 16 / 4 / 8, CfL from a luma of other leaf sizes"
    extremes = synthesize(random.Random(1), height=32, width=32, channels=3, subsampled=False,
                          records=[(2, 2, 0, 0)] * 3, step=200.0, chroma_step=200.0,
                          policy=Policy(cfl=0.95, cfl_zero=0.0, cfl_more=0.98, big_remainder=0.5, sig=0.8, gt=0.8))
    extremes.what = ("synthetic: CfL alpha = +-16, predictions beyond +-3072 (unclipped; rec is clipped after "
                     "the residual), residuals clipped to +-4096, remainders up to 2^20")
    return [
        ("b2-synth-blocks", blocks, []),
        ("b2-synth-blocks-420", blocks420, ["cfl alpha 1"]),
        ("b2-synth-extremes", extremes,
         ["cfl alpha 16", "cfl alpha -16", "prediction beyond +-3072 (the residual clip shows)",
          "residual clipped to +-4096"]),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.spec_decoder.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="directory to write disagreeing files to")
    args = parser.parse_args(argv)
    from .fuzz import compare_synthetic

    disagreements = compare_synthetic(args.count, args.seed, args.save, verbose=True)
    print(f"{args.count} synthetic bitstream-2 files, seed {args.seed}: {len(disagreements)} disagreements")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
