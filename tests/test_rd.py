"""Tests of the rate-distortion helpers (imcompress.rd)."""

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from imcompress import UsageError
from imcompress.metrics import psnr
from imcompress.rd import bd_rate, mean_curve, plot_rd, psnr_at, rd_curves, ssim_at


@pytest.fixture(scope="module")
def small(sample):
    return np.ascontiguousarray(sample[::4, ::4])  # 128 x 128


@pytest.fixture(scope="module")
def data(small):
    return rd_curves([("s", small)], ["pca-patch", "jpeg"], n_points=5, ssim=True)


def test_points_are_real_files(small, data):
    jpeg = data["methods"]["jpeg"]["s"]
    assert jpeg.shape[1] == 4 and np.all(np.diff(jpeg[:, 0]) >= 0)
    # recompute one point independently with Pillow
    bpp, p, s, nbytes = jpeg[len(jpeg) // 2]
    found = False
    for q in range(2, 99):
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, "JPEG", quality=q, optimize=True, subsampling="4:2:0")
        if len(buf.getvalue()) == nbytes:
            out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            assert psnr(small, out) == pytest.approx(p, abs=1e-9)
            found = True
            break
    assert found
    assert bpp == pytest.approx(8 * nbytes / small.shape[0] / small.shape[1])
    assert 0 < s <= 1


def test_interpolation_hits_measured_points_and_nan_outside(data):
    pts = data["methods"]["pca-patch"]["s"]
    mid = pts[len(pts) // 2]
    assert psnr_at(pts, mid[0]) == pytest.approx(mid[1], abs=1e-9)
    assert ssim_at(pts, mid[0]) == pytest.approx(mid[2], abs=1e-9)
    assert np.isnan(psnr_at(pts, pts[0, 0] / 2))
    assert np.isnan(psnr_at(pts, pts[-1, 0] * 2))
    # monotone between points
    grid = np.geomspace(pts[0, 0], pts[-1, 0], 30)
    vals = [psnr_at(pts, b) for b in grid]
    assert np.all(np.diff(vals) >= -1e-9)


def test_bd_rate_of_known_shifts():
    rates = np.geomspace(0.1, 4, 12)
    ref = np.column_stack([rates, 30 + 6 * np.log2(rates), np.full(12, np.nan), rates])
    half = ref.copy()
    half[:, 0] = rates / 2  # same PSNR at half the rate
    assert bd_rate(ref, half) == pytest.approx(-50.0, abs=0.2)
    assert bd_rate(half, ref) == pytest.approx(100.0, abs=0.5)
    assert bd_rate(ref, ref) == pytest.approx(0.0, abs=1e-9)
    far = ref.copy()
    far[:, 1] += 100  # no common PSNR interval
    assert np.isnan(bd_rate(ref, far))


def test_pca_patch_beats_jpeg_on_sample(data):
    assert bd_rate(data["methods"]["jpeg"]["s"], data["methods"]["pca-patch"]["s"]) < -15.0


def test_mean_curve_and_plot(data):
    m = mean_curve(data, "pca-patch", [0.5, 1.0])
    assert m.shape == (2,) and np.all(np.isfinite(m)) and m[1] > m[0]
    fig = plot_rd(data, title="t")
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 2 and axes[0].get_xscale() == "log"
    assert {t.get_text() for t in axes[0].get_legend().get_texts()} == {"pca-patch", "jpeg"}
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_errors(small):
    with pytest.raises(UsageError, match="unknown method 'gif'"):
        rd_curves([small], ["gif"])
    with pytest.raises(UsageError, match=r"should be \(H, W, 3\) uint8"):
        rd_curves([small.astype(np.float32)], ["jpeg"])


def test_method_variants(small):
    d = rd_curves([("s", small)], ["pca-patch:patch_size=4,basis=dct"], n_points=3, ssim=False)
    pts = d["methods"]["pca-patch:patch_size=4,basis=dct"]["s"]
    assert pts.shape == (3, 4) and np.all(np.diff(pts[:, 1]) > 0)
    with pytest.raises(UsageError, match="write options as key=value"):
        rd_curves([small], ["pca-patch:patch_size"])
    with pytest.raises(UsageError, match="patch_size=5 should be"):
        rd_curves([small], ["pca-patch:patch_size=5"])
