"""The compress, decompress and info commands."""

import io
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress.cli import main


@pytest.fixture(scope="module")
def photo(sample, tmp_path_factory):
    """A 96 x 128 crop of the sample photo as a PNG with an ICC profile."""
    folder = tmp_path_factory.mktemp("in")
    path = folder / "photo.png"
    Image.fromarray(np.ascontiguousarray(sample[200:296, 180:308])).save(path, icc_profile=b"ICC-test" * 8)
    return path


@pytest.fixture
def work(photo, tmp_path):
    dst = tmp_path / photo.name
    dst.write_bytes(photo.read_bytes())
    return dst


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path):
    return imcompress.load_image(path, alpha="keep")


def test_compress_json_matches_the_file(work, capsys):
    out = work.with_name("o.imc")
    code, stdout, err = run(capsys, "compress", work, "-o", out, "-k", "16", "--json", "--ssim")
    assert code == 0, err
    rec = json.loads(stdout)
    assert set(rec) >= {"input", "output", "method", "params", "bytes", "bpp", "ratio", "rmse", "psnr", "ssim", "seconds"}
    assert rec["metrics"] == ["bytes", "bpp", "ratio", "rmse", "psnr", "ssim"]
    data = out.read_bytes()
    assert rec["bytes"] == len(data) == out.stat().st_size
    assert rec["ratio"] == pytest.approx(96 * 128 * 3 / len(data))
    assert rec["bpp"] == pytest.approx(8 * len(data) / (96 * 128))
    decoded = imcompress.decompress(data)
    assert rec["psnr"] == pytest.approx(imcompress.metrics.psnr(pixels(work), decoded))
    assert rec["ssim"] == pytest.approx(imcompress.metrics.ssim(pixels(work), decoded))
    assert rec["params"]["n_colors"] == 16
    code, stdout, _ = run(capsys, "info", out, "--json")
    info = json.loads(stdout)
    assert code == 0 and info["bytes"] == len(data) and info["params"] == rec["params"]
    assert info["width"] == 128 and info["height"] == 96 and info["method"] == "kmeans"


def test_png_and_imc_outputs_agree_and_decompress(work, capsys):
    a, b, c = (work.with_name(n) for n in ("a.png", "b.imc", "c.png"))
    assert run(capsys, "compress", work, "-o", a, "-k", "10")[0] == 0
    assert run(capsys, "compress", work, "-o", b, "-k", "10")[0] == 0
    assert run(capsys, "decompress", b, "-o", c)[0] == 0
    np.testing.assert_array_equal(pixels(a), pixels(c))
    np.testing.assert_array_equal(pixels(c), imcompress.decompress(b.read_bytes()))
    assert Image.open(c).info.get("icc_profile") == b"ICC-test" * 8  # kept by default
    assert Image.open(a).info.get("icc_profile") == b"ICC-test" * 8
    assert run(capsys, "compress", work, "-o", b, "-k", "10", "--strip", "-f")[0] == 0
    assert imcompress.format.unpack_container(b.read_bytes()).section(b"ICCP", required=False) is None


def test_pca_rows_and_summary_line(work, capsys):
    code, stdout, _ = run(capsys, "compress", work, "-m", "pca-rows", "--components", "10,8,6")
    assert code == 0
    out = work.with_name("photo.pca-rows.imc")
    assert out.exists() and stdout.startswith(f"{work} -> {out}: pca-rows")
    assert f"{out.stat().st_size} bytes" in stdout
    assert imcompress.inspect(out.read_bytes())["params"]["n_components"] == [10, 8, 6]


def test_several_inputs_get_suffixes(work, capsys):
    second = work.with_name("second.png")
    second.write_bytes(work.read_bytes())
    code, stdout, _ = run(capsys, "compress", work, second, "-k", "8", "-q")
    assert code == 0 and stdout == ""
    # kmeans writes palette PNGs unless told otherwise (issue 13)
    for name in ("photo.kmeans.png", "second.kmeans.png"):
        assert Image.open(work.with_name(name)).mode == "P"
    code, _, _ = run(capsys, "compress", work, second, "-k", "8", "--ext", "-8.png")
    assert code == 0 and Image.open(work.with_name("photo-8.png")).mode == "P"
    code, _, err = run(capsys, "compress", work, second, "-o", "x.imc")
    assert code == 4 and "-o names one output but 2 inputs" in err


def test_overwrite_refused_then_forced(work, capsys):
    out = work.with_name("o.imc")
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "compress", work, "-o", out)
    assert code == 5 and "already exists; use -f/--force" in err
    assert out.read_bytes() == b"precious"
    assert run(capsys, "compress", work, "-o", out, "--force")[0] == 0
    assert imcompress.format.is_container(out.read_bytes())
    dec = work.with_name("d.png")
    dec.write_bytes(b"old")
    assert run(capsys, "decompress", out, "-o", dec)[0] == 5 and dec.read_bytes() == b"old"


class _Stdin:
    def __init__(self, data):
        self.buffer = io.BytesIO(data)


def test_stdin_to_stdout(work, capsysbinary, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin(work.read_bytes()))
    assert main(["compress", "-", "-o", "-", "-k", "6"]) == 0
    captured = capsysbinary.readouterr()
    # kmeans writes a palette PNG to stdout by default (issue 13), .imc when asked
    assert Image.open(io.BytesIO(captured.out)).mode == "P"
    monkeypatch.setattr(sys, "stdin", _Stdin(work.read_bytes()))
    assert main(["compress", "-", "-o", "-", "-k", "6", "--format", "imc"]) == 0
    captured = capsysbinary.readouterr()
    data = captured.out
    assert imcompress.format.is_container(data)
    assert b"-> -: kmeans" in captured.err  # the summary goes to stderr
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    assert main(["decompress", "-", "-o", "-"]) == 0
    png = capsysbinary.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), imcompress.decompress(data))


def test_target_psnr_and_max_bytes(work, capsys):
    out = work.with_name("t.imc")
    code, stdout, _ = run(capsys, "compress", work, "-o", out, "--target-psnr", "30", "--json")
    rec = json.loads(stdout)
    assert code == 0 and rec["psnr"] >= 30
    k = rec["params"]["n_colors"]
    smaller = imcompress.decompress(imcompress.compress(pixels(work), "kmeans", n_colors=k - 1))
    assert imcompress.metrics.psnr(pixels(work), smaller) < 30  # and it is the smallest such K
    code, stdout, _ = run(capsys, "compress", work, "-o", out, "-f", "--max-bytes", "6000", "--json",
                          "-m", "pca-rows")
    rec = json.loads(stdout)
    assert code == 0 and rec["bytes"] <= 6000 and out.stat().st_size <= 6000


def test_unreachable_target(work, capsys):
    out = work.with_name("t.imc")
    code, _, err = run(capsys, "compress", work, "-o", out, "--max-bytes", "50")
    assert code == 99 and "cannot reach size <= 50 bytes" in err and not out.exists()
    code, _, err = run(capsys, "compress", work, "-o", out, "--max-bytes", "50", "--best-effort")
    assert code == 0 and "target not reached" in err and out.exists()


def test_skip_if_larger(tmp_path, capsys):
    src = tmp_path / "flat.png"
    Image.fromarray(np.full((40, 40, 3), 7, np.uint8)).save(src)
    code, _, err = run(capsys, "compress", src, "-m", "pca-rows", "--components", "40", "--skip-if-larger")
    assert code == 98 and "larger than the input" in err
    assert not src.with_name("flat.pca-rows.imc").exists()
    code, _, err = run(capsys, "compress", src, "-m", "pca-rows", "--components", "40")
    assert code == 0 and "warning" in err and "larger than the input file" in err


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["compress", "{missing}"], 2, "no such file"),
        (["compress", "{work}", "-m", "pca-rows", "-k", "8"], 4, "--colors is an option of --method kmeans"),
        (["compress", "{work}", "-k", "1"], 4, "n_colors=1 should be in 2..256"),
        (["compress", "{work}", "-o", "{dir}/x.jpg"], 4, "cannot tell the output format"),
        (["compress", "{work}", "-m", "pca-rows", "-o", "{dir}/x.png"], 4, "writes imc files"),
        (["compress", "{work}", "-o", "{dir}/nope/x.imc"], 6, "does not exist"),
        (["compress", "{work}", "--target-psnr", "-3"], 4, "should be in"),
        (["compress", "{work}", "-m", "pca-rows", "--components", "10", "--variance", "0.9"], 4, "not both"),
        (["decompress", "{work}", "-o", "{dir}/x.png"], 3, "not an .imc file"),
        (["decompress", "{dir}/none.imc"], 2, "no such file"),
        (["info", "{work}"], 3, "wrong magic"),
    ],
)
def test_errors_are_one_line_with_exit_code(work, capsys, args, code, message):
    args = [a.format(work=work, dir=work.parent, missing=work.parent / "missing.png") for a in args]
    got, _, err = run(capsys, *args)
    assert got == code, err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_decompress_unknown_extension_and_rgba_jpeg(work, capsys, tmp_path):
    imc = tmp_path / "a.imc"
    rgba = np.dstack([pixels(work), np.full((96, 128), 128, np.uint8)])
    imc.write_bytes(imcompress.compress(rgba, "kmeans", n_colors=8))
    code, _, err = run(capsys, "decompress", imc, "-o", tmp_path / "a.xyz")
    assert code == 4 and "unknown image extension" in err
    code, _, err = run(capsys, "decompress", imc, "-o", tmp_path / "a.jpg")
    assert code == 4 and "choose .png" in err and not (tmp_path / "a.jpg").exists()
    assert run(capsys, "decompress", imc, "-o", tmp_path / "a.webp")[0] == 0
    out = tmp_path / "a.png"
    assert run(capsys, "decompress", imc)[0] == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), imcompress.decompress(imc.read_bytes()))


def test_no_temp_files_left_after_a_failed_write(work, capsys, monkeypatch):
    out = work.with_name("o.imc")
    out.write_bytes(b"old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    code, _, err = run(capsys, "compress", work, "-o", out, "-f", "-k", "4")
    monkeypatch.undo()
    assert code == 6 and "No space left" in err
    assert out.read_bytes() == b"old"
    assert not [p for p in work.parent.iterdir() if p.name.endswith(".tmp")]
