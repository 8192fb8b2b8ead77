"""Reading images and writing outputs safely."""

from ._load import (
    DEFAULT_MAX_PIXELS,
    ImageData,
    load_image,
    max_pixels_default,
    read_image,
    sample_image,
    sample_image_path,
)
from ._png import PngWriter, png_bytes
from ._ppm import ppm_bytes
from ._write import atomic_write, check_writable

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageData",
    "PngWriter",
    "atomic_write",
    "check_writable",
    "load_image",
    "max_pixels_default",
    "png_bytes",
    "ppm_bytes",
    "read_image",
    "sample_image",
    "sample_image_path",
]
