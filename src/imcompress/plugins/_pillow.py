"""Pillow plugin: ``Image.open("photo.imc")`` and ``im.save("out.imc", method=...)``.

Built on Pillow's own plugin API (``PIL/ImageFile.py``): an :class:`ImageFile`
subclass found by the magic bytes, a :class:`~PIL.ImageFile.PyDecoder` that
pixels come from when Pillow loads the image, and a save handler. Decoding is
:func:`imcompress.decompress` and the header is read by
:func:`imcompress.inspect`, so Pillow sees exactly the checks and the pixel limit
(``IMCOMPRESS_MAX_PIXELS``) of ``imcompress decompress``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

from .._errors import CorruptFileError
from ..codecs import compress, decompress, inspect
from ..format import MAGIC, unpack_container

__all__ = ["FORMAT", "MIME", "ImcImageFile", "ImcDecoder", "register"]

#: Pillow's format identifier of ``.imc`` files (``Image.save(..., format="IMC")``).
FORMAT = "IMC"
#: MIME type reported by ``im.get_format_mimetype()`` (not an IANA registration).
MIME = "image/x-imc"
_MODES = {3: "RGB", 4: "RGBA"}
# 8-bit modes Pillow converts to RGB(A) without loss of range; deeper modes
# ("I;16", "I", "F") would be clipped by Pillow's convert, so they are refused.
_CONVERTIBLE = {"1", "L", "LA", "La", "P", "PA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


def _icc_profile(data: bytes) -> bytes | None:
    for tag, payload in unpack_container(data).sections:
        if tag == b"ICCP":
            return payload or None
    return None


class ImcImageFile(ImageFile.ImageFile):
    """An ``.imc`` file opened by Pillow: mode ``"RGB"`` or ``"RGBA"``, 8 bits.

    ``Image.open`` checks the whole container (magic, CRC-32, dimensions, pixel
    limit) and raises :class:`imcompress.CorruptFileError` on a damaged file;
    the pixel payload is decoded by ``load()`` (or anything that needs pixels),
    which raises the same error if the payload is damaged. ``info`` holds
    ``"method"``, ``"imc_params"`` (the method parameters, as ``imcompress
    info`` shows them) and ``"icc_profile"`` when the file has one.
    """

    format = FORMAT
    format_description = "imcompress compressed image"

    def _open(self) -> None:
        data = self.fp.read()
        meta = inspect(data)
        self._mode = _MODES[meta["channels"]]
        self._size = (meta["width"], meta["height"])
        self.info["method"] = meta["method"]
        self.info["imc_params"] = meta["params"]
        icc = _icc_profile(data)
        if icc is not None:
            self.info["icc_profile"] = icc
        self.tile = [ImageFile._Tile(FORMAT, (0, 0) + self.size, 0, None)]


class ImcDecoder(ImageFile.PyDecoder):
    """Decodes the whole file with :func:`imcompress.decompress`."""

    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        assert self.fd is not None
        pixels = decompress(self.fd.read())
        expected = (self.state.ysize, self.state.xsize, len(self.mode))
        if pixels.shape != expected:
            # only if the file changed between Image.open and load()
            raise CorruptFileError(
                f"decoded pixels {pixels.shape} differ from the header read at open {expected}"
            )
        self.set_as_raw(pixels.tobytes())
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    """Pillow's save handler: ``im.save(fp, format="IMC", method=..., **options)``.

    ``method`` and every other keyword go to :func:`imcompress.compress` (its
    default method when ``method`` is not given); ``icc_profile`` defaults to the image's own
    (``icc_profile=None`` strips it). 8-bit modes other than RGB/RGBA are
    converted first (to RGBA when the image has transparency).
    """
    options = dict(im.encoderinfo)
    icc = options.pop("icc_profile", im.info.get("icc_profile"))
    if im.mode not in _MODES.values():
        if im.mode not in _CONVERTIBLE:
            raise OSError(f"cannot write mode {im.mode} as {FORMAT}; convert it to RGB or RGBA first")
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    # ``method`` stays in ``options``: without it, compress's default method applies
    data = compress(np.asarray(im), icc_profile=icc or None, **options)
    fp.write(data)


def register() -> None:
    """Register the ``IMC`` format with Pillow (idempotent)."""
    Image.register_open(FORMAT, ImcImageFile, _accept)
    Image.register_decoder(FORMAT, ImcDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".imc")
    Image.register_mime(FORMAT, MIME)
