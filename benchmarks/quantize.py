"""Colour quantizers compared: imcompress's K-means against scikit-learn, faiss, Pillow,
libimagequant and pngquant, on time, PSNR, SSIM, palette-PNG bytes and (12 MP) peak memory.

Run from the repository root::

    .venv/bin/python benchmarks/quantize.py                    # everything (~30 min on 2 busy cores)
    .venv/bin/python benchmarks/quantize.py --images study --ks 16,256 --repeats 3   # quick
    .venv/bin/python benchmarks/quantize.py --images 12mp --ks 256 --methods ours,pngquant

Images: ``study`` (the study photo), ``kodak`` (the 12 Kodak PNGs), ``12mp`` (scikit-image's
``coffee`` photo resized with Lanczos to 4000x3000: an upscaled photo, smoother than a real
12 MP capture). No dithering anywhere. Time is the median of ``--repeats`` runs of
quantize + map (palette and indices) from an in-memory RGB array; pngquant's time is its
process wall time on a PNG file (it reads and writes PNG, so it carries I/O that the others
do not). PNG bytes: the quantized image as an 8-bit palette PNG, Pillow ``optimize=True``.
On the 12 MP image every method runs in its own subprocess, whose peak RSS
(``ru_maxrss``, imports and the 36 MB image included) is reported, with ``--big-repeats``
runs and a per-run timeout.
"""

from __future__ import annotations

import argparse
import io
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
METHODS = ("ours", "sklearn", "minibatch", "faiss", "mediancut", "fastoctree", "libimagequant", "pngquant")
SLOW = ("sklearn", "minibatch")


# -- the methods: each returns (palette (K, 3) uint8, indices (H, W)) ------------------------------


def run_ours(img, k):
    from imcompress.kmeans import KMeansQuantizer

    # fit_predict: what a user quantizing one image calls (the same indices as fit + predict)
    q = KMeansQuantizer(k, random_state=0)
    idx = q.fit_predict(img)
    return q.palette_, idx


def _sk(img, k, cls, **kw):
    X = img.reshape(-1, 3).astype(np.float64)
    km = cls(n_clusters=k, random_state=0, n_init=1, **kw).fit(X)
    pal = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
    return pal, km.labels_.reshape(img.shape[:2])


def run_sklearn(img, k):
    from sklearn.cluster import KMeans

    return _sk(img, k, KMeans)


def run_minibatch(img, k):
    from sklearn.cluster import MiniBatchKMeans

    return _sk(img, k, MiniBatchKMeans)


def run_faiss(img, k):
    import faiss

    X = np.ascontiguousarray(img.reshape(-1, 3), dtype=np.float32)
    km = faiss.Kmeans(3, k, seed=0, verbose=False)
    km.train(X)
    _, labels = km.index.search(X, 1)
    pal = np.clip(np.rint(km.centroids), 0, 255).astype(np.uint8)
    return pal, labels.reshape(img.shape[:2])


def _pil(img, k, method):
    im = Image.fromarray(img).quantize(colors=k, method=method, dither=Image.Dither.NONE)
    pal = np.asarray(im.getpalette()[: 3 * k], dtype=np.uint8).reshape(-1, 3)
    return pal, np.asarray(im)


def run_mediancut(img, k):
    return _pil(img, k, Image.Quantize.MEDIANCUT)


def run_fastoctree(img, k):
    return _pil(img, k, Image.Quantize.FASTOCTREE)


def run_libimagequant(img, k):
    import imagequant

    im = imagequant.quantize_pil_image(Image.fromarray(img), dithering_level=0.0, max_colors=k)
    pal = np.asarray(im.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    return pal, np.asarray(im)


def run_pngquant(png_path, k):
    """pngquant on a PNG file (its own I/O included); returns (palette, indices, seconds)."""
    out = png_path.with_name(png_path.stem + f"-pq{k}.png")
    t = time.perf_counter()
    subprocess.run(
        ["pngquant", "--force", "--nofs", "--speed", "4", "--output", str(out), str(k), str(png_path)],
        check=True,
        capture_output=True,
    )
    dt = time.perf_counter() - t
    im = Image.open(out)
    im.load()
    pal = np.asarray(im.getpalette(), dtype=np.uint8).reshape(-1, 3)
    idx = np.asarray(im)
    out.unlink()
    return pal, idx, dt


RUNNERS = {name: globals()[f"run_{name}"] for name in METHODS}


# -- measuring ------------------------------------------------------------------------------------


def palette_png_bytes(palette, indices):
    im = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), mode="P")
    flat = np.zeros(768, np.uint8)
    flat[: palette.size] = palette.ravel()[:768]
    im.putpalette(flat.tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return len(buf.getvalue())


def score(img, palette, indices):
    from imcompress.metrics import psnr, ssim

    out = palette[np.asarray(indices, dtype=np.intp)]
    return {
        "psnr": psnr(img, out),
        "ssim": ssim(img, out),
        "png_bytes": palette_png_bytes(palette, indices),
        "colors_used": int(np.unique(np.asarray(indices)).size),
    }


def time_method(name, img, k, repeats, png_path, on_done=None):
    times, result = [], None
    for _ in range(repeats):
        if name == "pngquant":
            pal, idx, dt = run_pngquant(png_path, k)
        else:
            t = time.perf_counter()
            pal, idx = RUNNERS[name](img, k)
            dt = time.perf_counter() - t
        times.append(dt)
        result = (pal, idx)
    peak = on_done() if on_done else None  # before scoring, whose float64 copies are not the method's
    rec = score(img, *result)
    rec.update(time=statistics.median(times), repeats=repeats)
    if peak is not None:
        rec["peak_rss_mb"] = peak
    return rec


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import quantize as B
from pathlib import Path
name, k, repeats, png = {name!r}, {k}, {repeats}, Path({png!r})
img = B.big_image()
if name == "ours":
    B.RUNNERS[name](img[:64, :64].copy(), 4)  # load numba's cached kernels before timing
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
who = resource.RUSAGE_CHILDREN if name == "pngquant" else resource.RUSAGE_SELF
rec = B.time_method(name, img, k, repeats, png, on_done=lambda: resource.getrusage(who).ru_maxrss / 1024)
rec["baseline_rss_mb"] = base / 1024
print("RESULT " + json.dumps(rec))
"""


def time_method_subprocess(name, k, repeats, png_path, timeout):
    code = _CHILD.format(bench=str(Path(__file__).parent), name=name, k=k, repeats=repeats, png=str(png_path))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}


# -- images ---------------------------------------------------------------------------------------


def big_image():
    from skimage import data

    return np.asarray(Image.fromarray(data.coffee()).resize((4000, 3000), Image.Resampling.LANCZOS))


def load_images(which):
    from imcompress import load_image

    images = []
    if "study" in which and (DATA / "elephant.jpg").exists():
        images.append(("study (elephant 700x466)", load_image(DATA / "elephant.jpg")))
    if "kodak" in which:
        for p in sorted((DATA / "kodak").glob("*.png")):
            images.append((f"kodak/{p.stem}", load_image(p)))
    return images


# -- report ---------------------------------------------------------------------------------------


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import PIL
    import sklearn

    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}",
                f"scikit-learn {sklearn.__version__}", f"Pillow {PIL.__version__}"]
    try:
        import faiss

        versions.append(f"faiss {faiss.__version__}")
    except ImportError:
        pass
    pq = shutil.which("pngquant")
    if pq:
        v = subprocess.run([pq, "--version"], capture_output=True, text=True).stdout.strip()
        versions.append(f"pngquant {v}")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "load": os.getloadavg()[0],
        "versions": ", ".join(versions),
    }


def fmt_table(rows, methods, ks, field, fmt):
    head = "| image | K | " + " | ".join(methods) + " |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    for (image, k), recs in rows.items():
        if k not in ks:
            continue
        cells = []
        for m in methods:
            r = recs.get(m)
            if r is None:
                cells.append("–")
            elif "timeout" in r:
                cells.append(f">{r['timeout']:.0f} s")
            elif "error" in r:
                cells.append("error")
            elif field == "time":
                cells.append(f"{fmt(r[field])} ({r.get('repeats', '?')})")
            else:
                cells.append(fmt(r[field]))
        lines.append(f"| {image} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="study,kodak,12mp", help="comma list of study, kodak, 12mp")
    ap.add_argument("--ks", default="6,16,64,256")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median reported)")
    ap.add_argument("--kodak-repeats", type=int, default=3, help="timed runs per cell on the Kodak photos")
    ap.add_argument("--slow-repeats", type=int, default=1,
                    help="runs of scikit-learn KMeans/MiniBatchKMeans on the study and Kodak photos")
    ap.add_argument("--minibatch-repeats", type=int, default=1, help="runs of MiniBatchKMeans per cell")
    ap.add_argument("--big-methods", default=None, help="methods on the 12 MP image (default: --methods)")
    ap.add_argument("--big-slow-ks", default="6,16", help="K values at which the slow peers run on the 12 MP image")
    ap.add_argument("--report-only", default=None,
                    help="comma list of JSON files from earlier runs (--json): merge them into one report, measure nothing")
    ap.add_argument("--big-repeats", type=int, default=3, help="runs per method on the 12 MP image")
    ap.add_argument("--big-slow-repeats", type=int, default=1, help="runs of the slow peers on the 12 MP image")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per 12 MP subprocess")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "quantize.md"))
    ap.add_argument("--json", default=None, help="also write the raw records as JSON")
    args = ap.parse_args(argv)
    if args.report_only:
        rows = {}
        for path in args.report_only.split(","):
            for key, recs in json.loads(Path(path).read_text()).items():
                image, k = key.rsplit("|", 1)
                rows.setdefault((image, int(k)), {}).update(recs)
        ks = sorted({k for _, k in rows})
        methods = [m for m in METHODS if any(m in r for r in rows.values())]
        text = report(rows, methods, ks, args)
        print(text)
        Path(args.output).write_text(text)
        return
    which = set(args.images.split(","))
    ks = [int(k) for k in args.ks.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    if "pngquant" in methods and shutil.which("pngquant") is None:
        print("pngquant not installed: its column is skipped", file=sys.stderr)
        methods.remove("pngquant")

    from imcompress.kmeans import KMeansQuantizer

    KMeansQuantizer(4).fit(np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8))  # warm numba
    rows = {}
    tmp = Path(tempfile.mkdtemp(prefix="quantize-bench-"))
    for label, img in load_images(which):
        png = tmp / "input.png"
        Image.fromarray(img).save(png)
        for k in ks:
            recs = rows.setdefault((label, k), {})
            for m in methods:
                reps = args.repeats if not label.startswith("kodak") else args.kodak_repeats
                if m in SLOW:
                    reps = args.minibatch_repeats if m == "minibatch" else args.slow_repeats
                recs[m] = time_method(m, img, k, reps, png)
                print(f"{label} K={k} {m}: {recs[m]['time']:.3f} s {recs[m]['psnr']:.2f} dB", file=sys.stderr, flush=True)
    if "12mp" in which:
        png = tmp / "big.png"
        Image.fromarray(big_image()).save(png)
        big_methods = args.big_methods.split(",") if args.big_methods else methods
        big_slow_ks = {int(k) for k in args.big_slow_ks.split(",")}
        for k in ks:
            recs = rows.setdefault(("12mp (coffee, Lanczos 4000x3000)", k), {})
            for m in big_methods:
                if m in SLOW and k not in big_slow_ks:
                    continue
                reps = args.big_slow_repeats if m in SLOW else args.big_repeats
                recs[m] = time_method_subprocess(m, k, reps, png, args.timeout)
                print(f"12mp K={k} {m}: {recs[m]}", file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    text = report(rows, methods, ks, args)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({f"{a}|{b}": v for (a, b), v in rows.items()}, indent=1, default=float))


def report(rows, methods, ks, args):
    info = machine()
    out = [
        "# Colour quantizers: imcompress K-means vs peers",
        "",
        f"Date {info['date']}; {info['nproc']} cores ({info['cpu']}), load average at the end {info['load']:.1f} "
        "(the machine was shared with other jobs: compare ratios within a run, not absolute times).",
        f"Versions: {info['versions']}.",
        "",
        "Repeats per cell are in the raw JSON (`repeats`); the runs behind this file are listed at the end.",
        "",
        "No dithering. `ours` = `KMeansQuantizer(K, random_state=0)` (speed 4); scikit-learn `KMeans` and",
        "`MiniBatchKMeans` with `n_init=1, random_state=0` on all pixels; faiss `Kmeans(3, K, seed=0)` (25",
        "iterations); Pillow `quantize` MEDIANCUT / FASTOCTREE; libimagequant via the `imagequant` package",
        "(speed 4 default); pngquant `--nofs --speed 4` as a process on a PNG file (I/O included).",
        "Time: median of the repeats of each cell (see the runs at the end); 12 MP image: scikit-image",
        "`coffee` resized with Lanczos to 4000x3000, each method in its own subprocess (the slow",
        "scikit-learn peers only at small K there, with a timeout).",
        "",
    ]
    single = {key: recs for key, recs in rows.items() if not key[0].startswith("kodak")}
    out += ["## Time (s; number of timed runs in brackets)", "", fmt_table(single, methods, ks, "time", lambda v: f"{v:.3f}"), ""]
    if "sklearn" in methods or "libimagequant" in methods:
        # pngquant is a whole process (start-up, PNG decode and encode) against our library call:
        # not like for like, so it has no speed-up column; benchmarks/e2e.py compares processes
        out += ["### Speed-up of ours (peer time / our time, library calls in the same run)", "",
                "pngquant's time above is its whole process (start-up and PNG I/O included), not comparable with",
                "the library calls; `benchmarks/e2e.py` compares our whole command with pngquant's.", ""]
        peers = [m for m in ("sklearn", "faiss", "libimagequant") if m in methods]
        out.append("| image | K | " + " | ".join(f"vs {p}" for p in peers) + " |")
        out.append("|" + "---|" * (len(peers) + 2))
        for (image, k), recs in single.items():
            ours = recs.get("ours", {}).get("time")
            cells = []
            for p in peers:
                t = recs.get(p, {}).get("time")
                cells.append(f"{t / ours:.1f}x" if (t and ours) else "–")
            out.append(f"| {image} | {k} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## PSNR (dB)", "", fmt_table(single, methods, ks, "psnr", lambda v: f"{v:.2f}"), ""]
    out += ["## SSIM", "", fmt_table(single, methods, ks, "ssim", lambda v: f"{v:.4f}"), ""]
    out += ["## Palette PNG bytes (Pillow optimize=True)", "",
            fmt_table(single, methods, ks, "png_bytes", lambda v: f"{v:,}"), ""]
    big = {key: recs for key, recs in rows.items() if key[0].startswith("12mp")}
    if big:
        out += ["## 12 MP peak memory (MB, peak RSS of the method's process)", "",
                fmt_table(big, methods, ks, "peak_rss_mb", lambda v: f"{v:.0f}"), ""]
        base = [r.get("baseline_rss_mb") for recs in big.values() for r in recs.values() if r.get("baseline_rss_mb")]
        if base:
            out += [f"Baseline RSS after imports and loading the image: ~{statistics.median(base):.0f} MB.", ""]
    kodak = {key: recs for key, recs in rows.items() if key[0].startswith("kodak")}
    if kodak:
        out += ["## Kodak (12 photos)", "", "Mean over the photos:", ""]
        out.append("| K | " + " | ".join(f"{m} dB / s" for m in methods) + " |")
        out.append("|" + "---|" * (len(methods) + 1))
        for k in ks:
            cells = []
            for m in methods:
                recs = [r[m] for (img, kk), r in kodak.items() if kk == k and m in r]
                if recs:
                    cells.append(f"{np.mean([r['psnr'] for r in recs]):.2f} / {np.mean([r['time'] for r in recs]):.3f}")
                else:
                    cells.append("–")
            out.append(f"| {k} | " + " | ".join(cells) + " |")
        out.append("")
        if "ours" in methods:
            out += ["Targets per K (count of the 12 photos): ours >= scikit-learn - 0.05 dB; ours > pngquant;",
                    "ours > libimagequant; worst margin to each in dB.", ""]
            out.append("| K | >= sklearn - 0.05 | worst vs sklearn | > pngquant | worst vs pngquant | > libimagequant | worst vs libimagequant |")
            out.append("|---|---|---|---|---|---|---|")
            for k in ks:
                cells = []
                for peer, slack in (("sklearn", 0.05), ("pngquant", 0.0), ("libimagequant", 0.0)):
                    diffs = [r["ours"]["psnr"] - r[peer]["psnr"] for (img, kk), r in kodak.items()
                             if kk == k and peer in r and "ours" in r]
                    if diffs:
                        ok = sum(d >= -slack if slack else d > 0 for d in diffs)
                        cells += [f"{ok}/{len(diffs)}", f"{min(diffs):+.3f}"]
                    else:
                        cells += ["–", "–"]
                out.append(f"| {k} | " + " | ".join(cells) + " |")
            out.append("")
        out += ["Per photo PSNR (dB):", "", fmt_table(kodak, methods, ks, "psnr", lambda v: f"{v:.2f}"), ""]
        out += ["Per photo time (s):", "", fmt_table(kodak, methods, ks, "time", lambda v: f"{v:.3f}"), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
