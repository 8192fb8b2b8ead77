"""numba set up for one command, without the optional imports it does not need.

numba prepares its compiler on the first call of any kernel, even of one loaded
from its on-disk cache: it imports its implementation modules, among them two
optional ones that cost about a third of that set-up (0.3 of 0.9 CPU-seconds,
measured with ``benchmarks/_floor.py``): ``scipy.linalg``, for its check whether
a BLAS is there for the inner loops of ``np.correlate``/``np.convolve`` in
kernels, and ``cffi``, for calling cffi functions from kernels. imcompress's
kernels use neither, and numba treats both as optional (it catches the
ImportError and leaves the feature off). So a command sets numba up with these
two imports refused, and lets them through again at once: scipy and cffi import
as usual afterwards for whatever needs them (``--ssim``, the Lab colour space).

Importing numba has two such imports too: SciPy, only to check its version,
and PyYAML, only to read a ``.numba_config.yaml`` in the working directory.
:func:`import_numba` refuses them while numba imports (PyYAML only when there is
no such file), about 0.02 s of the command's start-up.

Only the command line does this, because it owns its process; the library
never changes how numba is set up in a user's process.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

__all__ = ["import_numba", "set_up_numba"]

#: Imports numba's set-up makes only for features imcompress's kernels do not use.
_NOT_NEEDED = frozenset({"scipy.linalg", "cffi"})


#: Imports numba's own import makes only for a version check and a config file.
_NOT_NEEDED_AT_IMPORT = frozenset({"scipy", "yaml"})


class _Refuse(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if name in self.names:
            raise ImportError(f"{name} is not imported while numba sets up (imcompress.cli._startup)")
        return None


def import_numba() -> None:
    """Import numba without :data:`_NOT_NEEDED_AT_IMPORT` (PyYAML kept when a
    ``.numba_config.yaml`` is there to read). Does nothing once numba is imported."""
    if "numba" in sys.modules:
        return
    names = set(_NOT_NEEDED_AT_IMPORT) - set(sys.modules)
    if os.path.isfile(".numba_config.yaml"):
        names.discard("yaml")
    refuse = _Refuse(names)
    sys.meta_path.insert(0, refuse)
    try:
        import numba  # noqa: F401
    finally:
        sys.meta_path.remove(refuse)


def set_up_numba() -> None:
    """Import numba (:func:`import_numba`) and prepare its CPU target, skipping :data:`_NOT_NEEDED`.

    Does nothing when numba's target is already prepared or when one of the
    skipped modules is already imported (then skipping it saves nothing).
    """
    import_numba()
    if any(name in sys.modules for name in _NOT_NEEDED) or "numba.np.arraymath" in sys.modules:
        return
    # scipy itself too when nothing imported it yet (import_numba keeps it out):
    # importing scipy.linalg would import the package first
    refuse = _Refuse(_NOT_NEEDED | ({"scipy"} - set(sys.modules)))
    sys.meta_path.insert(0, refuse)
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # pragma: no cover - another numba: it sets itself up on first use
        pass
    finally:
        sys.meta_path.remove(refuse)
