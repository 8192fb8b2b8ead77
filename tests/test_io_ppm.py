"""io.ppm_bytes against Pillow's PPM writer (the bytes ``imcompress decompress x.imc -o y.ppm`` wrote before)."""

import io

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import UsageError
from imcompress.io import ppm_bytes


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (64, 3, 3), (3, 1000, 3)])
def test_ppm_bytes_are_pillows(shape):
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PPM")
    assert bytes(ppm_bytes(pixels)) == buf.getvalue()
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(ppm_bytes(pixels)))), pixels)


def test_ppm_bytes_of_a_view():
    pixels = np.random.default_rng(1).integers(0, 256, (6, 8, 4), dtype=np.uint8)[1:5, ::2, :3]
    assert Image.open(io.BytesIO(ppm_bytes(pixels))).tobytes() == np.ascontiguousarray(pixels).tobytes()


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 4), np.uint8), np.zeros((2, 2), np.uint8),
                                 np.zeros((2, 2, 3), np.float64)])
def test_ppm_bytes_refuses_what_is_not_rgb_uint8(bad):
    with pytest.raises(UsageError, match=r"PPM holds \(H, W, 3\) uint8 RGB pixels"):
        ppm_bytes(bad)


@pytest.mark.parametrize("channels", [3, 4])
def test_decompress_to_ppm_writes_pillows_bytes(sample, tmp_path, capsys, channels):
    from imcompress.cli import main

    img = np.ascontiguousarray(sample[:40, :56])
    if channels == 4:
        img = np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])
    imc = tmp_path / "a.imc"
    imc.write_bytes(imcompress.compress(img, "kmeans", n_colors=8))
    assert main(["decompress", str(imc), "-o", str(tmp_path / "a.ppm"), "-q"]) == 0
    decoded = imcompress.decompress(imc.read_bytes())
    buf = io.BytesIO()
    Image.fromarray(decoded).save(buf, format="PPM")  # RGBA: Pillow writes the RGB channels (P6)
    assert (tmp_path / "a.ppm").read_bytes() == buf.getvalue()
