"""Structure-aware mutation of ``.imc`` files, shared by the atheris harness and the test suite.

A mutant with a wrong CRC-32 dies in the container check and never reaches a
method's decoder, so every mutant here is re-sealed: the section table is
rebuilt with consistent lengths and the CRC recomputed, written from the
layout in docs/FORMAT.md (section 1), independently of
``imcompress.format``. Mutations are driven by ``choose(n) -> int in [0, n)``:
hypothesis' ``data.draw``, atheris' ``FuzzedDataProvider`` or ``random``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["reseal", "split", "join", "mutate", "seed_files", "conformance_files", "check_decoder",
           "header_shape"]

MAGIC = b"\x89IMC"
_HEAD = struct.Struct("<4sBBBBII")  # magic, version, method, channels, flags, height, width
_SECTION = struct.Struct("<4sI")
_INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
_SIDES = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 1000, 4097, 10000, 65536)


def reseal(data: bytes) -> bytes:
    """``data`` with its last 4 bytes replaced by the CRC-32 of all the others."""
    body = bytes(data[:-4]) if len(data) >= 4 else b""
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def split(data: bytes):
    """``(head, sections)``: the 16 header bytes before the section count, and a list
    of ``[tag, payload]``; lenient (a section table that runs past the end stops
    there). ``None`` if ``data`` is shorter than a header."""
    if len(data) < _HEAD.size + 1 + 4:
        return None
    head = bytearray(data[: _HEAD.size])
    count = data[_HEAD.size]
    pos, end = _HEAD.size + 1, len(data) - 4
    sections = []
    for _ in range(count):
        if pos + _SECTION.size > end:
            break
        tag, length = _SECTION.unpack_from(data, pos)
        pos += _SECTION.size
        sections.append([bytes(tag), bytearray(data[pos : min(pos + length, end)])])
        pos += length
    return head, sections


def join(head, sections) -> bytes:
    """A sealed file: ``head``, the section count, the sections, the CRC-32."""
    parts = [bytes(head), bytes([len(sections) & 0xFF])]
    for tag, payload in sections:
        parts.append(_SECTION.pack(tag, len(payload)) + bytes(payload))
    return reseal(b"".join(parts) + b"\0\0\0\0")


def header_shape(data: bytes):
    """(H, W, C) from the header, or ``None`` if there is no header."""
    if len(data) < _HEAD.size:
        return None
    _, _, _, channels, _, height, width = _HEAD.unpack_from(data, 0)
    return height, width, channels


def _mutate_payload(payload: bytearray, choose) -> None:
    op = choose(6)
    n = len(payload)
    if op == 0 and n:  # one byte to any value
        payload[choose(n)] = choose(256)
    elif op == 1 and n:  # flip one bit
        payload[choose(n)] ^= 1 << choose(8)
    elif op == 2 and n:  # a run of an interesting value
        start = choose(n)
        value = _INTERESTING[choose(len(_INTERESTING))]
        for i in range(start, min(n, start + 1 + choose(8))):
            payload[i] = value
    elif op == 3:  # truncate
        del payload[choose(n + 1) :]
    elif op == 4:  # extend
        payload.extend(bytes(choose(256) for _ in range(1 + choose(16))))
    elif n:  # copy a chunk inside the payload
        src, dst, size = choose(n), choose(n), 1 + choose(16)
        chunk = payload[src : src + size]
        payload[dst : dst + len(chunk)] = chunk


def _mutate_head(head: bytearray, choose) -> None:
    field = choose(6)
    if field in (0, 1):  # height or width
        offset = 8 + 4 * field
        (old,) = struct.unpack_from("<I", head, offset)
        candidates = _SIDES + (old - 1, old + 1, 2 * old, old // 2)
        struct.pack_into("<I", head, offset, min(max(candidates[choose(len(candidates))], 0), 0xFFFFFFFF))
    elif field == 2:
        head[6] = (3, 4, 0, 1, 5, 255)[choose(6)]  # channels
    elif field == 3:
        head[5] = choose(5)  # method id, including unknown ones
    elif field == 4:
        head[4] = choose(3)  # version 0, 1, 2
    else:
        head[7] = choose(256)  # flags


def _mutate_table(sections: list, choose) -> None:
    if not sections:
        return
    i = choose(len(sections))
    op = choose(4)
    if op == 0:
        del sections[i]
    elif op == 1:
        sections.insert(choose(len(sections) + 1), [sections[i][0], bytearray(sections[i][1])])
    elif op == 2:
        j = choose(len(sections))
        sections[i], sections[j] = sections[j], sections[i]
    else:
        tag = bytearray(sections[i][0])
        tag[choose(4)] ^= 0x20
        sections[i][0] = bytes(tag)


def mutate(data: bytes, choose) -> bytes:
    """A sealed mutant of the ``.imc`` file ``data`` (1 to 4 edits, mostly in payloads)."""
    parsed = split(data)
    if parsed is None:
        return reseal(bytes(data))
    head, sections = parsed
    for _ in range(1 + choose(4)):
        where = choose(10)
        if where < 7 and sections:
            _mutate_payload(sections[choose(len(sections))][1], choose)
        elif where == 7:
            _mutate_head(head, choose)
        elif where == 8:
            _mutate_table(sections, choose)
        else:  # any byte of the body, length fields included
            blob = bytearray(join(head, sections))
            if len(blob) > 4:
                blob[choose(len(blob) - 4)] ^= 1 << choose(8)
            parsed = split(reseal(bytes(blob)))
            if parsed is None:
                return reseal(bytes(blob))
            head, sections = parsed
    return join(head, sections)


def seed_files() -> dict:
    """Small ``.imc`` files of every method, RGB and RGBA, and the decoder paths
    their options reach (dithering, exact palettes, learned bases, 4:4:4,
    4x4 and 16x16 patches). Deterministic."""
    import imcompress

    photo = imcompress.sample_image()
    rgb = np.ascontiguousarray(photo[100:140, 200:248])
    alpha = np.linspace(0, 255, rgb.shape[0] * rgb.shape[1]).reshape(rgb.shape[:2])
    rgba = np.dstack([rgb, np.rint(alpha).astype(np.uint8)])
    few = (rgb // 128 * 127).astype(np.uint8)  # at most 8 colours: an exact palette
    cases = {
        "kmeans-rgb": (rgb, "kmeans", {"n_colors": 12}),
        "kmeans-rgba": (rgba, "kmeans", {"n_colors": 12}),
        "kmeans-dither": (rgb, "kmeans", {"n_colors": 6, "dither": 1.0}),
        "kmeans-exact": (few, "kmeans", {"n_colors": 16}),
        "pca-rows-rgb": (rgb, "pca-rows", {"n_components": 6}),
        "pca-rows-rgba": (rgba, "pca-rows", {"n_components": 4}),
        "pca-patch-rgb": (rgb, "pca-patch", {"quality": 50}),
        "pca-patch-rgba": (rgba, "pca-patch", {"quality": 50}),
        "pca-patch-learned": (rgb, "pca-patch", {"quality": 60, "basis": "pca"}),
        "pca-patch-444-p4": (rgb, "pca-patch", {"quality": 40, "chroma": "444", "patch_size": 4}),
        "pca-patch-p16": (rgba, "pca-patch", {"quality": 30, "patch_size": 16}),
    }
    return {name: imcompress.compress(img, method, **opts) for name, (img, method, opts) in cases.items()}


def conformance_files(folder, *, max_bytes: int = 1 << 16) -> dict:
    """The valid files of the conformance suite (``tests/conformance/MANIFEST.json``)
    up to ``max_bytes``: every method, mode and decoder branch. Empty if absent."""
    import json
    from pathlib import Path

    manifest = Path(folder) / "MANIFEST.json"
    if not manifest.is_file():
        return {}
    out = {}
    for entry in json.loads(manifest.read_text())["files"]:
        path = Path(folder) / entry["file"]
        if entry.get("expect") == "pixels" and path.is_file() and path.stat().st_size <= max_bytes:
            out[f"conformance-{path.stem}"] = path.read_bytes()
    return out


def check_decoder(blob: bytes, *, max_pixels: int) -> np.ndarray | None:
    """Decode ``blob``: the pixels, or ``None`` for a :class:`CorruptFileError`.

    Raises ``AssertionError`` if the decoder returns anything but a uint8 array of
    the header's shape; any exception other than CorruptFileError propagates.
    """
    import imcompress

    try:
        pixels = imcompress.decompress(blob, max_pixels=max_pixels)
    except imcompress.CorruptFileError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"error message is not one line: {message!r}"
        return None
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8, type(pixels)
    assert pixels.shape == header_shape(blob), (pixels.shape, header_shape(blob))
    return pixels
