"""The command line without numba where the ahead-of-time kernels do the work (issue 10).

Each command runs in a fresh interpreter that reports ``sys.modules``
(tests/test_startup.py's helper); no timing is asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imcompress.entropy import _indices as indices
from imcompress.io import _filtering
from imcompress.kmeans import _dispatch
from imcompress.kmeans._codec import KMeansCodec
from test_startup import JIT_ONLY, _heavy, _modules, _scipy_subpackages

NUMBA = ("numba", "llvmlite")


def _numba(modules) -> set:
    return {m for m in modules if m.split(".")[0] in NUMBA}


@pytest.fixture(scope="module")
def aot():
    if _dispatch._aot() is None:
        pytest.skip(f"no ahead-of-time kernels: {_dispatch.aot_reason()}")


@pytest.fixture(scope="module")
def photo_png(tmp_path_factory, sample):
    path = tmp_path_factory.mktemp("aotcli") / "photo.png"
    Image.fromarray(sample[:200, :300]).save(path)
    return path


@pytest.mark.parametrize("k", ["16", "256"])
def test_small_kmeans_compress_imports_no_numba(aot, photo_png, tmp_path, k):
    out, ref = tmp_path / "aot.png", tmp_path / "jit.png"
    modules = _modules("compress", str(photo_png), "-k", k, "-o", str(out))
    assert not _numba(modules), sorted(_numba(modules))
    assert not _heavy(modules) and not _scipy_subpackages(modules)
    assert "imcompress.kmeans._kernels_aot" in modules
    # nor what only other methods (threadpoolctl: pca-rows' BLAS threads) or process pools use
    assert not {m for m in modules if m.split(".")[0] in ("threadpoolctl", "multiprocessing")}
    # the same file as the JIT writes, byte for byte
    assert "numba" in _modules("compress", str(photo_png), "-k", k, "-o", str(ref), env=JIT_ONLY)
    assert out.read_bytes() == ref.read_bytes()


def test_several_inputs_and_a_quality_search_import_no_numba(aot, photo_png, tmp_path):
    second = tmp_path / "second.png"
    with Image.open(photo_png) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    modules = _modules("compress", str(photo_png), str(second), "--quality", "60-90", "--ext", ".q.png")
    assert not _numba(modules)
    assert (tmp_path / "second.q.png").stat().st_size > 0


def test_imc_files_are_written_and_read_without_numba(aot, photo_png, tmp_path):
    imc, ref = tmp_path / "a.imc", tmp_path / "jit.imc"
    modules = _modules("compress", str(photo_png), "-k", "64", "-o", str(imc))
    assert not _numba(modules) and "imcompress.entropy._index_aot" in modules
    _modules("compress", str(photo_png), "-k", "64", "-o", str(ref), env=JIT_ONLY)
    assert imc.read_bytes() == ref.read_bytes()
    out, out_ref = tmp_path / "a.ppm", tmp_path / "jit.ppm"
    assert not _numba(_modules("decompress", str(imc), "-o", str(out)))
    _modules("decompress", str(imc), "-o", str(out_ref), env=JIT_ONLY)
    assert out.read_bytes() == out_ref.read_bytes()


def test_palette_png_at_level_0_is_filtered_without_numba(aot, photo_png, tmp_path):
    # 16 colours at png_level 0: 4-bit rows through the PNG writer's row filter
    out, ref = tmp_path / "aot.png", tmp_path / "jit.png"
    args = ("compress", str(photo_png), "-k", "16", "--speed", "5", "--png-level", "0")
    modules = _modules(*args, "-o", str(out))
    assert not _numba(modules), sorted(_numba(modules))
    assert "imcompress.io._filters_aot" in modules and not _heavy(modules)
    assert "numba" in _modules(*args, "-o", str(ref), env=JIT_ONLY)
    assert out.read_bytes() == ref.read_bytes()
    with Image.open(out) as im:
        assert im.mode == "P" and len(im.getpalette()) // 3 <= 16


def test_decompress_to_png_imports_no_numba(aot, photo_png, tmp_path):
    src = tmp_path / "in.imc"
    _modules("compress", str(photo_png), "-k", "16", "-o", str(src))
    out, ref = tmp_path / "aot.png", tmp_path / "jit.png"
    modules = _modules("decompress", str(src), "-o", str(out))
    assert not _numba(modules), sorted(_numba(modules))
    assert {"imcompress.io._filters_aot", "imcompress.entropy._index_aot"} <= modules
    assert "numba" in _modules("decompress", str(src), "-o", str(ref), env=JIT_ONLY)
    assert out.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("args", [["compress", "-k", "8", "--dither", "-o", "o.png"],
                                  ["decompress", "-o", "o.png"]])
def test_what_needs_the_jit_sets_numba_up_lean(photo_png, tmp_path, args):
    # dithering, and the index coder and PNG's row filter on the JIT (their ahead-of-time
    # builds switched off), are numba kernels: numba is set up the CLI's way
    src, env = str(photo_png), None
    if args[0] == "decompress":
        src, env = str(tmp_path / "in.imc"), JIT_ONLY
        _modules("compress", str(photo_png), "-k", "8", "-o", src)
    modules = _modules(args[0], src, *args[1:], cwd=tmp_path, env=env)
    assert "numba" in modules
    assert not _scipy_subpackages(modules) and "yaml" not in modules and "cffi" not in modules


def test_info_and_help_import_no_numba(tmp_path, photo_png):
    import imcompress

    src = tmp_path / "a.imc"
    with Image.open(photo_png) as im:
        src.write_bytes(imcompress.compress(np.asarray(im), "kmeans", n_colors=8))
    for args in (["info", str(src)], ["compress", "--help"], ["decompress", "--help"]):
        modules = _modules(*args)
        assert not _numba(modules), (args, sorted(_numba(modules)))


def test_the_codec_says_when_it_needs_the_jit(aot, monkeypatch):
    monkeypatch.setattr(_dispatch._BUILDS, "numba_imported", lambda: False)
    monkeypatch.setattr(indices._BUILDS, "numba_imported", lambda: False)
    monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: False)
    codec = KMeansCodec(16)
    assert codec.needs_jit("png") == (_filtering._BUILDS.aot.load() is None)  # the row filter, if not compiled
    assert codec.needs_jit("imc") == (indices._BUILDS.aot.load() is None)  # the index coder, if not compiled
    assert KMeansCodec(16, dither=0.5).needs_jit("png")
    assert not KMeansCodec(16, dither=0.0).needs_jit("png")
    monkeypatch.setattr(_dispatch._BUILDS, "numba_imported", lambda: True)
    assert codec.needs_jit("png")  # numba is there: the quantizer uses its dispatchers


def test_the_console_script_imports_no_multiprocessing(aot, photo_png, tmp_path):
    # run() (the console script) ends with os._exit unless children may be alive;
    # it asks multiprocessing only where something imported it
    import json
    import subprocess
    import sys

    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
            "from imcompress.cli import run\n"
            "sys.argv = ['imcompress', *sys.argv[1:]]\n"
            "run()\n")
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-c", code, "compress", str(photo_png), "-k", "16", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    modules = set(json.loads(line[len("MODULES "):]))
    assert "imcompress.kmeans._kernels_aot" in modules and out.stat().st_size > 0
    assert not {m for m in modules if m.split(".")[0] in ("multiprocessing", "threadpoolctl", "numba")}
