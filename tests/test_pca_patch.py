"""Tests of the pca-patch codec: transform pieces against references, round
trips, rate control, comparison with JPEG, determinism and damaged files."""

import hashlib
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import scipy.fft
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.decomposition import TruncatedSVD

import imcompress
from imcompress import CorruptFileError, QualityError, UsageError
from imcompress.format import pack_container, unpack_container
from imcompress.io import atomic_write
from imcompress.metrics import psnr
from imcompress.pca_patch import PCAPatchCodec, quality_to_step
from imcompress.pca_patch import _decoder, _encoder, _params, _transform


@pytest.fixture(scope="module")
def crop(sample):
    return np.ascontiguousarray(sample[160:288, 200:328])  # 128 x 128, face and background


def roundtrip(img, **params):
    data = imcompress.compress(img, "pca-patch", **params)
    out = imcompress.decompress(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    return data, out


# -- transform pieces against independent references ---------------------------


@pytest.mark.parametrize("p", [4, 8, 16])
def test_dct_matrix_matches_scipy_dctn(p, rng):
    c = _transform.dct_matrix(p)
    # 1-D values sit on a 2**-40 grid (bit-reproducible): orthonormal to ~1e-12
    np.testing.assert_allclose(c @ c.T, np.eye(p * p), atol=1e-11)
    x = rng.normal(size=(p, p))
    ref = scipy.fft.dctn(x, norm="ortho").ravel()
    got = c @ x.ravel()
    # rows are a permutation (by u + v) of scipy's row-major coefficients
    order = _transform._DCT_CACHE[p][1]
    np.testing.assert_allclose(got, ref[order], atol=1e-10)
    assert np.allclose(c[0], 1.0 / p)


@pytest.mark.parametrize("p", [4, 8, 16])
def test_dct_values_are_far_from_grid_midpoints(p):
    # libm's cos may differ by an ulp or two between machines; after rounding
    # onto the 2**-40 grid they agree as long as no value is near a midpoint
    n = np.arange(p)
    c = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * p)) * np.sqrt(2.0 / p)
    c[0] = np.sqrt(1.0 / p)
    x = c * 2.0**40
    margin = np.abs(x - np.floor(x) - 0.5) * 2.0**-40
    assert margin.min() > 50 * np.spacing(1.0)  # |c| < 1: 50 ulps or more
    grid = _transform.dct_matrix(p).reshape(p, p, p, p)  # rows are u*v products of grid values
    one_d = np.rint(x) / 2.0**40
    order = _transform._DCT_CACHE[p][1]
    ref = np.einsum("ui,vj->uvij", one_d, one_d).reshape(p * p, p * p)[order]
    assert np.array_equal(grid.reshape(p * p, p * p), ref)
    assert np.array_equal(_transform._YCC2RGB, np.rint(_transform._YCC2RGB * 2.0**40) / 2.0**40)


def test_ycbcr_matches_pillow(sample):
    ycc = _transform.rgb_to_ycbcr(sample)
    ours = np.stack([np.clip(np.rint(pl + 128.0), 0, 255) for pl in ycc], axis=-1)
    ref = np.asarray(Image.fromarray(sample).convert("YCbCr"), dtype=np.float64)
    assert np.max(np.abs(ours - ref)) <= 1.0
    back = _transform.ycbcr_to_rgb(ycc)
    assert np.array_equal(back, sample)  # float64 round trip is exact after rounding


def test_learned_basis_matches_sklearn_truncated_svd(crop):
    y = _transform.rgb_to_ycbcr(crop)[0]
    patches = _transform.to_patches(y, 8).reshape(-1, 64)
    basis = _transform.learn_basis(patches)  # DCT domain, orthogonal to DC
    assert basis.shape == (63, 64) and np.allclose(basis[:, 0], 0)
    pixel_basis = basis @ _transform.dct_matrix(8)
    ac = patches - patches.mean(axis=1, keepdims=True)  # remove the flat (DC) part
    ref = TruncatedSVD(n_components=5, algorithm="arpack", random_state=0).fit(ac).components_
    dots = np.abs(np.sum(pixel_basis[:5] * ref, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-6)


def test_basis_quantization_is_orthonormal_and_matches_qr(crop):
    y = _transform.rgb_to_ycbcr(crop)[0]
    target = _transform.learn_basis(_transform.to_patches(y, 8).reshape(-1, 64))
    qb, enc_basis = _transform.quantize_basis(target, 2.0**-5)
    dec_basis, min_norm = _transform.decode_basis(qb, 2.0**-5)
    assert np.array_equal(enc_basis, dec_basis)  # encoder assumes exactly what the decoder builds
    assert min_norm > 0.5
    np.testing.assert_allclose(dec_basis @ dec_basis.T, np.eye(63), atol=1e-12)
    q, _ = np.linalg.qr((qb * 2.0**-5).T.astype(np.float64))
    np.testing.assert_allclose(np.abs(np.sum(q.T * dec_basis, axis=1)), 1.0, atol=1e-9)
    # quantized in steps of 1/32 the basis stays close to the learned one
    assert np.min(np.abs(np.sum(dec_basis * target, axis=1))[:10]) > 0.95


def test_chroma_resampling_shapes_and_flat_identity():
    plane = np.full((7, 13), 3.5)
    small = _transform.downsample2(plane)
    assert small.shape == (4, 7)
    big = _transform.upsample2(small, (7, 13))
    np.testing.assert_allclose(big, 3.5)


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("patch", [4, 8, 16])
@pytest.mark.parametrize("quality", [10, 50, 90])
def test_roundtrip_sample_patch_sizes(crop, patch, quality):
    _, out = roundtrip(crop, quality=quality, patch_size=patch)
    floor = {10: 20.0, 50: 34.5, 90: 54.0}[quality]
    assert psnr(crop, out) > floor


@pytest.mark.parametrize("basis", ["pca", "dct"])
def test_roundtrip_basis_modes(crop, basis):
    data, out = roundtrip(crop, quality=50, basis=basis)
    assert imcompress.inspect(data)["params"]["basis"][0] == basis
    assert psnr(crop, out) > 35.0


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_roundtrip_chroma_modes(crop, chroma):
    data, out = roundtrip(crop, quality=60, chroma=chroma)
    assert imcompress.inspect(data)["params"]["chroma"] == ("4:2:0" if chroma == "420" else "4:4:4")
    assert psnr(crop, out) > 37.5


def test_flat_image_is_tiny_and_exact():
    img = np.full((40, 50, 3), (200, 30, 90), dtype=np.uint8)
    data, out = roundtrip(img, quality=50)
    assert np.max(np.abs(out.astype(int) - img.astype(int))) <= 1
    assert len(data) < 120


def test_gradient_image():
    y, x = np.mgrid[0:64, 0:96]
    img = np.stack([x * 2.5, y * 3.5, (x + y) * 1.5], axis=-1).clip(0, 255).astype(np.uint8)
    data, out = roundtrip(img, quality=50)
    assert psnr(img, out) > 38.0
    assert len(data) < img.size / 8


def test_noise_image(rng):
    img = rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
    _, lo = roundtrip(img, quality=20)
    _, hi = roundtrip(img, quality=95)
    assert psnr(img, hi) > psnr(img, lo) + 10.0
    assert psnr(img, hi) > 40.0


@pytest.mark.parametrize("shape", [(1, 37, 3), (29, 1, 3), (1, 1, 3), (7, 13, 3), (13, 7, 4)])
def test_odd_and_tiny_sizes(rng, shape):
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    img = np.sort(img, axis=1)  # some structure
    _, out = roundtrip(img, quality=95)
    assert psnr(img, out) > 35.0


def test_rgba_keeps_alpha(crop):
    alpha = np.tile(np.linspace(0, 255, crop.shape[1]).astype(np.uint8), (crop.shape[0], 1))
    img = np.dstack([crop, alpha])
    data, out = roundtrip(img, quality=70)
    assert out.shape[2] == 4 and len(imcompress.inspect(data)["params"]["deblock"]) == 4  # four planes coded
    assert psnr(img[..., 3], out[..., 3]) > 40.0


def test_encoder_reconstruction_equals_decoder(crop):
    enc = _encoder.Encoder(crop, patch=8, chroma="auto", basis="auto")
    step = quality_to_step(40)
    sections, _ = enc.encode(step)
    data = pack_container(3, *crop.shape[:2], 3, sections)
    # the encoder's own reconstruction of the configuration it wrote
    prm = PCAPatchCodec._params(unpack_container(data))
    cfg = enc.assemble(step, prm.subsample, [
        enc.choose(i, prm.subsample if i in (1, 2) else None,
                   prm.chroma_step if i in (1, 2) else prm.step) for i in range(3)])
    assert [pl.deblock for pl in cfg.prm.planes] == [pl.deblock for pl in prm.planes]
    shapes = _params.plane_shapes(*crop.shape[:2], 3, prm.subsample)
    mine = _decoder.reconstruct(cfg.prm, shapes, cfg.bases, cfg.coefs, crop.shape, cfg.grids)
    assert np.array_equal(mine, imcompress.decompress(data))


def test_deblocking_helps_at_low_rate(sample):
    from imcompress.pca_patch._deblock import deblock

    data = imcompress.compress(sample, "pca-patch", quality=15)
    strengths = imcompress.inspect(data)["params"]["deblock"]
    assert strengths[0] > 0  # the encoder found the filter worth it on luma
    # the filter leaves a flat plane alone and smooths a block step
    flat = np.full((16, 16), 5.0)
    assert np.array_equal(deblock(flat, 8, 20.0, 8), flat)
    step = np.zeros((16, 16))
    step[:, 8:] = 1.0
    out = deblock(step, 8, 20.0, 8)
    assert np.all(np.diff(out, axis=1) >= 0) and np.abs(np.diff(out, axis=1)).max() < 0.5
    assert np.allclose(out.sum(axis=1), step.sum(axis=1))  # the ramp keeps the mean


# -- sizes and rate control ------------------------------------------------------


def test_reported_size_is_bytes_on_disk(crop, tmp_path):
    data = imcompress.compress(crop, "pca-patch", quality=40)
    path = tmp_path / "x.imc"
    atomic_write(path, data)
    info = imcompress.inspect(path.read_bytes())
    assert info["bytes"] == path.stat().st_size == len(data)
    assert info["bpp"] == pytest.approx(8 * path.stat().st_size / (128 * 128))


def test_quality_monotone_in_bytes_and_psnr(crop):
    sizes, psnrs = [], []
    for q in range(0, 101, 10):
        data, out = roundtrip(crop, quality=q)
        sizes.append(len(data))
        psnrs.append(psnr(crop, out))
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
    assert all(b > a for a, b in zip(psnrs, psnrs[1:])), psnrs


def test_quality_to_step_is_decreasing():
    steps = [quality_to_step(q) for q in range(101)]
    assert all(b < a for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("bpp", [0.3, 1.0, 2.5])
def test_bpp_target_met(crop, bpp):
    data, out = roundtrip(crop, bpp=bpp)
    got = 8 * len(data) / (128 * 128)
    assert got <= bpp
    assert got > 0.9 * bpp


def test_bpp_unreachable_raises_quality_error(crop):
    with pytest.raises(QualityError, match="cannot be reached"):
        imcompress.compress(crop, "pca-patch", bpp=0.001)


def test_beats_pillow_jpeg_at_equal_bytes(sample):
    buf = io.BytesIO()
    Image.fromarray(sample).save(buf, "JPEG", quality=50, optimize=True)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    budget_bpp = 8 * len(buf.getvalue()) / (512 * 512)
    data, out = roundtrip(sample, bpp=budget_bpp)
    assert len(data) <= len(buf.getvalue())
    assert psnr(sample, out) > psnr(sample, jpeg) + 1.0


def test_rate_search_interface(crop):
    codec = PCAPatchCodec(quality=30, bpp=1.0)
    cands = codec.rate_candidates(crop)
    assert cands[0] == 0 and cands[-1] == 100 and cands == sorted(cands)
    other = codec.with_rate(70)
    assert other.quality == 70 and other.bpp is None


# -- determinism -------------------------------------------------------------------


def test_decode_deterministic_in_process_and_subprocess(crop, tmp_path):
    data = imcompress.compress(crop, "pca-patch", quality=45)
    a = imcompress.decompress(data)
    b = imcompress.decompress(data)
    assert np.array_equal(a, b)
    assert imcompress.compress(crop, "pca-patch", quality=45) == data
    path = tmp_path / "d.imc"
    path.write_bytes(data)
    code = (
        "import hashlib, sys, imcompress;"
        f"print(hashlib.sha256(imcompress.decompress(open({str(path)!r}, 'rb').read()).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(a.tobytes()).hexdigest()


# -- parameters and damaged files ----------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(quality=-1), "quality=-1 should be"),
        (dict(quality=101), "quality=101 should be"),
        (dict(quality="high"), "quality='high' should be"),
        (dict(bpp=0), "bpp=0 should be"),
        (dict(patch_size=5), "patch_size=5 should be 4, 8, 16"),
        (dict(chroma="411"), "chroma='411' should be"),
        (dict(basis="wavelet"), "basis='wavelet' should be 'auto', 'pca', 'dct' or 'classified'"),
    ],
)
def test_bad_parameters(crop, params, match):
    with pytest.raises(UsageError, match=match):
        imcompress.compress(crop, "pca-patch", **params)


@pytest.fixture(scope="module")
def good_file(crop):
    return imcompress.compress(crop, "pca-patch", quality=50, basis="pca")


def _rebuild(data, edit_sections):
    c = unpack_container(data)
    sections = edit_sections([list(s) for s in c.sections])
    return pack_container(c.method_id, c.height, c.width, c.channels, [tuple(s) for s in sections])


def _edit_ppar(data, offset, fmt, value):
    def edit(sections):
        raw = bytearray(sections[0][1])
        struct.pack_into(fmt, raw, offset, value)
        sections[0][1] = bytes(raw)
        return sections

    return _rebuild(data, edit)


_PLANE0 = _params.PPAR_HEAD.size


@pytest.mark.parametrize(
    "offset, fmt, value, match",
    [
        (0, "<B", 9, "parameter version"),
        (1, "<B", 0x80, "flags"),
        (2, "<B", 4, "4 planes"),
        (3, "<f", float("nan"), "step nan out of range"),
        (3, "<f", 0.0, "step 0.0 out of range"),
        (7, "<f", 1e30, "out of range"),
        (_PLANE0, "<B", 5, "patch size"),
        (_PLANE0 + 1, "<B", 7, "basis mode"),
        (_PLANE0 + 2, "<B", 40, "basis precision"),
        (_PLANE0 + 3, "<H", 64, "64 components"),
        (_PLANE0 + 5, "<B", 200, "reconstruction offset"),
        (_PLANE0 + 6, "<B", 16, "deblocking strength 16"),
    ],
)
def test_absurd_parameters_raise_corrupt(good_file, offset, fmt, value, match):
    bad = _edit_ppar(good_file, offset, fmt, value)
    with pytest.raises(CorruptFileError, match=match):
        imcompress.decompress(bad)
    if offset < _PLANE0:
        with pytest.raises(CorruptFileError):
            imcompress.inspect(bad)


def test_missing_and_short_sections(good_file):
    no_data = _rebuild(good_file, lambda s: [x for x in s if x[0] != b"PDAT"])
    with pytest.raises(CorruptFileError, match="missing section 'PDAT'"):
        imcompress.decompress(no_data)
    short = _rebuild(good_file, lambda s: [[b"PPAR", s[0][1][:5]]] + s[1:])
    with pytest.raises(CorruptFileError, match="too short"):
        imcompress.decompress(short)
    extra = _rebuild(good_file, lambda s: [[b"PPAR", s[0][1] + b"\x00"]] + s[1:])
    with pytest.raises(CorruptFileError, match="PPAR section has"):
        imcompress.decompress(extra)


def test_truncated_file_and_truncated_stream(good_file):
    with pytest.raises(CorruptFileError):
        imcompress.decompress(good_file[: len(good_file) // 2])
    cut = _rebuild(good_file, lambda s: [s[0], [b"PDAT", s[1][1][: len(s[1][1]) // 2]]])
    with pytest.raises(CorruptFileError, match="truncated|out-of-range|degenerate"):
        imcompress.decompress(cut)


def test_more_components_than_coded_is_detected(good_file):
    # claiming more components makes the decoder read past the stream's end
    def edit(sections):
        raw = bytearray(sections[0][1])
        k = struct.unpack_from("<H", raw, _PLANE0 + 3)[0]
        struct.pack_into("<H", raw, _PLANE0 + 3, min(63, k + 40) if k < 63 else 10)
        sections[0][1] = bytes(raw)
        return sections

    with pytest.raises(CorruptFileError):
        imcompress.decompress(_rebuild(good_file, edit))


@pytest.fixture(scope="module", params=[{"basis": "pca"}, {"bitstream": 2}], ids=["bitstream1", "bitstream2"])
def stream_file(crop, request):
    return imcompress.compress(crop, "pca-patch", quality=50, **request.param)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10**9), xor=st.integers(1, 255))
def test_flipped_stream_bytes_never_crash(stream_file, pos, xor):
    c = unpack_container(stream_file)
    payload = bytearray(c.sections[1][1])
    payload[pos % len(payload)] ^= xor
    bad = pack_container(c.method_id, c.height, c.width, c.channels, [c.sections[0], (b"PDAT", bytes(payload))])
    try:
        out = imcompress.decompress(bad)
    except CorruptFileError:
        return
    assert out.shape == (c.height, c.width, 3) and out.dtype == np.uint8


def test_crc_still_guards_the_payload(good_file):
    bad = bytearray(good_file)
    bad[40] ^= 0x10
    with pytest.raises(CorruptFileError, match="checksum"):
        imcompress.decompress(bytes(bad))
    assert zlib.crc32(good_file[:-4]) == struct.unpack("<I", good_file[-4:])[0]


def test_icc_profile_is_stored_and_counted(crop):
    plain = imcompress.compress(crop, "pca-patch", quality=40)
    icc = bytes(range(256)) * 2
    data = imcompress.compress(crop, "pca-patch", quality=40, icc_profile=icc)
    c = unpack_container(data)
    assert c.section(b"ICCP") == icc
    assert len(data) == len(plain) + len(icc) + 8
    assert np.array_equal(imcompress.decompress(data), imcompress.decompress(plain))


def test_bpp_target_counts_the_icc_profile(crop):
    data = imcompress.compress(crop, "pca-patch", bpp=1.0, icc_profile=b"\x00" * 300)
    assert 8 * len(data) / (128 * 128) <= 1.0


# -- classified bases ------------------------------------------------------------


@pytest.fixture(scope="module")
def cls_file(sample):
    img = np.ascontiguousarray(sample[:256, :256])
    return img, imcompress.compress(img, "pca-patch", quality=55, basis="classified")


def test_classified_roundtrip_and_determinism(cls_file, tmp_path):
    img, data = cls_file
    info = imcompress.inspect(data)["params"]
    assert info["basis"][0].startswith("classified (")
    out = imcompress.decompress(data)
    dct = imcompress.decompress(imcompress.compress(img, "pca-patch", quality=55, basis="dct"))
    # a different basis per class, same quantizer: quality within 0.5 dB of the DCT's
    assert abs(psnr(img, out) - psnr(img, dct)) < 0.5 and psnr(img, out) > 33
    assert imcompress.compress(img, "pca-patch", quality=55, basis="classified") == data
    path = tmp_path / "c.imc"
    path.write_bytes(data)
    code = (
        "import hashlib, imcompress;"
        f"print(hashlib.sha256(imcompress.decompress(open({str(path)!r}, 'rb').read()).tobytes()).hexdigest())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == hashlib.sha256(out.tobytes()).hexdigest()


def test_classified_encoder_reconstruction_equals_decoder(cls_file):
    img, _ = cls_file
    enc = _encoder.Encoder(img, patch=8, chroma="auto", basis="classified")
    step = quality_to_step(55)
    sections, _ = enc.encode(step)
    data = pack_container(3, *img.shape[:2], 3, sections)
    prm = PCAPatchCodec._params(unpack_container(data))
    cfg = enc.assemble(step, prm.subsample, [
        enc.choose(i, prm.subsample if i in (1, 2) else None,
                   prm.chroma_step if i in (1, 2) else prm.step) for i in range(3)])
    p2, bases, coefs, grids, cmaps = cfg.prm, cfg.bases, cfg.coefs, cfg.grids, cfg.cmaps
    assert cmaps[0] is not None and cmaps[0].max() >= 1 and p2.planes[0].n_classes >= 2
    shapes = _params.plane_shapes(*img.shape[:2], 3, prm.subsample)
    mine = _decoder.reconstruct(p2, shapes, bases, coefs, img.shape, grids)
    assert np.array_equal(mine, imcompress.decompress(data))
    # and from the integers alone (no cached grids), as the decoder does
    assert np.array_equal(_decoder.reconstruct(p2, shapes, bases, coefs, img.shape, cmaps=cmaps), mine)


def test_class_bases_are_orthonormal_and_keep_high_frequencies(cls_file):
    img, data = cls_file
    c = unpack_container(data)
    prm = PCAPatchCodec._params(c)
    pl = prm.planes[0]
    nl = _params.n_learned(8)
    shapes = _params.plane_shapes(img.shape[0], img.shape[1], 3, prm.subsample)
    from imcompress.pca_patch._coder import decode_stream

    grids = [(-(-s[0] // q.patch), -(-s[1] // q.patch), q.components + 1)
             for s, q in zip(shapes, prm.planes)]
    bases, _ = decode_stream(
        c.section(b"PDAT"),
        [(pl.n_classes - 1, min(pl.components, nl), 64)] + [(0, 64)] * 2,
        [_transform.dct_freq(8)] * 3, [0, 1, 1], grids, basis_limit=34, n_classes=[pl.n_classes, 0, 0])
    assert bases[0].shape[0] == pl.n_classes - 1
    for qb in bases[0]:
        assert not qb[:, nl + 1:].any()  # only the low frequencies u + v <= 4 are learned
        dec, _ = _transform.decode_basis(qb, 2.0 ** -pl.basis_exp)
        np.testing.assert_allclose(dec @ dec.T, np.eye(dec.shape[0]), atol=1e-12)


def test_classmap_stream_roundtrip(rng):
    from imcompress.pca_patch._coder import decode_stream, encode_stream

    q = rng.integers(-3, 4, size=(7, 9, 5)).astype(np.int32)
    cm = rng.integers(0, 5, size=(7, 9)).astype(np.int32)
    cm[2:5] = 1  # runs and changes
    data = encode_stream([np.zeros((0, 16), np.int32)], [_transform.dct_freq(4)], [0], [q], class_maps=[cm])
    _, planes = decode_stream(data, [(0, 16)], [_transform.dct_freq(4)], [0], [q.shape], basis_limit=34,
                              n_classes=[5])
    assert np.array_equal(planes[0][0], q) and np.array_equal(planes[0][1], cm)
    with pytest.raises(CorruptFileError, match="names a class"):
        decode_stream(data, [(0, 16)], [_transform.dct_freq(4)], [0], [q.shape], basis_limit=34,
                      n_classes=[4])


@pytest.mark.parametrize("mode", [0x11, 0x19, 0x1F, 0x22, 0x14 | 0x80])
def test_bad_classified_mode_raises_corrupt(cls_file, mode):
    bad = _edit_ppar(cls_file[1], _PLANE0 + 1, "<B", mode)
    with pytest.raises(CorruptFileError, match="basis mode"):
        imcompress.decompress(bad)


@pytest.mark.parametrize("mode", [0x00, 0x01, 0x12, 0x18])
def test_wrong_class_count_is_detected_or_harmless(cls_file, mode):
    bad = _edit_ppar(cls_file[1], _PLANE0 + 1, "<B", mode)
    try:
        out = imcompress.decompress(bad)
    except CorruptFileError:
        return
    assert out.shape == cls_file[0].shape and out.dtype == np.uint8


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10**9), xor=st.integers(1, 255))
def test_classified_flipped_bytes_never_crash(cls_file, pos, xor):
    c = unpack_container(cls_file[1])
    payload = bytearray(c.sections[1][1])
    payload[pos % len(payload)] ^= xor
    bad = pack_container(c.method_id, c.height, c.width, c.channels, [c.sections[0], (b"PDAT", bytes(payload))])
    try:
        out = imcompress.decompress(bad)
    except CorruptFileError:
        return
    assert out.shape == (c.height, c.width, 3) and out.dtype == np.uint8


def test_class_basis_with_fewer_components_than_learned_coordinates():
    # K = 3 < L = 14: the stored vectors still span coordinates 1..14
    rng = np.random.default_rng(5)
    target = np.zeros((14, 64))
    target[:, 1:15] = np.linalg.qr(rng.normal(size=(14, 14)))[0].T
    qb, dec = _transform.quantize_basis(target, 2.0**-5)
    pl = _params.PlaneParams(patch=8, basis=0x12, basis_exp=5, components=3, rho=0, deblock=0)
    assert pl.n_classes == 2
    qc = rng.integers(-5, 6, size=(2, 3, 4)).astype(np.int32)
    cmap = np.array([[0, 1, 1], [1, 0, 0]])
    grid = _decoder.plane_grid(0, pl, 4.0, qb[None, :3], qc, cmap)
    c = _transform.dct_matrix(8)
    for by in range(2):
        for bx in range(3):
            vecs = c[:4] if cmap[by, bx] == 0 else np.vstack([c[:1], dec[:3] @ c])
            want = (qc[by, bx] * 4.0) @ vecs
            np.testing.assert_allclose(grid[by * 8:(by + 1) * 8, bx * 8:(bx + 1) * 8].ravel(), want, atol=1e-9)
    bad = qb[None, :3].copy()
    bad[0, 0, 20] = 1  # u + v > 4: outside the learned range
    with pytest.raises(CorruptFileError, match="frequency range"):
        _decoder.plane_grid(0, pl, 4.0, bad, qc, cmap)
