"""HTML rendering: the page is built from Jinja2 templates (``templates/``, package data).

The templates hold the markup, the CSS and the explorer's hand-written
JavaScript; this module only turns blocks into template values. The page
loads nothing: figures and previews are embedded as data URIs, the script
and the style are inline.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources

from .._errors import UsageError
from ._blocks import Figure, Table, Text

__all__ = ["environment", "fmt", "render_html", "template_text"]


def fmt(value, digits=2) -> str:
    """A table cell: ints with separators, floats at ``digits`` decimals, NaN as n/a, None as –."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞"
        return f"{value:,.{digits}f}"
    return str(value)


def template_text(name: str) -> str:
    """The text of a file of ``templates/`` (the CSS and the script are inlined from there)."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment of the report's templates (autoescaping on)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader(__package__, "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, keep_trailing_newline=True)


def _script_json(data) -> str:
    # inside <script>: "</" must not close the element
    return json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def render_html(result, sections: list, figure_uris: dict, explorer_data=None) -> str:
    """The whole report as one HTML page.

    Parameters
    ----------
    result : StudyResult
    sections : list of Section
    figure_uris : dict of str to str
        Each figure block's name to its data URI.
    explorer_data : dict, optional
        The explorer's numbers and previews, read by the page's script.
    """
    from .. import __version__

    env = environment()
    blocks = env.get_template("blocks.html.j2").module

    def block(b):
        if isinstance(b, Text):
            return blocks.text(b)
        if isinstance(b, Figure):
            return blocks.figure(b, figure_uris[b.name])
        if isinstance(b, Table):
            return blocks.table(b, lambda v: v if isinstance(v, str) else fmt(v))
        raise UsageError(f"unknown report block {type(b).__name__}; use Text, Figure or Table")

    h, w = result.image.shape[:2]
    return env.get_template("page.html.j2").render(
        source=result.source, height=h, width=w, version=__version__, sections=sections, block=block,
        css=template_text("report.css"), js=template_text("explorer.js") if explorer_data else "",
        explorer_data=_script_json(explorer_data) if explorer_data else "",
    )
