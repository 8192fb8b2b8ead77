"""The ``.imc`` container format (specified in docs/FORMAT.md)."""

from ._container import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    MAX_SECTIONS,
    MAX_SIDE,
    Container,
    is_container,
    pack_container,
    unpack_container,
)

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_SECTIONS",
    "MAX_SIDE",
    "Container",
    "is_container",
    "pack_container",
    "unpack_container",
]
