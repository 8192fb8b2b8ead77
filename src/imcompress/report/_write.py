"""Writing a report folder: ``index.html``, ``metrics.json`` and ``figures/``, all or nothing.

:func:`write_report` builds everything in a temporary folder beside the
target and moves it into place at the end, so an interrupted run leaves no
half-written report. The page's pictures are made to fit its size budget
(``_previews.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._errors import OutputExistsError, UsageError, WriteError
from .._json import json_safe
from . import figures as _figs
from ._blocks import Figure
from ._explorer_section import explorer_data
from ._previews import encode_previews, figure_data_uri, page_budget
from ._render import render_html
from ._results import StudyResult
from ._sections import report_sections

__all__ = ["REPORT_ENTRIES", "ReportFiles", "check_report_dir", "write_report"]

#: Names a report folder holds; ``--force`` replaces only folders holding nothing else.
REPORT_ENTRIES = frozenset({"index.html", "metrics.json", "figures"})


@dataclass
class ReportFiles:
    """Where :func:`write_report` put things."""

    folder: Path
    index: Path
    metrics: Path
    figures: list


def check_report_dir(out_dir, *, force: bool = False) -> Path:
    """Check, before any work, that a report may be written to ``out_dir``.

    Raises
    ------
    OutputExistsError
        ``out_dir`` is a non-empty folder and ``force`` is false, or it holds
        files that are not part of a report (``--force`` never deletes those).
    WriteError
        ``out_dir`` is a file, or its parent folder is missing or read-only.
    """
    out = Path(out_dir)
    if out.exists() and out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise WriteError(f"{out}: is the current folder or above it; give a new folder, e.g. -o report")
    if out.exists() and not out.is_dir():
        raise WriteError(f"{out}: is a file, not a folder; give a folder for the report")
    if out.is_dir():
        entries = sorted(p.name for p in out.iterdir())
        if entries and not force:
            raise OutputExistsError(f"{out}: folder exists and is not empty; use -f/--force to replace it")
        stray = [e for e in entries if e not in REPORT_ENTRIES]
        if stray:
            raise OutputExistsError(
                f"{out}: holds {stray[0]!r}, which is not part of a report; --force only replaces "
                "report folders, so remove it or choose another folder"
            )
    parent = out.absolute().parent
    if not parent.is_dir():
        raise WriteError(f"{out}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"{out}: folder {parent} is not writable")
    return out


def write_report(result: StudyResult, out_dir, *, force: bool = False, sections=None,
                 extra_sections=(), dpi: int = 100) -> ReportFiles:
    """Write ``index.html``, ``metrics.json`` and ``figures/*.png`` to ``out_dir``.

    Parameters
    ----------
    result : StudyResult
    out_dir : path
        The report folder; created. An existing non-empty folder is refused
        unless ``force`` (and even then only if it holds a previous report).
    force : bool, default=False
    sections : list of Section, optional
        Defaults to :func:`report_sections` (the study's + registered ones).
    extra_sections : list of Section
        Appended after ``sections``.
    dpi : int, default=100

    Returns
    -------
    ReportFiles
    """
    out = check_report_dir(out_dir, force=force)
    if sections is None:
        sections = report_sections(result)
    sections = list(sections) + list(extra_sections)
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids):
        raise UsageError(f"report section ids must be unique, got {ids}")

    pngs = {}
    for s in sections:
        for b in s.blocks:
            if isinstance(b, Figure):
                if b.name in pngs:
                    raise UsageError(f"figure name {b.name!r} is used twice in the report")
                pngs[b.name] = _figs.figure_png(b.figure, dpi=dpi)
    metrics = result.to_dict()
    for s in sections:
        if s.metrics:
            metrics[s.id] = json_safe(s.metrics)
    from .. import __version__

    metrics["generator"] = f"imcompress {__version__}"
    figure_uris = {name: figure_data_uri(png) for name, png in pngs.items()}
    data = None
    explorer = getattr(result, "explorer", None)
    if explorer is not None and any(s.id == "explorer" for s in sections):
        data, previews = _explorer_page_data(result, sections, figure_uris)
        metrics.setdefault("explorer", {})["previews"] = previews
    page = render_html(result, sections, figure_uris, data)

    parent = out.absolute().parent
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        (tmp / "figures").mkdir()
        for name, data in pngs.items():
            (tmp / "figures" / f"{name}.png").write_bytes(data)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
        (tmp / "index.html").write_text(page, encoding="utf-8")
        os.chmod(tmp, 0o755 & ~_umask())
        _move_into_place(tmp, out, force=force)
        tmp = None
    except (OutputExistsError, WriteError):
        raise
    except OSError as exc:
        raise WriteError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return ReportFiles(
        folder=out,
        index=out / "index.html",
        metrics=out / "metrics.json",
        figures=[out / "figures" / f"{n}.png" for n in pngs],
    )


def _explorer_page_data(result, sections, figure_uris):
    """The explorer's script data with previews sized to the page budget, and their facts for metrics.json."""
    ex = result.explorer
    flat = [s.image for m in ex.methods for s in m.settings]
    blank = _Blank()
    empty = explorer_data(result, blank, [[blank] * len(m.settings) for m in ex.methods])
    rest = len(render_html(result, sections, figure_uris, empty).encode("utf-8"))
    budget = page_budget(ex.image.shape[0] * ex.image.shape[1]) - rest - _SLACK
    original, previews = encode_previews(ex.image, flat, budget)
    grouped, k = [], 0
    for m in ex.methods:
        grouped.append(previews[k:k + len(m.settings)])
        k += len(m.settings)
    facts = {"original": original.to_dict(), "budget_bytes": page_budget(ex.image.shape[0] * ex.image.shape[1]),
             "methods": [[p.to_dict() for p in g] for g in grouped]}
    return explorer_data(result, original, grouped), json_safe(facts)


#: Bytes kept free under the page budget (the JSON's own growth, rounding).
_SLACK = 4096


class _Blank:
    """A preview without pixels: the page's size without them."""

    uri = ""
    lossless = True
    quality = None
    psnr = float("inf")


def _move_into_place(tmp: Path, out: Path, *, force: bool) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    # re-check: the folder may have changed while we worked
    check_report_dir(out, force=force)
    if not any(out.iterdir()):
        os.rename(tmp, out)  # replaces an empty folder atomically
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=tmp.parent))
    os.rename(out, old / "report")
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old / "report", out)  # put the old report back
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
