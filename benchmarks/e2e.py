"""End to end: the command a user runs against the peers' commands, and our library call
against the peers' library calls, like for like.

Run from the repository root::

    .venv/bin/python benchmarks/e2e.py                      # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/e2e.py --sections startup,study --repeats 5
    .venv/bin/python benchmarks/e2e.py --sections big20     # 20 MP memory and speed only
    .venv/bin/python benchmarks/e2e.py --sections big20,pcapatch --big20-methods pca-patch   # pca-patch at photo size

Sections (``--sections``, comma list):

``startup``
    The floor every Python command pays: ``python -c pass``, ``import numpy``,
    ``import numpy, numba``, and those plus one call of a cached numba kernel
    (``_floor.py``: numba sets up its compiler on the first call, importing
    scipy.linalg for its BLAS check, and cffi), the same floor with numba set up as the
    ``imcompress`` command does it (``_floor.py --lean``: without those two imports), then
    ``imcompress --help``, ``import imcompress`` and ``imcompress compress`` of a 16x16 PNG
    (the whole command's fixed cost: the floor plus our imports, kernel loads and writing).
``study``, ``12mp``
    Whole process against whole process, each under ``/usr/bin/time -v`` (wall time measured
    around it, peak RSS from it): ``imcompress compress`` (palette PNG and ``.imc``) against
    ``pngquant --nofs`` at the same K, both reading the same PNG and writing a file;
    ``imcompress compress -m pca-patch`` against ``cwebp`` and ``cjpeg`` (libjpeg-turbo).
    Runs are interleaved (ours, peer, ours, peer, ...); medians of wall time and of CPU time
    (user + sys: above the wall time when a command uses several cores, and the figure to
    compare under load) are reported, and PSNR of every output file is computed afterwards,
    outside the timing.
``big20``
    A 20 MP photo (5472x3648): ``compress`` and ``decompress`` of kmeans, pca-rows and
    pca-patch as whole processes: time, peak RSS, and bytes per pixel above the decoded image
    ``(peak RSS - start-up RSS) / pixels - 3``, where the start-up RSS is the peak of the same
    command on a 16x16 image.
``pcapatch``
    pca-patch speed: the 12 MP photo compressed at each ``--pcapatch-speeds`` value and decompressed
    (to PNG and to PPM) as whole processes (median wall and CPU time, peak RSS, bpp, PSNR), then
    kodim01 (768x512) encoded and decoded in-process, median of 5.
``phases``
    Where a kmeans ``compress`` spends its time besides the start-up floor: the library steps the
    command runs, in-process and warm, each timed alone (median wall and CPU time, the CPU of all
    threads): reading the PNG, the colour table (``prepare``), the fit and mapping (``quantize``), the
    ``.imc`` index plane, the palette PNG at the command's default level, and ``palette[indices]``
    (the reconstruction the codec returns), on the study photo at K = 16 and 256 and the 12 MP photo.
``aot``
    The kernels compiled ahead of time against the same kernels on numba's JIT
    (``imcompress.kmeans._dispatch``): ``KMeansQuantizer(256).fit_predict`` in-process and warm on
    the coffee photo at 0.3 to 12 MP, both with the same threads (both release the GIL), medians
    of wall and CPU time, beside what numba's start-up costs a process that the compiled kernels
    do not pay (the lean floor minus ``import numpy``, whole processes, interleaved).
``inproc``
    In-process: ``KMeansQuantizer(K).fit_predict(img)`` against libimagequant
    (``imagequant`` package, ``max_colors=K``, no dithering), faiss ``Kmeans`` and
    scikit-learn ``KMeans`` (the last two at fewer K: they are slow), interleaved, medians.

Images: the study photo and the Kodak PNGs from ``../shared/data``; the 12 MP and 20 MP
photos are scikit-image's ``coffee`` resized with Lanczos to 4000x3000 / 5472x3648 (an
upscaled photo: smoother, with fewer distinct colours, than a real capture of that size).
The load average is printed before and after every section; figures measured at a load
average above 1.5 on this 2-core machine are marked as measured under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data next to the checkout (or two levels up, for a git worktree under wt/)
DATA = next((p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").is_dir()),
            ROOT.parent / "shared" / "data")
BIN = Path(sys.executable).parent
IMCOMPRESS = str(BIN / "imcompress")
PY = sys.executable
SECTIONS = ("startup", "study", "12mp", "big20", "pcapatch", "inproc", "phases", "aot")
LOADED = 1.5  # load average above which a figure is "measured under load"


# -- running a process ------------------------------------------------------------------------------


def run_timed(cmd, *, env=None, cpu=False):
    """Run ``cmd`` under /usr/bin/time -v; returns (wall seconds, peak RSS MB[, CPU seconds if ``cpu``])."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], capture_output=True, env=env)
        dt = time.perf_counter() - t
        report = Path(tf.name).read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace').strip()[-400:]}")
    peak = next(int(line.split(":")[1]) for line in report.splitlines() if "Maximum resident" in line)
    if cpu:
        used = sum(float(line.split(":")[1]) for line in report.splitlines()
                   if line.strip().startswith(("User time", "System time")))
        return dt, peak / 1024.0, used
    return dt, peak / 1024.0


def interleaved(commands: dict, repeats: int, *, warmup=True):
    """Run every command ``repeats`` times, round-robin; {name: {"time", "peak_mb", "runs"}}."""
    if warmup:  # page cache, numba's on-disk cache: not what a timed run should pay for the first time only
        for cmd in commands.values():
            run_timed(cmd)
    times = {name: [] for name in commands}
    peaks = {name: [] for name in commands}
    cpus = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            dt, peak, used = run_timed(cmd, cpu=True)
            times[name].append(dt)
            peaks[name].append(peak)
            cpus[name].append(used)
    return {name: {"time": statistics.median(times[name]), "peak_mb": statistics.median(peaks[name]),
                   "cpu": statistics.median(cpus[name]), "runs": repeats,
                   "all": [round(t, 3) for t in times[name]]} for name in commands}


def load():
    return os.getloadavg()[0]


def load_note(lo, hi):
    worst = max(lo, hi)
    tag = f"load average {lo:.2f} before, {hi:.2f} after"
    return tag + (" (measured under load)" if worst > LOADED else " (idle)")


# -- images and quality ------------------------------------------------------------------------------


def read_pixels(path: Path) -> np.ndarray:
    if path.suffix == ".imc":
        import imcompress

        return imcompress.decompress(path.read_bytes())
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def psnr_of(ref: np.ndarray, path: Path) -> float:
    from imcompress.metrics import psnr

    return psnr(ref, read_pixels(path))


def coffee(width, height) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.coffee()).resize((width, height), Image.Resampling.LANCZOS))


def study_image() -> np.ndarray | None:
    from imcompress import load_image

    path = DATA / "elephant.jpg"
    return load_image(path) if path.exists() else None


def kodak_images():
    from imcompress import load_image

    return [(p.stem, load_image(p)) for p in sorted((DATA / "kodak").glob("*.png"))]


def write_inputs(img: np.ndarray, tmp: Path, stem: str):
    png, ppm = tmp / f"{stem}.png", tmp / f"{stem}.ppm"
    Image.fromarray(img).save(png, compress_level=1)  # reading cost comparable to a camera PNG
    Image.fromarray(img).save(ppm)
    return png, ppm


# -- sections ----------------------------------------------------------------------------------------


def section_startup(args, tmp):
    floor = str(Path(__file__).with_name("_floor.py"))
    tiny, _ = write_inputs(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8), tmp, "tiny")
    cmds = {
        "python -c pass": [PY, "-c", "pass"],
        "python: import numpy": [PY, "-c", "import numpy"],
        "python: import numpy, numba": [PY, "-c", "import numpy, numba"],
        "python: import numpy, numba + one cached kernel (the floor)": [PY, floor],
        "the floor, numba set up as imcompress does (_floor.py --lean)": [PY, floor, "--lean"],
        "imcompress --help": [IMCOMPRESS, "--help"],
        "python: import imcompress": [PY, "-c", "import imcompress"],
        "imcompress compress 16x16 PNG -k 4": [IMCOMPRESS, "compress", str(tiny), "-k", "4", "-o",
                                                str(tmp / "tiny-out.png"), "-f"],
        "the same on numba's JIT (IMCOMPRESS_AOT=0)": ["env", "IMCOMPRESS_AOT=0", IMCOMPRESS, "compress", str(tiny),
                                                       "-k", "4", "-o", str(tmp / "tiny-out.png"), "-f"],
    }
    lo = load()
    res = interleaved(cmds, args.repeats)
    hi = load()
    lines = ["## Start-up (whole process)", "", load_note(lo, hi), "",
             "| command | median s | CPU s | peak RSS MB | runs |", "|---|---|---|---|---|"]
    lines += [f"| `{n}` | {r['time']:.3f} | {r['cpu']:.2f} | {r['peak_mb']:.0f} | {r['runs']} |" for n, r in res.items()]
    return lines + [""], {"startup": res, "load": [lo, hi]}


def quantizer_rows(img, stem, ks, repeats, tmp, lossy: bool):
    """Whole-process kmeans vs pngquant (and pca-patch vs cwebp / cjpeg) on one image."""
    png, ppm = write_inputs(img, tmp, stem)
    lines, raw = [], {}
    small = img.shape[0] * img.shape[1] < 4_000_000  # big images: no warm-up run (the caches are warm by then)
    for k in ks:
        outs = {
            "imcompress compress (palette PNG)": tmp / f"{stem}-ours{k}.png",
            "imcompress compress (.imc)": tmp / f"{stem}-ours{k}.imc",
        }
        cmds = {name: [IMCOMPRESS, "compress", str(png), "-k", str(k), "-o", str(out), "-f"]
                for name, out in outs.items()}
        if small:  # the faster quantizer level and the plain zlib writer: the time/size trade-off
            fast = "imcompress compress --speed 5 --png-level 0 (palette PNG)"
            outs[fast] = tmp / f"{stem}-ours{k}-fast.png"
            cmds[fast] = [IMCOMPRESS, "compress", str(png), "-k", str(k), "--speed", "5", "--png-level", "0",
                          "-o", str(outs[fast]), "-f"]
        if small:  # the kernels on numba's JIT, as without their ahead-of-time build (same file)
            jit = "imcompress compress (palette PNG, JIT: IMCOMPRESS_AOT=0)"
            outs[jit] = tmp / f"{stem}-ours{k}-jit.png"
            cmds[jit] = ["env", "IMCOMPRESS_AOT=0", *cmds["imcompress compress (palette PNG)"][:-2],
                         str(outs[jit]), "-f"]
        if not small:  # the faster speed level, for the time/quality trade-off against pngquant
            outs["imcompress compress --speed 6 (palette PNG)"] = tmp / f"{stem}-ours{k}-s6.png"
            cmds["imcompress compress --speed 6 (palette PNG)"] = [
                IMCOMPRESS, "compress", str(png), "-k", str(k), "--speed", "6", "-o",
                str(outs["imcompress compress --speed 6 (palette PNG)"]), "-f"]
        if shutil.which("pngquant"):
            outs["pngquant --nofs"] = tmp / f"{stem}-pq{k}.png"
            cmds["pngquant --nofs"] = ["pngquant", "--force", "--nofs", "--output", str(outs["pngquant --nofs"]),
                                       str(k), str(png)]
        lo = load()
        res = interleaved(cmds, repeats, warmup=small)
        hi = load()
        lines += [f"### {stem}, K = {k}", "", load_note(lo, hi), "",
                  "| command | median s | CPU s | peak RSS MB | bytes | PSNR dB | runs |", "|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            r["bytes"] = outs[name].stat().st_size
            r["psnr"] = psnr_of(img, outs[name])
            lines.append(f"| {name} | {r['time']:.3f} | {r['cpu']:.2f} | {r['peak_mb']:.0f} | {r['bytes']:,} | "
                         f"{r['psnr']:.2f} | {r['runs']} |")
        ours, pq = res["imcompress compress (palette PNG)"], res.get("pngquant --nofs")
        if pq:
            lines += ["", f"pngquant time / our time (palette PNG, same run): {pq['time'] / ours['time']:.2f}x; "
                      f"PSNR ours - pngquant: {ours['psnr'] - pq['psnr']:+.2f} dB", ""]
        raw[f"{stem}|K={k}"] = {"results": res, "load": [lo, hi]}
    if lossy:
        outs = {"imcompress compress -m pca-patch": tmp / f"{stem}-patch.imc"}
        cmds = {"imcompress compress -m pca-patch": [IMCOMPRESS, "compress", str(png), "-m", "pca-patch",
                                                     "-o", str(outs["imcompress compress -m pca-patch"]), "-f"]}
        outs["imcompress decompress (pca-patch)"] = tmp / f"{stem}-patch.dec.png"
        if shutil.which("cwebp"):
            outs["cwebp -q 75"] = tmp / f"{stem}.webp"
            cmds["cwebp -q 75"] = ["cwebp", "-quiet", "-q", "75", str(png), "-o", str(outs["cwebp -q 75"])]
        if shutil.which("cjpeg"):
            outs["cjpeg -quality 75 -optimize"] = tmp / f"{stem}.jpg"
            cmds["cjpeg -quality 75 -optimize"] = ["cjpeg", "-quality", "75", "-optimize", "-outfile",
                                                  str(outs["cjpeg -quality 75 -optimize"]), str(ppm)]
        run_timed(cmds["imcompress compress -m pca-patch"])  # the file the decoder reads
        cmds["imcompress decompress (pca-patch)"] = [IMCOMPRESS, "decompress", str(outs["imcompress compress -m pca-patch"]),
                                                     "-o", str(outs["imcompress decompress (pca-patch)"]), "-f"]
        lo = load()
        res = interleaved(cmds, repeats, warmup=small)
        hi = load()
        lines += [f"### {stem}, lossy codecs (default settings of each)", "", load_note(lo, hi), "",
                  "| command | median s | peak RSS MB | bpp | PSNR dB | runs |", "|---|---|---|---|---|---|"]
        for name, r in res.items():
            if "decompress" in name:
                lines.append(f"| {name} | {r['time']:.3f} | {r['peak_mb']:.0f} | | | {r['runs']} |")
                continue
            r["bytes"] = outs[name].stat().st_size
            r["bpp"] = 8.0 * r["bytes"] / (img.shape[0] * img.shape[1])
            r["psnr"] = psnr_of(img, outs[name]) if outs[name].suffix != ".webp" else _webp_psnr(img, outs[name])
            lines.append(f"| {name} | {r['time']:.3f} | {r['peak_mb']:.0f} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['runs']} |")
        lines.append("")
        raw[f"{stem}|lossy"] = {"results": res, "load": [lo, hi]}
    return lines, raw


def _webp_psnr(img, path):
    from imcompress.metrics import psnr

    with Image.open(path) as im:
        return psnr(img, np.asarray(im.convert("RGB")))


def section_study(args, tmp):
    img = study_image()
    if img is None:
        return ["## Study photo: skipped (../shared/data/elephant.jpg absent)", ""], {}
    lines, raw = quantizer_rows(img, "study", [16, 256], args.repeats, tmp, lossy=True)
    return ["## Study photo (700x466), whole process", ""] + lines, raw


def section_12mp(args, tmp):
    img = coffee(4000, 3000)
    lines, raw = quantizer_rows(img, "12mp", [256], args.big_repeats, tmp, lossy=True)
    return ["## 12 MP photo (coffee, Lanczos 4000x3000), whole process", ""] + lines, raw


def section_big20(args, tmp):
    img = coffee(5472, 3648)
    png, _ = write_inputs(img, tmp, "20mp")
    tiny, _ = write_inputs(img[:16, :16].copy(), tmp, "tiny")
    px = img.shape[0] * img.shape[1]
    lines = ["## 20 MP photo (coffee, Lanczos 5472x3648): memory and time, whole process", "",
             "B/px above the decoded image = (peak RSS - start-up RSS) / pixels - 3, start-up RSS = the peak of the",
             "same command on a 16x16 image. Target: <= 24 B/px.", ""]
    raw = {}
    methods = [m for m in args.big20_methods.split(",") if m]
    lo = load()
    rows = []
    for method in methods:
        extra = ["-k", "256"] if method == "kmeans" else []
        out, tiny_out = tmp / f"20mp.{method}.imc", tmp / f"tiny.{method}.imc"
        comp = [IMCOMPRESS, "compress", str(png), "-m", method, *extra, "-o", str(out), "-f"]
        comp_tiny = [IMCOMPRESS, "compress", str(tiny), "-m", method, *extra, "-o", str(tiny_out), "-f"]
        dec = [IMCOMPRESS, "decompress", str(out), "-o", str(tmp / f"20mp.{method}.png"), "-f"]
        dec_tiny = [IMCOMPRESS, "decompress", str(tiny_out), "-o", str(tmp / f"tiny.{method}.png"), "-f"]
        base_c = interleaved({"c": comp_tiny}, 1)["c"]["peak_mb"]
        res_c = interleaved({"c": comp}, args.big20_repeats, warmup=False)["c"]
        base_d = interleaved({"d": dec_tiny}, 1)["d"]["peak_mb"]
        res_d = interleaved({"d": dec}, args.big20_repeats, warmup=False)["d"]
        q = psnr_of(img, out)
        for what, r, base in (("compress", res_c, base_c), ("decompress", res_d, base_d)):
            r["startup_mb"] = base
            r["bytes_per_pixel"] = (r["peak_mb"] - base) * 2**20 / px - 3.0
            rows.append(f"| {method} | {what} | {r['time']:.2f} | {r['peak_mb']:.0f} | {base:.0f} | "
                        f"{r['bytes_per_pixel']:.1f} | {q:.2f} | {r['runs']} |")
        raw[method] = {"compress": res_c, "decompress": res_d, "psnr": q, "bytes": out.stat().st_size}
    hi = load()
    lines += [load_note(lo, hi), "",
              "| method | command | median s | peak RSS MB | start-up MB | B/px above image | PSNR dB | runs |",
              "|---|---|---|---|---|---|---|---|"] + rows + [""]
    raw["load"] = [lo, hi]
    return lines, raw


def section_aot(args, tmp):
    from imcompress import KMeansQuantizer
    from imcompress.kmeans import _dispatch

    floor = str(Path(__file__).with_name("_floor.py"))
    lo = load()
    start = interleaved({"numpy": [PY, "-c", "import numpy"], "lean floor": [PY, floor, "--lean"]}, args.repeats)
    startup = start["lean floor"]["time"] - start["numpy"]["time"]
    startup_cpu = start["lean floor"]["cpu"] - start["numpy"]["cpu"]
    base = coffee(4000, 3000)
    rows, raw = [], {"startup": start}
    for mp in (0.33, 1, 2, 4, 8, 12):
        w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
        img = base if mp == 12 else np.asarray(Image.fromarray(base).resize((w, w * 3 // 4), Image.Resampling.LANCZOS))
        res = {}
        for name in ("aot", "jit"):
            with _dispatch.forced(name):
                KMeansQuantizer(256).fit_predict(img)  # warm: kernels loaded, caches filled
                runs = []
                for _ in range(args.big_repeats):
                    t, c = time.perf_counter(), time.process_time()
                    KMeansQuantizer(256).fit_predict(img)
                    runs.append((time.perf_counter() - t, time.process_time() - c))
            res[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        saved = res["aot"][0] - res["jit"][0]
        rows.append(f"| {img.shape[1]}x{img.shape[0]} ({img.size // 3 / 1e6:.2f} MP) | {res['aot'][0]:.3f} | "
                    f"{res['aot'][1]:.3f} | {res['jit'][0]:.3f} | {res['jit'][1]:.3f} | {saved:+.3f} |")
        raw[f"{mp}"] = res
    hi = load()
    lines = ["## Kernels compiled ahead of time against the JIT's", "", load_note(lo, hi), "",
             f"numba's start-up in a process (lean floor - import numpy, medians of {args.repeats} interleaved): "
             f"{startup:.3f} s wall, {startup_cpu:.3f} s CPU, which the compiled kernels do not pay.",
             "", "`KMeansQuantizer(256).fit_predict(img)`, in-process, warm, medians of "
             f"{args.big_repeats}:", "",
             "| image | AOT s | AOT CPU s | JIT s | JIT CPU s | AOT - JIT s |", "|---|---|---|---|---|---|"]
    raw["load"] = [lo, hi]
    return lines + rows + [""], raw


def _runs(cmd, repeats):
    """Median wall time, CPU time and peak RSS of ``repeats`` runs of ``cmd``."""
    runs = [run_timed(cmd, cpu=True) for _ in range(repeats)]
    return {"time": statistics.median(r[0] for r in runs), "peak_mb": statistics.median(r[1] for r in runs),
            "cpu": statistics.median(r[2] for r in runs), "runs": repeats, "all": [round(r[0], 3) for r in runs]}


def section_pcapatch(args, tmp):
    """pca-patch speed: 12 MP whole process per --speed, and kodim01 in-process (median of 5)."""
    import imcompress
    from imcompress import load_image

    img = coffee(4000, 3000)
    png, _ = write_inputs(img, tmp, "12mp-pp")
    speeds = [int(s) for s in args.pcapatch_speeds.split(",") if s]
    lines = ["## pca-patch speed (bitstream 2)", "",
             "12 MP (coffee, Lanczos 4000x3000), whole process: `imcompress compress -m pca-patch --speed S` (the",
             "default summary line included) and `imcompress decompress` to PNG (zlib-ng DEFLATE level 6, Pillow's filters) and to PPM",
             "(the decoder without PNG compression). Peak RSS from `/usr/bin/time -v`; CPU = user + sys.", ""]
    lo = load()
    rows, raw = [], {}
    for speed in speeds:
        out = tmp / f"12mp-s{speed}.imc"
        comp = [IMCOMPRESS, "compress", str(png), "-m", "pca-patch", "--speed", str(speed), "-o", str(out), "-f"]
        res = _runs(comp, args.big_repeats)
        q = psnr_of(img, out)
        rows.append(f"| compress --speed {speed} | {res['time']:.2f} | {res['cpu']:.2f} | {res['peak_mb']:.0f} | "
                    f"{8.0 * out.stat().st_size / (img.shape[0] * img.shape[1]):.3f} | {q:.2f} | {res['runs']} |")
        raw[f"compress|{speed}"] = {**res, "psnr": q, "bytes": out.stat().st_size}
        if speed == speeds[0]:
            for ext in ("png", "ppm"):
                dec = [IMCOMPRESS, "decompress", str(out), "-o", str(tmp / f"12mp-pp.dec.{ext}"), "-f"]
                r = _runs(dec, args.big_repeats)
                rows.append(f"| decompress to {ext.upper()} | {r['time']:.2f} | {r['cpu']:.2f} | {r['peak_mb']:.0f} | | | "
                            f"{r['runs']} |")
                raw[f"decompress|{ext}"] = r
            # the PNG is written while decoding (io.PngWriter): it must be png_bytes' file of the pixels
            from imcompress.io import png_bytes

            same = (tmp / "12mp-pp.dec.png").read_bytes() == png_bytes(load_image(tmp / "12mp-pp.dec.ppm"), level=6)
            raw["decompress|png_is_png_bytes"] = same
            if not same:
                raise RuntimeError("decompress to PNG wrote other bytes than io.png_bytes of the decoded pixels")
    hi = load()
    lines += [load_note(lo, hi), "", "| command | median s | CPU s | peak RSS MB | bpp | PSNR dB | runs |",
              "|---|---|---|---|---|---|---|"] + rows + [""]
    if "decompress|png_is_png_bytes" in raw:
        lines += ["The PNG `decompress` wrote is byte for byte `imcompress.io.png_bytes(pixels, level=6)` of the",
                  "decoded pixels (checked in this run).", ""]
    kodim = DATA / "kodak" / "kodim01.png"
    if kodim.exists():
        photo = load_image(kodim)
        codec = imcompress.get_codec("pca-patch")()
        data = codec.export(photo)  # warm-up: numba's cache, page cache
        imcompress.decompress(data)
        lo = load()
        enc, dec = [], []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            data = codec.export(photo)
            enc.append((time.perf_counter() - t, time.process_time() - c))
            t, c = time.perf_counter(), time.process_time()
            imcompress.decompress(data)
            dec.append((time.perf_counter() - t, time.process_time() - c))
        hi = load()
        med = {name: (statistics.median(v[0] for v in runs), statistics.median(v[1] for v in runs))
               for name, runs in (("encode", enc), ("decode", dec))}
        lines += ["kodim01 (768x512), in-process: `get_codec(\"pca-patch\")().export(img)` (the default speed, 8) and",
                  "`imcompress.decompress(data)`, median of 5 after a warm-up (targets < 2 s and < 0.15 s).", "",
                  load_note(lo, hi), "", "| call | median s | median CPU s |", "|---|---|---|"]
        lines += [f"| {name} | {w:.3f} | {c:.3f} |" for name, (w, c) in med.items()] + [""]
        raw["kodim01"] = {"encode": enc, "decode": dec, "load": [lo, hi]}
    raw["load"] = [lo, hi]
    return lines, raw


def section_phases(args, tmp):
    from imcompress.entropy import encode_indices
    from imcompress.io import read_image
    from imcompress.kmeans._codec import KMeansCodec
    from imcompress.kmeans._png import palette_png

    cases = []
    study = study_image()
    if study is not None:
        cases += [("study", study, 16, args.repeats), ("study", study, 256, args.repeats)]
    cases.append(("12mp", coffee(4000, 3000), 256, args.big_repeats))
    lo = load()
    lines, raw = [], {}
    for label, img, k, reps in cases:
        png, _ = write_inputs(img, tmp, f"phases-{label}")
        codec = KMeansCodec(k)
        state = {}

        def prepare():
            state["prepared"] = codec.prepare(state["pixels"])

        def quantize():
            state["palette"], state["indices"], _ = codec.quantize(state["pixels"], prepared=state["prepared"])

        steps = {
            "read the PNG (read_image)": lambda: state.__setitem__("pixels", read_image(png).pixels),
            "colour table (codec.prepare)": prepare,
            "fit and map (codec.quantize)": quantize,
            ".imc index plane (encode_indices)": lambda: encode_indices(state["indices"], state["palette"]),
            "palette PNG, default level (palette_png)": lambda: palette_png(state["palette"], state["indices"]),
            "reconstruction (palette[indices])": lambda: state["palette"][state["indices"]],
        }
        for step in steps.values():  # warm: numba's kernels loaded, the file in the page cache
            step()
        wall = {name: [] for name in steps}
        cpu = {name: [] for name in steps}
        for _ in range(reps):
            for name, step in steps.items():
                c, t = time.process_time(), time.perf_counter()
                step()
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        rec = {name: {"time": statistics.median(wall[name]), "cpu": statistics.median(cpu[name])} for name in steps}
        raw[f"{label}|K={k}"] = rec
        lines += [f"### {label}, K = {k} ({img.shape[1]}x{img.shape[0]}), median of {reps}", "",
                  "| step | wall s | CPU s |", "|---|---|---|"]
        lines += [f"| {name} | {r['time']:.3f} | {r['cpu']:.3f} |" for name, r in rec.items()]
        lines.append("")
    hi = load()
    return ["## Where a kmeans compress spends its time (in-process, warm, step by step)", "",
            load_note(lo, hi), ""] + lines, {"phases": raw, "load": [lo, hi]}


def section_inproc(args, tmp):
    sys.path.insert(0, str(Path(__file__).parent))
    import quantize as Q  # the peers' library calls live there

    from imcompress.metrics import psnr

    from imcompress._threads import max_threads

    ks = [int(k) for k in args.inproc_ks.split(",")]
    slow_ks = {int(k) for k in args.slow_ks.split(",")}
    images = []
    study = study_image()
    if study is not None:
        images.append(("study", study))
    if "kodak" in args.inproc_images:
        images += [(f"kodak/{n}", im) for n, im in kodak_images()]
    if "12mp" in args.inproc_images:
        images.append(("12mp", coffee(4000, 3000)))
    Q.run_ours(images[0][1][:64, :64].copy(), 4)  # numba's cached kernels loaded before any timing
    peers = ["ours", "libimagequant"]
    try:
        import faiss  # noqa: F401

        peers.append("faiss")
    except ImportError:
        pass
    lo = load()
    raw, table = {}, []
    for label, img in images:
        for k in ks:
            names = list(peers)
            if label == "study" and k in slow_ks:
                names.append("sklearn")
            if label.startswith("kodak") or label == "12mp":
                names = [n for n in names if n != "faiss" or k in slow_ks]
            reps = args.repeats if label == "study" else (args.kodak_repeats if label.startswith("kodak")
                                                          else args.big_repeats)
            times = {n: [] for n in names}
            results = {}
            for r in range(reps):
                for n in names:
                    if n == "sklearn" and r > 0:
                        continue  # one run: it takes seconds
                    t = time.perf_counter()
                    pal, idx = Q.RUNNERS[n](img, k)
                    times[n].append(time.perf_counter() - t)
                    results[n] = (pal, idx)
            rec = {}
            for n in names:
                pal, idx = results[n]
                rec[n] = {"time": statistics.median(times[n]), "runs": len(times[n]),
                          "psnr": psnr(img, pal[np.asarray(idx, dtype=np.intp)])}
            raw[f"{label}|{k}"] = rec
            table.append((label, k, rec))
            print(f"inproc {label} K={k}: " + ", ".join(f"{n} {v['time']:.3f}s {v['psnr']:.2f}dB"
                                                      for n, v in rec.items()), file=sys.stderr, flush=True)
    hi = load()
    lines = ["## In-process: library call against library call", "", load_note(lo, hi), "",
             "`ours` = `KMeansQuantizer(K, random_state=0).fit_predict(img)`; libimagequant =",
             "`imagequant.quantize_pil_image(dithering_level=0, max_colors=K)`; faiss `Kmeans(3, K, seed=0)` + search;",
             "scikit-learn `KMeans(K, n_init=1, random_state=0)` on all pixels (one run). Time in s, median.",
             f"Ours runs Lloyd's assignment on {max_threads()} thread(s) (`IMCOMPRESS_NUM_THREADS`; the same",
             "result on any number); the peers as their packages ship.", "",
             "| image | K | ours s / dB | libimagequant s / dB | liq / ours time | faiss s / dB | scikit-learn s / dB |",
             "|---|---|---|---|---|---|---|"]

    def cell(rec, n):
        return f"{rec[n]['time']:.3f} / {rec[n]['psnr']:.2f}" if n in rec else "–"

    for label, k, rec in table:
        if label.startswith("kodak"):
            continue
        ratio = rec["libimagequant"]["time"] / rec["ours"]["time"]
        lines.append(f"| {label} | {k} | {cell(rec, 'ours')} | {cell(rec, 'libimagequant')} | {ratio:.2f}x | "
                     f"{cell(rec, 'faiss')} | {cell(rec, 'sklearn')} |")
    kod = [(label, k, rec) for label, k, rec in table if label.startswith("kodak")]
    if kod:
        lines += ["", "Kodak (12 photos): total time over the photos, ours faster / PSNR >= libimagequant on how many", "",
                  "| K | ours s | libimagequant s | liq / ours | ours faster | ours PSNR >= liq | worst PSNR margin dB |",
                  "|---|---|---|---|---|---|---|"]
        for k in ks:
            rows = [rec for _, kk, rec in kod if kk == k]
            to = sum(r["ours"]["time"] for r in rows)
            tl = sum(r["libimagequant"]["time"] for r in rows)
            faster = sum(r["ours"]["time"] < r["libimagequant"]["time"] for r in rows)
            better = sum(r["ours"]["psnr"] >= r["libimagequant"]["psnr"] for r in rows)
            worst = min(r["ours"]["psnr"] - r["libimagequant"]["psnr"] for r in rows)
            lines.append(f"| {k} | {to:.2f} | {tl:.2f} | {tl / to:.2f}x | {faster}/{len(rows)} | {better}/{len(rows)} | {worst:+.3f} |")
    return lines + [""], {"inproc": raw, "load": [lo, hi]}


# -- report ------------------------------------------------------------------------------------------


def header():
    import numba
    import PIL

    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}",
                f"Pillow {PIL.__version__}"]
    for tool, flag in (("pngquant", "--version"), ("cwebp", "-version")):
        if shutil.which(tool):
            versions.append(f"{tool} " + subprocess.run([tool, flag], capture_output=True, text=True).stdout.split()[0])
    if shutil.which("cjpeg"):
        out = subprocess.run(["cjpeg", "-version"], capture_output=True, text=True)
        versions.append("cjpeg (" + (out.stderr or out.stdout).strip().split(" (")[0] + ")")
    for mod in ("imagequant", "faiss", "sklearn"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            pass
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"# End to end: imcompress against the peers, like for like", "",
            f"Date {date}; {os.cpu_count()} cores ({cpu}); {', '.join(versions)}.", "", bytecode_note(), "",
            "Whole process against whole process (`/usr/bin/time -v`), library call against library call;",
            "interleaved runs, medians, the load average printed per section (1-minute average; figures",
            f"measured above {LOADED} on this machine are marked as measured under load).", ""]


def bytecode_note() -> str:
    """Whether imcompress's modules have up-to-date bytecode caches, as an installed package has.

    Without them (an editable install run with PYTHONDONTWRITEBYTECODE set) every command
    compiles the modules it imports again; ``make install`` writes them.
    """
    import importlib.util

    import imcompress

    sources = sorted(Path(imcompress.__file__).parent.rglob("*.py"))
    stale = [p for p in sources if not (c := Path(importlib.util.cache_from_source(str(p)))).exists()
             or c.stat().st_mtime < p.stat().st_mtime]
    if not stale:
        return f"Bytecode caches: present and up to date for all {len(sources)} imcompress modules (as installed)."
    return (f"Bytecode caches: missing or stale for {len(stale)} of {len(sources)} imcompress modules, so "
            "every command compiles them (run `make install`); the start-up figures include that.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--repeats", type=int, default=7, help="runs per command on small images")
    ap.add_argument("--big-repeats", type=int, default=3, help="runs per command on the 12 MP photo")
    ap.add_argument("--big20-repeats", type=int, default=1, help="runs per command on the 20 MP photo")
    ap.add_argument("--big20-methods", default="kmeans,pca-rows,pca-patch")
    ap.add_argument("--pcapatch-speeds", default="5,7,9", help="--speed values of the pcapatch section (first: decoded)")
    ap.add_argument("--kodak-repeats", type=int, default=3)
    ap.add_argument("--inproc-ks", default="16,32,64,128,256")
    ap.add_argument("--inproc-images", default="study,kodak,12mp")
    ap.add_argument("--slow-ks", default="16,256", help="K at which scikit-learn and faiss run")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "e2e.md"))
    ap.add_argument("--json", default=None, help="also write the raw records here")
    args = ap.parse_args(argv)
    chosen = [s for s in args.sections.split(",") if s]
    for s in chosen:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")
    lines, raw = header(), {}
    tmp = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    try:
        for s in chosen:
            print(f"== {s} (load {load():.2f})", file=sys.stderr, flush=True)
            part, data = globals()[f"section_{s}"](args, tmp)
            lines += part
            raw[s] = data
            print("\n".join(part), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1, default=float))


if __name__ == "__main__":
    main()
