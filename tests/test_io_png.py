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
    # measured with zlib-ng: -0.05 % (K = 16), -1.4 % (K = 256); with zlib it was -0.01 %
    # (K = 256) and +0.02 % on the 12 MP photo's 4-bit indices
    assert ours < pillow * 1.002
    rgb_ours, rgb_pillow = len(png_bytes(elephant, level=6)), len(pillow_png(Image.fromarray(elephant)))
    assert rgb_ours < rgb_pillow * 1.002  # measured: 1.8 % smaller


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


def _reference_filter(rows: np.ndarray, bpp: int) -> np.ndarray:
    """libpng's adaptive heuristic written with NumPy on the whole image (the PNG spec's
    filters, the smallest sum of |signed byte|, the lowest filter number on ties)."""
    cur = rows.astype(np.int16)
    prev = np.zeros_like(cur)
    prev[1:] = cur[:-1]
    left = np.zeros_like(cur)
    left[:, bpp:] = cur[:, :-bpp]
    upleft = np.zeros_like(cur)
    upleft[:, bpp:] = prev[:, :-bpp]
    p = left + prev - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
    filtered = np.stack([cur, cur - left, cur - prev, cur - ((left + prev) >> 1), cur - paeth]).astype(np.uint8)
    best = np.argmin(np.abs(filtered.view(np.int8).astype(np.int32)).sum(axis=2), axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = best
    out[:, 1:] = filtered[best, np.arange(rows.shape[0])]
    return out


@pytest.mark.parametrize("bpp", [1, 3, 4])
@pytest.mark.parametrize("kind", ["noise", "smooth", "flat", "steps"])
@pytest.mark.parametrize("shape", [(1, 5), (7, 1), (130, 97)])
def test_adaptive_filter_matches_the_reference(bpp, kind, shape, monkeypatch):
    h, w = shape
    rng = np.random.default_rng(h * w + bpp)
    if kind == "noise":
        rows = rng.integers(0, 256, (h, w * bpp), dtype=np.uint8)
    elif kind == "smooth":  # gradients: many filters close, Paeth's branches all taken
        y, x = np.mgrid[:h, : w * bpp]
        rows = ((3 * y + 5 * x + rng.integers(0, 3, (h, w * bpp))) % 256).astype(np.uint8)
    elif kind == "flat":  # every filter but none costs 0 on most rows: ties everywhere
        rows = np.full((h, w * bpp), 200, dtype=np.uint8)
    else:  # wrap-around in the differences (0 next to 255)
        rows = np.where(rng.random((h, w * bpp)) < 0.5, 0, 255).astype(np.uint8)
    expected = _reference_filter(rows, bpp)
    np.testing.assert_array_equal(_png._adaptive_filter(rows, bpp, threads=1), expected)
    monkeypatch.setattr(_png, "PIECE", 64)  # bands in threads even on these sizes
    np.testing.assert_array_equal(_png._adaptive_filter(rows, bpp, threads=2), expected)
