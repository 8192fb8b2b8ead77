"""One palette for a set of images (imcompress palette) and quantizing to it (compress --map)."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio

from imcompress._errors import InputError, UsageError
from imcompress.cli import main
from imcompress.kmeans import color_table, learn_palette, map_to_palette, pooled_colors, read_palette


@pytest.fixture(scope="module")
def image_set():
    """Three small photos of different sizes (scikit-image's bundled data)."""
    return [
        np.ascontiguousarray(skdata.astronaut()[::4, ::4]),  # 128 x 128
        np.ascontiguousarray(skdata.coffee()[::4, ::5]),  # 100 x 120
        np.ascontiguousarray(skdata.chelsea()[::3, ::4]),  # 100 x 113
    ]


@pytest.fixture(scope="module")
def rgba_set(image_set):
    out = []
    for n, im in enumerate(image_set):
        h, w, _ = im.shape
        alpha = np.full((h, w), 255, dtype=np.uint8)
        alpha[: h // 3, : w // 3] = 0
        alpha[-h // 4 :, :] = 96 + 40 * n
        out.append(np.dstack([im, alpha]))
    return out


def _nearest(pixels, palette):
    d = ((pixels[:, None, :].astype(np.float64) - palette[None].astype(np.float64)) ** 2).sum(-1)
    return d.argmin(1)


def test_pooled_colors_match_the_concatenated_pixels(image_set):
    table = pooled_colors(image_set)
    pixels = np.concatenate([im.reshape(-1, 3) for im in image_set])
    colors, counts = np.unique(pixels, axis=0, return_counts=True)
    order = np.lexsort(table.colors.T[::-1])
    np.testing.assert_array_equal(table.colors[order], colors)
    np.testing.assert_array_equal(table.counts[order], counts)
    assert table.counts.sum() == pixels.shape[0]


def test_pooled_colors_promote_rgb_to_opaque_rgba(image_set, rgba_set):
    table = pooled_colors([image_set[0], rgba_set[1]])
    assert table.colors.shape[1] == 4
    opaque = color_table(np.dstack([image_set[0], np.full(image_set[0].shape[:2], 255, np.uint8)]))
    assert table.counts.sum() == image_set[0].shape[0] * image_set[0].shape[1] + rgba_set[1][:, :, 0].size
    assert opaque.n_colors <= table.n_colors


@pytest.mark.parametrize("k", [8, 32])
def test_palette_over_a_set_matches_scikit_learn_on_the_pooled_pixels(image_set, k):
    from sklearn.cluster import KMeans

    learned = learn_palette(image_set, k, random_state=0)
    pooled = np.concatenate([im.reshape(-1, 3) for im in image_set]).astype(np.float64)
    ref = KMeans(n_clusters=k, n_init=4, random_state=0).fit(pooled)
    ref_palette = np.clip(np.rint(ref.cluster_centers_), 0, 255).astype(np.uint8)

    def mean_psnr(palette, mapper):
        return np.mean([peak_signal_noise_ratio(im, palette[mapper(im)], data_range=255) for im in image_set])

    ours = mean_psnr(learned.palette, lambda im: learned.quantizer.predict(im))
    theirs = mean_psnr(ref_palette, lambda im: _nearest(im.reshape(-1, 3), ref_palette).reshape(im.shape[:2]))
    assert ours >= theirs - 0.1, (ours, theirs)
    assert learned.n_images == 3 and learned.n_pixels == pooled.shape[0]


def test_map_to_palette_is_the_nearest_entry(image_set):
    learned = learn_palette(image_set, 16)
    for im in image_set:
        idx = map_to_palette(im, learned.palette)
        # brute force reference; ties are measure-zero on photos but take the lowest index as we do
        np.testing.assert_array_equal(idx.ravel(), _nearest(im.reshape(-1, 3), learned.palette))
        np.testing.assert_array_equal(idx, learned.quantizer.predict(im))


def test_map_to_palette_errors(image_set, rgba_set):
    pal = np.zeros((4, 3), dtype=np.uint8)
    with pytest.raises(UsageError, match="the image has alpha but the palette has none"):
        map_to_palette(rgba_set[0], pal)
    with pytest.raises(UsageError, match=r"palette of shape \(300, 3\)"):
        map_to_palette(image_set[0], np.zeros((300, 3), dtype=np.uint8))
    with pytest.raises(UsageError, match="dither=2"):
        map_to_palette(image_set[0], pal, dither=2)
    with pytest.raises(UsageError, match="no images given"):
        learn_palette([], 8)
    with pytest.raises(UsageError, match="n_colors=9 exceeds the 4 distinct colours"):
        learn_palette([np.arange(12, dtype=np.uint8).reshape(2, 2, 3)], 9)


# -- the CLI ------------------------------------------------------------------------


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _decoded(path):
    with Image.open(path) as img:
        img.load()
        alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if alpha else "RGB"))


def _save(images, folder):
    paths = []
    for n, im in enumerate(images):
        path = folder / f"im{n}.png"
        Image.fromarray(im).save(path)
        paths.append(path)
    return paths


def test_palette_then_map_reproduces_the_learned_palette_exactly(image_set, tmp_path, capsys):
    paths = _save(image_set, tmp_path)
    pal_path = tmp_path / "palette.png"
    code, out, err = run(capsys, "palette", *paths, "-k", "24", "-o", pal_path)
    assert code == 0 and "3 images" in out and ": 24 colours" in out, err
    learned = learn_palette(image_set, 24)
    palette = read_palette(pal_path)
    np.testing.assert_array_equal(palette, learned.palette)  # same entries, same order
    assert Image.open(pal_path).mode == "P"
    for n, (path, im) in enumerate(zip(paths, image_set)):
        out = tmp_path / f"m{n}.png"
        code, _, err = run(capsys, "compress", path, "--map", pal_path, "-o", out, "-q")
        assert code == 0, err
        np.testing.assert_array_equal(_decoded(out), learned.palette[learned.quantizer.predict(im)])


def test_map_with_an_rgba_palette(rgba_set, image_set, tmp_path, capsys):
    paths = _save(rgba_set, tmp_path)
    pal_path = tmp_path / "palette.png"
    assert run(capsys, "palette", *paths, "-k", "16", "-o", pal_path, "-q")[0] == 0
    palette = read_palette(pal_path)
    assert palette.shape == (16, 4) and (palette[0] == 0).all()  # the transparent entry first
    out = tmp_path / "m.png"
    assert run(capsys, "compress", paths[0], "--map", pal_path, "-o", out, "-q")[0] == 0
    got = _decoded(out)
    np.testing.assert_array_equal(got, palette[map_to_palette(rgba_set[0], palette)])
    assert (got[rgba_set[0][:, :, 3] == 0] == 0).all()  # transparent stays transparent
    # an opaque image mapped to it keeps three channels and uses the opaque entries
    rgb_path = _save(image_set[:1], tmp_path / "..")[0]
    out = tmp_path / "rgb.png"
    assert run(capsys, "compress", rgb_path, "--map", pal_path, "-o", out, "-q")[0] == 0
    opaque = palette[palette[:, 3] == 255, :3]
    np.testing.assert_array_equal(_decoded(out), opaque[map_to_palette(image_set[0], opaque)])


def test_map_with_an_rgb_palette_from_any_image(image_set, tmp_path, capsys):
    # pngquant's --map takes any image: its colours are the palette
    pal = np.array([[0, 0, 0], [255, 255, 255], [200, 30, 30], [30, 120, 200]], dtype=np.uint8)
    Image.fromarray(np.repeat(pal[None], 3, axis=0)).save(tmp_path / "any.png")  # an RGB image
    src = _save(image_set[:1], tmp_path)[0]
    out = tmp_path / "m.png"
    assert run(capsys, "compress", src, "--map", tmp_path / "any.png", "-o", out, "-q")[0] == 0
    got = _decoded(out)
    np.testing.assert_array_equal(got, pal[_nearest(image_set[0].reshape(-1, 3), pal)].reshape(got.shape))


def test_map_and_palette_command_errors(image_set, rgba_set, tmp_path, capsys):
    src = _save(image_set[:1], tmp_path)[0]
    rgba_src = tmp_path / "rgba.png"
    Image.fromarray(rgba_set[0]).save(rgba_src)
    pal_path = tmp_path / "palette.png"
    assert run(capsys, "palette", src, "-k", "8", "-o", pal_path, "-q")[0] == 0
    code, _, err = run(capsys, "compress", src, "--map", pal_path, "-k", "8", "-o", tmp_path / "x.png")
    assert code == 4 and "give --map or -k/--colors, not both" in err
    code, _, err = run(capsys, "compress", src, "--map", tmp_path / "missing.png", "-o", tmp_path / "x.png")
    assert code == 2 and "missing.png" in err and not (tmp_path / "x.png").exists()
    code, _, err = run(capsys, "compress", src, "--map", src, "-o", tmp_path / "x.png")  # a photo: > 256 colours
    assert code == 2 and "a palette holds at most 256" in err
    code, _, err = run(capsys, "compress", rgba_src, "--map", pal_path, "-o", tmp_path / "x.png")
    assert code == 4 and "the image has alpha but the palette has none" in err
    code, _, err = run(capsys, "palette", src, "-k", "300", "-o", tmp_path / "p.png")
    assert code == 4 and "should be in 2..256" in err
    code, _, err = run(capsys, "palette", src, "-k", "8", "-o", pal_path)
    assert code == 5 and "already exists" in err


def test_read_palette_keeps_the_order_of_an_indexed_file(tmp_path):
    pal = np.array([[250, 0, 0], [0, 0, 0], [0, 250, 0]], dtype=np.uint8)
    img = Image.fromarray(np.array([[2, 0, 1]], dtype=np.uint8), mode="P")
    img.putpalette(pal.tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    np.testing.assert_array_equal(read_palette(buf.getvalue()), pal)
    with pytest.raises(InputError):
        read_palette(b"not an image")
