"""imcompress: image compression with unsupervised learning, measured honestly."""

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
from .codecs import Measured, available_methods, compress, compress_to_target, decompress, get_codec, inspect
from .io import ImageData, load_image, read_image, sample_image, sample_image_path
from .kmeans import KMeansQuantizer
from . import metrics
from . import plugins

plugins._register_on_import()  # Image.open("photo.imc"); see imcompress.plugins

__version__ = "0.1.0"

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
