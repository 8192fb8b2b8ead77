"""Reading images from files, URLs, bytes and the bundled sample."""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._errors import InputError, UsageError
from .._validation import to_uint8

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageData",
    "read_image",
    "load_image",
    "sample_image",
    "sample_image_path",
    "max_pixels_default",
]

#: Default refusal threshold, in pixels (about 100 megapixels, a little above
#: Pillow's own decompression-bomb warning level). Override per call with
#: ``max_pixels=`` or for the process with the ``IMCOMPRESS_MAX_PIXELS``
#: environment variable.
DEFAULT_MAX_PIXELS = 100_000_000

#: URLs larger than this are refused while downloading.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024

_ALPHA_POLICIES = ("composite", "keep", "drop")

# Pillow's own decompression-bomb guard (a warning above ~89 Mpx, an error
# above twice that) would print a stray warning and override ``max_pixels``;
# ``read_image`` applies its own limit instead, from the header, before
# decoding. Pillow reads the guard from a module global, so it is lifted only
# around ``Image.open`` and under a lock.
_PIL_GUARD_LOCK = threading.Lock()


def _open_unguarded(data: bytes) -> Image.Image:
    with _PIL_GUARD_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def max_pixels_default() -> int:
    """The pixel limit in force: ``IMCOMPRESS_MAX_PIXELS`` or the default."""
    value = os.environ.get("IMCOMPRESS_MAX_PIXELS")
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise UsageError(
            f"IMCOMPRESS_MAX_PIXELS={value!r} is not an integer; set it to a pixel count"
        ) from None
    if limit < 1:
        raise UsageError(f"IMCOMPRESS_MAX_PIXELS={limit} must be >= 1")
    return limit


@dataclass
class ImageData:
    """An image read from a source, with what a codec needs to keep.

    Attributes
    ----------
    pixels : ndarray of shape (H, W, 3) or (H, W, 4), dtype uint8
        RGB, or RGBA when the source has alpha and ``alpha="keep"``.
    source : str
        A printable name of where the image came from.
    format : str or None
        Pillow's format name of the source (``"JPEG"``, ``"PNG"``...).
    mode : str
        Pillow's mode of the source before conversion.
    icc_profile : bytes or None
        The embedded ICC colour profile, if any.
    file_size : int or None
        Size in bytes of the encoded source, when known.
    """

    pixels: np.ndarray
    source: str
    format: str | None = None
    mode: str = "RGB"
    icc_profile: bytes | None = None
    file_size: int | None = None

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4


def _describe(source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if hasattr(source, "read"):
        return getattr(source, "name", "<stream>")
    return str(source)


def _read_bytes(source, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        return source.read()
    text = str(source)
    if text.startswith(("http://", "https://")):
        return _download(text)
    path = Path(text)
    if not path.exists():
        raise InputError(f"{name}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{name}: is a folder, not an image file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def _download(url: str) -> bytes:
    import urllib.error  # here, not at the top: urllib.request costs every command ~30 ms to import
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "imcompress"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: download failed ({reason}); check the URL and network") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise InputError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes; download it yourself")
    return data


def _pixels_from_pil(img: Image.Image, alpha: str, background, name: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit data spans 0..65535; 255/65535 (= 1/257) maps it onto 0..255,
        # rounded (scikit-image's img_as_ubyte truncates uint16 instead)
        gray = to_uint8(np.asarray(img), in_range=(0, 65535))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        raise InputError(f"{name}: 32-bit float images are not supported; convert to 8 or 16-bit first")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in img.info
    ) or (mode in ("RGB", "L") and "transparency" in img.info)
    if has_alpha and alpha != "drop":
        rgba = np.asarray(img.convert("RGBA"))
        if alpha == "keep":
            return np.array(rgba, dtype=np.uint8)
        # composite onto the background colour, in float64, rounding once
        a = rgba[:, :, 3:4].astype(np.float64) / 255.0
        bg = np.asarray(background, dtype=np.float64).reshape(1, 1, 3)
        out = rgba[:, :, :3].astype(np.float64) * a + bg * (1.0 - a)
        return to_uint8(out)
    # convert() copies even an RGB image: 36 MB and ~0.03 s on 12 MP for nothing
    return np.array(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def read_image(
    source,
    *,
    alpha: str = "composite",
    background=(255, 255, 255),
    max_pixels: int | None = None,
) -> ImageData:
    """Read an image from a path, URL, bytes or file object.

    Parameters
    ----------
    source : str, path-like, bytes or file object
        Any file Pillow reads, or an ``http(s)://`` URL.
    alpha : {"composite", "keep", "drop"}, default="composite"
        What to do with transparency. ``"composite"`` blends the image over
        ``background`` and returns RGB; ``"keep"`` returns RGBA (H, W, 4) when
        the source has alpha; ``"drop"`` ignores alpha.
    background : tuple of 3 int, default=(255, 255, 255)
        Background colour for ``alpha="composite"``.
    max_pixels : int, optional
        Refuse images with more pixels than this, from the header, before
        decoding them. Defaults to :func:`max_pixels_default`. It replaces
        Pillow's own decompression-bomb guard, so it may be raised above it.

    Returns
    -------
    ImageData
        ``pixels`` is (H, W, 3) uint8 RGB, or (H, W, 4) with ``alpha="keep"``.
        EXIF orientation is applied; grayscale becomes 3 equal channels; 16-bit
        grayscale is scaled to 8 bits with rounding (``rint(v * 255 / 65535)``);
        16-bit colour is reduced by Pillow to its high byte (``v // 256``,
        within one level of rounding).
        Animated images (GIF, APNG, WebP) give their first frame. CMYK and
        other modes are converted to RGB by Pillow.

    Raises
    ------
    InputError
        Missing, empty, unreadable, truncated or too-large images.
    """
    if alpha not in _ALPHA_POLICIES:
        raise UsageError(f"alpha={alpha!r} should be one of {_ALPHA_POLICIES}")
    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    name = _describe(source)
    data = _read_bytes(source, name)
    if len(data) == 0:
        raise InputError(f"{name}: file is empty; give an image file")
    try:
        with _open_unguarded(data) as img:
            width, height = img.size
            if width * height > limit:
                raise InputError(
                    f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of "
                    f"{limit}; raise it with max_pixels= or the IMCOMPRESS_MAX_PIXELS environment variable"
                )
            fmt = img.format
            mode = img.mode
            icc = img.info.get("icc_profile") or None
            img.load()
            img = ImageOps.exif_transpose(img)
            pixels = _pixels_from_pil(img, alpha, background, name)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image file Pillow can read") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{name}: too many pixels (Pillow's decompression-bomb guard); "
            "raise max_pixels= if you trust it"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{name}: corrupt or truncated image ({exc})") from None
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise InputError(f"{name}: image has no pixels")
    return ImageData(pixels=pixels, source=name, format=fmt, mode=mode, icc_profile=icc,
                     file_size=len(data))


def load_image(source, *, alpha: str = "composite", max_pixels: int | None = None) -> np.ndarray:
    """Load an image as an (H, W, 3) uint8 RGB array.

    See :func:`read_image` for the parameters and policies.

    Examples
    --------
    >>> from imcompress import load_image, sample_image_path
    >>> load_image(sample_image_path()).shape
    (512, 512, 3)
    """
    return read_image(source, alpha=alpha, max_pixels=max_pixels).pixels


def sample_image_path() -> Path:
    """Path of the bundled sample photo (scikit-image's ``astronaut.png``).

    It ships inside the scikit-image wheel, so nothing is downloaded.
    """
    import skimage.data

    path = Path(skimage.data.__file__).parent / "astronaut.png"
    if not path.exists():  # pragma: no cover - depends on the skimage build
        raise InputError(f"{path}: bundled sample photo is missing from scikit-image")
    return path


def sample_image() -> np.ndarray:
    """The bundled sample photo as (512, 512, 3) uint8 RGB."""
    return load_image(sample_image_path())
