"""Loading images: conversions with known answers, policies and every error path."""

import functools
import http.server
import io
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import InputError, UsageError
from imcompress.io import load_image, read_image


def _png_bytes(arr, **save_kwargs):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **save_kwargs)
    return buf.getvalue()


def _png16(arr):
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[c]
    rows = arr.reshape(h, w * c).astype(">u2")
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_rgb_png_round_trip(tmp_path, rng):
    arr = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(_png_bytes(arr))
    data = read_image(path)
    np.testing.assert_array_equal(data.pixels, arr)
    assert data.pixels.dtype == np.uint8 and data.format == "PNG" and data.mode == "RGB"
    assert data.file_size == path.stat().st_size and data.source == str(path)
    assert not data.has_alpha


def test_grayscale_becomes_three_equal_channels(rng):
    gray = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    out = load_image(_png_bytes(gray))
    assert out.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_one_bit_image():
    bw = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(bw).convert("1").save(buf, format="PNG")
    out = load_image(buf.getvalue())
    np.testing.assert_array_equal(out[:, :, 0], bw)


def test_16bit_grayscale_scaled_with_rounding():
    values = np.array([[0, 65535, 257 * 100, 128, 129, 385, 32767]], dtype=np.uint16)
    out = load_image(_png16(values))
    expected = np.clip(np.rint(values.astype(np.float64) * 255.0 / 65535.0), 0, 255)
    np.testing.assert_array_equal(out[:, :, 0], expected.astype(np.uint8))
    np.testing.assert_array_equal(out[0, :, 0], [0, 255, 100, 0, 1, 1, 127])
    assert (out[:, :, 0] == out[:, :, 2]).all()


def test_16bit_rgb_reduced_to_8bit():
    values = np.array([[[65535, 2570, 300], [0, 128, 40000]]], dtype=np.uint16)
    out = load_image(_png16(values))
    # Pillow keeps the high byte of 16-bit colour: within one level of rounding
    exact = values.astype(np.float64) * 255.0 / 65535.0
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    assert np.abs(out - exact).max() <= 1.0
    np.testing.assert_array_equal(out[0, 0], [255, 10, 1])


def test_rgba_composite_keep_and_drop():
    rgba = np.array([[[255, 0, 0, 128], [0, 0, 255, 0], [10, 20, 30, 255]]], dtype=np.uint8)
    data = _png_bytes(rgba)
    a = rgba[:, :, 3:4] / 255.0
    white = np.rint(rgba[:, :, :3] * a + 255.0 * (1 - a)).astype(np.uint8)
    np.testing.assert_array_equal(load_image(data), white)
    np.testing.assert_array_equal(load_image(data, alpha="composite"), white)
    black = read_image(data, background=(0, 0, 0)).pixels
    np.testing.assert_array_equal(black, np.rint(rgba[:, :, :3] * a).astype(np.uint8))
    kept = read_image(data, alpha="keep")
    assert kept.has_alpha
    np.testing.assert_array_equal(kept.pixels, rgba)
    np.testing.assert_array_equal(load_image(data, alpha="drop"), rgba[:, :, :3])


def test_la_and_palette_transparency():
    la = np.array([[[100, 0], [100, 255]]], dtype=np.uint8)
    out = load_image(_png_bytes(la))
    np.testing.assert_array_equal(out[0, :, 0], [255, 100])
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.putdata([0, 1])
    buf = io.BytesIO()
    pal.save(buf, format="PNG", transparency=0)
    out = load_image(buf.getvalue())
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [200, 10, 10]])


def test_exif_orientation_is_applied():
    arr = (np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)) * 10
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = load_image(_png_bytes(arr, exif=exif))
    assert out.shape == (3, 2, 3)
    np.testing.assert_array_equal(out, np.rot90(arr, k=-1))
    exif[0x0112] = 3  # upside down
    np.testing.assert_array_equal(load_image(_png_bytes(arr, exif=exif)), arr[::-1, ::-1])


def test_file_object_and_bytes(rng):
    arr = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    data = _png_bytes(arr)
    np.testing.assert_array_equal(load_image(io.BytesIO(data)), arr)
    np.testing.assert_array_equal(load_image(bytearray(data)), arr)
    assert read_image(data).source == "<bytes>"


def test_pixel_limit_refused_before_decoding(monkeypatch):
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000)).save(big, format="PNG")
    header_only = big.getvalue()[:100]  # decoding this would fail as truncated
    with pytest.raises(InputError, match=r"3000x2000 = 6000000 pixels exceeds the limit of 1000"):
        load_image(header_only, max_pixels=1000)
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", "5000")
    with pytest.raises(InputError, match="exceeds the limit of 5000"):
        load_image(header_only)
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="IMCOMPRESS_MAX_PIXELS='lots' is not an integer"):
        load_image(header_only)
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", "0")
    with pytest.raises(UsageError, match="IMCOMPRESS_MAX_PIXELS=0 must be >= 1"):
        load_image(header_only)


def test_limit_allows_images_at_the_limit(rng):
    arr = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(_png_bytes(arr), max_pixels=100), arr)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match=rf"{path}: no such file"):
        load_image(path)


def test_folder(tmp_path):
    with pytest.raises(InputError, match=rf"{tmp_path}: is a folder"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=rf"{path}: file is empty"):
        load_image(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match=rf"{path}: not an image file Pillow can read"):
        load_image(path)


def test_truncated_jpeg(tmp_path, rng):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match=rf"{path}: corrupt or truncated image"):
        load_image(path)


def test_float_tiff_refused(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.ones((3, 3), dtype=np.float32)).save(path)
    with pytest.raises(InputError, match="32-bit float images are not supported"):
        load_image(path)


def test_bad_alpha_policy():
    with pytest.raises(UsageError, match=r"alpha='blend' should be one of \('composite', 'keep', 'drop'\)"):
        load_image(b"whatever", alpha="blend")


def test_sample_image():
    img = imcompress.sample_image()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert imcompress.sample_image_path().name == "astronaut.png"


def test_elephant_is_the_study_photo(elephant, elephant_path):
    assert elephant.shape == (466, 700, 3) and elephant.dtype == np.uint8
    assert imcompress.metrics.unique_colors(elephant) == 86_468
    assert read_image(elephant_path).format == "JPEG"


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_url_download(http_root, rng):
    root, base = http_root
    arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (root / "x.png").write_bytes(_png_bytes(arr))
    data = read_image(f"{base}/x.png")
    np.testing.assert_array_equal(data.pixels, arr)
    assert data.source == f"{base}/x.png"
    with pytest.raises(InputError, match=rf"{base}/missing.png: download failed"):
        load_image(f"{base}/missing.png")
