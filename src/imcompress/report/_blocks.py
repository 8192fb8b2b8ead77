"""The blocks a report section is made of: text, figures and tables."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Figure", "Section", "Table", "Text"]


@dataclass
class Text:
    """A paragraph block. ``html`` is trusted markup; escape user data with :func:`html.escape`."""

    html: str


@dataclass
class Figure:
    """A figure block: written to ``figures/<name>.png`` and embedded in the page."""

    name: str
    figure: object  # matplotlib.figure.Figure
    caption: str = ""
    css_class: str = ""  # e.g. "print-only": shown when printing, the explorer on screen
    alt: str = ""  # text for screen readers; default: the name


@dataclass
class Table:
    """A table block: ``columns`` are headers, ``rows`` lists of cell values."""

    columns: list
    rows: list
    caption: str = ""


@dataclass
class Section:
    """One section of the report.

    Attributes
    ----------
    id : str
        Anchor in the page and, when ``metrics`` is not empty, the key of its
        numbers in ``metrics.json``.
    title : str
    blocks : list of Text, Figure or Table
    metrics : dict
        JSON-ready numbers stored under ``metrics.json[id]``.
    """

    id: str
    title: str
    blocks: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
