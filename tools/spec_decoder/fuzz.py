"""Differential fuzzing: imcompress.decompress against the spec decoder.

    python -m tools.spec_decoder.fuzz --count 2000 [--seed 0] [--save DIR] [FILE.imc ...]

Each case takes a valid file (by default every valid conformance file), mutates
the bytes before the CRC-32 (bit flips, byte changes, truncation, inserted and
deleted bytes; half of the mutations land in the first 64 bytes, where the
header and the parameter sections are), re-seals the CRC-32 over the mutated
bytes (§1) and decodes it with both decoders. They agree when both give the
same pixels or both refuse with the same kind of error (damaged vs newer
version). Anything else is a disagreement, printed (and saved with --save).
This module is the harness only: the decoder itself never imports imcompress.

IMCOMPRESS_MAX_PIXELS is lowered to 2^20 for both decoders (the spec decoder
is pure Python), so a mutated height or width above that is refused by the
pixel limit, the same check in both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .spec_decoder import SpecDecodeError, UnsupportedError, decode

CONFORMANCE = Path(__file__).resolve().parents[2] / "tests" / "conformance"
FUZZ_MAX_PIXELS = 1 << 20


def conformance_files(max_bytes: int | None = None) -> list[Path]:
    """The valid conformance files, smallest first (optionally only those up to max_bytes)."""
    manifest = json.loads((CONFORMANCE / "MANIFEST.json").read_text())
    files = [f for f in manifest["files"] if f["expect"] == "pixels"]
    if max_bytes is not None:
        files = [f for f in files if f["bytes"] <= max_bytes]
    return [CONFORMANCE / f["file"] for f in sorted(files, key=lambda f: (f["bytes"], f["file"]))]


def reseal(body: bytes) -> bytes:
    """§1: append the CRC-32 of every preceding byte."""
    return body + (zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of the bytes before the CRC, CRC re-sealed; returns (file, description)."""
    body = bytearray(data[:-4])
    n = len(body)

    def position() -> int:
        return rng.randrange(min(n, 64)) if rng.random() < 0.5 else rng.randrange(n)

    kind = rng.choice(["flip", "flip", "byte", "byte", "truncate", "insert", "delete"])
    if kind == "flip":
        flips = [(position(), rng.randrange(8)) for _ in range(rng.choice([1, 1, 2, 3]))]
        for pos, b in flips:
            body[pos] ^= 1 << b
        what = "flip " + ",".join(f"{pos}.{b}" for pos, b in flips)
    elif kind == "byte":
        pos = position()
        value = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(256), body[pos] + 1 & 0xFF, body[pos] - 1 & 0xFF])
        body[pos] = value
        what = f"byte {pos}={value}"
    elif kind == "truncate":
        cut = rng.randrange(n)
        del body[cut:]
        what = f"truncate to {cut}"
    elif kind == "insert":
        pos = position()
        extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 1, 2, 4, 16])))
        body[pos:pos] = extra
        what = f"insert {extra.hex()} at {pos}"
    else:
        pos = position()
        count = rng.choice([1, 1, 2, 4])
        del body[pos : pos + count]
        what = f"delete {count} at {pos}"
    return reseal(bytes(body)), what


@dataclass
class Outcome:
    kind: str  # "pixels", "corrupt", "unsupported" or "crash"
    detail: str  # pixel SHA-256 and shape, or the error


def run_library(data: bytes) -> Outcome:
    import imcompress

    try:
        pixels = np.asarray(imcompress.decompress(data))
    except imcompress.UnsupportedVersionError as exc:
        return Outcome("unsupported", str(exc))
    except imcompress.CorruptFileError as exc:
        return Outcome("corrupt", str(exc))
    except Exception as exc:  # noqa: BLE001 - any other exception is a finding
        return Outcome("crash", f"{type(exc).__name__}: {exc}")
    return Outcome("pixels", f"{pixels.shape} {hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()}")


def run_spec(data: bytes) -> Outcome:
    try:
        pixels = decode(data)
    except UnsupportedError as exc:
        return Outcome("unsupported", str(exc))
    except SpecDecodeError as exc:
        return Outcome("corrupt", str(exc))
    except Exception as exc:  # noqa: BLE001 - a crash of the spec decoder is a finding too
        return Outcome("crash", f"{type(exc).__name__}: {exc}")
    return Outcome("pixels", f"{pixels.shape} {hashlib.sha256(pixels.tobytes()).hexdigest()}")


def agree(lib: Outcome, spec: Outcome) -> bool:
    if "crash" in (lib.kind, spec.kind):
        return False
    if lib.kind != spec.kind:
        return False
    return lib.kind != "pixels" or lib.detail == spec.detail


def fuzz(files: list[Path], count: int, seed: int, save: Path | None = None, verbose: bool = False):
    """Run `count` cases; return (tally by outcome, list of disagreements)."""
    saved = os.environ.get("IMCOMPRESS_MAX_PIXELS")
    os.environ["IMCOMPRESS_MAX_PIXELS"] = str(FUZZ_MAX_PIXELS)
    try:
        return _fuzz(files, count, seed, save, verbose)
    finally:
        if saved is None:
            del os.environ["IMCOMPRESS_MAX_PIXELS"]
        else:
            os.environ["IMCOMPRESS_MAX_PIXELS"] = saved


def _fuzz(files, count, seed, save, verbose):
    rng = random.Random(seed)
    seeds = [(path.name, path.read_bytes()) for path in files]
    tally: dict[str, int] = {}
    disagreements = []
    for case in range(count):
        name, original = seeds[case % len(seeds)]
        data, what = mutate(original, rng)
        lib, spec = run_library(data), run_spec(data)
        key = lib.kind if agree(lib, spec) else "DISAGREE"
        tally[key] = tally.get(key, 0) + 1
        line = f"case {case}: {name} {what}: library {lib.kind} ({lib.detail}) / spec {spec.kind} ({spec.detail})"
        if key == "DISAGREE":
            disagreements.append((name, what, data, lib, spec))
            print("DISAGREE", line, flush=True)
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                (save / f"fuzz-{seed}-{case}-{name}").write_bytes(data)
        elif verbose:
            print(line, flush=True)
    return tally, disagreements


def compare_synthetic(count: int, seed: int, save: Path | None = None, verbose: bool = False):
    """Decode `count` random valid bitstream-2 files (synth.py) with both decoders; return the disagreements."""
    from .synth import random_file

    rng = random.Random(seed)
    disagreements = []
    for case in range(count):
        synthetic = random_file(rng)
        lib, spec = run_library(synthetic.data), run_spec(synthetic.data)
        ok = agree(lib, spec) and lib.kind == "pixels"  # a synthetic file is valid: both must decode it
        line = f"synthetic {seed}/{case}: {synthetic.what}: library {lib.kind} ({lib.detail}) / spec {spec.kind} ({spec.detail})"
        if not ok:
            disagreements.append((case, synthetic, lib, spec))
            print("DISAGREE", line, flush=True)
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                (save / f"synth-{seed}-{case}.imc").write_bytes(synthetic.data)
        elif verbose:
            print(line, flush=True)
    return disagreements


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.spec_decoder.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="valid .imc files to mutate (default: the conformance files)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="directory to write disagreeing files to")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    files = args.files or conformance_files()
    tally, disagreements = fuzz(files, args.count, args.seed, args.save, args.verbose)
    print(f"{args.count} cases over {len(files)} files, seed {args.seed}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
