"""imcompress.io.png_bytes: valid PNGs (Pillow, pngcheck) of exactly the pixels, the same bytes
whatever the number of threads, and sizes as small as Pillow's own writer."""

import io
import shutil
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image

from imcompress._errors import UsageError
from imcompress.io import _png, png_bytes

PNGCHECK = shutil.which("pngcheck")


def decoded(data: bytes) -> np.ndarray:
    """Pixels as Pillow reads them, RGB or RGBA as the file says."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        has_alpha = img.mode == "RGBA" or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


def pillow_png(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def check_with_pngcheck(data, tmp_path):
    if PNGCHECK is None:
        return
    path = tmp_path / "x.png"
    path.write_bytes(data)
    out = subprocess.run([PNGCHECK, "-q", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("k", [2, 3, 4, 5, 16, 17, 200, 256])
@pytest.mark.parametrize("channels", [3, 4])
def test_palette_png_decodes_to_palette_of_indices(k, channels, tmp_path):
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    indices = rng.integers(0, k, (13, 29), dtype=np.uint8)  # odd width: packed rows end part-filled
    data = png_bytes(indices, palette=palette)
    np.testing.assert_array_equal(decoded(data), palette[indices])
    bits = 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8
    assert data[24] == bits  # IHDR bit depth, as Pillow chooses it
    check_with_pngcheck(data, tmp_path)


@pytest.mark.parametrize("channels", [3, 4])
def test_rgb_png_decodes_to_the_pixels(channels, sample, tmp_path):
    img = sample[:200, :301]
    if channels == 4:
        img = np.dstack([img, (np.arange(301)[None, :] % 256).repeat(200, 0).astype(np.uint8)])
    data = png_bytes(img, level=6)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == ("RGB" if channels == 3 else "RGBA")
        np.testing.assert_array_equal(np.asarray(im), img)
    check_with_pngcheck(data, tmp_path)


def test_icc_profile_is_stored(sample):
    icc = bytes(range(256)) * 3
    data = png_bytes(sample[:8, :8], icc_profile=icc)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == icc


@pytest.mark.parametrize("kind", ["palette", "rgb"])
def test_same_bytes_whatever_the_threads(kind, sample, monkeypatch):
    monkeypatch.setattr(_png, "PIECE", 5000)  # many pieces on a small image
    if kind == "palette":
        palette = np.random.default_rng(0).integers(0, 256, (64, 3), dtype=np.uint8)
        pixels, kwargs = (sample[..., 0] // 4).copy(), {"palette": palette}
        expected = palette[pixels]
    else:
        pixels, kwargs, expected = sample, {}, sample
    outs = {t: png_bytes(pixels, threads=t, **kwargs) for t in (1, 2, 3)}
    assert outs[1] == outs[2] == outs[3]
    np.testing.assert_array_equal(decoded(outs[1]), expected)


def test_zlib_pieces_are_one_stream():
    raw = np.random.default_rng(1).integers(0, 8, 300_000, dtype=np.uint8).tobytes()
    stream = b"".join(_png.zlib_pieces(raw, level=9, threads=2))
    assert zlib.decompress(stream) == raw


@pytest.mark.parametrize("k", [16, 256])
def test_as_small_as_pillows_writer(elephant, k):
    from imcompress import KMeansQuantizer

    q = KMeansQuantizer(k)
    indices = q.fit_predict(elephant)
    im = Image.fromarray(indices, mode="P")
    im.putpalette(q.palette_.tobytes())
    ours, pillow = len(png_bytes(indices, palette=q.palette_)), len(pillow_png(im, optimize=True))
    # measured: -0.01 % (K = 256); +0.02 % on the 12 MP photo's 4-bit indices
    assert ours < pillow * 1.002
    rgb_ours, rgb_pillow = len(png_bytes(elephant, level=6)), len(pillow_png(Image.fromarray(elephant)))
    assert rgb_ours < rgb_pillow * 1.002  # measured: 2.1 % smaller


def test_bad_arguments_fail_with_the_value(sample):
    pal = np.zeros((4, 3), np.uint8)
    with pytest.raises(UsageError, match="level=0 should be a zlib level 1..9"):
        png_bytes(sample, level=0)
    with pytest.raises(UsageError, match=r"palette of shape \(300, 3\)"):
        png_bytes(sample[..., 0], palette=np.zeros((300, 3), np.uint8))
    with pytest.raises(UsageError, match="index 4 is outside the palette of 4 colours"):
        png_bytes(np.full((2, 2), 4, np.uint8), palette=pal)
    with pytest.raises(UsageError, match=r"indices of shape \(2, 2, 3\) should be \(H, W\)"):
        png_bytes(np.zeros((2, 2, 3), np.uint8), palette=pal)
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\|4\)"):
        png_bytes(np.zeros((2, 2), np.uint8))
    with pytest.raises(UsageError, match="should be non-empty uint8"):
        png_bytes(np.zeros((2, 2, 3), np.float64))
