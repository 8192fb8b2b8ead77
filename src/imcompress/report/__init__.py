"""The study report: numbers (:func:`study`), figures, and the HTML report.

A notebook user calls the three layers separately::

    from imcompress import load_image
    from imcompress.report import study, figures, write_report

    result = study(load_image("photo.jpg"))      # every number, no plotting
    fig = figures.inertia(result)                # one matplotlib Figure per figure
    write_report(result, "my-report")            # index.html + figures/ + metrics.json

:func:`study` also measures patch PCA against JPEG, WebP and AVIF
(:func:`rate_distortion`, in ``result.rd``; skip it with ``rd=False``).
A later section joins every report with :func:`register_section`.
"""

from . import figures
from ._html import (
    REPORT_ENTRIES,
    Figure,
    ReportFiles,
    Section,
    Table,
    Text,
    check_report_dir,
    register_section,
    render_html,
    report_sections,
    study_sections,
    write_report,
)
from ._rd import RD_BPPS, Encoding, RDResult, rate_distortion
from ._rd_section import rd_section
from ._study import (
    DEFAULT_KS,
    DEFAULT_SHOW_KS,
    DEFAULT_VARIANCES,
    KMeansResult,
    PCAResult,
    StudyResult,
    json_safe,
    kmeans_stored_bytes,
    parse_ks,
    parse_variances,
    study,
    wrapped_uint8_rmse,
)

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_SHOW_KS",
    "DEFAULT_VARIANCES",
    "RD_BPPS",
    "REPORT_ENTRIES",
    "Encoding",
    "Figure",
    "KMeansResult",
    "PCAResult",
    "RDResult",
    "ReportFiles",
    "Section",
    "StudyResult",
    "Table",
    "Text",
    "check_report_dir",
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
