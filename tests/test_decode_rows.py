"""Decoding with ``on_rows`` (Codec.decode_rows): the rows told are final, the pixels are
decompress()'s, and a PNG written while decoding is png_bytes' file byte for byte; the
command line writes it so and leaves nothing behind when the decoder fails half-way."""

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress._errors import CorruptFileError, ExitCode
from imcompress.cli import main
from imcompress.io import PngWriter, png_bytes
from imcompress.io import _png
from imcompress.pca_patch import _output


class Recorder:
    """on_rows that keeps a copy of each newly final band, to compare with the finished image."""

    def __init__(self):
        self.stops, self.bands, self.array = [], [], None

    def __call__(self, pixels, stop):
        if self.array is None:
            self.array = pixels
        assert pixels is self.array  # always the array being decoded into
        start = self.stops[-1] if self.stops else 0
        assert stop > start
        self.bands.append(pixels[start:stop].copy())
        self.stops.append(stop)


def _photo(sample, h, w, alpha=False):
    img = np.ascontiguousarray(np.resize(sample, (h, w, 3)) if h > 512 or w > 512 else sample[:h, :w])
    if alpha:
        a = ((np.arange(h)[:, None] * 3 + np.arange(w)[None, :]) % 256).astype(np.uint8)
        img = np.dstack([img, a])
    return np.ascontiguousarray(img)


CASES = [
    ("kmeans", {"n_colors": 16}, False),
    ("kmeans", {"n_colors": 16}, True),
    ("pca-rows", {}, False),
    ("pca-rows", {}, True),
    ("pca-patch", {}, False),
    ("pca-patch", {}, True),
    ("pca-patch", {"chroma": "444"}, False),
    ("pca-patch", {"bitstream": 1}, False),
]


@pytest.mark.parametrize("method,params,alpha", CASES)
@pytest.mark.parametrize("pipeline", [False, True])
def test_rows_told_are_final_and_the_png_is_png_bytes(sample, method, params, alpha, pipeline, monkeypatch):
    monkeypatch.setattr(_output, "BAND_PIXELS", 1 << 12)  # pca-patch: many bands on a small image
    if pipeline:  # and its second thread
        monkeypatch.setattr(_output, "PIPELINE_MIN_PIXELS", 0)
    monkeypatch.setattr(_png, "PIECE", 20_000)  # many pieces, compressed while decoding
    img = _photo(sample, 150, 203, alpha)
    data = imcompress.compress(img, method, **params)
    expected = imcompress.decompress(data)
    rec = Recorder()
    pixels = imcompress.decompress(data, on_rows=rec)
    np.testing.assert_array_equal(pixels, expected)
    assert rec.array is pixels and rec.stops[-1] == img.shape[0]
    np.testing.assert_array_equal(np.concatenate(rec.bands), expected)  # each band as it was when told
    banded = method == "pca-patch" and params.get("bitstream") != 1
    assert (len(rec.stops) > 1) == banded  # the others tell every row at the end
    with PngWriter(img.shape, level=6) as png:
        pixels = imcompress.decompress(data, on_rows=png.rows)
        file = png.finish()
    assert file == png_bytes(expected, level=6)
    with Image.open(io.BytesIO(file)) as im:
        np.testing.assert_array_equal(np.asarray(im), expected)


def test_header_shape_is_checked_before_rows_are_told(sample, monkeypatch):
    from imcompress.kmeans._codec import KMeansCodec

    data = imcompress.compress(sample[:20, :30], "kmeans", n_colors=4)
    monkeypatch.setattr(KMeansCodec, "decode", classmethod(lambda cls, c: np.zeros((20, 31, 3), np.uint8)))
    told = []
    with pytest.raises(CorruptFileError, match=r"decoded pixels \(20, 31, 3\) do not match header \(20, 30, 3\)"):
        imcompress.decompress(data, on_rows=lambda p, s: told.append(s))
    assert told == []


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_imc(tmp_path_factory, sample):
    # over PIPELINE_MIN_PIXELS: the decoder's second thread and PNG pieces compressed meanwhile
    img = _photo(sample, 1100, 1000)
    path = tmp_path_factory.mktemp("rows") / "big.imc"
    path.write_bytes(imcompress.compress(img, "pca-patch", speed=9))
    return path


def test_cli_png_is_png_bytes_of_the_pixels(big_imc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["decompress", str(big_imc), "-o", "out.png", "-q"]) == ExitCode.OK
    pixels = imcompress.decompress(big_imc.read_bytes())
    assert Path("out.png").read_bytes() == png_bytes(pixels, level=6)


@pytest.mark.parametrize("at", ["start", "middle"])
def test_cli_decoder_failing_half_way_writes_nothing(big_imc, tmp_path, monkeypatch, capsys, at):
    from imcompress.pca_patch import _codec

    real = _codec.PCAPatchCodec.decode_rows.__func__
    told = []

    def failing(cls, container, on_rows=None):
        def tell(pixels, stop):
            told.append(stop)
            on_rows(pixels, stop)
            if at == "middle" and stop > pixels.shape[0] // 2:
                raise CorruptFileError("pca-patch stream holds an out-of-range value")
        return real(cls, container, tell)

    monkeypatch.setattr(_codec.PCAPatchCodec, "decode_rows", classmethod(failing))
    monkeypatch.chdir(tmp_path)
    before = threading.active_count()
    if at == "start":  # a really damaged stream: its last bytes cut
        data = big_imc.read_bytes()
        Path("in.imc").write_bytes(data[: len(data) - 2000])
        src = "in.imc"
    else:
        src = str(big_imc)
    code = main(["decompress", src, "-o", "out.png"])
    err = capsys.readouterr().err
    assert code == ExitCode.CORRUPT, err
    assert err.count("\n") == 1 and err.startswith("imcompress: error: ") and "Traceback" not in err
    assert "stream" in err or "truncated" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["in.imc"] if at == "start" else [])
    assert threading.active_count() == before  # the writer's threads stopped
    if at == "middle":
        assert 0 < told[-1] < 1100
