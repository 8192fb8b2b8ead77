"""``imcompress report`` end to end, in a subprocess, as a user runs it."""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from imcompress import ExitCode


def run(*args, cwd=None):
    env = dict(os.environ)
    # several test workers share few cores: keep BLAS to one thread each
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, "-m", "imcompress", "report", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def crop_png(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "crop.png"
    Image.fromarray(sample[100:180, 150:270]).save(path)
    return path


@pytest.fixture(scope="module")
def report_run(crop_png, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "rep"
    proc = run(crop_png, "-o", out, "--ks", "2..6:2", "--variances", "0.9,0.95", "--seed", "1")
    return proc, out


def test_report_succeeds(report_run):
    proc, out = report_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"Report written to {out / 'index.html'}" in proc.stdout
    assert "K-means" in proc.stdout and "row PCA" in proc.stdout


def test_report_html_is_self_contained(report_run):
    _, out = report_run
    page = (out / "index.html").read_text(encoding="utf-8")
    srcs = re.findall(r'\bsrc\s*=\s*"([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/webp;base64,") for s in srcs)
    assert "href=" not in page and "<link" not in page
    # the explorer's script is inline, its data a JSON block: nothing is fetched
    assert page.count("<script") == 2 and not re.search(r"<script[^>]*\bsrc", page)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figures) == len(srcs) >= 9
    for name in figures:
        assert Image.open(out / "figures" / name).format == "PNG"


def test_report_metrics(report_run):
    _, out = report_run
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert data["image"]["height"] == 80 and data["image"]["width"] == 120
    assert data["image"]["unique_colors"] > 1000
    assert [e["k"] for e in data["kmeans"]["sweep"]] == [2, 4, 6]
    for e in data["kmeans"]["sweep"]:
        assert set(e) >= {"k", "inertia", "rmse", "psnr", "ssim", "unique_colors"}
        assert e["unique_colors"] <= e["k"]
    assert "elbow_k" in data["kmeans"]
    assert [e["variance"] for e in data["pca_rows"]["thresholds"]] == [0.9, 0.95]
    for e in data["pca_rows"]["thresholds"]:
        assert set(e) >= {"variance", "n_components", "rmse", "psnr", "ssim", "stored_values"}
        assert len(e["n_components"]) == 3
    assert data["kmeans"]["random_state"] == 1
    import imcompress

    if "pca-patch" in imcompress.available_methods():
        assert [e["target_bpp"] for e in data["pca_patch"]["encodings"]] == [0.25, 1.0]
        assert set(data["rate_distortion"]["psnr_at"]["jpeg"]) == {"0.25", "0.5", "1", "2"}
        page = (out / "index.html").read_text(encoding="utf-8")
        assert 'id="rate-distortion"' in page and "BD-rate" in page


def test_quiet_and_force(report_run, crop_png):
    _, out = report_run
    proc = run(crop_png, "-o", out, "--ks", "2,3", "--variances", "0.9", "-q", "--force", "--no-rd")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [e["k"] for e in data["kmeans"]["sweep"]] == [2, 3]
    assert "rate_distortion" not in data and "pca_patch" not in data  # --no-rd
    assert 'id="rate-distortion"' not in (out / "index.html").read_text(encoding="utf-8")


def _truncated_jpeg(path):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue()[:700])


BAD = {
    "missing file": (lambda d: [d / "nope.jpg"], ExitCode.INPUT, r"nope\.jpg: no such file"),
    "text file": (lambda d: [_write(d / "a.jpg", b"hello\n")], ExitCode.INPUT, "not an image file"),
    "empty file": (lambda d: [_write(d / "e.png", b"")], ExitCode.INPUT, "file is empty"),
    "truncated jpeg": (lambda d: [_call(_truncated_jpeg, d / "t.jpg")], ExitCode.INPUT, "corrupt or truncated"),
    "too many pixels": (lambda d: ["{img}", "--max-pixels", "100"], ExitCode.INPUT, "exceeds the limit of 100"),
    "K below 2": (lambda d: ["{img}", "--ks", "1,2"], ExitCode.USAGE, "K=1 should be >= 2"),
    "K above colours": (lambda d: ["{img}", "--ks", "2,100000"], ExitCode.USAGE,
                        r"n_colors=100000 exceeds the \d+ distinct colours"),
    "bad ks": (lambda d: ["{img}", "--ks", "two"], ExitCode.USAGE, "cannot read 'two'"),
    "variance above 1": (lambda d: ["{img}", "--variances", "0.9,1.5"], ExitCode.USAGE,
                         r"variance=1.5 should be in \(0, 1\]"),
    "variance 0": (lambda d: ["{img}", "--variances", "0"], ExitCode.USAGE, r"variance=0.0 should be in"),
    "bad seed": (lambda d: ["{img}", "--seed", "x"], ExitCode.USAGE, "'x' is not a valid integer"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _call(func, path):
    func(path)
    return path


#: Cases also run in a subprocess (one or two per exit code); every case runs
#: in-process through the same ``main()`` the console script calls.
SUBPROCESS = ("missing file", "truncated jpeg", "K above colours", "variance above 1")


def _check_failure(code, stdout, stderr, expected_code, message, out, folder):
    assert code == expected_code, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("imcompress: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()
    assert not any(p.name.startswith(".out.") for p in folder.iterdir())  # no temporary folder left


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case, crop_png, tmp_path, capfd):
    from imcompress.cli import main

    make_args, code, message = BAD[case]
    args = [str(a).replace("{img}", str(crop_png)) for a in make_args(tmp_path)]
    out = tmp_path / "out"
    rc = main(["report", *args, "-o", str(out)])
    captured = capfd.readouterr()
    _check_failure(rc, captured.out, captured.err, code, message, out, tmp_path)
    if case in SUBPROCESS:
        proc = run(*args, "-o", out)
        _check_failure(proc.returncode, proc.stdout, proc.stderr, code, message, out, tmp_path)


def test_existing_folder_refused(crop_png, tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run(crop_png, "-o", out)
    assert proc.returncode == ExitCode.OUTPUT_EXISTS
    assert proc.stderr.count("\n") == 1 and "use -f/--force" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    from imcompress.cli import main

    rc = main(["report", str(crop_png), "-o", str(out), "--force"])  # never deletes a non-report folder
    assert rc == ExitCode.OUTPUT_EXISTS
    assert "not part of a report" in capfd.readouterr().err and (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["parent is a file", "parent missing"])
def test_unwritable_output(crop_png, tmp_path, where, capfd):
    if where == "parent is a file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "report"
    else:
        out = tmp_path / "no" / "such" / "report"
    if where == "parent is a file":
        proc = run(crop_png, "-o", out)
        code, err = proc.returncode, proc.stderr
    else:
        from imcompress.cli import main

        code, err = main(["report", str(crop_png), "-o", str(out)]), capfd.readouterr().err
    assert code == ExitCode.WRITE
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "does not exist" in err


def test_help_lists_the_options():
    proc = subprocess.run([sys.executable, "-m", "imcompress", "report", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for opt in ("--output", "--ks", "--variances", "--seed", "--force", "--quiet", "--max-pixels", "--no-rd"):
        assert opt in proc.stdout


def test_few_colours_with_default_ks(tmp_path, capfd):
    from imcompress.cli import main

    img = np.zeros((12, 16, 3), np.uint8)
    img[:, :5] = (250, 20, 20)
    img[6:, 10:] = (20, 20, 250)
    Image.fromarray(img).save(tmp_path / "logo.png")
    out = tmp_path / "rep"
    rc = main(["report", str(tmp_path / "logo.png"), "-o", str(out), "--variances", "0.9", "-q"])
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert captured.out == ""
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [e["k"] for e in data["kmeans"]["sweep"]] == [2]
    assert data["image"]["unique_colors"] == 3


def test_open_without_a_browser_warns(crop_png, tmp_path, monkeypatch, capsys):
    import webbrowser

    from imcompress.cli import main

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or False)
    out = tmp_path / "rep"
    code = main(["report", str(crop_png), "-o", str(out), "--ks", "2,3", "--variances", "0.9", "--no-rd", "-q",
                 "--open"])
    assert code in (0, None)
    assert opened == [(out / "index.html").resolve().as_uri()]
    assert f"no web browser found; open {out / 'index.html'} yourself" in capsys.readouterr().err


def test_open_uses_the_browser(tmp_path, monkeypatch, capsys):
    import webbrowser

    from imcompress.cli._report import _open_in_browser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    _open_in_browser(tmp_path / "index.html")
    assert opened == [(tmp_path / "index.html").resolve().as_uri()] and capsys.readouterr().err == ""
