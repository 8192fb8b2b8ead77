"""The codec plugin interface and the registry keyed by method name.

A codec is one class: ``__init__`` stores parameters (keyword-only),
``encode`` turns an image into the sections of a ``.imc`` container, and the
class method ``decode`` turns a parsed container back into pixels. Adding a
method means adding one module that defines a subclass and decorates it with
:func:`register_codec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from .._errors import CorruptFileError, UsageError
from ..format import Container, pack_container, unpack_container

__all__ = [
    "Codec",
    "register_codec",
    "get_codec",
    "codec_for_id",
    "available_methods",
    "compress",
    "decompress",
    "inspect",
]

_REGISTRY: dict[str, type["Codec"]] = {}
_BY_ID: dict[int, type["Codec"]] = {}


class Codec(ABC):
    """Base class of the compression methods.

    Subclasses set ``name`` (the ``--method`` value) and ``method_id`` (the
    byte stored in the ``.imc`` header), store their parameters in
    ``__init__`` and implement :meth:`encode_sections`, :meth:`decode` and
    :meth:`describe`.
    """

    name: ClassVar[str]
    method_id: ClassVar[int]

    @abstractmethod
    def encode_sections(self, image: np.ndarray, *, icc_profile: bytes | None = None) -> list:
        """Encode ``image`` (H, W, 3|4) uint8 into ``[(tag, payload), ...]``."""

    def encode(self, image: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
        """Encode ``image`` to the bytes of a complete ``.imc`` file."""
        image = _check_image(image)
        sections = self.encode_sections(image, icc_profile=icc_profile)
        h, w, c = image.shape
        return pack_container(self.method_id, h, w, c, sections)

    @classmethod
    @abstractmethod
    def decode(cls, container: Container) -> np.ndarray:
        """Decode a parsed container to (H, W, channels) uint8 pixels."""

    @classmethod
    def describe(cls, container: Container) -> dict:
        """Method parameters read from the container, without decoding pixels."""
        return {}

    def get_params(self) -> dict:
        """The parameters given to ``__init__`` (scikit-learn convention)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UsageError(f"image of shape {arr.shape} should be (H, W, 3) or (H, W, 4)")
    if arr.dtype != np.uint8:
        raise UsageError(f"image dtype {arr.dtype} should be uint8")
    return arr


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Class decorator adding a codec to the registry."""
    if cls.name in _REGISTRY or cls.method_id in _BY_ID:
        raise ValueError(f"codec {cls.name!r} / id {cls.method_id} registered twice")
    _REGISTRY[cls.name] = cls
    _BY_ID[cls.method_id] = cls
    return cls


def available_methods() -> list[str]:
    """Names of the registered methods."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_codec(name: str) -> type[Codec]:
    """The codec class registered as ``name``."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def codec_for_id(method_id: int) -> type[Codec]:
    """The codec class for a method id found in a ``.imc`` header."""
    _load_builtin()
    try:
        return _BY_ID[method_id]
    except KeyError:
        raise CorruptFileError(f"unknown method id {method_id} in .imc header") from None


def _load_builtin() -> None:
    # importing the method packages runs their @register_codec decorators
    from .. import kmeans, pca_patch, pca_rows  # noqa: F401


def compress(image, method: str = "kmeans", *, icc_profile: bytes | None = None, **params) -> bytes:
    """Compress an (H, W, 3|4) uint8 image to the bytes of a ``.imc`` file.

    Examples
    --------
    >>> import imcompress
    >>> img = imcompress.sample_image()
    >>> data = imcompress.compress(img, "kmeans", n_colors=16)
    >>> imcompress.decompress(data).shape
    (512, 512, 3)
    """
    return get_codec(method)(**params).encode(image, icc_profile=icc_profile)


def decompress(data: bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode the bytes of a ``.imc`` file to (H, W, 3|4) uint8 pixels."""
    container = unpack_container(data, max_pixels=max_pixels)
    pixels = codec_for_id(container.method_id).decode(container)
    expected = (container.height, container.width, container.channels)
    if pixels.shape != expected or pixels.dtype != np.uint8:
        raise CorruptFileError(f"decoded pixels {pixels.shape} do not match header {expected}")
    return pixels


def inspect(data: bytes, *, max_pixels: int | None = None) -> dict:
    """Describe a ``.imc`` file without decoding its pixel payload."""
    container = unpack_container(data, max_pixels=max_pixels)
    codec = codec_for_id(container.method_id)
    h, w = container.height, container.width
    return {
        "method": codec.name,
        "format_version": container.version,
        "height": h,
        "width": w,
        "channels": container.channels,
        "bytes": container.size,
        "bpp": 8.0 * container.size / (h * w),
        "ratio": h * w * container.channels / container.size,
        "params": codec.describe(container),
        "sections": container.section_sizes(),
    }
