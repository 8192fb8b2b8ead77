"""The command-line interface, a thin layer over the library."""

from ._main import cli, main, run

__all__ = ["cli", "main", "run"]
