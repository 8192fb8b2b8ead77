"""The command-line interface, a thin layer over the library."""

from ._main import cli, main

__all__ = ["cli", "main"]
