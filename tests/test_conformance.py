"""The conformance files of tests/conformance/ (PngSuite-style): every valid file
decodes to the pixels whose SHA-256 the manifest records, every invalid file
is refused with its documented error class and message.

The hashes were taken when the files were made (tools/make_conformance.py) and
are the reference any decoder of docs/FORMAT.md must match; a change to the
decoder that moves one pixel of one file fails here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import ExitCode

CONF = Path(__file__).resolve().parent / "conformance"
MANIFEST = json.loads((CONF / "MANIFEST.json").read_text())
VALID = [e for e in MANIFEST["files"] if e["expect"] == "pixels"]
INVALID = [e for e in MANIFEST["files"] if e["expect"] != "pixels"]
ROOT = CONF.parents[1]


def _sha(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).hexdigest()


def test_manifest_lists_exactly_the_files():
    on_disk = sorted(p.name for p in CONF.glob("*.imc"))
    assert sorted(e["file"] for e in MANIFEST["files"]) == on_disk
    assert sum(p.stat().st_size for p in CONF.glob("*.imc")) < 400_000  # "a few hundred KB"


def test_suite_covers_every_method_mode_and_branch():
    """What the suite claims to exercise, read back from the files themselves."""
    facts = {e["file"]: imcompress.inspect((CONF / e["file"]).read_bytes()) for e in VALID}
    methods = {(f["method"], f["channels"]) for f in facts.values()}
    assert methods == {(m, c) for m in ("kmeans", "pca-rows", "pca-patch") for c in (3, 4)}
    pp_all = [f for f in facts.values() if f["method"] == "pca-patch"]
    pp = [f["params"] for f in pp_all if f["params"].get("bitstream", 1) == 1]
    assert {s for p in pp for s in p["patch_sizes"]} == {4, 8, 16}
    assert {p["chroma"] for p in pp} == {"4:2:0", "4:4:4"}
    kinds = {(b.split(" ")[0], s) for p in pp for b, s in zip(p["basis"], p["patch_sizes"])}
    assert kinds >= {(k, s) for k in ("dct", "pca", "classified") for s in (4, 8, 16)}
    strengths = {s for p in pp for s in p["deblock"]}
    assert 0 in strengths and strengths & set(range(1, 8)) and strengths & set(range(8, 16))
    assert any(0 in p["components"] for p in pp) and any(255 in p["components"] for p in pp)
    km = [f["params"] for f in facts.values() if f["method"] == "kmeans"]
    assert any(p["exact"] for p in km) and any(p["dither"] for p in km)
    assert any(f["params"].get("icc_profile") for f in facts.values() if f["method"] == "kmeans")
    sizes = {(f["height"], f["width"]) for f in facts.values()}
    assert (1, 1) in sizes and any(h % 2 and w % 2 for h, w in sizes)
    # bitstream 2 (FORMAT.md §6): RGB and RGBA, both chroma modes, 1 x 1, odd sizes, a single row and
    # column, smallest blocks 4 and 8, every root size, deblocking off and on
    b2 = [f for f in pp_all if f["params"].get("bitstream") == 2]
    assert {f["channels"] for f in b2} == {3, 4}
    assert {f["params"]["chroma"] for f in b2} == {"4:2:0", "4:4:4"}
    b2_sizes = {(f["height"], f["width"]) for f in b2}
    assert (1, 1) in b2_sizes and any(h % 2 and w % 2 for h, w in b2_sizes)
    assert any(h == 1 < w for h, w in b2_sizes) and any(w == 1 < h for h, w in b2_sizes)
    assert {b[0] for f in b2 for b in f["params"]["block_sizes"]} >= {4, 8}
    # every root size 4 .. 32 (the b2-synth- files: random syntax, tools/spec_decoder/synth.py)
    assert {b[1] for f in b2 for b in f["params"]["block_sizes"]} == {4, 8, 16, 32}
    b2_strengths = {s for f in b2 for s in f["params"]["deblock"]}
    assert 0 in b2_strengths and b2_strengths & set(range(1, 8)) and b2_strengths & set(range(8, 16))
    assert any(e["file"].startswith("b2-") for e in INVALID)
    errors = {e["expect"] for e in INVALID}
    assert errors == {"CorruptFileError", "UnsupportedVersionError"}


@pytest.mark.parametrize("entry", VALID, ids=[e["file"] for e in VALID])
def test_decodes_to_the_recorded_pixels(entry):
    data = (CONF / entry["file"]).read_bytes()
    pixels = imcompress.decompress(data)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (entry["height"], entry["width"], entry["channels"])
    assert _sha(pixels) == entry["sha256"]
    assert imcompress.inspect(data)["method"] == entry["method"]


@pytest.mark.parametrize("entry", INVALID, ids=[e["file"] for e in INVALID])
def test_invalid_files_give_their_error(entry):
    data = (CONF / entry["file"]).read_bytes()
    with pytest.raises(getattr(imcompress, entry["expect"])) as info:
        imcompress.decompress(data)
    assert type(info.value).__name__ == entry["expect"]
    assert entry["message"] in str(info.value)


@pytest.mark.parametrize("name", ["pp-cls-p4.imc", "pp-rgba.imc", "km-rgba-k32.imc", "pr-odd.imc"])
def test_cli_decompress_matches_the_hash(name, tmp_path):
    """The ``imcompress decompress`` command, as a user runs it, writes the same pixels."""
    entry = next(e for e in VALID if e["file"] == name)
    out = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-m", "imcompress", "decompress", str(CONF / name), "-o", str(out),
                          "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGBA" if entry["channels"] == 4 else "RGB"))
    assert _sha(pixels) == entry["sha256"]


@pytest.mark.parametrize("name", ["bad-version-2.imc", "pp-truncated-pdat.imc"])
def test_cli_refuses_invalid_files(name, tmp_path):
    entry = next(e for e in INVALID if e["file"] == name)
    out = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-m", "imcompress", "decompress", str(CONF / name), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == ExitCode.CORRUPT
    assert entry["message"] in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


@pytest.mark.slow
def test_generator_reproduces_the_files(tmp_path):
    """tools/make_conformance.py regenerates byte-identical files (opt-in: ~1 min;
    on another machine a BLAS-dependent encoder choice may differ)."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_conformance.py"), str(tmp_path)], check=True,
                   capture_output=True)
    for e in MANIFEST["files"]:
        assert (tmp_path / e["file"]).read_bytes() == (CONF / e["file"]).read_bytes(), e["file"]
