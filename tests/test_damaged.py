"""Damaged .imc files: one clear error (exit 3), never a traceback or a huge allocation."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcompress
from imcompress import CorruptFileError, UnsupportedVersionError
from imcompress.cli import main
from imcompress.format import pack_container, unpack_container


@pytest.fixture(scope="module")
def files(sample):
    img = np.ascontiguousarray(sample[:48, :64])
    rgba = np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])
    return {
        "kmeans": imcompress.compress(img, "kmeans", n_colors=12),
        "kmeans-rgba": imcompress.compress(rgba, "kmeans", n_colors=12),
        "pca-rows": imcompress.compress(img, "pca-rows", n_components=6),
        "pca-rows-rgba": imcompress.compress(rgba, "pca-rows", n_components=6),
    }


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def reheader(data: bytes, *, h=None, w=None, version=None) -> bytes:
    body = bytearray(data[:-4])
    if version is not None:
        body[4] = version
    if h is not None:
        body[8:12] = struct.pack("<I", h)
    if w is not None:
        body[12:16] = struct.pack("<I", w)
    return with_crc(bytes(body))


def replace_section(data: bytes, tag: bytes, payload: bytes) -> bytes:
    c = unpack_container(data)
    sections = [(t, payload if t == tag else p) for t, p in c.sections]
    return pack_container(c.method_id, c.height, c.width, c.channels, sections)


NAMES = ["kmeans", "kmeans-rgba", "pca-rows", "pca-rows-rgba"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated(files, name, fraction):
    data = files[name]
    with pytest.raises(CorruptFileError):
        imcompress.decompress(data[: int(len(data) * fraction)])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("where", [6, 10, 30, -20, -5])
def test_flipped_byte(files, name, where):
    data = bytearray(files[name])
    data[where] ^= 0x40
    with pytest.raises(CorruptFileError, match="checksum|channel|dimensions|flags|method|limit"):
        imcompress.decompress(bytes(data))


def test_wrong_magic_and_future_version(files):
    with pytest.raises(CorruptFileError, match="wrong magic"):
        imcompress.decompress(b"GIF89a" + files["kmeans"][6:])
    with pytest.raises(UnsupportedVersionError, match="unsupported .imc format version 9"):
        imcompress.decompress(reheader(files["kmeans"], version=9))


@pytest.mark.parametrize("name", NAMES)
def test_absurd_dimensions_with_valid_crc(files, name):
    # within the container's pixel limit, so the codec's own size checks must refuse
    data = reheader(files[name], h=10_000, w=10_000)
    with pytest.raises(CorruptFileError, match="too short|too few|component count|damaged or truncated"):
        imcompress.decompress(data)
    with pytest.raises(CorruptFileError, match="invalid dimensions"):
        imcompress.decompress(reheader(files[name], h=70_000))


@pytest.mark.parametrize(
    "tag, payload, message",
    [
        (b"KPAR", struct.pack("<BBHBH", 1, 3, 300, 0, 0), "invalid palette size K=300"),
        (b"KPAR", struct.pack("<BBHBH", 1, 3, 0, 0, 0), "invalid palette size K=0"),
        (b"KPAR", struct.pack("<BBHBH", 7, 3, 12, 0, 0), "unknown index coder 7"),
        (b"KPAR", struct.pack("<BBHBH", 1, 4, 12, 0, 0), "palette has 4 channels"),
        (b"KPAR", struct.pack("<BBHBH", 1, 3, 12, 0x80, 0), "unknown KPAR flags"),
        (b"KPAR", struct.pack("<BBHBH", 1, 3, 12, 0, 5000), "invalid dither strength"),
        (b"KPAR", b"\x01\x03", "KPAR section has 2 bytes"),
        (b"PLTE", b"\x00" * 5, "PLTE has 5 bytes, expected K\\*C = 12\\*3"),
        (b"IDXS", b"\xff\xff", "index plane"),
        (b"IDXS", b"", "index plane"),
    ],
)
def test_kmeans_sections_checked(files, tag, payload, message):
    data = replace_section(files["kmeans"], tag, payload)
    with pytest.raises(CorruptFileError, match=message):
        imcompress.decompress(data)


def test_kmeans_bad_palette_size_in_info(files):
    data = replace_section(files["kmeans"], b"KPAR", struct.pack("<BBHBH", 1, 3, 999, 0, 0))
    with pytest.raises(CorruptFileError, match="K=999"):
        imcompress.inspect(data)


RPAR = struct.Struct("<BB3H3f3f")


@pytest.mark.parametrize(
    "fields, message",
    [
        ((1, 0, 6, 6, 49, 1, 1, 1, 0.1, 0.1, 0.1), r"invalid component count 49 \(expected 1..min\(H, W\) = 48\)"),
        ((1, 0, 0, 6, 6, 1, 1, 1, 0.1, 0.1, 0.1), "invalid component count 0"),
        ((1, 0, 6, 6, 6, float("nan"), 1, 1, 0.1, 0.1, 0.1), "invalid quantization step"),
        ((1, 0, 6, 6, 6, 1, 1, 1, -0.1, 0.1, 0.1), "invalid quantization step"),
        ((2, 0, 6, 6, 6, 1, 1, 1, 0.1, 0.1, 0.1), "unknown pca-rows coder 2"),
        ((1, 1, 6, 6, 6, 1, 1, 1, 0.1, 0.1, 0.1), "alpha flag disagrees"),
        ((1, 8, 6, 6, 6, 1, 1, 1, 0.1, 0.1, 0.1), "unknown RPAR flags"),
    ],
)
def test_pca_rows_params_checked(files, fields, message):
    data = replace_section(files["pca-rows"], b"RPAR", RPAR.pack(*fields))
    with pytest.raises(CorruptFileError, match=message):
        imcompress.decompress(data)


def test_pca_rows_payload_checked(files):
    for payload in (b"", b"\xff" * 3000):
        with pytest.raises(CorruptFileError, match="damaged or truncated"):
            imcompress.decompress(replace_section(files["pca-rows"], b"RDAT", payload))
    big = reheader(replace_section(files["pca-rows"], b"RDAT", b""), h=9000, w=9000)
    with pytest.raises(CorruptFileError, match="RDAT holds 0 bytes, too few for the 351000 values"):
        imcompress.decompress(big)
    with pytest.raises(CorruptFileError, match="ALPH"):
        imcompress.decompress(replace_section(files["pca-rows-rgba"], b"ALPH", b"\x05\x01"))
    with pytest.raises(CorruptFileError, match="missing section 'RDAT'"):
        c = unpack_container(files["pca-rows"])
        imcompress.decompress(pack_container(2, c.height, c.width, 3, [s for s in c.sections if s[0] != b"RDAT"]))


def test_unknown_method_id(files):
    body = bytearray(files["kmeans"][:-4])
    body[5] = 77
    with pytest.raises(CorruptFileError, match="unknown method id 77"):
        imcompress.decompress(with_crc(bytes(body)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_bytes_property(files, data):
    """Any edit, CRC fixed or not: decoded pixels of the right shape, or CorruptFileError."""
    name = data.draw(st.sampled_from(NAMES))
    blob = bytearray(files[name])
    body_len = len(blob) - 4
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, body_len - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = bytearray(with_crc(bytes(blob[:body_len])))
    cut = data.draw(st.integers(len(blob) - 8, len(blob)))
    blob = bytes(blob[:cut])
    try:
        out = imcompress.decompress(blob)
    except CorruptFileError:
        return
    c = unpack_container(blob)
    assert out.shape == (c.height, c.width, c.channels) and out.dtype == np.uint8


def test_cli_reports_one_line_and_exit_3(files, tmp_path, capsys):
    bad = tmp_path / "bad.imc"
    bad.write_bytes(files["kmeans"][:-10])
    assert main(["decompress", str(bad), "-o", str(tmp_path / "x.png")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imcompress: error: ") and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()
    bad.write_bytes(reheader(files["pca-rows"], h=10_000, w=10_000))
    assert main(["info", str(bad)]) == 0  # info does not decode the payload
    assert main(["decompress", str(bad), "-o", str(tmp_path / "y.png")]) == 3
    bad.write_bytes(reheader(files["kmeans"], version=2))
    assert main(["info", str(bad)]) == 3
    assert "unsupported .imc format version 2" in capsys.readouterr().err
