"""The spec decoder (tools/spec_decoder/, written from docs/FORMAT.md alone) against
the conformance manifest and against imcompress.decompress, bit for bit.

Fast set (make test): every conformance file, two small Kodak crops per method,
a bounded seeded differential fuzz. Slow set (-m slow): the 12 Kodak photos at
several qualities per method, and a longer fuzz.
"""

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imcompress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.spec_decoder import CorruptError, SpecDecodeError, UnsupportedError, decode  # noqa: E402
from tools.spec_decoder import fuzz  # noqa: E402

CONFORMANCE = ROOT / "tests" / "conformance"
MANIFEST = json.loads((CONFORMANCE / "MANIFEST.json").read_text())["files"]


def sha(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


@pytest.mark.parametrize("entry", MANIFEST, ids=[f["file"] for f in MANIFEST])
def test_conformance_file(entry):
    data = (CONFORMANCE / entry["file"]).read_bytes()
    if entry["expect"] == "pixels":
        pixels = decode(data)
        assert pixels.dtype == np.uint8
        assert pixels.shape == (entry["height"], entry["width"], entry["channels"])
        assert sha(pixels) == entry["sha256"]
    else:
        error = UnsupportedError if entry["expect"] == "UnsupportedVersionError" else CorruptError
        with pytest.raises(error):
            decode(data)


def test_manifest_covers_both_kinds():
    kinds = {f["expect"] for f in MANIFEST}
    assert {"pixels", "CorruptFileError", "UnsupportedVersionError"} <= kinds
    assert {f["method"] for f in MANIFEST if f["expect"] == "pixels"} == {"kmeans", "pca-rows", "pca-patch"}


def test_decoder_is_independent_of_imcompress():
    """The decoder module must not import the library it checks."""
    code = "import sys, tools.spec_decoder; sys.exit(int('imcompress' in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cli_prints_shape_and_hash(tmp_path):
    entry = next(f for f in MANIFEST if f["file"] == "pp-odd-420.imc")
    out = tmp_path / "x.npy"
    result = subprocess.run(
        [sys.executable, "-m", "tools.spec_decoder", str(CONFORMANCE / entry["file"]), "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{entry['height']}x{entry['width']}x{entry['channels']}", entry["sha256"]]
    assert sha(np.load(out)) == entry["sha256"]


def test_cli_refuses_with_one_line_and_exit_3():
    result = subprocess.run(
        [sys.executable, "-m", "tools.spec_decoder", str(CONFORMANCE / "bad-crc.imc")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "checksum mismatch" in result.stderr


# --- files made at test time from the Kodak photos ---------------------------------

FAST_CASES = [
    ("kmeans", {"n_colors": 32}),
    ("kmeans", {"n_colors": 64, "dither": 1.0}),
    ("pca-rows", {"n_components": 8}),
    ("pca-rows", {"variance": 0.99}),
    ("pca-patch", {"quality": 50, "bitstream": 1}),  # FORMAT.md §5 (bitstream 1)
    ("pca-patch", {"quality": 85, "basis": "pca", "patch_size": 4, "chroma": "444"}),
    # bitstream 2 (FORMAT.md §6), the default
    ("pca-patch", {"quality": 50}),
    ("pca-patch", {"quality": 90, "chroma": "444", "speed": 0}),
    ("pca-patch", {"quality": 25, "chroma": "420", "speed": 9}),
]

SLOW_CASES = [
    ("kmeans", {"n_colors": 16}),
    ("kmeans", {"n_colors": 256}),
    ("kmeans", {"n_colors": 256, "dither": 1.0}),
    ("pca-rows", {"variance": 0.9}),
    ("pca-rows", {"n_components": 64}),
    ("pca-patch", {"quality": 10, "bitstream": 1}),
    ("pca-patch", {"quality": 50, "bitstream": 1}),
    ("pca-patch", {"quality": 90, "bitstream": 1}),
    ("pca-patch", {"quality": 60, "basis": "pca"}),
    ("pca-patch", {"quality": 60, "basis": "classified"}),
    ("pca-patch", {"quality": 75, "patch_size": 16, "chroma": "444"}),
    ("pca-patch", {"quality": 40, "patch_size": 4}),
    ("pca-patch", {"quality": 5}),
    ("pca-patch", {"quality": 50}),
    ("pca-patch", {"quality": 75, "chroma": "420", "speed": 0}),
    ("pca-patch", {"quality": 90, "chroma": "444"}),
    ("pca-patch", {"quality": 98, "chroma": "444", "speed": 9}),
]


def assert_same_as_library(image, method, params):
    data = imcompress.compress(image, method, **params)
    expected = imcompress.decompress(data)
    got = decode(data)
    assert got.shape == expected.shape
    mismatch = np.argwhere(got != expected)
    assert mismatch.size == 0, f"{method} {params}: {len(mismatch)} samples differ, first at {mismatch[0].tolist()}"


@pytest.fixture(scope="module")
def kodak_crop(kodak_paths):
    """A 64 x 96 crop with edges and texture (kodim05), odd offsets."""
    return np.ascontiguousarray(imcompress.load_image(kodak_paths[4])[201:265, 333:429])


@pytest.mark.parametrize("method,params", FAST_CASES, ids=[f"{m}-{p}" for m, p in FAST_CASES])
def test_kodak_crop_bit_exact(kodak_crop, method, params):
    assert_same_as_library(kodak_crop, method, params)


def test_kodak_crop_rgba_bit_exact(kodak_crop):
    alpha = np.clip(np.arange(96)[None, :] * 3 + np.arange(64)[:, None], 0, 255).astype(np.uint8)
    rgba = np.dstack([kodak_crop, alpha])
    for method, params in [("kmeans", {"n_colors": 24}), ("pca-rows", {"n_components": 6}),
                           ("pca-patch", {"quality": 60, "bitstream": 1}), ("pca-patch", {"quality": 60})]:
        assert_same_as_library(rgba, method, params)


@pytest.mark.parametrize("shape", [(37, 53), (1, 29), (70, 1), (65, 33)])
def test_kodak_odd_crop_bitstream2_bit_exact(kodak_paths, shape):
    """Bitstream 2 pads to 64 (4:2:0) or 32 (4:4:4): sizes just past a root, single rows and columns."""
    h, w = shape
    image = np.ascontiguousarray(imcompress.load_image(kodak_paths[2])[300 : 300 + h, 411 : 411 + w])
    for chroma in ("420", "444"):
        assert_same_as_library(image, "pca-patch", {"quality": 70, "chroma": chroma})


@pytest.mark.slow
@pytest.mark.parametrize("chroma", ["420", "444"])
def test_kodak_full_rgba_bitstream2_bit_exact(kodak_paths, chroma):
    for path in kodak_paths[:4]:
        rgb = imcompress.load_image(path)
        h, w, _ = rgb.shape
        alpha = np.clip(np.hypot(*np.mgrid[0:h, 0:w] - np.array([h / 2, w / 2])[:, None, None]), 0, 255)
        rgba = np.dstack([rgb, alpha.astype(np.uint8)])
        assert_same_as_library(rgba, "pca-patch", {"quality": 60, "chroma": chroma})


@pytest.mark.slow
@pytest.mark.parametrize("method,params", SLOW_CASES, ids=[f"{m}-{p}" for m, p in SLOW_CASES])
def test_kodak_full_bit_exact(kodak_paths, method, params):
    for path in kodak_paths:
        assert_same_as_library(imcompress.load_image(path), method, params)


# --- differential fuzzing ------------------------------------------------------------


def test_reseal_gives_a_valid_crc():
    data = (CONFORMANCE / "km-rgb-k2.imc").read_bytes()
    assert fuzz.reseal(data[:-4]) == data
    mutated, _ = fuzz.mutate(data, random.Random(3))
    assert fuzz.reseal(mutated[:-4]) == mutated


def test_agree_rules():
    px = fuzz.Outcome("pixels", "a")
    assert fuzz.agree(px, fuzz.Outcome("pixels", "a"))
    assert not fuzz.agree(px, fuzz.Outcome("pixels", "b"))
    assert not fuzz.agree(px, fuzz.Outcome("corrupt", "x"))
    assert not fuzz.agree(fuzz.Outcome("unsupported", "x"), fuzz.Outcome("corrupt", "x"))
    assert not fuzz.agree(fuzz.Outcome("crash", "x"), fuzz.Outcome("crash", "x"))


def run_fuzz(files, count, seed):
    tally, disagreements = fuzz.fuzz(files, count, seed)
    assert sum(tally.values()) == count
    # the mutations must reach the decoders' insides, not only the header checks
    assert tally.get("pixels", 0) > 0 and tally.get("corrupt", 0) > 0
    assert not disagreements, [(n, w, lib, spec) for n, w, _, lib, spec in disagreements]


def test_fuzz_bounded():
    run_fuzz(fuzz.conformance_files(max_bytes=1500), count=150, seed=20261201)


def test_fuzz_bounded_bitstream2():
    """Mutations of the pca-patch bitstream-2 files only (FORMAT.md §6)."""
    run_fuzz([f for f in fuzz.conformance_files(max_bytes=2500) if f.name.startswith("b2-")], count=150, seed=6)


@pytest.mark.parametrize("length", [4, 8, 20])
def test_short_file_is_damaged_whatever_byte_4_holds(length):
    """Found by the fuzz: a file cut to 8 bytes has a CRC byte at offset 4 (here 0x80);
    both decoders must call it damaged (FORMAT.md §1: length before version)."""
    data = (b"\x89IMC\x80" + bytes(40))[:length]
    with pytest.raises(CorruptError):
        decode(data)
    with pytest.raises(imcompress.CorruptFileError):
        imcompress.decompress(data)


@pytest.mark.slow
def test_fuzz_long():
    run_fuzz(fuzz.conformance_files(), count=3000, seed=1)


# --- random valid bitstream-2 files (tools/spec_decoder/synth.py) ----------------------


def test_range_encoder_round_trips_through_the_decoder():
    """synth's encoder (LZMA's, §2) against the spec decoder's RangeDecoder: adaptive, direct, Exp-Golomb."""
    from tools.spec_decoder import synth
    from tools.spec_decoder.spec_decoder import Model, RangeDecoder

    rng = random.Random(4)
    ops = [(rng.choice("abe"), rng.randrange(8), rng.choice([0, 1, 1, 5, 300, (1 << 20) - 1])) for _ in range(3000)]
    enc, model = synth.RangeEncoder(), Model(600)
    for kind, c, value in ops:
        if kind == "a":
            enc.encode(model, c, value & 1)
        elif kind == "b":
            enc.encode_direct(value & 1)
        else:
            enc.encode_exp_golomb(model, 64 + 64 * c, value)
    dec, model = RangeDecoder(enc.finish()), Model(600)
    got = [dec.bit(model, c) if kind == "a" else dec.direct() if kind == "b" else dec.exp_golomb(model, 64 + 64 * c)
           for kind, c, _ in ops]
    assert got == [value if kind == "e" else value & 1 for kind, _, value in ops]
    assert not dec.overrun


def test_synthetic_bitstream2_files_agree():
    """Random syntax (every root size, CfL |alpha| = 16, clipped residuals): both decoders, same pixels."""
    disagreements = fuzz.compare_synthetic(count=25, seed=20261201)
    assert not disagreements, [(case, s.what, lib, spec) for case, s, lib, spec in disagreements]


@pytest.mark.slow
def test_synthetic_bitstream2_files_agree_long():
    disagreements = fuzz.compare_synthetic(count=400, seed=1)
    assert not disagreements, [(case, s.what, lib, spec) for case, s, lib, spec in disagreements]


def test_synthetic_conformance_files_are_reproducible():
    """tests/conformance/b2-synth-*.imc are exactly what synth.conformance_cases() writes."""
    from tools.spec_decoder import synth

    for stem, synthetic, _ in synth.conformance_cases():
        assert (CONFORMANCE / f"{stem}.imc").read_bytes() == synthetic.data, stem


def section_offset(data: bytes, tag: bytes) -> int:
    """Offset of a section's payload (FORMAT.md §1)."""
    pos = 17
    for _ in range(data[16]):
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if data[pos : pos + 4] == tag:
            return pos + 8
        pos += 8 + length
    raise AssertionError(f"no {tag!r} section")


def test_repeated_alpha_value_decodes_in_both():
    """Found by experiment: ALPH values that repeat are not refused (FORMAT.md §4 now says so)."""
    data = (CONFORMANCE / "pr-rgba.imc").read_bytes()
    off = section_offset(data, b"ALPH")
    assert data[off] == 2  # three alpha values
    body = bytearray(data[:-4])
    body[off + 3] = body[off + 2]
    edited = fuzz.reseal(bytes(body))
    expected = imcompress.decompress(edited)
    assert np.array_equal(decode(edited), expected)
    assert len(np.unique(expected[..., 3])) == 2


def test_errors_share_a_base():
    assert issubclass(CorruptError, SpecDecodeError) and issubclass(UnsupportedError, SpecDecodeError)
