"""The study report: numbers (:func:`study`), figures, and the HTML report.

A notebook user calls the three layers separately::

    from imcompress import load_image
    from imcompress.report import study, figures, write_report

    result = study(load_image("photo.jpg"))      # every number, no plotting
    fig = figures.inertia(result)                # one matplotlib Figure per figure
    write_report(result, "my-report")            # index.html + figures/ + metrics.json

:func:`study` also measures patch PCA against JPEG, WebP and AVIF
(:func:`rate_distortion`, in ``result.rd``; skip it with ``rd=False``) and
writes every slider position of the page's explorer (:func:`explore`, in
``result.explorer``; skip it with ``explorer=False``).

The modules do one job each: ``_parse`` (user lists), ``_results`` (result
types), ``_study``, ``_rd`` and ``_explorer`` (measuring), ``_sections``,
``_rd_section`` and ``_explorer_section`` (section content), ``_render``
(Jinja2 templates in ``templates/``), ``_previews`` (the size budget) and
``_write`` (the folder, all or nothing).
A later section joins every report with :func:`register_section`.
"""

from . import figures
from ._blocks import Figure, Section, Table, Text
from ._explorer import explore
from ._parse import parse_ks, parse_variances
from ._rd import rate_distortion
from ._rd_section import rd_section
from ._render import render_html
from ._results import (
    RD_BPPS,
    Encoding,
    Explorer,
    KMeansResult,
    MethodExplorer,
    PCAResult,
    RDResult,
    Setting,
    StudyResult,
)
from ._sections import register_section, report_sections, study_sections
from ._study import (
    DEFAULT_KS,
    DEFAULT_SHOW_KS,
    DEFAULT_VARIANCES,
    kmeans_stored_bytes,
    study,
    wrapped_uint8_rmse,
)
from ._write import REPORT_ENTRIES, ReportFiles, check_report_dir, write_report
from .._json import json_safe

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_SHOW_KS",
    "DEFAULT_VARIANCES",
    "RD_BPPS",
    "REPORT_ENTRIES",
    "Encoding",
    "Explorer",
    "Figure",
    "KMeansResult",
    "MethodExplorer",
    "PCAResult",
    "RDResult",
    "ReportFiles",
    "Section",
    "Setting",
    "StudyResult",
    "Table",
    "Text",
    "check_report_dir",
    "explore",
    "figures",
    "json_safe",
    "kmeans_stored_bytes",
    "parse_ks",
    "parse_variances",
    "rate_distortion",
    "rd_section",
    "register_section",
    "render_html",
    "report_sections",
    "study",
    "study_sections",
    "write_report",
    "wrapped_uint8_rmse",
]
