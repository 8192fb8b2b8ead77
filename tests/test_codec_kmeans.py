"""The kmeans codec: .imc container and optimized palette PNG."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import imcompress
from imcompress import UsageError
from imcompress.kmeans._codec import KMeansCodec, decode_indices, encode_indices, palette_png


def png_pixels(data):
    with Image.open(io.BytesIO(data)) as img:
        mode = "RGBA" if ("transparency" in img.info or img.mode == "RGBA") else "RGB"
        return img.format, img.mode, np.asarray(img.convert(mode)), dict(img.info)


@pytest.fixture(scope="module")
def small(sample):
    return np.ascontiguousarray(sample[100:228, 150:310])  # 128 x 160 photo crop


def test_roundtrip_on_photo(small):
    codec = KMeansCodec(16)
    palette, indices, info = codec.quantize(small)
    data = codec.encode(small)
    out1 = imcompress.decompress(data)
    out2 = imcompress.decompress(data)
    assert out1.shape == small.shape and out1.dtype == np.uint8
    np.testing.assert_array_equal(out1, palette[indices])
    np.testing.assert_array_equal(out1, out2)
    assert info == {"exact": False, "dithered": False, "n_colors": 16, "mse": imcompress.metrics.mse(small, out1)}
    assert imcompress.metrics.unique_colors(out1) == 16
    meta = imcompress.inspect(data)
    assert meta["method"] == "kmeans" and meta["bytes"] == len(data)
    assert meta["params"]["n_colors"] == 16 and meta["params"]["exact"] is False
    assert meta["sections"]["PLTE"] == 8 + 16 * 3


def test_png_and_imc_decode_to_the_same_pixels(small):
    codec = KMeansCodec(12)
    imc = imcompress.decompress(codec.export(small, format="imc"))
    fmt, mode, png, _ = png_pixels(codec.export(small, format="png"))
    assert (fmt, mode) == ("PNG", "P")
    np.testing.assert_array_equal(png, imc)


@pytest.mark.parametrize("k, bits", [(2, 1), (4, 2), (16, 4), (17, 8)])
def test_png_uses_smallest_bit_depth(small, k, bits):
    data = KMeansCodec(k).export(small, format="png")
    # IHDR: 8 signature + 8 chunk head + width, height (8) then bit depth
    assert data[24] == bits


@pytest.mark.parametrize("k", [16, 64, 256])
def test_container_beats_optimized_png_on_sample(sample, k):
    codec = KMeansCodec(k)
    palette, indices, _ = codec.quantize(sample)
    png = palette_png(palette, indices, level=0)  # zlib level 9, as Pillow writes it
    imc = codec._sections(sample, palette, indices, {"exact": False}, None)
    imc_bytes = len(imcompress.format.pack_container(1, 512, 512, 3, imc))
    # measured: 0.57 (K=16), 0.62 (K=64), 0.66 (K=256) of the PNG size
    assert imc_bytes < 0.8 * len(png)


def test_container_beats_optimized_png_on_kodak(kodak_paths):
    for path in kodak_paths[:2]:
        img = imcompress.load_image(path)
        codec = KMeansCodec(32)
        palette, indices, _ = codec.quantize(img)
        png = palette_png(palette, indices, level=0)  # zlib level 9, as Pillow writes it
        idx = encode_indices(indices, palette)
        assert len(idx) + 3 * 32 + 60 < 0.85 * len(png), path.name


def test_psnr_matches_scikit_learn_kmeans(elephant):
    from sklearn.cluster import KMeans

    pixels = elephant.reshape(-1, 3).astype(np.float64)
    km = KMeans(16, random_state=0).fit(pixels)
    ref = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)[km.labels_].reshape(elephant.shape)
    ours = imcompress.decompress(KMeansCodec(16).encode(elephant))
    assert imcompress.metrics.psnr(elephant, ours) >= imcompress.metrics.psnr(elephant, ref) - 0.2


def test_few_colours_are_kept_exactly(rng):
    colours = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    img = colours[rng.integers(0, 5, size=(20, 30))]
    data = KMeansCodec(16).encode(img)
    np.testing.assert_array_equal(imcompress.decompress(data), img)
    assert imcompress.inspect(data)["params"]["exact"] is True
    flat = np.full((9, 7, 3), 42, dtype=np.uint8)
    np.testing.assert_array_equal(imcompress.decompress(KMeansCodec(4).encode(flat)), flat)


def test_rgba_keeps_alpha_like_pngquant(small):
    rgba = np.dstack([small, np.tile(np.linspace(0, 255, small.shape[1]).astype(np.uint8), (small.shape[0], 1))])
    codec = KMeansCodec(24)
    imc = imcompress.decompress(codec.export(rgba, format="imc"))
    fmt, mode, png, info = png_pixels(codec.export(rgba, format="png"))
    assert imc.shape == rgba.shape and "transparency" in info  # tRNS chunk
    np.testing.assert_array_equal(png, imc)
    assert np.abs(imc[:, :, 3].astype(int) - rgba[:, :, 3]).mean() < 40


def test_icc_profile_is_kept(small):
    icc = b"fake icc profile bytes" * 10
    data = KMeansCodec(8).encode(small, icc_profile=icc)
    assert imcompress.format.unpack_container(data).section(b"ICCP") == icc
    _, _, _, info = png_pixels(KMeansCodec(8).export(small, format="png", icc_profile=icc))
    assert info["icc_profile"] == icc


def test_dither_option_passes_through(small):
    plain = imcompress.decompress(KMeansCodec(8).encode(small))
    data = KMeansCodec(8, dither=1.0).encode(small)
    dithered = imcompress.decompress(data)
    assert not np.array_equal(plain, dithered)
    assert imcompress.inspect(data)["params"]["dither"] == 1.0


def test_quality_range(small):
    codec = KMeansCodec(quality="0-40")
    palette, _, _ = codec.quantize(small)
    assert 2 <= len(palette) <= 256
    with pytest.raises(imcompress.QualityError, match="below the minimum"):
        KMeansCodec(quality="100-100").quantize(small)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 256), seed=st.integers(0, 2**16))
def test_index_coder_roundtrip(h, w, k, seed):
    rng = np.random.default_rng(seed)
    pal = rng.integers(0, 256, size=(k, 3), dtype=np.uint8)
    idx = rng.integers(0, k, size=(h, w)).astype(np.uint8)
    np.testing.assert_array_equal(decode_indices(encode_indices(idx, pal), pal, h, w), idx)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_colors": 1}, r"n_colors=1 should be in 2\.\.256"),
        ({"n_colors": 300}, "at most 256"),
        ({"n_colors": 2.5}, "should be an integer"),
        ({"n_colors": 8, "dither": 1.5}, r"dither=1.5 should be in 0\.\.1"),
        ({"quality": "90-80"}, "MIN 90 above MAX 80"),
    ],
)
def test_invalid_parameters(small, kwargs, message):
    with pytest.raises(UsageError, match=message):
        KMeansCodec(**kwargs).encode(small)


def test_from_options_parses_text():
    assert KMeansCodec.from_options(n_colors="32").n_colors == 32
    assert KMeansCodec.from_options(n_colors="AUTO").n_colors == "auto"
    with pytest.raises(UsageError, match="--colors 'many' should be an integer"):
        KMeansCodec.from_options(n_colors="many")
    with pytest.raises(UsageError, match="writes imc or png"):
        KMeansCodec(4).export(np.zeros((2, 2, 3), np.uint8), format="jpeg")


def test_auto_colours_uses_the_elbow(small):
    palette, _, _ = KMeansCodec("auto").quantize(small)
    assert 2 <= len(palette) <= 32


def test_side_limit_is_an_input_error():
    # the image, not an option, must change: exit 2 (InputError), not 4
    wide = np.zeros((1, imcompress.format.MAX_SIDE + 1, 3), np.uint8)
    wide[0, ::2] = 255
    with pytest.raises(imcompress.InputError, match="exceeds the .imc side limit of 65536"):
        KMeansCodec(2).encode(wide)
    assert KMeansCodec(2).export(wide, format="png")[:4] == b"\x89PNG"  # PNG has no such limit


@pytest.mark.slow
def test_container_beats_png_on_every_kodak_photo(kodak_paths, sample):
    """The measurement behind docs/FORMAT.md's table (opt-in, -m slow: about a minute)."""
    from imcompress.format import pack_container

    images = [sample] + [imcompress.load_image(p) for p in kodak_paths]
    for img in images:
        for k in (16, 64, 256):
            codec = KMeansCodec(k)
            palette, indices, info = codec.quantize(img)
            imc = pack_container(1, *img.shape, codec._sections(img, palette, indices, info, None))
            assert len(imc) < 0.9 * len(palette_png(palette, indices, level=0))


def test_fixed_colors_are_kept_exactly_in_the_palette(sample):
    from imcompress.kmeans._codec import KMeansCodec, parse_colors

    img = sample[::4, ::4]
    palette, indices, _ = KMeansCodec(8, fixed_colors="#ff0000,#0000FF").quantize(img)
    rows = {tuple(int(v) for v in c) for c in palette}
    assert {(255, 0, 0), (0, 0, 255)} <= rows and len(rows) == 8
    np.testing.assert_array_equal(parse_colors("#010203"), [[1, 2, 3]])
    with pytest.raises(imcompress.UsageError, match="not hexadecimal"):
        parse_colors("#gg0000")
    with pytest.raises(imcompress.UsageError, match="is empty"):
        parse_colors(" , ")


@pytest.mark.parametrize("options", [
    {"n_colors": 2}, {"n_colors": 16}, {"n_colors": 256}, {"n_colors": 64, "speed": 1}, {"n_colors": 64, "speed": 10},
    {"n_colors": 32, "color_space": "lab"}, {"n_colors": 32, "color_space": "oklab"},
    {"n_colors": 8, "fixed_colors": "#ff0000,#000000"}, {"n_colors": 256, "random_state": 7},
])
@pytest.mark.parametrize("fmt", ["imc", "png"])
def test_the_codecs_error_is_the_pixels_error_bit_for_bit(sample, options, fmt):
    """Compressed.mse (from the colour table, no pass over the pixels) is exactly
    metrics.mse of the input against the file decoded again, so the summary line's
    PSNR does not depend on which one the CLI uses."""
    img = np.ascontiguousarray(sample[40:300, 90:410])
    out = KMeansCodec(**options).compress(img, format=fmt)
    decoded = imcompress.decompress(out.data) if fmt == "imc" else png_pixels(out.data)[2]
    assert out.mse is not None
    assert out.mse == imcompress.metrics.mse(img, decoded)  # equal, not close
    assert imcompress.compress_to_target(img, KMeansCodec(**options), format=fmt).psnr == imcompress.metrics.psnr(img, decoded)


def test_the_codecs_error_on_the_study_photo_and_when_it_is_not_known(elephant, rng):
    out = KMeansCodec(256).compress(elephant, format="png")
    assert out.mse == imcompress.metrics.mse(elephant, png_pixels(out.data)[2])
    colours = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    few = colours[rng.integers(0, 5, (20, 30))]
    assert KMeansCodec(8).compress(few).mse == 0.0  # exact colours: lossless
    # dithered, RGBA (clustered premultiplied), a fixed palette: the CLI measures the pixels
    assert KMeansCodec(8, dither=1.0).compress(elephant[:64, :64]).mse is None
    rgba = np.dstack([elephant[:64, :64], np.full((64, 64), 128, np.uint8)])
    assert KMeansCodec(8).compress(rgba).mse is None
    assert KMeansCodec(map_palette=colours).compress(elephant[:64, :64]).mse is None
