"""imcompress: image compression with unsupervised learning, measured honestly.

``import imcompress`` is light: the error classes, the validation helpers and
the Pillow plugin are imported at once; the codecs, the loaders, the metrics
and the quantizer (numba's kernels) when first used as ``imcompress.<name>``.
"""

from __future__ import annotations

import importlib

from ._errors import (
    CorruptFileError,
    ExitCode,
    ImcompressError,
    InputError,
    OutputExistsError,
    QualityError,
    UnsupportedVersionError,
    UsageError,
    WriteError,
)
from ._validation import check_image, to_uint8
from . import plugins

plugins._register_on_import()  # Image.open("photo.imc"); see imcompress.plugins

__version__ = "0.1.0"

#: Public names imported on first use: name -> the module that defines it.
_LAZY = {
    "Measured": ".codecs",
    "available_methods": ".codecs",
    "compress": ".codecs",
    "compress_to_target": ".codecs",
    "decompress": ".codecs",
    "get_codec": ".codecs",
    "inspect": ".codecs",
    "ImageData": ".io",
    "load_image": ".io",
    "read_image": ".io",
    "sample_image": ".io",
    "sample_image_path": ".io",
    "KMeansQuantizer": ".kmeans",
}
#: Subpackages reachable as attributes before anything imported them.
_SUBMODULES = {"codecs", "entropy", "format", "io", "kmeans", "metrics", "pca_patch", "pca_rows"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


__all__ = [
    "Measured",
    "CorruptFileError",
    "ExitCode",
    "ImageData",
    "ImcompressError",
    "InputError",
    "KMeansQuantizer",
    "OutputExistsError",
    "QualityError",
    "UnsupportedVersionError",
    "UsageError",
    "WriteError",
    "available_methods",
    "check_image",
    "compress",
    "compress_to_target",
    "decompress",
    "get_codec",
    "inspect",
    "load_image",
    "metrics",
    "plugins",
    "read_image",
    "sample_image",
    "sample_image_path",
    "to_uint8",
]
