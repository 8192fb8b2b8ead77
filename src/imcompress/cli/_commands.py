"""Imports every command module so that each attaches itself to the group."""

from . import _compress, _report  # noqa: F401
