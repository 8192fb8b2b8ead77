"""Rate-distortion benchmark: PSNR/SSIM against bpp on the Kodak photos and the
study photo, for pca-patch, the other imcompress methods, and Pillow's JPEG,
WebP and AVIF, all measured in the same run.

    .venv/bin/python benchmarks/rd.py            # full: 12 Kodak + study photo
    .venv/bin/python benchmarks/rd.py --quick    # 3 Kodak photos, fewer points

Writes benchmarks/results/rd.md and PNG plots next to it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import imcompress
from imcompress.rd import bd_rate, mean_curve, plot_rd, psnr_at, rd_curves

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RATES = (0.15, 0.25, 0.5, 1.0, 2.0)
#: Published Kodak PSNR of integer matrix factorization (IMF), dB at bpp.
IMF = {0.15: 24.09, 0.25: 25.54, 0.3: 26.15, 0.5: 27.85}


def _fmt(x, nd=2):
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _versions():
    import numba
    import PIL
    import scipy
    import sklearn

    return (f"imcompress {imcompress.__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}, numba {numba.__version__}, "
            f"Pillow {PIL.__version__}")


def _table(data, methods, title, images):
    lines = [f"### {title}", "",
             "PSNR (dB, RGB) at each rate, interpolated on each curve (PCHIP in log-rate) and averaged over "
             f"{len(images)} image(s); — where a codec cannot reach the rate on every image. BD-rate: Bjøntegaard "
             "delta rate against JPEG over 0.25–2 bpp (negative = fewer bytes at equal PSNR), mean of the "
             "per-image values.", "",
             "| method | " + " | ".join(f"{r} bpp" for r in RATES) + " | BD-rate vs JPEG | SSIM @0.5 | SSIM @1.0 |",
             "|---|" + "---|" * (len(RATES) + 3)]
    for m in methods:
        ps = mean_curve(data, m, RATES)
        ss = mean_curve(data, m, (0.5, 1.0), col=2)
        if m == "jpeg" or "jpeg" not in data["methods"]:
            bd = "0 (reference)" if m == "jpeg" else "—"
        else:
            vals = [bd_rate(data["methods"]["jpeg"][n], data["methods"][m][n]) for n in images]
            vals = [v for v in vals if np.isfinite(v)]
            bd = f"{np.mean(vals):+.1f}% ({len(vals)}/{len(images)})" if vals else "—"
        lines.append(f"| {m} | " + " | ".join(_fmt(p) for p in ps) + f" | {bd} | {_fmt(ss[0], 4)} | {_fmt(ss[1], 4)} |")
    return lines


def _reach(data, methods):
    lines = ["| method | lowest bpp reached (max over images) | PSNR there (mean) |", "|---|---|---|"]
    for m in methods:
        lows = [pts[0, 0] for pts in data["methods"][m].values() if len(pts)]
        ps = [pts[0, 1] for pts in data["methods"][m].values() if len(pts)]
        lines.append(f"| {m} | {_fmt(max(lows), 3)} | {_fmt(np.mean(ps))} |")
    return lines


def _speed(kodak, repeats=5):
    """Median encode/decode seconds on a 1024x1024 mosaic of four Kodak crops."""
    import io as _io

    from PIL import Image

    tiles = [imcompress.load_image(p)[:512, :512] for p in kodak[:4]]
    while len(tiles) < 4:
        tiles.append(tiles[-1][::-1])
    img = np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0)

    def pil(fmt, **kw):
        def enc():
            buf = _io.BytesIO()
            Image.fromarray(img).save(buf, fmt, **kw)
            return buf.getvalue()

        def dec(data):
            with Image.open(_io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))

        return enc, dec

    cases = {
        "pca-patch q=40": (lambda: imcompress.compress(img, "pca-patch", quality=40), imcompress.decompress),
        "pca-patch q=40, chroma=420, basis=dct": (
            lambda: imcompress.compress(img, "pca-patch", quality=40, chroma="420", basis="dct"),
            imcompress.decompress),
        "jpeg q=85 (optimize)": pil("JPEG", quality=85, optimize=True),
        "webp q=80 (method 6)": pil("WEBP", quality=80, method=6),
        "avif q=60 (speed 6)": pil("AVIF", quality=60, speed=6),
    }
    rows = []
    for name, (enc, dec) in cases.items():
        data = enc()
        dec(data)  # warm-up: numba kernels load from the on-disk cache
        te, td = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            data = enc()
            te.append(time.perf_counter() - t)
            t = time.perf_counter()
            dec(data)
            td.append(time.perf_counter() - t)
        rows.append((name, np.median(te), np.median(td), 8 * len(data) / img.shape[0] / img.shape[1]))
    lines = [f"Speed on a {img.shape[1]}x{img.shape[0]} mosaic ({img.shape[0] * img.shape[1] / 1e6:.2f} MP) of "
             f"four Kodak crops, median of {repeats} runs after a warm-up, same process, machine shared with "
             "other jobs (compare the rows with each other):", "",
             "| codec | encode (s) | decode (s) | bpp |", "|---|---|---|---|"]
    lines += [f"| {n} | {e:.3f} | {d:.3f} | {b:.2f} |" for n, e, d, b in rows]
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 Kodak photos, fewer points, no SSIM")
    ap.add_argument("--methods", default=None, help="comma-separated (default: all available)")
    ap.add_argument("--kodak", type=int, default=None, help="use only the first N Kodak photos")
    ap.add_argument("--points", type=int, default=None, help="points per imcompress curve")
    ap.add_argument("--no-ssim", action="store_true")
    ap.add_argument("--patch-study", action="store_true",
                    help="also run pca-patch at patch sizes 4/8/16 with learned and DCT bases")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rd.md"))
    args = ap.parse_args(argv)

    kodak = sorted((DATA / "kodak").glob("*.png"))
    if not kodak:
        sys.exit(f"Kodak photos not found in {DATA / 'kodak'}")
    n_kodak = args.kodak if args.kodak is not None else (3 if args.quick else len(kodak))
    kodak = kodak[:n_kodak]
    points = args.points or (8 if args.quick else 14)
    ssim = not (args.no_ssim or args.quick)
    avail = imcompress.available_methods()
    if args.methods:
        methods = args.methods.split(",")
    else:
        methods = ["pca-patch"] + [m for m in ("pca-rows", "kmeans") if m in avail] + ["jpeg", "webp", "avif"]

    def progress(m, name):
        print(f"  {m:10s} {name}", file=sys.stderr, flush=True)

    t0 = time.time()
    kdata = rd_curves([(p.stem, imcompress.load_image(p)) for p in kodak], methods,
                      n_points=points, ssim=ssim, progress=progress)
    edata = None
    if (DATA / "elephant.jpg").exists() and not args.quick:
        edata = rd_curves([("elephant", imcompress.load_image(DATA / "elephant.jpg"))], methods,
                          n_points=points, ssim=ssim, progress=progress)
    elapsed = time.time() - t0

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.stem
    fig = plot_rd(kdata, title=f"Kodak ({len(kodak)} photos): mean rate-distortion")
    fig.savefig(out.parent / f"{stem}_kodak.png", dpi=110)
    if edata is not None:
        plot_rd(edata, title="Study photo (elephant.jpg)").savefig(out.parent / f"{stem}_elephant.png", dpi=110)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Rate–distortion benchmark", "",
        f"Run {now} on {platform.machine()} ({os.cpu_count()} cores, {platform.platform()}), {elapsed:.0f} s. "
        f"{_versions()}.", "",
        f"Command: `.venv/bin/python benchmarks/rd.py {' '.join(argv if argv is not None else sys.argv[1:])}`. "
        "Every point is a real file (all bytes needed to decode it), decoded and compared in float64. "
        "JPEG: Pillow `optimize=True`, 4:2:0; WebP: `method=6`; AVIF: Pillow, speed 6, 4:2:0.", "",
    ]
    lines += _table(kdata, methods, f"Kodak, {len(kodak)} photos ({', '.join(p.stem for p in kodak)})",
                    list(kdata["images"]))
    lines += ["", "Published Kodak PSNR of integer matrix factorization (IMF): "
              + ", ".join(f"{v} dB at {k} bpp" for k, v in IMF.items()) + ".", ""]
    if "pca-patch" in methods:
        cmp = []
        for r, v in IMF.items():
            m = mean_curve(kdata, "pca-patch", [r])[0]
            cmp.append(f"{r} bpp: {_fmt(m)} dB ({m - v:+.2f} dB)" if np.isfinite(m) else f"{r} bpp: —")
        lines += ["pca-patch against IMF: " + "; ".join(cmp) + ".", ""]
    lines += ["Lowest rate each codec reaches (its smallest file):", ""] + _reach(kdata, methods) + [""]
    lines += ["Time (encode + decode, all points and images, this run): "
              + ", ".join(f"{m} {s:.1f} s" for m, s in kdata["seconds"].items()) + ".", ""]
    lines += [f"![Kodak RD]({stem}_kodak.png)", ""]
    if "pca-patch" in methods:
        lines += _speed(kodak) + [""]
    if edata is not None:
        lines += _table(edata, methods, "Study photo (elephant.jpg, 700x466)", ["elephant"])
        lines += ["", f"![Study photo RD]({stem}_elephant.png)", ""]
    lines += ["Per-image PSNR at 0.5 / 1.0 bpp (Kodak):", "",
              "| image | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for name in kdata["images"]:
        row = [f"{_fmt(psnr_at(kdata['methods'][m][name], 0.5))} / {_fmt(psnr_at(kdata['methods'][m][name], 1.0))}"
               for m in methods]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    if args.patch_study:
        variants = [f"pca-patch:patch_size={p},basis={b}" for p in (4, 8, 16) for b in ("pca", "dct")]
        sdata = rd_curves([(p.stem, imcompress.load_image(p)) for p in kodak], variants,
                          n_points=points, ssim=False, progress=progress)
        sdata["methods"]["jpeg"] = kdata["methods"]["jpeg"]
        if "pca-patch" in kdata["methods"]:
            sdata["methods"]["pca-patch (default: 8, auto)"] = kdata["methods"]["pca-patch"]
        lines += [""] + _table(sdata, list(sdata["methods"]), "Patch-size study (pca-patch variants, Kodak)",
                               list(kdata["images"]))
        lines += ["", "Time per variant (all images and points): "
                  + ", ".join(f"{m.split(':')[1]} {s:.0f} s" for m, s in sdata["seconds"].items()) + ".", ""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
