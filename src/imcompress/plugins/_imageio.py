"""imageio v3 plugin: ``iio.imread("photo.imc")``, ``iio.imwrite("x.imc", arr, method=...)``.

Follows imageio's v3 plugin interface (``imageio/core/v3_plugin_api.py``).
imageio imports this module only when it first uses the plugin; registering
it (:func:`imcompress.plugins.register_imageio`) only fills imageio's
``known_plugins`` and ``known_extensions`` tables.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
from imageio.core.request import InitializationError, IOMode, Request
from imageio.core.v3_plugin_api import ImageProperties, PluginV3

from .._errors import UsageError
from ..codecs import compress, decompress, inspect
from ..format import MAGIC
from ._pillow import _icc_profile

__all__ = ["ImcPlugin"]

_EXTENSION = ".imc"


def _check_index(index) -> bool:
    """Whether ``index`` asks for a batch; a .imc file holds one image, index 0."""
    if index is Ellipsis:
        return True
    if index is None or index == 0:
        return False
    raise UsageError(f"index={index!r} is out of range: a .imc file holds one image (index 0 or ...)")


class ImcPlugin(PluginV3):
    """Reads and writes ``.imc`` files through :mod:`imcompress`.

    Reading gives the decoded (H, W, 3) or (H, W, 4) uint8 array of
    :func:`imcompress.decompress`, with its checks and errors
    (:class:`imcompress.CorruptFileError`); ``max_pixels`` may be passed to
    ``imread``/``improps``/``immeta`` (default: ``IMCOMPRESS_MAX_PIXELS`` or 10^8).
    Writing takes ``method`` and the method's options, as
    :func:`imcompress.compress`. The plugin claims a file to read by its
    magic bytes and a file to write by the ``.imc`` extension (or
    ``extension=".imc"``).
    """

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self._data: bytes | None = None
        if request.mode.io_mode == IOMode.read:
            if request.firstbytes[:4] != MAGIC:
                raise InitializationError(f"{request.raw_uri!r} is not an .imc file")
        elif (request.extension or "").lower() != _EXTENSION:
            raise InitializationError(f"imcompress writes {_EXTENSION} files, not {request.extension!r}")

    def _bytes(self) -> bytes:
        if self._data is None:
            self._data = self.request.get_file().read()
        return self._data

    def read(self, *, index=None, max_pixels: int | None = None) -> np.ndarray:
        """The decoded pixels, (H, W, C) uint8; (1, H, W, C) with ``index=...``."""
        batch = _check_index(index)
        pixels = decompress(self._bytes(), max_pixels=max_pixels)
        return pixels[np.newaxis] if batch else pixels

    def iter(self, *, max_pixels: int | None = None) -> Iterator[np.ndarray]:
        yield self.read(index=0, max_pixels=max_pixels)

    def write(self, ndimage, *, icc_profile: bytes | None = None, **options) -> bytes | None:
        """Compress ``ndimage`` (H, W, 3|4) uint8 and write the file.

        ``method`` and the method's options are those of
        :func:`imcompress.compress` (its default method when not given).

        A list of one image or a batch of one (1, H, W, C) is accepted.
        Nothing is written if compression fails.
        """
        if isinstance(ndimage, (list, tuple)):
            ndimage = np.stack([np.asarray(a) for a in ndimage]) if ndimage else np.empty((0,))
        image = np.asarray(ndimage)
        if image.ndim == 4:
            if image.shape[0] != 1:
                raise UsageError(f"a .imc file holds one image; got a batch of {image.shape[0]}")
            image = image[0]
        data = compress(image, icc_profile=icc_profile, **options)
        self.request.get_file().write(data)
        return data if self.request.raw_uri == "<bytes>" else None

    def properties(self, index=None, *, max_pixels: int | None = None) -> ImageProperties:
        """Shape and dtype, read from the header without decoding the pixels."""
        batch = _check_index(index)
        meta = inspect(self._bytes(), max_pixels=max_pixels)
        shape = (meta["height"], meta["width"], meta["channels"])
        if batch:
            return ImageProperties(shape=(1, *shape), dtype=np.dtype(np.uint8), n_images=1, is_batch=True)
        return ImageProperties(shape=shape, dtype=np.dtype(np.uint8))

    def metadata(self, index=None, exclude_applied: bool = True, *,
                 max_pixels: int | None = None) -> dict[str, Any]:
        """What ``imcompress info`` shows (method, sizes, parameters), plus ``icc_profile``."""
        _check_index(index)
        data = self._bytes()
        meta = dict(inspect(data, max_pixels=max_pixels))
        icc = _icc_profile(data)
        if icc is not None:
            meta["icc_profile"] = icc
        return meta
