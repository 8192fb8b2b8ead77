"""pca-patch's speed levels and its fast colour/resampling kernels.

The kernels replaced NumPy expressions on whole arrays; they must give the
same float64 values bit for bit (the decoder's pixels and the default
level's bytes depend on them), so each is checked against the NumPy
expression it replaced. Every speed level must make files that decode to
the encoder's own reconstruction, and the fast levels (6..9, an encoder-only
search change) may cost only a bounded amount of rate-distortion on an image
they were not tuned on.
"""

import numpy as np
import pytest

import imcompress
from imcompress._validation import to_uint8
from imcompress.metrics import mse, psnr
from imcompress.pca_patch import _transform as T
from imcompress.pca_patch._intra_codec import SearchSettings
from imcompress.pca_patch._params import parse_params


def _same(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _numpy_ycbcr(rgb, i):
    m = T._RGB2YCC
    x = [rgb[..., c].astype(np.float64) - 128.0 for c in range(3)]
    return m[i, 0] * x[0] + m[i, 1] * x[1] + m[i, 2] * x[2]


def _numpy_downsample(plane):
    h, w = plane.shape
    p = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _numpy_rgb(planes):
    m = T._YCC2RGB
    y, cb, cr = planes
    out = np.empty(y.shape + (3,), dtype=np.float64)
    for i in range(3):
        out[..., i] = m[i, 0] * y + m[i, 1] * cb + m[i, 2] * cr + 128.0
    return to_uint8(out)


def test_ycbcr_kernel_matches_numpy_on_random_and_extreme_colours():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (512, 1024, 4), dtype=np.uint8)  # 4 channels: alpha ignored
    rgb[0, :8, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128],
                      [1, 254, 127], [254, 1, 128]]
    for i in range(3):
        assert _same(T.ycbcr_plane(rgb, i), _numpy_ycbcr(rgb, i))
        assert _same(T.ycbcr_plane(rgb[3:40], i), _numpy_ycbcr(rgb[3:40], i))


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (3, 5), (64, 64), (101, 77)])
def test_downsample_kernel_matches_numpy(shape):
    x = (np.random.default_rng(shape[0] * 131 + shape[1]).random(shape) - 0.5) * 255
    assert _same(T.downsample2(x), _numpy_downsample(x))


@pytest.mark.parametrize("src, out", [((1, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 3), (2, 5)), ((5, 4), (9, 8)),
                                      ((5, 4), (10, 7)), ((33, 65), (66, 129))])
def test_upsample_kernel_matches_numpy(src, out):
    x = (np.random.default_rng(src[0] * 7 + src[1]).random(src) - 0.5) * 255
    # against the NumPy version (still the fallback for other shapes)
    assert _same(T.upsample2(x, out), T._up1(T._up1(x, out[0], 0), out[1], 1))


@pytest.mark.parametrize("grid", [None, 2, 8])  # half-integers and eighths: rounding ties
def test_inverse_colour_kernel_matches_numpy(grid):
    rng = np.random.default_rng(5)
    planes = [(rng.random((60, 81)) - 0.5) * 320 for _ in range(3)]
    if grid:
        planes = [np.round(p * grid) / grid for p in planes]
    assert _same(T.ycbcr_to_rgb(planes), _numpy_rgb(planes))
    views = [p[5:50, 3:70] for p in planes]  # non-contiguous inputs
    assert _same(T.ycbcr_to_rgb(views), _numpy_rgb(views))


@pytest.fixture(scope="module")
def photo(sample):
    return np.ascontiguousarray(sample[100:292, 60:316])


@pytest.mark.parametrize("speed", [0, 5, 6, 7, 8, 9])
def test_every_speed_level_decodes_to_the_encoders_reconstruction(photo, speed):
    codec = imcompress.get_codec("pca-patch")(quality=50, speed=speed)
    sections, rec = codec.encode_sections_with_pixels(photo)
    data = codec.export(photo)
    out = imcompress.decompress(data)
    assert np.array_equal(out, rec.pixels)
    assert rec.mse == mse(photo, out)  # the encoder's exact error is the metric's, bit for bit
    assert psnr(photo, out) > 34


def test_default_is_speed_8_in_the_library_and_the_cli(photo):
    """One fixed preset whatever the image: the constructor's default, the option the CLI is built
    from, and the same file as an explicit ``speed=8``."""
    from imcompress.pca_patch._codec import PCAPatchCodec

    (option,) = [o for o in PCAPatchCodec.options if o.name == "speed"]
    assert PCAPatchCodec().speed == option.default == 8
    small = np.ascontiguousarray(photo[:64, :96])
    for image in (photo, small):
        assert imcompress.compress(image, "pca-patch") == imcompress.compress(image, "pca-patch", speed=8)
    assert imcompress.compress(small, "pca-patch") != imcompress.compress(small, "pca-patch", speed=5)


def test_default_and_slow_presets_are_unchanged():
    # speeds 0..5 keep the presets their pinned bytes were made with (test_pca_patch_bands.py)
    for speed, n_cand in zip(range(6), (8, 6, 5, 4, 3, 3)):
        s = SearchSettings.for_speed(speed)
        assert (s.n_cand, s.prune, s.log2min, s.coarse, s.mpm_full, s.sad_rows, s.split_floor,
                s.analysis_stride, s.fast_dct) == (n_cand, speed >= 4, 2, False, True, 1, 0, 1, False)


@pytest.mark.parametrize("quality", [30, 50])
def test_fast_levels_cost_bounded_rate_distortion(sample, quality):
    image = np.ascontiguousarray(sample[96:416, 64:448])
    """Against speed 5 on a crop of the sample photo: each level's file is at most a
    few per cent larger and its PSNR at most a few tenths lower, and level 9 (8 x 8 blocks and up, the
    partition search stopped early) stays within 20 % in D + lambda R (J, with the codec's own rate
    weight); level 6 is not worse than level 9."""
    from imcompress.pca_patch._quantize import lagrangian, quality_to_step

    lam = lagrangian(quality_to_step(quality)) * 8.0
    costs = {}
    for speed in (5, 6, 7, 8, 9):
        data = imcompress.compress(image, "pca-patch", quality=quality, speed=speed)
        out = imcompress.decompress(data).astype(np.float64)
        sse = float(np.sum((out - image) ** 2))
        costs[speed] = (len(data), psnr(image, out.astype(np.uint8)), sse + lam * len(data))
    nbytes5, psnr5, j5 = costs[5]
    for speed in (6, 7, 8):
        nbytes, p, j = costs[speed]
        assert nbytes <= 1.05 * nbytes5 and p >= psnr5 - 0.3, (speed, costs)
        assert j <= 1.05 * j5, (speed, costs)
    nbytes, p, j = costs[9]
    assert nbytes <= 1.2 * nbytes5 and p >= psnr5 - 1.0 and j <= 1.2 * j5, costs
    assert costs[6][2] <= costs[9][2]


@pytest.mark.parametrize("speed, chroma, rgba", [(5, "420", False), (9, "420", False), (5, "420", True),
                                                 (7, "444", False)])
def test_chroma_thread_gives_the_sequential_bytes_and_planes(photo, speed, chroma, rgba, monkeypatch):
    """Cb and Cr searched in a second thread (4:2:0) must code exactly what the one-thread order codes,
    and leave the same reconstructions and unit maps; 4:4:4 and alpha take the sequential path."""
    import dataclasses

    from imcompress.pca_patch import _intra_codec
    from imcompress.pca_patch._intra_codec import IntraEncoder
    from imcompress.pca_patch._quantize import CHROMA_FACTOR, quality_to_step

    started = []

    class Counted(_intra_codec.threading.Thread):
        def start(self):
            started.append(self.name)
            super().start()

    monkeypatch.setattr(_intra_codec.threading, "Thread", Counted)

    img = photo
    if rgba:
        img = np.concatenate([photo, (np.arange(photo.shape[0] * photo.shape[1]) % 253).astype(np.uint8)
                              .reshape(photo.shape[0], photo.shape[1], 1)], axis=2)
    base = SearchSettings.for_speed(speed)
    step = quality_to_step(45)
    runs = [IntraEncoder(img, chroma=chroma, speed=speed, settings=dataclasses.replace(base, threads=t))
            .search(float(np.float32(step)), float(np.float32(step * CHROMA_FACTOR)), chroma == "420")
            for t in (1, 2, 2)]
    assert len(started) == (2 if chroma == "420" else 0)  # the two-thread runs did use the second thread
    monkeypatch.setenv("IMCOMPRESS_NUM_THREADS", "1")  # the cap batch workers set: no second thread
    capped = IntraEncoder(img, chroma=chroma, speed=speed, settings=base).search(
        float(np.float32(step)), float(np.float32(step * CHROMA_FACTOR)), chroma == "420")
    assert len(started) == (2 if chroma == "420" else 0) and capped.data == runs[0].data
    for other in runs[1:]:
        assert other.data == runs[0].data
        assert all(np.array_equal(a, b) for a, b in zip(other.recs, runs[0].recs))
        assert all(np.array_equal(a, b) for a, b in zip(other.maps, runs[0].maps))


@pytest.mark.parametrize("speed, chroma, rgba", [(5, "420", False), (9, "420", True), (9, "444", False)])
def test_deblocking_strengths_in_a_second_thread_are_the_sequential_ones(photo, speed, chroma, rgba, monkeypatch):
    """Deblocking strengths chosen beside the search must give the sections the one-thread order gives:
    with 4:2:0, luma's and Cb's here while Cr is searched and Cr's in the chroma search's thread (alpha's
    here, after); with 4:4:4 (large images; forced here on a small one) luma's here and the others' in a
    thread of their own."""
    import dataclasses

    from imcompress.pca_patch import _intra_codec
    from imcompress.pca_patch._intra_codec import IntraEncoder
    from imcompress.pca_patch._quantize import quality_to_step

    monkeypatch.setattr(_intra_codec, "PIPELINE_MIN_PIXELS", 0)
    pools = []

    class Counted(_intra_codec.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            pools.append(1)
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(_intra_codec, "ThreadPoolExecutor", Counted)
    img = photo
    if rgba:
        img = np.dstack([photo, (np.arange(photo.shape[0] * photo.shape[1]) % 241).astype(np.uint8)
                         .reshape(photo.shape[:2])])
    base = SearchSettings.for_speed(speed)
    step = quality_to_step(40)
    one, two = (IntraEncoder(img, chroma=chroma, speed=speed, settings=dataclasses.replace(base, threads=t))
                .encode(step)[0] for t in (1, 2))
    assert pools == ([] if chroma == "420" else [1])  # only the two-thread 4:4:4 encoder used the pool
    assert one == two
    strengths = parse_params(one[0][1], img.shape[2]).planes
    assert any(p.deblock for p in strengths[:3])  # the search had something to find


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_a_failure_in_either_thread_reaches_the_caller(photo, failing, monkeypatch):
    """An error in luma's or Cb's strength search (this thread, while Cr is searched) or in Cr's (the
    chroma thread, after Cr's search) is raised by encode(), not lost or left waiting."""
    import dataclasses

    from imcompress.pca_patch import _intra_codec
    from imcompress.pca_patch._intra_codec import IntraEncoder
    from imcompress.pca_patch._quantize import quality_to_step

    real = _intra_codec._Search.strength

    def strength(self, i):
        if i == failing:
            raise MemoryError(f"plane {i}")
        return real(self, i)

    monkeypatch.setattr(_intra_codec._Search, "strength", strength)
    enc = IntraEncoder(photo, chroma="420", speed=9,
                       settings=dataclasses.replace(SearchSettings.for_speed(9), threads=2))
    with pytest.raises(MemoryError, match=f"plane {failing}"):
        enc.encode(quality_to_step(40))
    assert not any(t.name.startswith("pca-patch") for t in _intra_codec.threading.enumerate())


@pytest.mark.parametrize("log2n", [2, 3, 4, 5])
def test_even_odd_forward_dct_matches_the_direct_one(log2n):
    """The fast levels' forward DCT (even-odd folding) against the direct matrix product and
    against SciPy's orthonormal DCT-II: the same coefficients within rounding."""
    from scipy.fft import dctn

    from imcompress.pca_patch._intra import SCALE
    from imcompress.pca_patch._search import _forward, _forward_even_odd, even_odd_tables
    from imcompress.pca_patch._tree import dct_stack

    n = 1 << log2n
    rng = np.random.default_rng(log2n)
    c = dct_stack()[log2n - 2]
    ct = even_odd_tables(dct_stack())[log2n - 2]
    work = np.empty((3, 32, 32))
    for _ in range(20):
        o = rng.uniform(-128, 128, (n, n))
        pred = rng.integers(-1024, 1024, (n, n))
        direct, fast = np.empty((n, n)), np.empty((n, n))
        _forward(o, pred, n, c, direct, work)
        _forward_even_odd(o, pred, n, c, ct, fast, work)
        np.testing.assert_allclose(fast, direct, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast, dctn(o - pred / SCALE, norm="ortho"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 14, 15, 16, 35, 60])
def test_allocation_free_argsort_orders_ties_as_numbas_argsort(size):
    """The search's argsort (numba's quicksort without its allocations) gives numba's np.argsort
    order, ties and +inf included: which mode wins a tie decides the bytes."""
    from numba import njit

    from imcompress.pca_patch._search import _SORT_STACK, _argsort

    reference = njit(lambda a: np.argsort(a))
    rng = np.random.default_rng(size)
    r, stack = np.empty(size, dtype=np.int64), np.empty((_SORT_STACK, 2), dtype=np.int64)
    for trial in range(200):
        if trial % 3 == 0:  # few distinct values: many ties
            a = rng.choice(np.array([0.25, 1.0, 3.5, np.inf]), size=size)
        elif trial % 3 == 1:
            a = np.sort(rng.integers(0, 6, size).astype(np.float64))[::-1 if trial % 2 else 1].copy()
        else:
            a = rng.normal(size=size)
        _argsort(a, r, stack)
        assert np.array_equal(r, reference(a)), a
