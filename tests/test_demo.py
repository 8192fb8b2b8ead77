"""``make demo`` end to end: the command a newcomer runs first."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_make_demo(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if not (REPO / "Makefile").is_file() or not (REPO / ".venv" / "bin" / "imcompress").exists():
        pytest.skip("needs the repository checkout with its .venv (run `make install` once)")
    out = tmp_path / "demo-report"
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # test workers share few cores
    # -o: treat the install stamp as up to date, so the test never runs pip
    proc = subprocess.run(
        ["make", "-o", ".venv/.installed-stamp", "demo", f"REPORT_DIR={out}"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=1800,  # a hang, not a speed test
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Report written to {out / 'index.html'}" in proc.stdout
    page = (out / "index.html").read_text(encoding="utf-8")
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) >= 9 and all(s.startswith("data:image/webp;base64,") for s in srcs)
    assert "href=" not in page and "<script src" not in page
    # the size budget (docs/report.md): every slider position of the 512 x 512 photo in 2.5 MB
    assert (out / "index.html").stat().st_size <= 2_500_000
    assert [len(m["settings"]) for m in data["explorer"]["methods"]] == [10, 6, 10]
    assert data["source"].endswith("astronaut.png")
    assert (data["image"]["height"], data["image"]["width"]) == (512, 512)
    assert [e["k"] for e in data["kmeans"]["sweep"]] == list(range(2, 21, 2))
    assert [e["variance"] for e in data["pca_rows"]["thresholds"]] == [0.9, 0.95]
    assert len(list((out / "figures").glob("*.png"))) == len(srcs)
    # the patch-PCA / rate-distortion section, on the whole photo
    assert 'id="rate-distortion"' in page
    rd = data["rate_distortion"]
    assert rd["methods"][:3] == ["pca-patch", "pca-rows", "kmeans"] and "jpeg" in rd["methods"]
    assert rd["psnr_at"]["pca-patch"]["1"] > rd["psnr_at"]["jpeg"]["1"] + 1.5  # 35.6 vs 33.0 dB
    assert rd["bd_rate_vs_jpeg_percent"]["pca-patch"] < -20
    assert [e["target_bpp"] for e in data["pca_patch"]["encodings"]] == [0.25, 1.0]
    assert any(m["method"] == "patch PCA" for m in data["methods"])


@pytest.mark.slow
def test_library_example_runs(tmp_path, monkeypatch, request):
    """The README's library example (docs/library.md) runs as written."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt-in: run with -m slow")
    doc = REPO / "docs" / "library.md"
    if not doc.is_file():
        pytest.skip(f"{doc} not found (merged into README.md)")
    from imcompress.report import _sections

    monkeypatch.setattr(_sections, "_EXTRA_BUILDERS", [])  # the example registers a section
    monkeypatch.chdir(tmp_path)
    code = "\n".join(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S))
    exec(compile(code, str(doc), "exec"), {})
    assert (tmp_path / "inertia.png").is_file()
    assert (tmp_path / "my-report" / "index.html").is_file()
