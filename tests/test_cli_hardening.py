"""What a user can get wrong, command by command: one error line, the documented
exit code, no traceback, nothing half-written. Plus the layering rules.

Each case runs ``imcompress.cli.main`` in-process on small images made here;
an exception that is not an ``ImcompressError`` escapes ``main`` and fails the
test with its traceback. Two cases (closed pipe, layering) need a subprocess.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import ExitCode
from imcompress.cli import main

SRC = Path(imcompress.__file__).resolve().parent


# -- inputs -------------------------------------------------------------------------
def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(width: int, height: int, *, depth=8, color=0, raw: bytes | None = None) -> bytes:
    """A PNG written by hand: any header, e.g. huge dimensions over one row of data."""
    if raw is None:
        raw = b"\x00" * (width + 1)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(w + h - 2, 1)], -1)
    return np.clip(np.rint(a + rng.normal(0, 8, a.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    img = _photo(48, 64)
    Image.fromarray(img).save(d / "ok.png")
    Image.fromarray(img).save(d / "ok.jpg", quality=90)
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("hello, not an image\n")
    (d / "folder").mkdir()
    raw = (d / "ok.png").read_bytes()
    (d / "trunc.png").write_bytes(raw[: len(raw) // 2])
    raw = (d / "ok.jpg").read_bytes()
    (d / "trunc.jpg").write_bytes(raw[: len(raw) // 2])
    Image.fromarray(img[:1, :1]).save(d / "1x1.png")
    Image.fromarray(img[:1]).save(d / "1xN.png")
    Image.fromarray(img[:, :1]).save(d / "Nx1.png")
    Image.fromarray((np.mgrid[0:48, 0:64][1] * 1000).astype(np.uint16)).save(d / "gray16.png")
    rows = b"".join(b"\x00" + (img[i].astype(np.uint16) * 257).astype(">u2").tobytes() for i in range(48))
    (d / "rgb16.png").write_bytes(_png(64, 48, depth=16, color=2, raw=rows))
    Image.fromarray(img).convert("L").save(d / "gray.png")
    Image.fromarray(img).quantize(16).save(d / "palette_trns.png", transparency=0)
    Image.fromarray(img).convert("CMYK").save(d / "cmyk.jpg")
    frames = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in (40, 128, 255)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    (d / "bomb.png").write_bytes(_png(100_000, 100_000))  # 10^10 pixels declared, 177 bytes
    (d / "bomb_mid.png").write_bytes(_png(12_000, 12_000))  # above Pillow's warning level
    Image.fromarray(np.zeros((2, 70_000, 3), np.uint8)).save(d / "wide.png")
    Image.fromarray(img.astype(np.float32).mean(-1)).save(d / "float.tif")
    good = imcompress.compress(img, "kmeans", n_colors=8)
    (d / "good.imc").write_bytes(good)
    (d / "trunc.imc").write_bytes(good[: len(good) // 2])
    (d / "header.imc").write_bytes(good[:10])
    b = bytearray(good)
    b[4] = 9  # a newer format version, with a valid checksum
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    (d / "newer.imc").write_bytes(bytes(b))
    b = bytearray(good)
    b[8:16] = struct.pack("<II", 60_000, 60_000)
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    (d / "bigdims.imc").write_bytes(bytes(b))
    (d / "fake.imc").write_bytes((d / "ok.png").read_bytes())
    return d


def _run(capsys, argv, cwd, monkeypatch, stdin: bytes | None = None):
    monkeypatch.chdir(cwd)
    if stdin is not None:
        buffer = io.BytesIO(stdin)
        buffer.name = "<stdin>"  # as sys.stdin.buffer is named
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(buffer))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # would print on stderr
        code = main(argv)
    out, err = capsys.readouterr()
    return code, err


def _assert_one_error(code, err, expected, pattern):
    lines = err.strip().splitlines()
    assert code == expected, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("imcompress: error: "), err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def _no_temp_files(folder: Path):
    assert not [p.name for p in folder.rglob("*.tmp")]


# -- compress: every case exits with its code and one line -----------------------------
C = ["compress"]
COMPRESS_ERRORS = [
    # unreadable input image: 2
    (C + ["missing.png", "-o", "o.imc"], ExitCode.INPUT, r"missing\.png: no such file"),
    (C + ["folder", "-o", "o.imc"], ExitCode.INPUT, r"folder: is a folder"),
    (C + ["empty.png", "-o", "o.imc"], ExitCode.INPUT, r"empty\.png: file is empty"),
    (C + ["text.png", "-o", "o.imc"], ExitCode.INPUT, r"text\.png: not an image"),
    (C + ["trunc.png", "-o", "o.imc"], ExitCode.INPUT, r"trunc\.png: corrupt or truncated"),
    (C + ["trunc.jpg", "-o", "o.imc"], ExitCode.INPUT, r"trunc\.jpg: corrupt or truncated"),
    (C + ["bomb.png", "-o", "o.imc"], ExitCode.INPUT, r"100000x100000 = 10000000000 pixels exceeds"),
    (C + ["bomb_mid.png", "-o", "o.imc"], ExitCode.INPUT, r"12000x12000 .* --max-pixels"),
    (C + ["ok.png", "--max-pixels", "100", "-o", "o.imc"], ExitCode.INPUT, r"3072 pixels exceeds the limit of 100"),
    (C + ["float.tif", "-o", "o.imc"], ExitCode.INPUT, r"float\.tif: 32-bit float"),
    (C + ["wide.png", "-o", "o.imc"], ExitCode.INPUT, r"70000x2 pixels exceeds the \.imc side limit"),
    (C + ["1xN.png", "-m", "pca-rows", "-o", "o.imc"], ExitCode.INPUT, r"single row; row PCA needs at least 2"),
    (C + ["-", "-o", "o.imc"], ExitCode.INPUT, r"<stdin>: file is empty"),  # stdin empty
    # usage: 4
    (C + ["ok.png", "-k", "1", "-o", "o.imc"], ExitCode.USAGE, r"n_colors=1 should be in 2\.\.256"),
    (C + ["ok.png", "-k", "100000", "-o", "o.imc"], ExitCode.USAGE, r"n_colors=100000"),
    (C + ["ok.png", "-k", "abc", "-o", "o.imc"], ExitCode.USAGE, r"--colors 'abc'"),
    (C + ["ok.png", "--seed", "-1", "-o", "o.imc"], ExitCode.USAGE, r"random_state=-1 .*--seed"),
    (C + ["ok.png", "--quality", "80-60", "-o", "o.imc"], ExitCode.USAGE, r"MIN 80 above MAX 60"),
    (C + ["ok.png", "--quality", "abc", "-o", "o.imc"], ExitCode.USAGE, r"'abc' is not a quality range"),
    (C + ["ok.png", "--quality", "60-80", "-k", "16", "-o", "o.imc"], ExitCode.USAGE, r"-k/--colors or --quality"),
    (C + ["ok.png", "-m", "pca-patch", "--quality", "abc", "-o", "o.imc"], ExitCode.USAGE, r"should be a number"),
    (C + ["ok.png", "-m", "pca-rows", "--variance", "0", "-o", "o.imc"], ExitCode.USAGE, r"variance=0\.0 .*\(0, 1\]"),
    (C + ["ok.png", "-m", "pca-rows", "--variance", "1.5", "-o", "o.imc"], ExitCode.USAGE, r"variance=1\.5"),
    (C + ["ok.png", "--target-psnr", "-5", "-o", "o.imc"], ExitCode.USAGE, r"--target-psnr -5\.0"),
    (C + ["ok.png", "--max-bytes", "0", "-o", "o.imc"], ExitCode.USAGE, r"--max-bytes 0 should be >= 1"),
    (C + ["ok.png", "-m", "pca-patch", "--bpp", "-1", "-o", "o.imc"], ExitCode.USAGE, r"bpp=-1\.0"),
    (C + ["ok.png", "--max-pixels", "0", "-o", "o.imc"], ExitCode.USAGE, r"--max-pixels"),
    (C + ["ok.png", "ok.jpg", "-o", "o.imc"], ExitCode.USAGE, r"-o names one output but 2 inputs"),
    (C + ["ok.png", "--format", "png", "-o", "o.imc"], ExitCode.USAGE, r"\.imc contradicts --format png"),
    (C + ["ok.png", "-m", "pca-rows", "-o", "o.png"], ExitCode.USAGE, r"writes imc files, not png"),
    (C + ["ok.png", "-o", "o.jpg"], ExitCode.USAGE, r"cannot tell the output format"),
    (C + ["ok.png", "--variance", "0.9", "-o", "o.imc"], ExitCode.USAGE, r"option of --method pca-rows"),
    # output: 5 and 6
    (C + ["ok.png", "-o", "exists.imc"], ExitCode.OUTPUT_EXISTS, r"exists\.imc: already exists; use -f"),
    (C + ["ok.png", "-o", "folder"], ExitCode.WRITE, r"folder: is a folder"),
    (C + ["ok.png", "-o", "nowhere/o.imc"], ExitCode.WRITE, r"folder nowhere does not exist"),
    # targets: 99, 98 (with -f: the old file must survive)
    (C + ["ok.png", "-f", "--max-bytes", "10", "-o", "exists.imc"], ExitCode.QUALITY, r"cannot reach size <= 10"),
    (C + ["ok.png", "-f", "--target-psnr", "99", "-o", "exists.imc"], ExitCode.QUALITY, r"PSNR >= 99"),
    (C + ["ok.jpg", "-f", "-m", "pca-rows", "--variance", "1", "--skip-if-larger", "-o", "exists.imc"],
     ExitCode.SKIPPED, r"larger than the input"),
]


@pytest.fixture
def work(files, tmp_path):
    """A fresh folder holding links to the inputs and an old output."""
    for p in files.iterdir():
        (tmp_path / p.name).symlink_to(p, target_is_directory=p.is_dir())
    (tmp_path / "exists.imc").write_bytes(b"OLD")
    (tmp_path / "exists.png").write_bytes(b"OLD")
    return tmp_path


@pytest.mark.parametrize("argv,code,pattern", COMPRESS_ERRORS, ids=[" ".join(c[0][1:]) for c in COMPRESS_ERRORS])
def test_compress_errors(capsys, monkeypatch, work, argv, code, pattern):
    before = {p.name for p in work.iterdir()}
    got, err = _run(capsys, argv, work, monkeypatch, stdin=b"" if "-" in argv else None)
    _assert_one_error(got, err, code, pattern)
    assert {p.name for p in work.iterdir()} == before  # nothing written, nothing left behind
    assert (work / "exists.imc").read_bytes() == b"OLD"


def test_compress_to_a_full_device_is_a_write_error(capsys, monkeypatch, work):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    got, err = _run(capsys, C + ["ok.png", "--format", "imc", "-o", "/dev/full"], work, monkeypatch)
    _assert_one_error(got, err, ExitCode.WRITE, r"/dev/full: cannot write")
    assert Path("/dev/full").is_char_device()  # written in place, never renamed over


def test_several_inputs_report_each_failure_and_exit_with_the_first_code(capsys, monkeypatch, work):
    got, err = _run(capsys, C + ["ok.png", "missing.png", "text.png", "--ext", ".q.imc"], work, monkeypatch)
    lines = err.strip().splitlines()
    assert got == ExitCode.INPUT
    assert [ln.split(":")[2].strip() for ln in lines] == ["missing.png", "text.png"]
    assert all(ln.startswith("imcompress: error: ") for ln in lines)
    assert imcompress.decompress((work / "ok.q.imc").read_bytes()).shape == (48, 64, 3)
    _no_temp_files(work)


# -- compress: awkward but valid images ------------------------------------------------
def _pillow_reference(path: Path, channels: int) -> np.ndarray:
    with Image.open(path) as im:  # the first frame for animations
        return np.asarray(im.convert("RGBA" if channels == 4 else "RGB"))


@pytest.mark.parametrize("name,method,channels", [
    ("1x1.png", "kmeans", 3), ("1xN.png", "kmeans", 3), ("Nx1.png", "kmeans", 3),
    ("1x1.png", "pca-patch", 3), ("Nx1.png", "pca-rows", 3),
    ("gray.png", "kmeans", 3), ("cmyk.jpg", "kmeans", 3), ("anim.gif", "kmeans", 3),
    ("palette_trns.png", "kmeans", 4), ("gray16.png", "kmeans", 3), ("rgb16.png", "kmeans", 3),
])
def test_awkward_images_round_trip(capsys, monkeypatch, work, name, method, channels):
    got, err = _run(capsys, C + [name, "-m", method, "-q", "-o", "out.imc"], work, monkeypatch)
    assert got == 0, err
    decoded = imcompress.decompress((work / "out.imc").read_bytes())
    ref = imcompress.read_image(work / name, alpha="keep").pixels
    assert decoded.shape == ref.shape and decoded.shape[2] == channels
    if name in ("1x1.png", "gray.png", "cmyk.jpg", "anim.gif", "palette_trns.png") and method == "kmeans":
        # at most 16 distinct colours or a flat frame: the palette is exact
        if len(np.unique(ref.reshape(-1, channels), axis=0)) <= 16:
            np.testing.assert_array_equal(decoded, ref)
    if name in ("cmyk.jpg", "anim.gif", "palette_trns.png"):  # Pillow's conversion, first frame
        np.testing.assert_array_equal(ref, _pillow_reference(work / name, channels))
    if name == "gray16.png":  # 16-bit grey scaled with rounding, not truncation
        with Image.open(work / name) as im:
            v = np.asarray(im, dtype=np.float64)
        np.testing.assert_array_equal(ref[:, :, 0], np.rint(v / 257.0).astype(np.uint8))


def test_our_pixel_limit_replaces_pillows(monkeypatch, files):
    # Pillow's guard lowered below the image: read_image applies only max_pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert imcompress.read_image(files / "ok.png").pixels.shape == (48, 64, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(imcompress.InputError, match="3072 pixels exceeds the limit of 3000"):
        imcompress.read_image(files / "ok.png", max_pixels=3000)


# -- decompress and info -------------------------------------------------------------
D, I = ["decompress"], ["info"]
READ_ERRORS = [
    (["missing.imc"], ExitCode.INPUT, r"missing\.imc: no such file"),
    (["folder"], ExitCode.INPUT, r"folder: is a folder"),
    (["empty.png"], ExitCode.CORRUPT, r"empty\.png: file is empty"),
    (["text.png"], ExitCode.CORRUPT, r"text\.png: not an \.imc file"),
    (["fake.imc"], ExitCode.CORRUPT, r"fake\.imc: not an \.imc file"),
    (["trunc.imc"], ExitCode.CORRUPT, r"trunc\.imc: checksum mismatch"),
    (["header.imc"], ExitCode.CORRUPT, r"header\.imc: truncated"),
    (["newer.imc"], ExitCode.CORRUPT, r"newer\.imc: unsupported \.imc format version 9"),
    (["bigdims.imc"], ExitCode.CORRUPT, r"60000x60000 = 3600000000 pixels, above the limit"),
    (["good.imc", "--max-pixels", "10"], ExitCode.CORRUPT, r"3072 pixels, above the limit of 10; .*--max-pixels"),
    (["-"], ExitCode.INPUT, r"<stdin>: nothing to read"),
]


@pytest.mark.parametrize("command", ["decompress", "info"])
@pytest.mark.parametrize("args,code,pattern", READ_ERRORS, ids=[" ".join(c[0]) for c in READ_ERRORS])
def test_read_errors(capsys, monkeypatch, work, command, args, code, pattern):
    argv = [command, *args] + (["-o", "x.png"] if command == "decompress" else [])
    before = {p.name for p in work.iterdir()}
    got, err = _run(capsys, argv, work, monkeypatch, stdin=b"" if "-" in args else None)
    _assert_one_error(got, err, code, pattern)
    assert {p.name for p in work.iterdir()} == before


DECOMPRESS_OUTPUT_ERRORS = [
    (["-o", "exists.png"], ExitCode.OUTPUT_EXISTS, r"exists\.png: already exists"),
    (["-o", "folder"], ExitCode.WRITE, r"folder: is a folder"),
    (["-o", "nowhere/x.png"], ExitCode.WRITE, r"folder nowhere does not exist"),
    (["-o", "x.xyz"], ExitCode.USAGE, r"unknown image extension '\.xyz'"),
    (["-o", "x.png", "--format", "NOPE"], ExitCode.USAGE, r"--format 'NOPE' is not a format Pillow writes"),
]


@pytest.mark.parametrize("args,code,pattern", DECOMPRESS_OUTPUT_ERRORS,
                         ids=[" ".join(c[0]) for c in DECOMPRESS_OUTPUT_ERRORS])
def test_decompress_output_errors(capsys, monkeypatch, work, args, code, pattern):
    got, err = _run(capsys, ["decompress", "good.imc", *args], work, monkeypatch)
    _assert_one_error(got, err, code, pattern)
    assert (work / "exists.png").read_bytes() == b"OLD"
    _no_temp_files(work)


@pytest.mark.parametrize("args", [["-o", "b.imc"], ["-o", "B.IMC", "--force"], ["-o", "b.png", "--format", "IMC"],
                                  ["-o", "b.png", "--format", "imc"], ["-o", "-", "--format", "imc"]])
def test_decompress_refuses_an_imc_target(capsys, monkeypatch, work, args):
    # Pillow knows .imc (imcompress.plugins): decompress must not silently re-encode
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    got, err = _run(capsys, ["decompress", "good.imc", *args], work, monkeypatch)
    _assert_one_error(got, err, ExitCode.USAGE,
                      r"decompress writes pixel formats such as PNG.*use .*compress.* to re-encode")
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


def test_decompress_to_dev_null_keeps_the_device(capsys, monkeypatch, work):
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    got, err = _run(capsys, ["decompress", "good.imc", "--format", "png", "-q", "-o", "/dev/null"],
                    work, monkeypatch)
    assert got == 0, err
    assert Path("/dev/null").is_char_device()


# -- closed pipe: exit 6 and one line, for each command writing to stdout ---------------
CLOSED_PIPE_SCRIPT = """
import io, json, os, sys
from imcompress.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    r, w = os.pipe(); os.close(r); os.dup2(w, 1); os.close(w)  # stdout: a pipe nobody reads
    sys.stderr = io.StringIO()
    code = main(argv)
    results.append([code, sys.stderr.getvalue()])
    sys.stderr = sys.__stderr__
sys.__stderr__.write(json.dumps(results))
"""


def test_closed_stdout_is_a_write_error(files):
    import json

    commands = [
        ["decompress", "good.imc", "-o", "-"],
        ["info", "good.imc"],
        ["info", "--json", "good.imc"],
        ["compress", "ok.png", "-o", "-"],
    ]
    proc = subprocess.run([sys.executable, "-c", CLOSED_PIPE_SCRIPT, json.dumps(commands)],
                          cwd=files, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stderr.decode())
    assert len(results) == len(commands)
    for argv, (code, err) in zip(commands, results):
        assert "Traceback" not in err, argv
        _assert_one_error(code, err, ExitCode.WRITE, r"broken pipe")


# -- bugs once found in other modules, kept as regression tests --------------------------
def test_report_negative_seed_is_a_usage_error(capsys, monkeypatch, work):
    got, err = _run(capsys, ["report", "ok.png", "--seed", "-1", "-q", "-o", "rep"], work, monkeypatch)
    _assert_one_error(got, err, ExitCode.USAGE, r"seed")


def test_quantizer_negative_seed_is_a_usage_error():
    img = _photo(8, 8)
    with pytest.raises(imcompress.UsageError, match="random_state"):
        imcompress.KMeansQuantizer(4, random_state=-1).fit(img)


# -- safety of the source tree (the layering tests are in test_layering.py) -------------
def test_source_never_unpickles_or_evals():
    pattern = re.compile(r"\bpickle\b|\beval\(|\bexec\(|allow_pickle|\bmarshal\b|shelve")
    offenders = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_click_output_into_closed_pipe_is_a_write_error(args):
    # click turns EPIPE into a silent sys.exit(1); main names it and exits 6
    proc = subprocess.Popen([sys.executable, "-m", "imcompress", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == ExitCode.WRITE
    assert err.count("\n") == 1 and err.startswith("imcompress: error: broken pipe")


# -- the console script's exit ------------------------------------------------------
def test_console_script_flushes_its_output_and_keeps_the_exit_code(tmp_path):
    # run() ends the process with os._exit: a large stdout must still arrive whole,
    # and the exit code of an error must still be the documented one
    img = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    src = tmp_path / "a.png"
    Image.fromarray(img).save(src)
    imc = tmp_path / "a.imc"
    assert main(["compress", str(src), "-o", str(imc), "-m", "pca-rows", "-q"]) == ExitCode.OK
    proc = subprocess.run([sys.executable, "-m", "imcompress", "decompress", str(imc), "-o", "-"],
                          capture_output=True, timeout=120)
    assert proc.returncode == ExitCode.OK, proc.stderr
    decoded = np.asarray(Image.open(io.BytesIO(proc.stdout)))
    np.testing.assert_array_equal(decoded, imcompress.decompress(imc.read_bytes()))
    proc = subprocess.run([sys.executable, "-m", "imcompress", "info", str(tmp_path / "missing.imc")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitCode.INPUT
    assert proc.stderr.count("\n") == 1 and "missing.imc" in proc.stderr


def test_console_script_exits_normally_while_another_thread_runs(monkeypatch):
    # a live non-daemon thread is waited for by an ordinary exit, so run() must not os._exit
    import threading

    import imcompress.cli._main as cli_main

    monkeypatch.setattr(cli_main, "main", lambda: 3)
    monkeypatch.setattr("os._exit", lambda code: pytest.fail("os._exit called with a thread alive"))
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as info:
            cli_main.run()
        assert info.value.code == 3
    finally:
        release.set()
        worker.join()
