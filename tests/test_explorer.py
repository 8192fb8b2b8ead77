"""The explorer's numbers and pictures: real files, the codecs' own facts, and the page's size budget."""

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import imcompress
from imcompress.codecs import Codec, Option, Slider, _base
from imcompress.format import Container
from imcompress.report import _explorer, _previews, study, write_report


@pytest.fixture(scope="module")
def crop(sample):
    return sample[100:164, 150:246]


@pytest.fixture(scope="module")
def explored(crop):
    return _explorer.explore(crop, values={"kmeans": [2, 6]}, random_state=0)


def test_every_position_is_a_real_file(crop, explored):
    from imcompress.codecs import get_codec

    assert [m.method for m in explored.methods] == sorted(m.method for m in explored.methods)
    for m in explored.methods:
        slider = get_codec(m.method).slider
        assert m.parameter == slider.parameter and m.label == get_codec(m.method).display_name()
        expected = [2, 6] if m.method == "kmeans" else list(slider.values)
        assert [s.value for s in m.settings] == [float(v) for v in expected]
        for s in m.settings[:: max(1, len(m.settings) // 3)]:
            value = int(s.value) if isinstance(slider.values[0], int) else s.value
            params = {m.parameter: value}
            if m.method == "kmeans":
                params["random_state"] = 0
            data = imcompress.compress(crop, m.method, **params)
            decoded = imcompress.decompress(data)
            assert s.nbytes == len(data) and s.bpp == pytest.approx(8 * len(data) / crop[..., 0].size)
            np.testing.assert_array_equal(s.image, decoded)
            assert s.psnr == pytest.approx(peak_signal_noise_ratio(crop, decoded, data_range=255), rel=1e-9)
            assert s.ssim == pytest.approx(structural_similarity(crop, decoded, channel_axis=2, data_range=255),
                                           abs=1e-9)
    pp = next(m for m in explored.methods if m.method == "pca-patch")
    assert [s.nbytes for s in pp.settings] == sorted(s.nbytes for s in pp.settings)  # size grows with quality


def test_codecs_explain_their_files(explored):
    km = next(m for m in explored.methods if m.method == "kmeans")
    for s in km.settings:
        colours, counts = np.unique(s.image.reshape(-1, 3), axis=0, return_counts=True)
        palette = s.explain["palette"]
        assert len(palette) == len(colours) <= int(s.value)
        assert sum(p[1] for p in palette) == pytest.approx(1.0)
        assert max(p[1] for p in palette) == pytest.approx(counts.max() / counts.sum())
        assert all(re.fullmatch(r"#[0-9a-f]{6}", p[0]) for p in palette)
    pr = next(m for m in explored.methods if m.method == "pca-rows")
    h, w = explored.image.shape[:2]
    for s in pr.settings:
        facts = dict(s.explain["facts"])
        ns = [int(n) for n in facts["n per channel (R/G/B)"].split("/")]
        pca = imcompress.pca_rows.RowPCA(variance=s.value).fit(explored.image)
        assert ns == list(pca.n_components_)
        assert facts["stored values in all"] == f"{sum(pca.stored_values_):,}"


def test_peers_are_pillow_files(crop, explored):
    from imcompress.rd import peer_encode

    assert "jpeg" in explored.peers
    for p in explored.peers["jpeg"][::4]:
        nbytes, decoded = peer_encode(crop, "jpeg", p.quality)
        assert p.nbytes == nbytes
        assert p.psnr == pytest.approx(peak_signal_noise_ratio(crop, decoded, data_range=255))


class _Posterize(Codec):
    """A method the report has never heard of: keep the top ``bits`` of each channel."""

    name = "test-posterize"
    method_id = 250
    rate_parameter = "bits"
    label = "posterize"
    rate_label = "bits"
    rate_ladder = (1, 2, 3, 4, 5, 6)
    slider = Slider("bits", (1, 3, 5), "bits per channel", "{:d}")
    options = (Option("bits", ("--bits",), "int"),)

    def __init__(self, *, bits=4):
        self.bits = bits

    def encode_sections(self, image, *, icc_profile=None):
        shift = 8 - self.bits
        return [(b"POST", bytes([self.bits]) + (image >> shift).tobytes())]

    @classmethod
    def decode(cls, container: Container):
        raw = container.section(b"POST")
        shift = 8 - raw[0]
        q = np.frombuffer(raw[1:], dtype=np.uint8).reshape(container.height, container.width, container.channels)
        return (q << shift) + (1 << shift >> 1)


@pytest.fixture
def new_method(monkeypatch):
    monkeypatch.setitem(_base._REGISTRY, _Posterize.name, _Posterize)
    monkeypatch.setitem(_base._BY_ID, _Posterize.method_id, _Posterize)
    return _Posterize.name


def test_a_new_method_needs_no_edit_elsewhere(crop, new_method):
    """Deliverable 3: one module with a codec class joins the explorer and the rate-distortion curves."""
    from imcompress.report import rate_distortion
    from imcompress.report._explorer_section import chart_geometry

    ex = _explorer.explore(crop, methods=[new_method])
    (m,) = ex.methods
    assert m.label == "posterize" and [s.text for s in m.settings] == ["1", "3", "5"]
    assert [s.nbytes for s in m.settings] == [len(imcompress.compress(crop, new_method, bits=b)) for b in (1, 3, 5)]
    assert dict(m.settings[0].explain["facts"]) == {}  # describe() is empty: no facts
    series = chart_geometry(ex)["panels"][0]["series"]
    assert series[0]["label"] == "posterize" and len(series[0]["points"]) == 3
    rd = rate_distortion(crop, methods=[new_method, "jpeg"], ssim=False)
    assert rd.subject == new_method and len(rd.curves[new_method]) >= 5
    assert rd.to_dict()["rate_distortion"]["curves"][new_method][0]["bits"] == 1


def test_metrics_json_holds_the_explorer(crop, tmp_path):
    result = study(crop, ks=[2, 4], variances=[0.9], rd=False)
    files = write_report(result, tmp_path / "rep")
    data = json.loads(files.metrics.read_text(encoding="utf-8"))
    ex = data["explorer"]
    assert [m["method"] for m in ex["methods"]] == ["kmeans", "pca-rows", "pca-patch"]
    for m, mine in zip(ex["methods"], result.explorer.methods):
        assert [s["bytes"] for s in m["settings"]] == [s.nbytes for s in mine.settings]
        assert [s["psnr"] for s in m["settings"]] == pytest.approx([s.psnr for s in mine.settings])
    prev = ex["previews"]
    assert prev["original"]["lossless"] is True  # a small image: the original is exact
    for m, mine in zip(prev["methods"], result.explorer.methods):
        for p, s in zip(m, mine.settings):
            assert p["lossless"] == (len(np.unique(s.image.reshape(-1, 3), axis=0)) <= 256)
            assert p["lossless"] or p["psnr_vs_file"] > 30
    page = files.index.read_text(encoding="utf-8")
    script = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S).group(1)
    shown = json.loads(script)
    for m, mine in zip(shown["methods"], ex["methods"]):
        assert [s["bytes"] for s in m["settings"]] == [s["bytes"] for s in mine["settings"]]
        for s, sm in zip(m["settings"], mine["settings"]):
            img = Image.open(io.BytesIO(base64.b64decode(s["preview"].split(",", 1)[1])))
            assert img.format == "WEBP" and img.size == (crop.shape[1], crop.shape[0])
            assert s["ssim"] == sm["ssim"] and s["rmse"] == sm["rmse"]
    assert page.count("<script") == 2 and "<script src" not in page
    assert "http://" not in page and "https://" not in page


def _tiles(sample, n):
    return np.tile(sample, (n, n, 1))


@pytest.mark.slow
def test_previews_fit_the_budget_at_one_megapixel(sample):
    """Opt-in (``pytest -m slow``, about a minute): 26 slider positions of a 1024 x 1024 photo (the sample tiled 2 x 2) within the 6 MB page."""
    from imcompress.pca_rows import RowPCA
    from imcompress.rd import peer_encode

    big = _tiles(sample, 2)
    assert big.shape[0] * big.shape[1] == 1 << 20
    pca = RowPCA(variance=0.99).fit(big)
    images = [(big // (256 // k)) * (256 // k) for k in (2, 4, 8)] * 3 + [big[:, :, :1].repeat(3, 2)]
    images += [imcompress.to_uint8(pca.select(n).inverse_transform(pca.select(n).transform(big)))
                for n in (2, 4, 8, 16, 32, 64)]
    images += [peer_encode(big, "jpeg", q)[1] for q in range(5, 96, 10)]
    assert len(images) == 26
    budget = _previews.page_budget(big.shape[0] * big.shape[1]) - 700_000  # the figures of a report
    original, previews = _previews.encode_previews(big, images, budget)
    total = len(original.uri) + sum(len(p.uri) for p in previews)
    assert total <= budget
    for im, p in zip(images, previews):
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(p.uri.split(",", 1)[1]))).convert("RGB"))
        if p.lossless:
            np.testing.assert_array_equal(decoded, im)
        else:
            assert p.psnr == pytest.approx(peak_signal_noise_ratio(im, decoded, data_range=255))
            assert p.psnr > 30


def test_page_budget():
    assert _previews.page_budget(512 * 512) == 2_500_000
    assert _previews.page_budget(1 << 20) == 6_000_000
    assert _previews.page_budget(100) == 2_500_000 and _previews.page_budget(10**8) == 6_000_000
