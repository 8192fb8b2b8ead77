"""Palette PNGs compared file for file: each tool's OWN output, as a user gets it.

Run from the repository root::

    .venv/bin/python benchmarks/png.py                        # study photo, 12 Kodak, 12 MP (~20 min busy)
    .venv/bin/python benchmarks/png.py --images study --repeats 5 --levels 0,1,2,3   # the level choice

Tools, each a whole process timed by ``/usr/bin/time`` (wall seconds, peak RSS), no dithering:

* ``ours`` -- ``imcompress compress IN -k K -o OUT.png`` at the default ``--png-level``;
* ``ours-L<n>`` -- the same at ``--png-level n`` (``ours-L0`` is plain zlib level 9 on every
  core, as Pillow's writer: no oxipng);
* ``pngquant`` -- ``pngquant --nofs K IN`` (Debian's, as ``make bench`` installs it);
* ``liq+pillow`` -- libimagequant (the ``imagequant`` package) quantizing, Pillow writing
  (``save(optimize=True)``), in one ``python`` process.

Every tool reads the same PNG input (the study photo is converted from JPEG once). Bytes are
the output file's size; PSNR (RGB, float64) compares the output file's pixels, as Pillow
decodes them, with the input. Runs are interleaved (tool by tool within each repeat) and times
are medians over repeats. The 12 MP photo is the study photo upscaled (Lanczos) to 4243x2828
inside the benchmark, in a temporary folder, never kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent
TIME = "/usr/bin/time"

LIQ = """
import sys, imagequant
from PIL import Image
src, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
im = imagequant.quantize_pil_image(Image.open(src).convert("RGBA"), dithering_level=0.0, max_colors=k)
im.save(out, optimize=True)
"""


def inputs(which, folder):
    """[(name, png path)]: every tool reads the same PNG."""
    out = []
    study = DATA / "elephant.jpg"
    if study.exists() and ("study" in which or "12mp" in which):
        img = Image.open(study).convert("RGB")
        if "study" in which:
            p = folder / "study.png"
            img.save(p)
            out.append(("study 700x466", p))
        if "12mp" in which:
            p = folder / "study-12mp.png"
            img.resize((4243, 2828), Image.Resampling.LANCZOS).save(p)
            out.append(("12 MP (study upscaled)", p))
    if "kodak" in which:
        out += [(f"kodak/{p.stem}", p) for p in sorted((DATA / "kodak").glob("*.png"))]
    if not out:
        sys.exit(f"no input images found under {DATA}")
    return out


def command(tool, src, out, k):
    if tool == "pngquant":
        return ["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(src)]
    if tool == "liq+pillow":
        return [sys.executable, "-c", LIQ, str(src), str(out), str(k)]
    cmd = [str(BIN / "imcompress"), "compress", str(src), "-k", str(k), "-o", str(out), "-f", "-q"]
    if tool.startswith("ours-L"):
        cmd += ["--png-level", tool[len("ours-L"):]]
    return cmd


def timed(cmd):
    """(wall seconds, peak RSS MB) of one whole process."""
    res = subprocess.run([TIME, "-f", "%e %M", *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-400:]}")
    wall, kb = res.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kb) / 1024


def in_process(tool, src, out, k):
    """Our file made by the library call the command makes, timed in process (RSS not measured)."""
    import time

    from imcompress.io import read_image
    from imcompress.kmeans import DEFAULT_PNG_LEVEL
    from imcompress.kmeans._codec import KMeansCodec

    level = int(tool[len("ours-L"):]) if tool.startswith("ours-L") else DEFAULT_PNG_LEVEL
    t = time.perf_counter()
    pixels = read_image(src, alpha="keep").pixels
    data = KMeansCodec(k, png_level=level).compress(pixels, format="png").data
    out.write_bytes(data)
    return time.perf_counter() - t, float("nan")


def psnr_of(src, out):
    from imcompress.metrics import psnr

    a = np.asarray(Image.open(src).convert("RGB"))
    b = np.asarray(Image.open(out).convert("RGB"))
    return psnr(a, b)


def machine():
    import PIL

    import imcompress

    versions = [f"Python {platform.python_version()}", f"imcompress {imcompress.__version__}", f"Pillow {PIL.__version__}"]
    for mod, dist in (("oxipng", "pyoxipng-ng"), ("imagequant", "imagequant")):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:  # noqa: BLE001 - not installed: said so
            versions.append(f"{dist} not installed")
    pq = shutil.which("pngquant")
    if pq:
        versions.append("pngquant " + subprocess.run([pq, "--version"], capture_output=True, text=True).stdout.split()[0])
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {platform.machine()}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f} at start; " + ", ".join(versions))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="study,kodak,12mp", help="comma list of study, kodak, 12mp")
    ap.add_argument("--ks", default="16,64,256")
    ap.add_argument("--levels", default="0", help="extra --png-level values measured as ours-L<n>")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per tool (study photo and 12 MP)")
    ap.add_argument("--kodak-repeats", type=int, default=1, help="timed runs per tool on each Kodak photo")
    ap.add_argument("--big-repeats", type=int, default=3, help="timed runs per tool on the 12 MP photo")
    ap.add_argument("--no-peers", action="store_true", help="ours only (level studies)")
    ap.add_argument("--kodak-in-process", action="store_true",
                    help="on Kodak, make our files with the library call (the same bytes as the command) "
                         "and time that call, to save the process start-up on a busy machine")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "png.md"))
    args = ap.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    tools = ["ours"] + [f"ours-L{n}" for n in args.levels.split(",") if n != ""]
    if not args.no_peers:
        if shutil.which("pngquant"):
            tools.append("pngquant")
        else:
            print("pngquant not installed: its column is skipped", file=sys.stderr)
        try:
            import imagequant  # noqa: F401

            tools.append("liq+pillow")
        except ImportError:
            print("imagequant not installed (pip install -e '.[bench]'): its column is skipped", file=sys.stderr)
    header = machine()
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="imc-png-bench-") as tmp:
        tmp = Path(tmp)
        for name, src in inputs(args.images.split(","), tmp):
            repeats = (args.kodak_repeats if name.startswith("kodak/")
                       else args.big_repeats if name.startswith("12 MP") else args.repeats)
            for k in ks:
                times = {t: [] for t in tools}
                rss = {}
                outs = {t: tmp / f"{t}-{k}.png" for t in tools}
                for _ in range(repeats):
                    for t in tools:  # interleaved: every tool once per repeat
                        if t.startswith("ours") and args.kodak_in_process and name.startswith("kodak/"):
                            wall, mb = in_process(t, src, outs[t], k)
                        else:
                            wall, mb = timed(command(t, src, outs[t], k))
                        times[t].append(wall)
                        rss[t] = max(rss.get(t, 0), mb)
                row = {"image": name, "k": k, "load": os.getloadavg()[0]}
                for t in tools:
                    row[t] = (outs[t].stat().st_size, psnr_of(src, outs[t]), statistics.median(times[t]), rss[t])
                rows.append(row)
                print(line(row, tools), flush=True)
    text = report(header, rows, tools, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print("\n" + text)


def line(row, tools):
    cells = [f"{t} {row[t][0]} B {row[t][1]:.2f} dB {row[t][2]:.2f} s" for t in tools]
    return f"{row['image']} K={row['k']} (load {row['load']:.1f}): " + " | ".join(cells)


def report(header, rows, tools, args):
    out = [f"# Palette PNGs, each tool's own file (`benchmarks/png.py {' '.join(sys.argv[1:])}`)", "",
           header, "", "Bytes / PSNR dB / whole-process seconds (median) / peak RSS MB."
           + (" On Kodak our files were made by the library call the command makes, timed in process "
              "(no RSS): the same bytes." if args.kodak_in_process else ""), ""]
    out.append("| image | K | " + " | ".join(tools) + " | ours / pngquant bytes |")
    out.append("|---|---|" + "---|" * len(tools) + "---|")
    ratios = []
    for r in rows:
        cells = [f"{r[t][0]:,} / {r[t][1]:.2f} / {r[t][2]:.2f} / {r[t][3]:.0f}" for t in tools]
        ratio = ""
        if "pngquant" in r:
            q = r["ours"][0] / r["pngquant"][0]
            ratios.append((q, r["ours"][1] - r["pngquant"][1], r))
            ratio = f"{q:.3f}"
        out.append(f"| {r['image']} | {r['k']} | " + " | ".join(cells) + f" | {ratio} |")
    if ratios:
        qs = [q for q, _, _ in ratios]
        worse = [f"{r['image']} K={r['k']}" for q, d, r in ratios if q >= 1 or d < 0]
        out += ["", f"ours / pngquant bytes: median {statistics.median(qs):.3f}, max {max(qs):.3f}, "
                f"min {min(qs):.3f} over {len(qs)} photo/K pairs; PSNR difference (ours - pngquant) "
                f"min {min(d for _, d, _ in ratios):+.2f} dB.",
                "Pairs where ours is not both smaller and at least as good: " + (", ".join(worse) or "none") + "."]
        for k in sorted({r["k"] for _, _, r in ratios}):
            sub = [q for q, _, r in ratios if r["k"] == k]
            out.append(f"K = {k}: median ratio {statistics.median(sub):.3f} (max {max(sub):.3f}).")
    for t in tools:
        ts = [r[t][2] for r in rows]
        out.append(f"{t}: median whole-process time {statistics.median(ts):.2f} s over the rows.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
