"""Kernels compiled ahead of time by numba.pycc, used only while they match their sources.

A package's numba kernels are one source that runs two ways: compiled on first
use by numba's JIT (the ``@njit`` dispatchers), or compiled once at install
time into an extension module (``setup.py`` calls :func:`build`). Importing
that module takes about a millisecond and imports neither numba nor llvmlite,
where numba's import, set-up and the loading of cached kernels cost a command
about 0.5 s. Its functions release the GIL while they run, as the ``nogil``
dispatchers do, so code that runs kernels in threads runs them at once.

The build stores a digest of the kernel sources in the module; :func:`load`
compares it with the files as they are now and refuses a module built from
other sources (a kernel edited after an editable install), so a stale build is
never run. Without the module (numba.pycc missing, no C compiler, a failed
build) everything runs on the JIT as before.

This module itself imports nothing beyond the standard library: ``setup.py``
loads it by path, in a build environment that has only numba, numpy and
setuptools.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import types
from pathlib import Path

__all__ = ["AotModule", "Builds", "build", "checked", "load", "signature", "source_digest"]

#: Set to ``0`` to never use the ahead-of-time kernels (everything on the JIT).
ENV_SWITCH = "IMCOMPRESS_AOT"


def source_digest(paths) -> int:
    """A 60-bit digest of the bytes of the files ``paths`` (in the given order).

    An int so that the compiled module can return it from a nopython function.
    """
    h = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return int(h.hexdigest()[:15], 16)


class AotModule:
    """The ahead-of-time build of one kernel module, loaded on first use.

    Parameters
    ----------
    name : str
        Dotted name of the compiled extension (``imcompress.kmeans._kernels_aot``).
    sources : sequence of str
        The files its digest covers, relative to the package directory of
        ``name``: the kernel module (which also lists the exports and their
        signatures).
    """

    def __init__(self, name: str, sources):
        self.name = name
        self.sources = tuple(sources)
        self._module = None
        self._reason = None

    @property
    def package_dir(self) -> Path:
        pkg = sys.modules[self.name.rpartition(".")[0]]
        return Path(pkg.__file__).parent

    def source_paths(self):
        return [self.package_dir / s for s in self.sources]

    def load(self):
        """The compiled module, or None when it is absent, stale or switched off (see :attr:`reason`)."""
        if self._module is None and self._reason is None:
            self._module, self._reason = _load(self)
        return self._module

    @property
    def reason(self) -> str | None:
        """Why :meth:`load` gives None (None when the module is used)."""
        self.load()
        return self._reason


class Builds:
    """A kernel module's two builds, and the one a call starting now runs on.

    The ahead-of-time build (each export behind :func:`checked`) while numba is
    not imported and that build is there (not absent, stale or switched off);
    numba's JIT dispatchers otherwise: a process that has imported numba has
    paid for its start-up (a script running other numba kernels, a batch worker
    that warmed them up), and both builds compute the same values. The one
    picker of every numba-free facade (the quantizer's kernels, the index
    coder's, PNG's row filter).

    Parameters
    ----------
    aot : AotModule
        The compiled extension.
    jit_module : str
        Dotted name of the kernel module (the ``@njit`` functions), imported
        on the first use of the JIT.
    exports : dict
        The spec's ``EXPORTS``: name -> (return type, argument types).
    make : callable, optional
        ``make(build, functions)`` -> what callers get for one build
        (``build`` "aot" or "jit", ``functions`` a dict name -> function);
        default a namespace with the functions as attributes.
    """

    def __init__(self, aot: AotModule, jit_module: str, exports, make=None):
        self.aot = aot
        self.jit_module = jit_module
        self.exports = dict(exports)
        self.make = make if make is not None else (lambda build, functions: types.SimpleNamespace(**functions))
        self._made = {}

    @staticmethod
    def numba_imported() -> bool:
        return "numba" in sys.modules

    def uses_aot(self) -> bool:
        """Whether :meth:`current` gives the ahead-of-time build now."""
        return not self.numba_imported() and self.aot.load() is not None

    def jit(self):
        """The JIT build (imports numba and the kernel module on first use)."""
        if "jit" not in self._made:
            module = importlib.import_module(self.jit_module)
            self._made["jit"] = self.make("jit", {name: getattr(module, name) for name in self.exports})
        return self._made["jit"]

    def to_jit(self, name, args):
        """Export ``name`` called on the JIT: where a checked call's arguments do not fit the build."""
        return getattr(self.jit(), name)(*args)

    def compiled(self):
        """The ahead-of-time build, or None when it is not available (see ``aot.reason``)."""
        module = self.aot.load()
        if module is None:
            return None
        if self._made.get("aot", (None,))[0] is not module:
            functions = {name: checked(name, getattr(module, name), args, lambda n, a: self.to_jit(n, a))
                         for name, (_, args) in self.exports.items()}
            self._made["aot"] = (module, self.make("aot", functions))
        return self._made["aot"][1]

    def current(self):
        """The build for a call starting now: :meth:`compiled` if :meth:`uses_aot`, else :meth:`jit`."""
        return self.compiled() if self.uses_aot() else self.jit()


_DTYPES = {"f8": "float64", "f4": "float32", "i8": "int64", "i4": "int32", "u4": "uint32", "u1": "uint8"}
_SCALARS = {"f8": float, "i8": int, "b1": bool}


def signature(exports, name: str) -> str:
    """numba's signature text of export ``name`` of ``exports`` (a spec module's ``EXPORTS``):
    ``"i8[::1](f8[:, ::1], f8[:, ::1])"``."""
    ret, args = exports[name]
    return f"{ret}({', '.join(args)})"


def checked(name, func, arg_types, fallback):
    """``func`` (an export of a compiled module) behind a check of its arguments.

    A compiled function reads whatever memory it is given, so an argument that
    is not exactly the declared C-contiguous array of ``arg_types`` (numba's
    spelling: ``"f8[:, ::1]"``, ``"i8"``), or a scalar that does not convert,
    sends the call to ``fallback(name, args)`` (the JIT dispatcher, which
    accepts any layout) instead; the callers pass the declared types, so this
    does not happen in their work (tested). Read-only arrays pass: the kernels
    write only into arrays their callers allocated for them.
    """
    import numpy as np

    specs = []
    for text in arg_types:
        code, _, dims = text.partition("[")
        specs.append((_SCALARS[code], None, 0) if not dims else (None, np.dtype(_DTYPES[code]), dims.count(",") + 1))

    def call(*args):
        if len(args) != len(specs):
            return fallback(name, args)
        fixed = []
        for a, (scalar, dtype, ndim) in zip(args, specs):
            if scalar is not None:
                if isinstance(a, np.ndarray):
                    return fallback(name, args)
                fixed.append(scalar(a))
            elif type(a) is np.ndarray and a.dtype == dtype and a.ndim == ndim and a.flags.c_contiguous:
                fixed.append(a)
            else:
                return fallback(name, args)
        return func(*fixed)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"The ahead-of-time build of {name} (arguments checked)."
    return call


def load(aot: AotModule):
    """``aot.load()``: the compiled module or None."""
    return aot.load()


def _load(aot: AotModule):
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None, f"switched off ({ENV_SWITCH}=0)"
    try:
        module = importlib.import_module(aot.name)
    except ImportError as exc:
        return None, f"{aot.name} is not built ({exc}); see README's set-up notes"
    try:
        built = int(module.source_digest())
        now = source_digest(aot.source_paths())
    except (AttributeError, OSError) as exc:  # pragma: no cover - a broken build or a moved file
        return None, f"{aot.name} cannot be checked against its sources ({exc})"
    if built != now:
        return None, (f"{aot.name} was built from other sources than {', '.join(aot.sources)} "
                      "(edited since the install): reinstall to rebuild it")
    return module, None


def _stub_packages(src_root: Path, dotted: str) -> None:
    """Make the parent packages of ``dotted`` importable without running their ``__init__``.

    The build environment has numba and numpy only; the kernel modules need
    nothing else, but ``imcompress/__init__.py`` imports Pillow.
    """
    parts = dotted.split(".")[:-1]
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name in sys.modules:
            continue
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(src_root.joinpath(*parts[:i]))]
        sys.modules[name] = pkg


def build(src_root, kernels: str, spec: str, extension: str, output_dir) -> Path:
    """Compile the exports of the kernel module ``kernels`` into the extension ``extension``.

    ``spec`` names the numba-free module that lists them: ``EXPORTS`` (name ->
    (return type, argument types); see :func:`signature`) and ``SOURCES`` (the
    files of the package the build is checked against); the build adds
    ``source_digest()``. Needs numba (with ``numba.pycc``) and a C compiler;
    raises on any failure.

    Returns the path of the built module.
    """
    src_root = Path(src_root)
    _stub_packages(src_root, kernels)
    mod = importlib.import_module(kernels)
    exports = importlib.import_module(spec)
    from numba.pycc import CC

    cc = CC(extension.rpartition(".")[2])
    cc.output_dir = str(output_dir)
    # generic x86-64 (or ARM64) code, not tuned to the building CPU: the kernels
    # are sequential float64 loops, as fast as the host-tuned JIT's (measured on
    # kmeanspp and the brute-force search, study photo, K = 256)
    for name in exports.EXPORTS:
        cc.export(name, signature(exports.EXPORTS, name))(getattr(mod, name).py_func)
    digest = source_digest([Path(mod.__file__).parent / s for s in exports.SOURCES])

    def digest_fn():
        return digest

    cc.export("source_digest", "i8()")(digest_fn)
    with _releasing_gil():
        cc.compile()
    return Path(cc.output_dir) / cc.output_file


class _releasing_gil:
    """numba.pycc compiles its Python wrappers with default flags, which hold the
    GIL; inside this context its flags release it, as ``@njit(nogil=True)`` does
    (the same wrapper code). Raises if this numba has no such flag."""

    def __enter__(self):
        import numba.pycc.compiler as pycc_compiler

        base = pycc_compiler.Flags
        if not hasattr(base(), "release_gil"):
            raise RuntimeError("this numba's compiler flags have no release_gil")

        class NoGil(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.release_gil = True

        self._module, self._base = pycc_compiler, base
        pycc_compiler.Flags = NoGil

    def __exit__(self, *exc):
        self._module.Flags = self._base
        return False
