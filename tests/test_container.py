"""The .imc container: layout, and every check of the parser."""

import struct
import zlib

import pytest

from imcompress import CorruptFileError, UnsupportedVersionError
from imcompress.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    MAX_SECTIONS,
    MAX_SIDE,
    is_container,
    pack_container,
    unpack_container,
)

HEADER = struct.Struct("<4sBBBBIIB")


def raw(version=FORMAT_VERSION, method=1, channels=3, flags=0, h=4, w=5, sections=((b"DATA", b"xyz"),),
        count=None, trailer=b"", fix_crc=True, magic=MAGIC):
    """Hand-built container bytes, independent of pack_container."""
    body = HEADER.pack(magic, version, method, channels, flags, h, w, len(sections) if count is None else count)
    for tag, payload in sections:
        body += tag + struct.pack("<I", len(payload)) + payload
    body += trailer
    crc = zlib.crc32(body) & 0xFFFFFFFF if fix_crc else 0
    return body + struct.pack("<I", crc)


def test_layout_matches_the_spec():
    data = pack_container(2, 7, 9, 4, [(b"ABCD", b"\x01\x02"), (b"EFGH", b"")])
    assert data == raw(method=2, channels=4, h=7, w=9, sections=[(b"ABCD", b"\x01\x02"), (b"EFGH", b"")])
    assert HEADER_SIZE == 17 and data[:4] == b"\x89IMC"
    assert len(data) == 17 + 8 + 2 + 8 + 0 + 4
    assert is_container(data) and not is_container(b"\x89PNG")


def test_roundtrip_fields():
    c = unpack_container(raw(method=3, channels=4, h=11, w=13, sections=[(b"A   ", b"1"), (b"B   ", b"22")]))
    assert (c.method_id, c.channels, c.height, c.width, c.version) == (3, 4, 11, 13, 1)
    assert c.section(b"B   ") == b"22" and c.section(b"C   ", required=False) is None
    assert c.section_sizes() == {"A": 9, "B": 10}
    with pytest.raises(CorruptFileError, match="missing section 'C   '"):
        c.section(b"C   ")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "wrong magic"),
        (b"\x89PNG\r\n\x1a\n" + bytes(30), "wrong magic"),
        (MAGIC + bytes(5), "shorter than the header"),
        (raw(fix_crc=False), "checksum mismatch"),
        (raw(version=0), "invalid .imc format version 0"),
        (raw(channels=2), "invalid channel count 2"),
        (raw(flags=1), "unknown header flags"),
        (raw(h=0), "invalid dimensions 0x5"),
        (raw(w=MAX_SIDE + 1), "invalid dimensions"),
        (raw(count=MAX_SECTIONS + 1, sections=()), "invalid section count"),
        (raw(count=2), "section table runs past the end"),
        (raw(sections=(), count=1, trailer=b"DATA" + struct.pack("<I", 99) + b"abc"), "claims 99 bytes"),
        (raw(trailer=b"junk"), "4 unexpected bytes after the last section"),
    ],
)
def test_parser_rejects(data, message):
    with pytest.raises(CorruptFileError, match=message):
        unpack_container(data)


def test_future_version_is_unsupported():
    with pytest.raises(UnsupportedVersionError, match="unsupported .imc format version 2.*upgrade"):
        unpack_container(raw(version=FORMAT_VERSION + 1))


def test_pixel_limit_checked_before_anything_else(monkeypatch):
    data = raw(h=MAX_SIDE, w=MAX_SIDE)
    with pytest.raises(CorruptFileError, match="above the limit of 100000000"):
        unpack_container(data)
    with pytest.raises(CorruptFileError, match="above the limit of 10;"):
        unpack_container(raw(h=4, w=5), max_pixels=10)
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", "19")
    with pytest.raises(CorruptFileError, match="IMCOMPRESS_MAX_PIXELS"):
        unpack_container(raw(h=4, w=5))


def test_pack_rejects_bad_input():
    with pytest.raises(ValueError, match="must be 4 bytes"):
        pack_container(1, 2, 2, 3, [(b"AB", b"")])
    with pytest.raises(ValueError, match="side limit"):
        pack_container(1, 0, 2, 3, [])
    with pytest.raises(ValueError, match="exceed MAX_SECTIONS"):
        pack_container(1, 2, 2, 3, [(b"ABCD", b"")] * (MAX_SECTIONS + 1))
