"""`.imc` in Pillow and imageio: opened, loaded, converted and saved by the libraries themselves."""

import io
import os
import struct
import subprocess
import sys
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image, ImageCms, UnidentifiedImageError

import imcompress
from imcompress import CorruptFileError, UsageError
from imcompress.plugins import IMAGEIO_PLUGIN, PILLOW_FORMAT, register_imageio

OPTIONS = {"kmeans": {"n_colors": 12}, "pca-rows": {"n_components": 6}, "pca-patch": {"quality": 60}}
CASES = [(m, c) for m in OPTIONS for c in (3, 4)]


@pytest.fixture(scope="module")
def images(sample):
    rgb = np.ascontiguousarray(sample[:40, :56])
    alpha = np.linspace(0, 255, 40 * 56).reshape(40, 56).round().astype(np.uint8)
    return {3: rgb, 4: np.dstack([rgb, alpha])}


@pytest.fixture(scope="module")
def files(images, tmp_path_factory):
    """One .imc file per method and channel count, with its bytes."""
    folder = tmp_path_factory.mktemp("imc")
    out = {}
    for method, channels in CASES:
        data = imcompress.compress(images[channels], method, **OPTIONS[method])
        path = folder / f"{method}-{channels}.imc"
        path.write_bytes(data)
        out[method, channels] = path, data
    return out


@pytest.fixture(scope="module", autouse=True)
def imageio_plugin():
    register_imageio()


def resealed(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def with_dims(data: bytes, h: int, w: int) -> bytes:
    body = bytearray(data[:-4])
    body[8:16] = struct.pack("<II", h, w)
    return resealed(bytes(body))


# --- Pillow -------------------------------------------------------------------------------


@pytest.mark.parametrize("method, channels", CASES)
def test_pillow_opens_imc_with_the_decoder_pixels(files, method, channels):
    path, data = files[method, channels]
    with Image.open(path) as im:
        assert im.format == PILLOW_FORMAT == "IMC"
        assert im.mode == {3: "RGB", 4: "RGBA"}[channels]
        assert im.size == (56, 40)
        assert im.info["method"] == method
        assert im.get_format_mimetype() == "image/x-imc"
        pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels, imcompress.decompress(data))


@pytest.mark.parametrize("method, channels", [("kmeans", 4), ("pca-patch", 3)])
def test_pillow_operations_match_the_decoded_array(files, method, channels):
    path, data = files[method, channels]
    reference = Image.fromarray(imcompress.decompress(data))
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("L")), np.asarray(reference.convert("L")))
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(reference.convert("RGB")))
        crop = im.crop((5, 3, 30, 20))
        np.testing.assert_array_equal(np.asarray(crop), np.asarray(reference)[3:20, 5:30])
    with Image.open(io.BytesIO(data)) as im:  # a stream, not a path
        im.thumbnail((28, 28))
        ref = reference.copy()
        ref.thumbnail((28, 28))
        assert im.size == ref.size == (28, 20)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(ref))


def test_pillow_registration():
    assert Image.registered_extensions()[".imc"] == "IMC"
    assert Image.MIME["IMC"] == "image/x-imc"
    assert "IMC" in Image.SAVE and "IMC" in Image.OPEN
    imcompress.plugins.register_pillow()  # idempotent
    assert Image.ID.count("IMC") == 1


@pytest.mark.parametrize("method", list(OPTIONS))
@pytest.mark.parametrize("channels", [3, 4])
def test_pillow_save_round_trip(images, tmp_path, method, channels):
    image = images[channels]
    path = tmp_path / "out.imc"
    Image.fromarray(image).save(path, method=method, **OPTIONS[method])  # format from the extension
    data = path.read_bytes()
    assert data == imcompress.compress(image, method, **OPTIONS[method])
    with Image.open(path) as im:
        assert im.mode == Image.fromarray(image).mode
        back = np.asarray(im)
    assert back.shape == image.shape
    # a real compression of the same image: close to it, not equal to it (colours
    # compared premultiplied: under alpha 0 a codec may store any colour)
    def premultiplied(a):
        a = a.astype(np.float64)
        return a if channels == 3 else np.dstack([a[..., :3] * a[..., 3:] / 255, a[..., 3]])

    err = np.abs(premultiplied(back) - premultiplied(image))
    assert 0 < err.mean() < 12


def test_pillow_save_options_reach_the_codec(images):
    buf = io.BytesIO()
    Image.fromarray(images[3]).save(buf, format="IMC", method="kmeans", n_colors=5)
    meta = imcompress.inspect(buf.getvalue())
    assert meta["method"] == "kmeans" and meta["params"]["n_colors"] == 5
    with Image.open(buf) as im:
        assert len(im.getcolors()) <= 5
    buf = io.BytesIO()
    Image.fromarray(images[3]).save(buf, format="IMC")  # default method
    assert imcompress.inspect(buf.getvalue())["method"] == "kmeans"


def test_pillow_save_converts_8bit_modes_and_refuses_deep_ones(images, tmp_path):
    gray = Image.fromarray(images[3]).convert("L")
    buf = io.BytesIO()
    gray.save(buf, format="IMC", method="kmeans", n_colors=8)
    decoded = imcompress.decompress(buf.getvalue())
    assert decoded.shape == (40, 56, 3)
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 1])
    palette = Image.fromarray(images[3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    buf = io.BytesIO()
    palette.save(buf, format="IMC", method="kmeans", n_colors=9)
    assert imcompress.inspect(buf.getvalue())["channels"] == 4
    deep = Image.fromarray(images[3][..., 0].astype(np.uint16) * 257)
    target = tmp_path / "deep.imc"
    with pytest.raises(OSError, match="cannot write mode I;16 as IMC"):
        deep.save(target)
    assert not target.exists()


def test_pillow_save_errors_leave_nothing(images, tmp_path):
    target = tmp_path / "bad.imc"
    with pytest.raises(UsageError, match="unknown method 'nope'"):
        Image.fromarray(images[3]).save(target, method="nope")
    assert not target.exists()


def test_pillow_icc_profile_round_trip(images):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(images[3])
    im.info["icc_profile"] = icc
    buf = io.BytesIO()
    im.save(buf, format="IMC", method="kmeans", n_colors=8)
    with Image.open(buf) as back:
        assert back.info["icc_profile"] == icc
    buf = io.BytesIO()
    im.save(buf, format="IMC", method="kmeans", n_colors=8, icc_profile=None)
    with Image.open(buf) as back:
        assert "icc_profile" not in back.info


def test_pillow_corrupt_files_raise_corrupt_file_error(files):
    _, data = files["kmeans", 3]
    flipped = bytearray(data)
    flipped[30] ^= 0x40
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        Image.open(io.BytesIO(bytes(flipped)))
    with pytest.raises(CorruptFileError, match="truncated|checksum"):
        Image.open(io.BytesIO(data[:-7]))
    # a header that passes the container checks but claims more pixels than the
    # payload holds: open succeeds (nothing decoded yet), load raises
    with Image.open(io.BytesIO(with_dims(data, 4000, 4000))) as im:
        assert im.size == (4000, 4000)
        with pytest.raises(CorruptFileError) as excinfo:
            im.load()
    with pytest.raises(CorruptFileError) as same:
        imcompress.decompress(with_dims(data, 4000, 4000))
    assert str(excinfo.value) == str(same.value) and "\n" not in str(excinfo.value)
    with pytest.raises(UnidentifiedImageError):  # other bytes are still not ours
        Image.open(io.BytesIO(b"\x89IMD" + data[4:]))


def test_pillow_pixel_limit_is_imcompress_limit(files, monkeypatch):
    path, data = files["pca-rows", 3]
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", "1000")
    with pytest.raises(CorruptFileError, match="above the limit of 1000") as opened:
        Image.open(path)
    with pytest.raises(CorruptFileError) as decoded:
        imcompress.decompress(data)
    assert str(opened.value) == str(decoded.value)
    monkeypatch.setenv("IMCOMPRESS_MAX_PIXELS", str(40 * 56))
    with Image.open(path) as im:
        im.load()


# --- imageio ------------------------------------------------------------------------------


@pytest.mark.parametrize("method, channels", CASES)
def test_imageio_reads_imc(files, method, channels):
    path, data = files[method, channels]
    pixels = iio.imread(path)
    np.testing.assert_array_equal(pixels, imcompress.decompress(data))
    assert pixels.dtype == np.uint8 and pixels.shape == (40, 56, channels)
    props = iio.improps(path)
    assert props.shape == (40, 56, channels) and props.dtype == np.uint8 and not props.is_batch
    meta = iio.immeta(path)
    assert meta["method"] == method and meta["bytes"] == len(data)
    np.testing.assert_array_equal(iio.imread(data), pixels)  # bytes
    np.testing.assert_array_equal(iio.imread(path, plugin=IMAGEIO_PLUGIN), pixels)


def test_imageio_index_and_batches(files):
    path, data = files["kmeans", 4]
    batch = iio.imread(path, index=...)
    assert batch.shape == (1, 40, 56, 4)
    props = iio.improps(path, index=...)
    assert props.shape == (1, 40, 56, 4) and props.is_batch and props.n_images == 1
    with pytest.raises(UsageError, match="index=1 is out of range"):
        iio.imread(path, index=1)
    frames = list(iio.imiter(path))
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0], imcompress.decompress(data))


@pytest.mark.parametrize("method", list(OPTIONS))
def test_imageio_write_round_trip(images, tmp_path, method):
    path = tmp_path / "x.imc"
    result = iio.imwrite(path, images[4], method=method, **OPTIONS[method])
    assert result is None
    data = path.read_bytes()
    assert data == imcompress.compress(images[4], method, **OPTIONS[method])
    assert iio.immeta(path)["method"] == method
    blob = iio.imwrite("<bytes>", images[3], extension=".imc", method=method, **OPTIONS[method])
    assert blob == imcompress.compress(images[3], method, **OPTIONS[method])
    one = iio.imwrite("<bytes>", images[3][None], extension=".imc", method=method, **OPTIONS[method])
    assert one == blob


def test_imageio_write_errors(images, tmp_path):
    target = tmp_path / "bad.imc"
    with pytest.raises(UsageError, match="holds one image; got a batch of 2"):
        iio.imwrite(target, np.stack([images[3]] * 2))
    with pytest.raises(UsageError, match="unknown method"):
        iio.imwrite(target, images[3], method="nope")
    assert not target.exists()
    # other extensions are not claimed by the plugin
    png = iio.imwrite("<bytes>", images[3], extension=".png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(IOError):
        iio.imread(png, plugin=IMAGEIO_PLUGIN)


def test_imageio_corrupt_and_limits(files):
    path, data = files["pca-patch", 4]
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        iio.imread(data[:-4] + b"\0\0\0\0")
    with pytest.raises(CorruptFileError, match="above the limit of 100"):
        iio.imread(path, max_pixels=100)
    with pytest.raises(CorruptFileError, match="above the limit of 100"):
        iio.improps(path, max_pixels=100)
    big = with_dims(data, 3000, 3000)
    assert iio.improps(big).shape == (3000, 3000, 4)  # header only
    with pytest.raises(CorruptFileError) as excinfo:
        iio.imread(big)
    with pytest.raises(CorruptFileError) as same:
        imcompress.decompress(big)
    assert str(excinfo.value) == str(same.value)


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def test_import_imcompress_does_not_import_imageio(files):
    path, _ = files["kmeans", 3]
    assert _run("import sys, imcompress; print('imageio' in sys.modules)") == "False"
    # imageio imported first: `import imcompress` registers with it
    out = _run(
        "import imageio.v3 as iio, imcompress\n"
        "from imageio.config import known_plugins, known_extensions\n"
        f"print(known_extensions['.imc'][0].priority[0], iio.imread({str(path)!r}).shape)"
    )
    assert out == "imcompress (40, 56, 3)"
    out = _run(
        "import imcompress, imageio.v3 as iio\n"
        "from imageio.config import known_extensions\n"
        "print('.imc' in known_extensions)\n"
        "imcompress.plugins.register_imageio()\n"
        f"print(iio.improps({str(path)!r}).shape)"
    )
    assert out.splitlines() == ["False", "(40, 56, 3)"]
