"""The report's "Patch PCA and rate-distortion" section: real files, honest comparisons."""

import io
import json
import math
import re

import numpy as np
import pytest
from PIL import Image, features
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import imcompress
from imcompress import UsageError
from imcompress.rd import PILLOW_METHODS
from imcompress.report import RD_BPPS, figures, rate_distortion, report_sections, study, write_report
from imcompress.report import _rd, _rd_section

pytestmark = pytest.mark.skipif("pca-patch" not in imcompress.available_methods(),
                                reason="the pca-patch codec is not installed")


@pytest.fixture(scope="module")
def crop(sample):
    return sample[96:224, 160:288]  # 128 x 128: the face, detail and smooth skin


@pytest.fixture(scope="module")
def result(crop):
    return study(crop, ks=[2, 4, 6], variances=[0.9], source="face crop", file_bytes=20_000)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("rd") / "report"
    files = write_report(result, out)
    return files, json.loads(files.metrics.read_text(encoding="utf-8"))


def _pillow(img, method, quality):
    fmt, opts, _ = PILLOW_METHODS[method]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, quality=quality, **opts)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _psnr(a, b):
    return peak_signal_noise_ratio(a, b, data_range=255)


# -- the numbers are real files ---------------------------------------------------------


def test_methods_measured(result):
    rd = result.rd
    expected = ["pca-patch", "pca-rows", "kmeans", "jpeg", "webp"] + (["avif"] if features.check("avif") else [])
    assert rd.methods == expected
    for m in rd.methods:
        bpps = [e.bpp for e in rd.curves[m]]
        assert len(bpps) >= 5 and bpps == sorted(bpps)
        for e in rd.curves[m]:
            assert e.bpp == pytest.approx(8 * e.nbytes / (128 * 128))
    # wide gaps around the table's rates are filled where a quality can fill them
    assert not [g for g in rd.gaps() if g[0] in PILLOW_METHODS]


def test_pca_patch_points_are_imc_files(result, crop):
    for e in result.rd.curves["pca-patch"][::3]:
        data = imcompress.compress(crop, "pca-patch", quality=e.setting)
        assert len(data) == e.nbytes
        decoded = imcompress.decompress(data)
        assert e.psnr == pytest.approx(_psnr(crop, decoded), abs=1e-9)
        ref = structural_similarity(crop, decoded, data_range=255, channel_axis=-1)
        assert e.ssim == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("method", ["jpeg", "webp"])
def test_pillow_points_match_pillow(result, crop, method):
    for e in result.rd.curves[method][::4]:
        data, decoded = _pillow(crop, method, int(e.setting))
        assert e.nbytes == len(data)
        assert e.psnr == pytest.approx(_psnr(crop, decoded), abs=1e-9)


def test_interpolated_psnr_lies_between_measured_points(result):
    rd = result.rd
    for m in ("pca-patch", "jpeg", "webp"):
        pts = rd.points(m)
        for b in RD_BPPS:
            lo = pts[pts[:, 0] <= b]
            hi = pts[pts[:, 0] >= b]
            v = rd.psnr_at(m, b)
            if len(lo) == 0 or len(hi) == 0:
                assert math.isnan(v)
            else:
                assert lo[:, 1].min() - 1e-9 <= v <= hi[:, 1].max() + 1e-9


def test_pca_patch_beats_jpeg_at_one_bpp(result, crop):
    rd = result.rd
    # on the curves: a margin well above the interpolation error
    assert rd.psnr_at("pca-patch", 1.0) > rd.psnr_at("jpeg", 1.0) + 1.0
    # on two real files: the JPEG may use as many bytes as pca-patch, not more
    shown = next(s for s in rd.shown if s["target_bpp"] == 1.0)
    pp, jp = shown["pca-patch"], shown["jpeg"]
    assert jp.nbytes <= pp.nbytes
    assert _psnr(crop, jp.image) == pytest.approx(jp.psnr)
    assert _psnr(crop, pp.image) > _psnr(crop, jp.image) + 1.0
    assert rd.bd_rate("pca-patch") < -10.0  # fewer bytes than JPEG at equal PSNR


def test_shown_rates_and_same_bytes_rule(result, crop):
    rd = result.rd
    assert [s["target_bpp"] for s in rd.shown] == [0.25, 1.0]
    for s in rd.shown:
        pp = s["pca-patch"]
        assert abs(math.log(pp.bpp / s["target_bpp"])) < math.log(1.25)  # about the target
        assert pp.image.shape == crop.shape
        for ref in ("jpeg", "webp"):
            e = s[ref]
            if e is None:  # the smallest file of this codec is larger than pca-patch's
                assert len(_pillow(crop, ref, 1)[0]) > pp.nbytes
                continue
            q = int(e.setting)
            assert len(_pillow(crop, ref, q)[0]) == e.nbytes <= pp.nbytes
            if q < 100:  # the next quality no longer fits
                assert len(_pillow(crop, ref, q + 1)[0]) > pp.nbytes


def test_detail_crop_finds_the_textured_square(rng):
    img = np.full((120, 160, 3), 128, np.uint8)
    img[60:100, 90:130] = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    top, left, size = _rd._detail_crop(img, 40)
    assert size == 40
    assert abs(top - 60) <= 10 and abs(left - 90) <= 10  # the size/4 grid


def test_rate_distortion_errors(crop):
    with pytest.raises(UsageError, match="compares pca-patch with JPEG: add 'jpeg'"):
        rate_distortion(crop, methods=["pca-patch"])
    with pytest.raises(UsageError, match="unknown method 'gif'"):
        rate_distortion(crop, methods=["pca-patch", "jpeg", "gif"])
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\) uint8"):
        rate_distortion(crop.astype(np.float32))


def test_without_ssim(crop):
    rd = rate_distortion(crop[:48, :48], methods=["pca-patch", "jpeg"], ssim=False)
    assert all(math.isnan(e.ssim) for e in rd.curves["jpeg"])
    assert math.isnan(rd.ssim_at("pca-patch", 1.0))
    # the pictures always carry their SSIM
    assert all(math.isfinite(s["pca-patch"].ssim) for s in rd.shown)


# -- the report --------------------------------------------------------------------------


def test_methods_table_has_pca_patch_rows(result):
    rows = result.methods_table()
    pp = [m for m in rows if m["method"] == "patch PCA"]
    assert len(pp) == 2
    for m, s in zip(pp, result.rd.shown):
        e = s["pca-patch"]
        assert m["imc_bytes"] == m["bytes"] == e.nbytes
        assert m["psnr"] == m["imc_psnr"] == e.psnr and m["ssim"] == e.ssim
        assert m["bpp"] == pytest.approx(8 * e.nbytes / (128 * 128))
    assert any(m["method"] == "JPEG (Pillow)" for m in rows)


def test_metrics_json(written, result):
    _, data = written
    rdj = data["rate_distortion"]
    assert rdj["methods"] == result.rd.methods
    assert rdj["bpps"] == list(RD_BPPS)
    for m in rdj["methods"]:
        assert set(rdj["psnr_at"][m]) == {"0.25", "0.5", "1", "2"}
        assert [p["bytes"] for p in rdj["curves"][m]] == [e.nbytes for e in result.rd.curves[m]]
    assert rdj["psnr_at"]["pca-patch"]["1"] == pytest.approx(result.rd.psnr_at("pca-patch", 1.0))
    assert rdj["psnr_at"]["pca-patch"]["1"] > rdj["psnr_at"]["jpeg"]["1"] + 1.0
    assert "jpeg" not in rdj["bd_rate_vs_jpeg_percent"]
    assert rdj["bd_rate_vs_jpeg_percent"]["pca-patch"] < 0
    enc = data["pca_patch"]["encodings"]
    assert [e["target_bpp"] for e in enc] == [0.25, 1.0]
    assert enc[1]["pca_patch"]["bytes"] == result.rd.shown[1]["pca-patch"].nbytes
    assert enc[1]["jpeg"]["bytes"] <= enc[1]["pca_patch"]["bytes"]
    assert set(data["pca_patch"]["crop"]) == {"top", "left", "size"}


def test_section_in_the_page(written, result):
    files, _ = written
    page = files.index.read_text(encoding="utf-8")
    assert '<section id="rate-distortion"><h2>Patch PCA and rate–distortion</h2>' in page
    assert page.index('id="rate-distortion"') > page.index('id="corrections"')
    for name in ("10-rate-distortion.png", "11-pca-patch-vs-jpeg.png"):
        assert (files.folder / "figures" / name).is_file()
    sec = page[page.index('id="rate-distortion"'):]
    assert f"<td>{result.rd.psnr_at('pca-patch', 1.0):.2f}</td>" in sec
    assert f"<td>{result.rd.bd_rate('pca-patch'):+.1f}</td>" in sec
    assert "Where pca-patch wins and loses" in sec
    assert re.search(r"against JPEG: ahead at", sec)


def test_figures(result):
    fig = figures.rate_distortion(result)
    psnr_ax = fig.axes[0]
    labels = [t.get_text() for t in psnr_ax.get_legend().get_texts()]
    assert labels == result.rd.methods
    assert fig.axes[1].get_visible()  # SSIM measured
    text = " ".join(ax.get_title() for ax in figures.pca_patch_pictures(result).axes)
    for s in result.rd.shown:
        assert f"PSNR {s['pca-patch'].psnr:.2f} dB" in text and f"{s['pca-patch'].nbytes:,} B" in text


def test_rd_skipped(crop):
    r = study(crop[:32, :32], ks=[2, 4], variances=[0.9], rd=False)
    assert r.rd is None
    assert "rate-distortion" not in [s.id for s in report_sections(r)]
    assert "rate_distortion" not in r.to_dict() and "pca_patch" not in r.to_dict()
    with pytest.raises(UsageError, match="no rate-distortion numbers"):
        figures.rate_distortion(r)


def test_large_image_measured_on_its_centre(crop):
    r = study(crop, ks=[2, 4], variances=[0.9], rd=False)
    r.rd = rate_distortion(crop, methods=["pca-patch", "jpeg"], ssim=False, max_pixels=48 * 48)
    assert r.rd.shape == (48, 48) and r.rd.region == (40, 40, 48, 48)
    centre = crop[40:88, 40:88]
    e = r.rd.curves["pca-patch"][2]
    assert len(imcompress.compress(centre, "pca-patch", quality=e.setting)) == e.nbytes
    assert e.bpp == pytest.approx(8 * e.nbytes / (48 * 48))
    np.testing.assert_array_equal(r.rd.measured(crop), centre)
    text = " ".join(b.html for b in report_sections(r)[-1].blocks if hasattr(b, "html"))
    assert "central 48 × 48 region (rows 40–87, columns 40–87)" in text
    assert r.to_dict()["pca_patch"]["measured_region"] == {"top": 40, "left": 40, "height": 48, "width": 48}
    fig = figures.pca_patch_pictures(r)
    assert "PSNR and SSIM of the measured region" in fig._suptitle.get_text()
    assert "central region" in figures.rate_distortion(r)._suptitle.get_text()


def _enc(bpp, psnr=30.0, setting=0.0, method="pca-patch", params=None):
    return _rd.Encoding(method=method, setting=setting, nbytes=int(bpp * 1000), bpp=bpp, rmse=1.0, psnr=psnr,
                        ssim=float("nan"), params=params)


def test_quality_for_is_log_linear_and_extrapolates():
    curve = [_enc(0.1 * math.exp(q / 20), setting=q) for q in (20.0, 40.0, 60.0)]
    for q in (10.0, 30.0, 55.0, 80.0):
        assert _rd._quality_for(curve, 0.1 * math.exp(q / 20)) == pytest.approx(q)
    assert _rd._quality_for(curve, 1e-6) == 0.0 and _rd._quality_for(curve, 1e6) == 100.0


def test_gaps_name_rates_interpolated_between_distant_files():
    curves = {"pca-patch": [_enc(b, 20 + 5 * b) for b in (0.22, 0.3, 0.5, 1.0, 3.0)],
              "jpeg": [_enc(b, 20 + 4 * b, method="jpeg") for b in (0.2, 0.26, 0.5, 1.0, 1.9, 2.5)]}
    r = _rd.RDResult(methods=["pca-patch", "jpeg"], curves=curves, shown=[], shape=(10, 10),
                     region=(0, 0, 10, 10), crop=(0, 0, 10), seconds={})
    assert r.gaps() == [("pca-patch", 2.0, 1.0, 3.0)]  # 0.25: a file within 15 %; jpeg at 2: 1.9
    assert r.to_dict()["rate_distortion"]["interpolated_over_gaps"] == [
        {"method": "pca-patch", "bpp": 2.0, "file_below_bpp": 1.0, "file_above_bpp": 3.0}]


def test_pca_patch_files_record_the_encoders_choices(result, crop):
    files = result.rd.curves["pca-patch"]
    e = files[len(files) // 2]
    assert e.params == imcompress.inspect(imcompress.compress(crop, "pca-patch", quality=e.setting))["params"]
    learned = any("pca" in f.params["basis"] for f in files)
    text = _rd_section._choices(result.rd)
    assert ("fixed DCT for every plane" in text) == (not learned)
    assert all(e.params is None for e in result.rd.curves["jpeg"])


def test_max_pixels_error(crop):
    with pytest.raises(UsageError, match=r"max_pixels=0 should be an integer >= 4"):
        rate_distortion(crop, max_pixels=0)


def test_anchors_on_the_curves_are_the_libraries_own_files(crop, tmp_path):
    """--anchors: libaom AVIF s2 4:4:4, x265 HEIC 4:4:4, JPEG XL and JPEG 2000, measured as files."""
    imagecodecs = pytest.importorskip("imagecodecs", reason="the anchors extra is not installed")
    pillow_heif = pytest.importorskip("pillow_heif", reason="the anchors extra is not installed")
    from imcompress.rd import PEERS, available_peers

    anchors = [m for m in available_peers(anchors=True) if PEERS[m].anchor]
    assert anchors == ["avif-aom-s2-444", "heic-x265-444", "jpegxl-e7", "jpeg2000"]
    assert not [m for m in _rd.default_methods() if PEERS.get(m) and PEERS[m].anchor]  # off by default
    assert _rd.default_methods(["pca-patch"], anchors=True)[-4:] == anchors
    methods = ["pca-patch", "jpeg", *anchors]
    rd = rate_distortion(crop[:96, :96], methods=methods, ssim=False)
    crop = crop[:96, :96]
    assert rd.methods == methods and set(anchors) <= set(rd.methods)
    # each point is the library's own file, decoded by the library
    e = rd.curves["avif-aom-s2-444"][1]
    data = imagecodecs.avif_encode(crop, level=int(e.setting), speed=2, codec="aom",
                                   pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV444)
    assert e.nbytes == len(data) and imagecodecs.avif_decode(data).shape == crop.shape
    assert e.psnr == pytest.approx(_psnr(crop, imagecodecs.avif_decode(data)), abs=1e-9)
    e = rd.curves["jpegxl-e7"][0]
    data = imagecodecs.jpegxl_encode(crop, distance=e.setting, effort=7)
    assert e.nbytes == len(data) and e.psnr == pytest.approx(_psnr(crop, imagecodecs.jpegxl_decode(data)), abs=1e-9)
    e = rd.curves["heic-x265-444"][2]
    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, "HEIF", quality=int(e.setting), chroma=444)
    heif = pillow_heif.open_heif(io.BytesIO(buf.getvalue()))
    assert e.nbytes == len(buf.getvalue()) and heif.info["chroma"] == 444
    assert e.psnr == pytest.approx(_psnr(crop, np.asarray(Image.open(buf).convert("RGB"))), abs=1e-9)
    # the page names them and how they were made
    from types import SimpleNamespace

    section = _rd_section.rd_section(SimpleNamespace(rd=rd, image=crop))
    text = " ".join(b.html if hasattr(b, "html") else f"{b.caption} {b.columns} {b.rows}"
                    for b in section.blocks if not hasattr(b, "figure"))
    for label in ("AVIF libaom s2 4:4:4", "HEIC x265 4:4:4", "JPEG XL e7", "JPEG 2000", "through imagecodecs"):
        assert label in text
