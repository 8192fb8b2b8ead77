"""The ``.imc`` container: header, tagged sections, CRC-32. Spec: docs/FORMAT.md.

Layout (all integers little-endian)::

    offset  size  field
    0       4     magic  b"\\x89IMC"
    4       1     format version (1)
    5       1     method id (1 kmeans, 2 pca-rows, 3 pca-patch)
    6       1     channels (3 RGB or 4 RGBA)
    7       1     flags (reserved, 0)
    8       4     height (uint32, >= 1)
    12      4     width  (uint32, >= 1)
    16      1     section count N (<= MAX_SECTIONS)
    17      ...   N sections: tag (4 ASCII bytes), length (uint32), payload
    end-4   4     CRC-32 (zlib) of every preceding byte

Nothing here knows about methods: a codec gives and takes a list of
``(tag, payload)`` sections.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .._errors import CorruptFileError, UnsupportedVersionError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "MAX_SECTIONS",
    "MAX_SIDE",
    "Container",
    "pack_container",
    "unpack_container",
    "is_container",
]

MAGIC = b"\x89IMC"
FORMAT_VERSION = 1
MAX_SECTIONS = 32
#: Largest height or width a decoder accepts.
MAX_SIDE = 1 << 16
_HEADER = struct.Struct("<4sBBBBIIB")
_SECTION = struct.Struct("<4sI")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size


@dataclass
class Container:
    """A parsed ``.imc`` file.

    Attributes
    ----------
    method_id : int
    height, width, channels : int
    sections : list of (bytes, bytes)
        ``(tag, payload)`` pairs in file order.
    version : int
    size : int
        Total bytes of the file.
    """

    method_id: int
    height: int
    width: int
    channels: int
    sections: list = field(default_factory=list)
    version: int = FORMAT_VERSION
    flags: int = 0
    size: int = 0

    def section(self, tag: bytes, *, required: bool = True) -> bytes | None:
        """Payload of the first section with ``tag``."""
        for t, payload in self.sections:
            if t == tag:
                return payload
        if required:
            raise CorruptFileError(f"missing section {tag.decode('ascii', 'replace')!r}")
        return None

    def section_sizes(self) -> dict:
        """``{tag: bytes}`` for each section (payload plus its 8-byte entry)."""
        out = {}
        for t, payload in self.sections:
            key = t.decode("ascii", "replace").strip()
            out[key] = out.get(key, 0) + len(payload) + _SECTION.size
        return out


def is_container(data: bytes) -> bool:
    """True if ``data`` starts with the ``.imc`` magic."""
    return bytes(data[:4]) == MAGIC


def pack_container(
    method_id: int, height: int, width: int, channels: int, sections
) -> bytes:
    """Serialise a container; ``sections`` is an iterable of (tag, payload)."""
    sections = list(sections)
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections exceed MAX_SECTIONS={MAX_SECTIONS}")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ValueError(f"image {height}x{width} exceeds the format's side limit {MAX_SIDE}")
    parts = [_HEADER.pack(MAGIC, FORMAT_VERSION, method_id, channels, 0, height, width, len(sections))]
    for tag, payload in sections:
        if len(tag) != 4:
            raise ValueError(f"section tag {tag!r} must be 4 bytes")
        parts.append(_SECTION.pack(tag, len(payload)))
        parts.append(bytes(payload))
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def unpack_container(data: bytes, *, max_pixels: int | None = None) -> Container:
    """Parse and check a container, without decoding any payload.

    Every field is checked before anything is allocated from it: magic,
    version, dimensions against ``max_pixels`` and :data:`MAX_SIDE`, section
    count and lengths against the bytes present, and the CRC-32.

    Raises
    ------
    CorruptFileError
        Anything malformed; :class:`UnsupportedVersionError` for newer versions.
    """
    from ..io import max_pixels_default

    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    data = memoryview(bytes(data))
    n = len(data)
    if n < 4 or bytes(data[:4]) != MAGIC:
        raise CorruptFileError("not an .imc file (wrong magic bytes)")
    if n < HEADER_SIZE + _CRC.size:
        raise CorruptFileError(f"truncated .imc file: {n} bytes is shorter than the header")
    magic, version, method_id, channels, flags, height, width, count = _HEADER.unpack_from(data, 0)
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"unsupported .imc format version {version} (this imcompress reads version "
            f"{FORMAT_VERSION}); upgrade imcompress"
        )
    if version < 1:
        raise CorruptFileError(f"invalid .imc format version {version}")
    (crc_stored,) = _CRC.unpack_from(data, n - _CRC.size)
    if zlib.crc32(data[: n - _CRC.size]) & 0xFFFFFFFF != crc_stored:
        raise CorruptFileError("checksum mismatch: the .imc file is damaged or truncated")
    if channels not in (3, 4):
        raise CorruptFileError(f"invalid channel count {channels} in header (expected 3 or 4)")
    if flags != 0:
        raise CorruptFileError(f"unknown header flags {flags:#x}")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise CorruptFileError(f"invalid dimensions {height}x{width} in header")
    if height * width > limit:
        raise CorruptFileError(
            f"header claims {height}x{width} = {height * width} pixels, above the limit "
            f"of {limit}; raise it with max_pixels= or the IMCOMPRESS_MAX_PIXELS environment variable if you trust the file"
        )
    if count > MAX_SECTIONS:
        raise CorruptFileError(f"invalid section count {count} (at most {MAX_SECTIONS})")
    pos = HEADER_SIZE
    end = n - _CRC.size
    sections = []
    for _ in range(count):
        if pos + _SECTION.size > end:
            raise CorruptFileError("truncated .imc file: section table runs past the end")
        tag, length = _SECTION.unpack_from(data, pos)
        pos += _SECTION.size
        if length > end - pos:
            raise CorruptFileError(
                f"section {tag!r} claims {length} bytes but only {end - pos} remain"
            )
        sections.append((bytes(tag), bytes(data[pos : pos + length])))
        pos += length
    if pos != end:
        raise CorruptFileError(f"{end - pos} unexpected bytes after the last section")
    return Container(
        method_id=method_id,
        height=height,
        width=width,
        channels=channels,
        sections=sections,
        version=version,
        flags=flags,
        size=n,
    )
