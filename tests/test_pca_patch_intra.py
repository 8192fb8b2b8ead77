"""pca-patch bitstream 2: intra prediction, quadtree partition, per-size DCT."""

import hashlib
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import CorruptFileError, UsageError
from imcompress.format import pack_container, unpack_container
from imcompress.metrics import psnr
from imcompress.pca_patch import _intra, _params


@pytest.fixture(scope="module")
def crop(sample):
    return np.ascontiguousarray(sample[100:260, 60:250])


@pytest.fixture(scope="module")
def v2_file(crop):
    return imcompress.compress(crop, "pca-patch", quality=45, bitstream=2)


def _jpeg_at(img, nbytes):
    """PSNR of the largest Pillow JPEG (optimize=True) not above ``nbytes``."""
    import io

    best = None
    for q in range(5, 96):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q, optimize=True)
        if buf.tell() > nbytes:
            break
        best = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return psnr(img, best) if best is not None else 0.0


def test_intra_prediction_matches_independent_formulas():
    # DC, pure vertical and pure horizontal against their definitions; planar
    # of a linear ramp is the ramp itself
    n, log2n = 8, 3
    ref = np.arange(4 * n + 1, dtype=np.int64) * 3 - 40
    pred = np.empty((n, n), dtype=np.int64)
    c = 2 * n
    _intra.predict(ref, n, log2n, _intra.MODE_DC, pred)
    want = (ref[c - n:c].sum() + ref[c + 1:c + 1 + n].sum() + n) >> (log2n + 1)
    assert (pred == want).all()
    _intra.predict(ref, n, log2n, _intra.MODE_V, pred)
    assert (pred == ref[c + 1:c + 1 + n][None, :]).all()
    _intra.predict(ref, n, log2n, _intra.MODE_H, pred)
    assert (pred == ref[c - 1::-1][:n][:, None]).all()
    # diagonal mode 34 (angle 32): pred[y, x] = above[x + y + 1]
    _intra.predict(ref, n, log2n, 34, pred)
    yy, xx = np.mgrid[:n, :n]
    assert (pred == ref[c + 1 + xx + yy + 1]).all()
    flat = np.full(4 * n + 1, 77, dtype=np.int64)
    for mode in range(_intra.N_MODES):
        _intra.predict(flat, n, log2n, mode, pred)
        assert (pred == 77).all(), mode


def test_roundtrip_beats_version1_and_jpeg(crop, v2_file):
    out = imcompress.decompress(v2_file)
    assert out.shape == crop.shape and out.dtype == np.uint8
    p2 = psnr(crop, out)
    v1 = imcompress.compress(crop, "pca-patch", quality=45, bitstream=1)
    p1 = psnr(crop, imcompress.decompress(v1))
    # fewer bytes than version 1 at no worse quality (measured: ~25 % fewer)
    assert len(v2_file) < 0.9 * len(v1) and p2 > p1 - 0.1
    assert p2 > _jpeg_at(crop, len(v2_file)) + 1.0
    assert imcompress.inspect(v2_file)["params"]["bitstream"] == 2


@pytest.mark.parametrize("shape", [(5, 7, 3), (33, 65, 3), (70, 41, 4), (1, 1, 3)])
def test_odd_sizes_and_alpha(rng, shape):
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    img[..., :3] = np.clip(img[..., :3] // 4 + np.arange(shape[1])[None, :, None] * 3, 0, 255).astype(np.uint8)
    data = imcompress.compress(img, "pca-patch", quality=90, bitstream=2)
    out = imcompress.decompress(data)
    assert out.shape == img.shape
    assert psnr(img[..., :3], out[..., :3]) > 30
    if shape[2] == 4:
        assert np.abs(out[..., 3].astype(int) - img[..., 3]).mean() < 8


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_chroma_modes(crop, chroma):
    data = imcompress.compress(crop, "pca-patch", quality=50, bitstream=2, chroma=chroma, speed=8)
    assert imcompress.inspect(data)["params"]["chroma"] == ("4:2:0" if chroma == "420" else "4:4:4")
    assert psnr(crop, imcompress.decompress(data)) > 32


def test_speed_trades_effort(crop):
    slow = imcompress.compress(crop, "pca-patch", quality=50, bitstream=2, speed=1)
    fast = imcompress.compress(crop, "pca-patch", quality=50, bitstream=2, speed=9)
    ps, pf = psnr(crop, imcompress.decompress(slow)), psnr(crop, imcompress.decompress(fast))
    # a slower search is better in D + lambda R: not worse in both size and quality
    assert len(slow) <= len(fast) or ps >= pf


def test_bpp_target_and_quality_monotone(crop):
    data = imcompress.compress(crop, "pca-patch", bpp=0.8, bitstream=2, speed=8)
    assert len(data) * 8 / (crop.shape[0] * crop.shape[1]) <= 0.8
    sizes = [len(imcompress.compress(crop, "pca-patch", quality=q, bitstream=2, speed=8)) for q in (20, 50, 80)]
    assert sizes == sorted(sizes)


def test_deterministic_and_bit_identical_in_subprocess(crop, v2_file, tmp_path):
    assert imcompress.compress(crop, "pca-patch", quality=45, bitstream=2) == v2_file
    out = imcompress.decompress(v2_file)
    path = tmp_path / "v2.imc"
    path.write_bytes(v2_file)
    code = ("import hashlib, imcompress;"
            f"print(hashlib.sha256(imcompress.decompress(open({str(path)!r}, 'rb').read()).tobytes()).hexdigest())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == hashlib.sha256(out.tobytes()).hexdigest()


@pytest.mark.parametrize("params, match", [({"bitstream": 3}, "bitstream=3"), ({"speed": 10}, "speed=10"),
                                           ({"speed": 2.5}, "speed=2.5")])
def test_bad_options(crop, params, match):
    with pytest.raises(UsageError, match=match):
        imcompress.compress(crop, "pca-patch", **params)


def _edit_ppar(data, offset, fmt, value):
    c = unpack_container(data)
    raw = bytearray(c.sections[0][1])
    struct.pack_into(fmt, raw, offset, value)
    return pack_container(c.method_id, c.height, c.width, c.channels, [(b"PPAR", bytes(raw)), c.sections[1]])


_P0 = _params.PPAR_HEAD.size


@pytest.mark.parametrize("offset, fmt, value, match", [
    (0, "<B", 3, "parameter version"),
    (_P0, "<B", 6, "block sizes"),
    (_P0 + 1, "<B", 1, "block sizes"),
    (_P0 + 1, "<B", 5 + 1, "block sizes"),
    (_P0 + 2, "<B", 200, "reconstruction offset"),
    (_P0 + 3, "<B", 16, "deblocking strength 16"),
])
def test_absurd_parameters_raise_corrupt(v2_file, offset, fmt, value, match):
    with pytest.raises(CorruptFileError, match=match):
        imcompress.decompress(_edit_ppar(v2_file, offset, fmt, value))


def test_truncated_stream(v2_file):
    c = unpack_container(v2_file)
    for cut in (0, 1, len(c.sections[1][1]) // 2, len(c.sections[1][1]) - 1):
        bad = pack_container(c.method_id, c.height, c.width, c.channels,
                             [c.sections[0], (b"PDAT", c.sections[1][1][:cut])])
        with pytest.raises(CorruptFileError):
            imcompress.decompress(bad)


def test_default_is_bitstream_2_and_version1_options_select_1(crop):
    assert imcompress.inspect(imcompress.compress(crop, "pca-patch"))["params"]["bitstream"] == 2
    assert imcompress.inspect(imcompress.compress(crop, "pca-patch", basis="dct"))["params"]["bitstream"] == 1
    with pytest.raises(UsageError, match="apply to bitstream=1"):
        imcompress.compress(crop, "pca-patch", patch_size=8, bitstream=2)
