"""The architecture, checked: the core never imports the analysis or interface layers.

Layers, innermost first (docs/library.md):

core
    everything not listed below: loading and validation, metrics, the codecs and
    their methods, the ``.imc`` container, entropy coding.
analysis
    ``imcompress.rd`` and ``imcompress.report``: may import the core.
interface
    ``imcompress.cli``, ``imcompress.batch`` and ``imcompress.__main__``: may import anything.

Imports are read from the source with :mod:`ast`, so an import inside a function,
a relative import and ``importlib.import_module("...")`` count as well as the ones
at the top of a module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import imcompress

SRC = Path(imcompress.__file__).resolve().parent
ANALYSIS = ("imcompress.rd", "imcompress.report")
INTERFACE = ("imcompress.cli", "imcompress.batch", "imcompress.__main__")
RANK = {"core": 0, "analysis": 1, "interface": 2}


def _within(name: str, roots) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


def layer_of(module: str) -> str:
    if _within(module, INTERFACE):
        return "interface"
    if _within(module, ANALYSIS):
        return "analysis"
    return "core"


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, wherever it is.

    ``from .. import x`` yields ``<package>.x``: the name may be a submodule.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(root: Path = SRC) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        source = path.read_text(encoding="utf-8")
        lines = set()  # one report per import statement: ``from ..cli import main`` is ``imcompress.cli``
        for line, target in imports_of(source, module, is_package=path.name == "__init__.py"):
            if not _within(target, ("imcompress",)) or line in lines:
                continue
            if RANK[layer_of(target)] > RANK[own]:
                lines.add(line)
                bad.append(f"{path.relative_to(root.parent)}:{line} ({own}) imports {target} ({layer_of(target)})")
    return bad


def test_no_module_imports_an_outer_layer():
    assert violations() == []


def test_core_is_most_of_the_package():
    # the rule has teeth only if the layers are what we think they are
    modules = [module_name(p) for p in SRC.rglob("*.py")]
    core = {m.split(".")[1] for m in modules if layer_of(m) == "core" and m.count(".") >= 1}
    assert {"codecs", "kmeans", "pca_rows", "pca_patch", "entropy", "format", "io", "metrics", "_validation"} <= core
    assert layer_of("imcompress.report._html") == "analysis" and layer_of("imcompress.cli._main") == "interface"
    assert layer_of("imcompress.batch") == "interface"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..cli import main\n", "imcompress.cli"),
        ("def f():\n    from ..report import study\n", "imcompress.report"),
        ("def f():\n    import imcompress.cli._main as m\n", "imcompress.cli._main"),
        ("from .. import report\n", "imcompress.report"),
        ("def f():\n    from ...imcompress import batch\n", None),  # beyond the top: not ours
        ("import importlib\nimportlib.import_module('imcompress.batch')\n", "imcompress.batch"),
        ("class C:\n    def m(self):\n        from ..rd import rd_curves\n", "imcompress.rd"),
    ],
)
def test_the_checker_finds_hidden_imports(tmp_path, source, expected):
    pkg = tmp_path / "imcompress"
    (pkg / "kmeans").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kmeans" / "__init__.py").write_text("")
    (pkg / "kmeans" / "_x.py").write_text(source)
    found = violations(pkg)
    if expected is None:
        assert all("imcompress.batch" not in v for v in found)
    else:
        assert len(found) >= 1 and all(v.startswith("imcompress/kmeans/_x.py:") for v in found), found
        assert any(f"imports {expected} " in v for v in found), found


def test_analysis_may_import_the_core_but_not_the_interface(tmp_path):
    pkg = tmp_path / "imcompress"
    (pkg / "report").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "report" / "__init__.py").write_text("from ..kmeans import KMeansQuantizer\n")
    assert violations(pkg) == []
    (pkg / "report" / "_y.py").write_text("def f():\n    from ..cli import main\n")
    assert violations(pkg) == ["imcompress/report/_y.py:2 (analysis) imports imcompress.cli (interface)"]


CORE = ["io", "metrics", "format", "entropy", "codecs", "kmeans", "pca_rows", "pca_patch"]


def test_core_does_not_import_cli_or_report():
    # one interpreter, the core modules imported one by one: the first module
    # that pulls in imcompress.cli or imcompress.report is named
    script = (
        "import importlib, sys\n"
        "def bad():\n"
        "    return sorted(m for m in sys.modules\n"
        "                  if m.split('.')[:2] in (['imcompress', 'cli'], ['imcompress', 'report']))\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module('imcompress.' + name)\n"
        "    if bad():\n"
        "        print(name, bad()); break\n"
        "else:\n"
        "    import imcompress\n"
        "    imcompress.available_methods()  # every codec registered\n"
        "    print('codecs', bad()) if bad() else None\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"core module imports the CLI layer: {proc.stdout.strip()}"
