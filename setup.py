"""Build of the optional ahead-of-time kernels (everything else is in pyproject.toml).

``imcompress.kmeans._kernels_aot`` is ``imcompress/kmeans/_kernels.py``'s numba
kernels compiled by numba.pycc (see ``imcompress/_aot.py``), and
``imcompress.entropy._index_aot`` the palette-index coder's and
``imcompress.io._filters_aot`` PNG's row filter: the command line then
quantizes and writes palette PNGs and kmeans ``.imc`` files, and writes PNGs
of decoded images, without importing numba. The build is optional:
without numba.pycc or a C compiler, or if it fails, the install goes on
without the module and the kernels run on numba's JIT, as they always can.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"

#: extension -> (the kernel module it is built from, the module listing the exports)
AOT_MODULES = {
    "imcompress.kmeans._kernels_aot": ("imcompress.kmeans._kernels", "imcompress.kmeans._kernel_spec"),
    "imcompress.entropy._index_aot": ("imcompress.entropy._index_kernels", "imcompress.entropy._index_spec"),
    "imcompress.io._filters_aot": ("imcompress.io._filters", "imcompress.io._filter_spec"),
}


def _aot_helper():
    # by path: importing the package would import Pillow, absent from the build environment
    spec = importlib.util.spec_from_file_location("_imcompress_aot_build", SRC / "imcompress" / "_aot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildAot(build_ext):
    """Compiles the AOT extensions with numba.pycc instead of from C sources; never fails the install."""

    def build_extension(self, ext):
        if ext.name not in AOT_MODULES:
            return super().build_extension(ext)
        target = Path(self.get_ext_fullpath(ext.name))
        try:
            built = _aot_helper().build(SRC, *AOT_MODULES[ext.name], ext.name, target.parent)
            if built.resolve() != target.resolve():
                built.replace(target)
        except Exception as exc:  # noqa: BLE001 - any failure means: no AOT module, the JIT runs
            print(f"warning: {ext.name} not built ({type(exc).__name__}: {exc}); "
                  "imcompress uses numba's JIT for these kernels", file=sys.stderr)

    def get_outputs(self):
        # only what exists: a skipped AOT module is not an output to install
        return [p for p in super().get_outputs() if Path(p).exists() or not self._is_aot(p)]

    def _is_aot(self, path):
        return any(Path(path) == Path(self.get_ext_fullpath(name)) for name in AOT_MODULES)


setup(
    ext_modules=[Extension(name, sources=[], optional=True) for name in AOT_MODULES],
    cmdclass={"build_ext": BuildAot},
)
