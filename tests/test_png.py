"""Palette PNGs: validity (Pillow, pngcheck), exact pixels through oxipng, levels, the default format."""

import io
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress._errors import UsageError
from imcompress.cli import main
from imcompress.kmeans import cooccurrence_order, palette_png
from imcompress.kmeans._codec import KMeansCodec

PNGCHECK = shutil.which("pngcheck")


def decoded(data: bytes) -> np.ndarray:
    """Pixels as Pillow reads them, RGB or RGBA as the file says."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


def pngcheck(data: bytes, tmp_path) -> None:
    if PNGCHECK is None:
        pytest.skip("pngcheck is not installed (make test installs it with apt-get where it can)")
    path = tmp_path / "check.png"
    path.write_bytes(data)
    res = subprocess.run([PNGCHECK, "-q", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def crop(sample):
    return np.ascontiguousarray(sample[100:228, 150:310])


@pytest.fixture(scope="module")
def rgba_crop(crop):
    """The crop with a soft alpha ramp and a fully transparent corner."""
    h, w, _ = crop.shape
    alpha = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))
    alpha[: h // 4, : w // 4] = 0
    return np.dstack([crop, alpha])


@pytest.mark.parametrize("k", [2, 4, 16, 64, 256])
@pytest.mark.parametrize("level", [0, 1, 2])
def test_palette_png_is_valid_and_exact(crop, k, level, tmp_path):
    palette, indices, _ = KMeansCodec(k).quantize(crop)
    data = palette_png(palette, indices, level=level)
    np.testing.assert_array_equal(decoded(data), palette[indices])
    with Image.open(io.BytesIO(data)) as img:
        img.verify()  # Pillow's chunk and CRC checks
    pngcheck(data, tmp_path)


@pytest.mark.parametrize("k", [8, 64])
def test_rgba_palette_png_is_exact(rgba_crop, k, tmp_path):
    palette, indices, _ = KMeansCodec(k).quantize(rgba_crop)
    assert palette.shape[1] == 4 and (palette[:, 3] == 0).any()
    for level in (0, 2):
        data = palette_png(palette, indices, level=level)
        np.testing.assert_array_equal(decoded(data), palette[indices])
        pngcheck(data, tmp_path)


def test_oxipng_output_is_smaller_than_pillows(crop):
    # oxipng keeps the smallest of its trials, and Pillow's zlib output is one
    # of the things it improves on; measured 3-13 % smaller on photos
    for k in (16, 64, 256):
        palette, indices, _ = KMeansCodec(k).quantize(crop)
        assert len(palette_png(palette, indices, level=2)) < len(palette_png(palette, indices, level=0))


def test_icc_profile_is_kept(crop):
    palette, indices, _ = KMeansCodec(16).quantize(crop)
    icc = b"ICC-test" * 40
    for level in (0, 2):
        with Image.open(io.BytesIO(palette_png(palette, indices, icc_profile=icc, level=level))) as img:
            assert img.info.get("icc_profile") == icc


@pytest.mark.parametrize("level", [-1, 7, 2.0, True, "2"])
def test_bad_level_is_a_usage_error(level):
    pal = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(UsageError, match=r"png_level=.* should be an integer 0\.\.6"):
        palette_png(pal, np.zeros((2, 2), dtype=np.uint8), level=level)
    with pytest.raises(UsageError, match=r"png_level=.* should be an integer 0\.\.6"):
        KMeansCodec(4, png_level=level).compress(np.zeros((4, 4, 3), dtype=np.uint8), format="png")


def test_bad_palette_or_indices_are_usage_errors():
    with pytest.raises(UsageError, match="index 3 is outside the palette of 2 colours"):
        palette_png(np.zeros((2, 3), dtype=np.uint8), np.full((2, 2), 3, dtype=np.uint8))
    with pytest.raises(UsageError, match=r"palette of shape \(2, 2\)"):
        palette_png(np.zeros((2, 2), dtype=np.uint8), np.zeros((2, 2), dtype=np.uint8))


def test_cooccurrence_order_puts_neighbours_next_to_each_other():
    # colours 0-1-2-3 touch in a chain, 0 and 3 never touch: any good order
    # keeps 1 and 2 inside, and the ends are 0 and 3
    row = np.array([0, 0, 1, 1, 2, 2, 3, 3], dtype=np.uint8)
    idx = np.tile(row, (6, 1))
    order = cooccurrence_order(idx, 5).tolist()
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert order[4] == 4  # never used: last
    assert order[:4] in ([0, 1, 2, 3], [3, 2, 1, 0])


def test_small_palette_candidate_is_exact(elephant):
    # at K <= 16 the co-occurrence order is tried next to oxipng's own; both
    # must store the same pixels whichever is kept
    palette, indices, _ = KMeansCodec(16).quantize(elephant[:200, :300])
    order = cooccurrence_order(indices, 16)
    rank = np.empty(16, dtype=np.uint8)
    rank[order] = np.arange(16)
    data = palette_png(palette[order], rank[indices], level=1)
    np.testing.assert_array_equal(decoded(data), palette[indices])


# -- the CLI: PNG is kmeans's default format ---------------------------------------


@pytest.fixture
def photo(crop, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(crop).save(path)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["out", "out.bin", "out.kmeans"])
def test_kmeans_writes_png_when_the_name_does_not_tell(photo, capsys, name, tmp_path):
    out = tmp_path / name
    code, _, err = run(capsys, "compress", photo, "-k", "8", "-o", out, "-q")
    assert code == 0, err
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and Image.open(out).mode == "P"


def test_imc_by_extension_or_format_flag(photo, capsys, tmp_path):
    assert run(capsys, "compress", photo, "-k", "8", "-o", tmp_path / "a.imc", "-q")[0] == 0
    assert imcompress.format.is_container((tmp_path / "a.imc").read_bytes())
    assert run(capsys, "compress", photo, "-k", "8", "-o", tmp_path / "b", "--format", "imc", "-q")[0] == 0
    assert imcompress.format.is_container((tmp_path / "b").read_bytes())
    # the other methods still write .imc by default
    assert run(capsys, "compress", photo, "-m", "pca-rows", "-o", tmp_path / "c", "-q")[0] == 0
    assert imcompress.format.is_container((tmp_path / "c").read_bytes())


def test_an_image_extension_we_do_not_write_is_still_refused(photo, capsys, tmp_path):
    code, _, err = run(capsys, "compress", photo, "-o", tmp_path / "x.webp")
    assert code == 4 and "cannot tell the output format" in err and not (tmp_path / "x.webp").exists()


def test_png_level_option(photo, capsys, tmp_path, crop):
    sizes = {}
    for level in (0, 2):
        out = tmp_path / f"l{level}.png"
        assert run(capsys, "compress", photo, "-k", "16", "--png-level", level, "-o", out, "-q")[0] == 0
        sizes[level] = out.stat().st_size
        np.testing.assert_array_equal(decoded(out.read_bytes()), decoded((tmp_path / "l0.png").read_bytes()))
    # level 0 is exactly palette_png's plain zlib writer on the same quantization
    palette, indices, _ = KMeansCodec(16).quantize(crop)
    assert (tmp_path / "l0.png").read_bytes() == palette_png(palette, indices, level=0)
    assert sizes[2] < sizes[0]
    code, _, err = run(capsys, "compress", photo, "--png-level", "9", "-o", tmp_path / "x.png")
    assert code == 4 and "png_level=9 should be an integer 0..6" in err and not (tmp_path / "x.png").exists()


def test_default_level_is_2_up_to_4_mp_and_pillow_above(crop, monkeypatch):
    from imcompress.kmeans import _png

    palette, indices, _ = KMeansCodec(16).quantize(crop)
    assert palette_png(palette, indices) == palette_png(palette, indices, level=2)
    # the threshold, not a 4 MP image: the rule is the same at any size
    monkeypatch.setattr(_png, "AUTO_LEVEL_MAX_PIXELS", indices.size - 1)
    assert palette_png(palette, indices) == palette_png(palette, indices, level=0)
    assert _png.auto_level(indices.size) == 0 and _png.auto_level(indices.size - 1) == 2
