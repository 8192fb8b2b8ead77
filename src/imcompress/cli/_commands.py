"""Imports every command module so that each attaches itself to the group."""

from . import _batch, _compress, _palette, _report  # noqa: F401
