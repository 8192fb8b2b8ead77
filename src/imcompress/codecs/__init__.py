"""Codec interface, registry, and the compress/decompress entry points."""

from ._base import (
    Codec,
    Compressed,
    Option,
    Reconstruction,
    Slider,
    available_methods,
    codec_for_id,
    compress,
    decompress,
    get_codec,
    inspect,
    register_codec,
)
from ._targets import Measured, TargetResult, Trial, compress_to_target, search_target

__all__ = [
    "Codec",
    "Compressed",
    "Option",
    "Reconstruction",
    "Slider",
    "available_methods",
    "codec_for_id",
    "compress",
    "decompress",
    "get_codec",
    "inspect",
    "register_codec",
    "search_target",
    "compress_to_target",
    "Measured",
    "TargetResult",
    "Trial",
]
