"""What a command imports: only what it uses (issue 10).

Each command runs in a fresh interpreter, which then reports ``sys.modules``;
no timing is asserted here (speed is measured in ``benchmarks/e2e.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

_REPORT = (
    "import json, sys\n"
    "from imcompress.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    "sys.exit(code)\n"
)

#: Heavy libraries no compress command of these tests needs.
HEAVY = ("sklearn", "skimage", "matplotlib", "kneed", "dask", "distributed", "jinja2", "cffi")


#: The kernels on numba's JIT, as on a machine without their ahead-of-time build
#: (with it a small kmeans image runs without numba: tests/test_aot_cli.py).
JIT_ONLY = {"IMCOMPRESS_AOT": "0"}


def _modules(*args, cwd=None, env=None) -> set:
    proc = subprocess.run([sys.executable, "-c", _REPORT, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def _scipy_subpackages(modules) -> set:
    # numba imports the top-level scipy package itself (cheap); its subpackages are the cost
    return {m for m in modules if m.startswith("scipy.") and not m.split(".")[1].startswith("_")
            and m != "scipy.version"}


def _heavy(modules) -> set:
    return {m for m in modules if m.split(".")[0] in HEAVY}


@pytest.fixture(scope="module")
def small_png(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("startup") / "small.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_imports_no_numba_and_no_codec(args):
    modules = _modules(*args)
    assert not {m for m in modules if m.split(".")[0] in ("numba", "llvmlite", "scipy")}
    assert not _heavy(modules)
    assert not {m for m in modules if m.startswith(("imcompress.kmeans", "imcompress.pca", "imcompress.entropy"))}


def test_a_command_help_imports_only_its_module():
    modules = _modules("report", "--help")
    assert "imcompress.cli._report" in modules and "imcompress.cli._batch" not in modules
    assert not _heavy(modules) and "numba" not in modules


def test_import_imcompress_is_light():
    proc = subprocess.run([sys.executable, "-c", "import json, sys, imcompress; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, check=True, timeout=300)
    modules = set(json.loads(proc.stdout))
    assert "numba" not in modules and not _heavy(modules) and not _scipy_subpackages(modules)


@pytest.mark.parametrize("fmt", ["png", "imc"])
def test_compress_kmeans_imports_no_scipy_subpackage(small_png, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    modules = _modules("compress", str(small_png), "-m", "kmeans", "-k", "8", "-o", str(out), env=JIT_ONLY)
    assert out.stat().st_size > 0
    assert "numba" in modules  # the kernels ran
    assert not _scipy_subpackages(modules), "numba's BLAS check imports scipy.linalg; see cli/_startup.py"
    assert not _heavy(modules)
    # another method's codec is imported only to list its options, not its encoder or decoders
    assert {m for m in modules if m.startswith("imcompress.pca_patch.")} <= {
        "imcompress.pca_patch._codec", "imcompress.pca_patch._quantize"}


def test_decompress_kmeans_imports_no_scipy_subpackage(small_png, tmp_path):
    import imcompress

    src = tmp_path / "a.imc"
    with Image.open(small_png) as im:
        src.write_bytes(imcompress.compress(np.asarray(im), "kmeans", n_colors=8))
    modules = _modules("decompress", str(src), "-o", str(tmp_path / "a.png"))
    assert not _scipy_subpackages(modules) and not _heavy(modules)


@pytest.mark.parametrize("ext", ["png", "ppm"])
def test_decompress_to_png_or_ppm_imports_no_pillow_plugin(small_png, tmp_path, ext):
    # the command writes these formats itself: naming them needs none of Pillow's ~40 plugins
    import imcompress
    from imcompress.cli._compress import _OWN_WRITERS

    assert {e: Image.registered_extensions()[e] for e in _OWN_WRITERS} == _OWN_WRITERS  # Pillow's names
    src = tmp_path / "a.imc"
    with Image.open(small_png) as im:
        src.write_bytes(imcompress.compress(np.asarray(im), "kmeans", n_colors=8))
    modules = _modules("decompress", str(src), "-o", str(tmp_path / f"a.{ext}"))
    assert not {m for m in modules if m.startswith("PIL.") and m.endswith("ImagePlugin")}
    assert "PIL.JpegImagePlugin" in _modules("decompress", str(src), "-o", str(tmp_path / "a.tif"))


def test_scipy_imports_normally_after_numba_is_set_up():
    # numba's set-up refuses scipy.linalg and cffi only while it runs
    code = ("from imcompress.cli._startup import set_up_numba\n"
            "set_up_numba()\n"
            "import scipy.linalg, numba\n"
            "from numba.np import arraymath\n"
            "print(scipy.linalg.norm([3.0, 4.0]), arraymath._HAVE_BLAS)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert proc.stdout.split() == ["5.0", "False"]



def test_compress_imports_neither_scipy_nor_yaml(small_png, tmp_path):
    # numba imports them for a version check and a config file; the command refuses both while it imports
    modules = _modules("compress", str(small_png), "-k", "8", "-o", str(tmp_path / "o.png"), env=JIT_ONLY)
    assert "numba" in modules and not {m for m in modules if m.split(".")[0] in ("scipy", "yaml")}


def test_numba_reads_its_config_file_when_there_is_one(tmp_path):
    (tmp_path / ".numba_config.yaml").write_text("DEBUG_CACHE: 0\n")
    code = ("import sys\nfrom imcompress.cli._startup import import_numba\nimport_numba()\n"
            "from numba.core import config\nimport scipy.linalg\n"
            "print(config._HAVE_YAML, 'yaml' in sys.modules, scipy.linalg.norm([3.0, 4.0]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
                          cwd=tmp_path)
    assert proc.stdout.split() == ["True", "True", "5.0"]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
                          cwd=tmp_path / "..")
    assert proc.stdout.split() == ["False", "False", "5.0"]
