"""imcompress.io.png_bytes: valid PNGs (Pillow, pngcheck) of exactly the pixels, the same bytes
whatever the number of threads, and sizes as small as Pillow's own writer."""

import io
import shutil
import struct
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


def _idat(data: bytes) -> bytes:
    """The concatenated IDAT payloads of a PNG file."""
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == b"IDAT":
            out.append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    return b"".join(out)


def test_the_pieces_are_one_zlib_stream(monkeypatch):
    monkeypatch.setattr(_png, "PIECE", 40_000)  # 8 pieces
    idx = np.random.default_rng(1).integers(0, 200, (600, 499), dtype=np.uint8)
    pal = np.random.default_rng(2).integers(0, 256, (200, 3), dtype=np.uint8)
    raw = np.zeros((600, 500), np.uint8)  # filter 0 (none) on 8-bit palette rows
    raw[:, 1:] = idx
    assert zlib.decompress(_idat(png_bytes(idx, palette=pal, threads=2))) == raw.tobytes()


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
    from imcompress.io._filters import filter_rows

    out = np.full_like(expected, 77)
    for y0 in range(0, h, 3):  # bands, as the writer's threads filter them
        filter_rows(rows, bpp, y0, min(h, y0 + 3), out)
    np.testing.assert_array_equal(out, expected)
    if bpp == 1:
        return
    for threads, piece in ((1, None), (2, 64), (3, 64)):  # small pieces: many bands in threads
        if piece:
            monkeypatch.setattr(_png, "PIECE", piece)
        data = png_bytes(rows.reshape(h, w, bpp), threads=threads)
        np.testing.assert_array_equal(np.frombuffer(zlib.decompress(_idat(data)), np.uint8), expected.reshape(-1))


def _reference_pack(idx: np.ndarray, bits: int) -> np.ndarray:
    """PNG's packing of indices below 2**bits into bytes, first pixel in the high bits."""
    per = 8 // bits
    h, w = idx.shape
    padded = np.zeros((h, -(-w // per) * per), np.uint16)
    padded[:, :w] = idx
    weights = (1 << (bits * np.arange(per - 1, -1, -1))).astype(np.uint16)
    return (padded.reshape(h, -1, per) * weights).sum(axis=2).astype(np.uint8)


def reference_png(pixels, *, palette=None, icc_profile=None, level=9, piece=1 << 20) -> bytes:
    """The file png_bytes has written since zlib-ng's DEFLATE (main at 6aaee55), from its definition:
    Pillow's choice of filters (NumPy's heuristic above), the filtered scanlines cut every
    ``piece`` bytes, each piece raw DEFLATE primed with the 32 KiB before it and sync-flushed (the
    last finished), behind zlib's header and before the Adler-32; one IDAT chunk per piece."""
    from zlib_ng import zlib_ng

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    if palette is None:
        h, w, c = pixels.shape
        bits, color = 8, 2 if c == 3 else 6
        scan = _reference_filter(pixels.reshape(h, w * c), c)
    else:
        h, w = pixels.shape
        k = len(palette)
        bits, color = (1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8), 3
        if bits == 8:
            scan = np.hstack([np.zeros((h, 1), np.uint8), pixels])
        else:
            scan = _reference_filter(_reference_pack(pixels, bits), 1)
    raw = scan.tobytes()
    strategy = zlib.Z_FILTERED if palette is None or bits < 8 else zlib.Z_DEFAULT_STRATEGY
    parts = []
    for start in range(0, len(raw), piece):
        extra = {"zdict": raw[max(0, start - 32768):start]} if start else {}
        comp = zlib_ng.compressobj(level, zlib.DEFLATED, -15, 9, strategy, **extra)
        last = start + piece >= len(raw)
        parts.append(comp.compress(raw[start:start + piece]) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color, 0, 0, 0))]
    if icc_profile:
        out.append(chunk(b"iCCP", b"ICC Profile\0\0" + zlib_ng.compress(icc_profile)))
    if palette is not None:
        out.append(chunk(b"PLTE", palette[:, :3].tobytes()))
        if palette.shape[1] == 4:
            out.append(chunk(b"tRNS", palette[:, 3].tobytes()))
    header = zlib.compress(b"", level)[:2]  # zlib's own header for this level
    out.append(chunk(b"IDAT", header + parts[0]))
    out += [chunk(b"IDAT", p) for p in parts[1:]]
    out.append(chunk(b"IDAT", struct.pack(">I", zlib.adler32(raw))))
    return b"".join(out + [chunk(b"IEND", b"")])


def _test_image(kind, h, w, c, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    y, x = np.mgrid[:h, :w]
    planes = [(3 * x + y) % 256, (x + 2 * y) % 256, (x * y // 7) % 256, (x ^ y) % 256][:c]
    return np.clip(np.stack(planes, axis=2) + rng.integers(-3, 4, (h, w, c)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("shape,piece", [((1, 1), None), ((3, 7), None), ((200, 301), None), ((200, 301), 5000),
                                         ((97, 1000), 64 * 1024)])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_rgb_bytes_are_the_reference_files(channels, shape, piece, level, monkeypatch):
    if piece:
        monkeypatch.setattr(_png, "PIECE", piece)  # many pieces on a small image
    img = _test_image("smooth", *shape, channels)
    expected = reference_png(img, level=level, piece=piece or _png.PIECE)
    for threads in (1, 2, 3):
        assert png_bytes(img, level=level, threads=threads) == expected
    icc = bytes(range(256)) * 2
    assert png_bytes(img, icc_profile=icc, level=level) == reference_png(img, icc_profile=icc, level=level,
                                                                          piece=piece or _png.PIECE)


@pytest.mark.parametrize("k,channels", [(2, 3), (3, 4), (16, 3), (17, 3), (256, 4)])
@pytest.mark.parametrize("piece", [None, 3000])
def test_palette_bytes_are_the_reference_files(k, channels, piece, monkeypatch):
    if piece:
        monkeypatch.setattr(_png, "PIECE", piece)
    rng = np.random.default_rng(k)
    pal = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    y, x = np.mgrid[:150, :233]
    idx = ((x // 5 + y // 3) % k).astype(np.uint8)
    expected = reference_png(idx, palette=pal, piece=piece or _png.PIECE)
    for threads in (1, 3):
        assert png_bytes(idx, palette=pal, threads=threads) == expected


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_writer_fed_in_bands_writes_png_bytes_file(channels, threads, monkeypatch):
    monkeypatch.setattr(_png, "PIECE", 7000)  # pieces end inside bands and span several
    img = _test_image("noise" if channels == 4 else "smooth", 181, 97, channels, seed=threads)
    expected = png_bytes(img, level=6, threads=1)
    rng = np.random.default_rng(threads)
    stops = sorted(set(rng.integers(1, 181, 12).tolist())) + [181]
    with _png.PngWriter(img.shape, level=6, threads=threads) as png:
        for stop in stops:
            png.rows(img, stop)
            png.rows(img, stop)  # the same rows again: nothing new
        assert png.finish() == expected
    np.testing.assert_array_equal(decoded(expected), img)


def test_writer_reads_each_row_only_once_final(monkeypatch):
    # rows below ``stop`` change after the call: the file must not see them before they are given
    monkeypatch.setattr(_png, "PIECE", 3000)
    img = _test_image("smooth", 120, 64, 3)
    target = png_bytes(img, level=6)
    work = np.zeros_like(img)
    with _png.PngWriter(img.shape, level=6, threads=3) as png:
        for stop in range(10, 121, 10):
            work[stop - 10:stop] = img[stop - 10:stop]
            png.rows(work, stop)
            work[stop:] = 255 - work[stop:]  # rows not yet final keep changing
        assert png.finish() == target


def test_pieces_wait_for_the_rows_they_read(monkeypatch):
    # filtering slowed down: a piece compressed before its rows, or the 32 KiB before them, are
    # filtered would read unwritten bytes
    import time

    monkeypatch.setattr(_png, "PIECE", 3000)
    slow = _png.PngWriter._filter

    def filter_slowly(self, pixels, y0, y1):
        time.sleep(0.03 if y0 % 30 == 9 else 0.0)  # a few bands finish long after later ones
        slow(self, pixels, y0, y1)

    monkeypatch.setattr(_png.PngWriter, "_filter", filter_slowly)
    img = _test_image("smooth", 150, 50, 4)
    with _png.PngWriter(img.shape, level=1, threads=4) as png:
        for stop in range(3, 151, 3):
            png.rows(img, stop)
        assert png.finish() == reference_png(img, level=1, piece=3000)


def test_writer_palette_in_bands(monkeypatch):
    monkeypatch.setattr(_png, "PIECE", 500)
    pal = np.random.default_rng(3).integers(0, 256, (4, 3), dtype=np.uint8)
    idx = (np.arange(90 * 45).reshape(90, 45) % 7 % 4).astype(np.uint8)
    with _png.PngWriter(idx.shape, palette=pal, threads=2) as png:
        for stop in (1, 2, 33, 34, 90):
            png.rows(idx, stop)
        assert png.finish() == reference_png(idx, palette=pal, piece=500)


def test_writer_errors():
    img = np.zeros((4, 5, 3), np.uint8)
    with _png.PngWriter(img.shape) as png:
        with pytest.raises(UsageError, match=r"should be a C-contiguous \(4, 5, 3\) uint8 array"):
            png.rows(img[:, :4], 4)
        with pytest.raises(UsageError, match=r"should be a C-contiguous"):
            png.rows(np.zeros((4, 10, 3), np.uint8)[:, ::2], 4)
        png.rows(img, 2)
        with pytest.raises(UsageError, match=r"rows 2 \.\. 3 were not given before finish"):
            png.finish()
    with pytest.raises(UsageError, match="index 5 is outside the palette of 4 colours"):
        with _png.PngWriter((2, 2), palette=np.zeros((4, 3), np.uint8)) as png:
            png.rows(np.full((2, 2), 5, np.uint8), 2)
    with pytest.raises(UsageError, match=r"pixels of shape \(0, 5, 3\) should be non-empty"):
        _png.PngWriter((0, 5, 3))
    with pytest.raises(UsageError, match="level=10 should be a zlib level"):
        _png.PngWriter((1, 1, 3), level=10)


def test_writer_threads_stop_when_left_early(monkeypatch):
    import threading

    monkeypatch.setattr(_png, "PIECE", 2000)
    before = threading.active_count()
    img = _test_image("noise", 300, 100, 3)
    with pytest.raises(RuntimeError, match="decoder failed"):
        with _png.PngWriter(img.shape, threads=3) as png:
            png.rows(img, 150)
            raise RuntimeError("decoder failed")
    assert threading.active_count() == before
