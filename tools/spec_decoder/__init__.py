"""A decoder of the `.imc` format written from docs/FORMAT.md alone (see README.md)."""

from .spec_decoder import CorruptError, SpecDecodeError, UnsupportedError, decode

__all__ = ["decode", "SpecDecodeError", "CorruptError", "UnsupportedError"]
