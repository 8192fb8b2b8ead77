"""Rate-distortion benchmark: PSNR/SSIM against bpp on the Kodak photos and the
study photo, for pca-patch, the other imcompress methods, Pillow's JPEG, WebP
and AVIF, and (with the ``bench`` extra) the anchors libaom AVIF at speed 2 in
4:4:4, x265 HEIC 4:4:4, JPEG XL and JPEG 2000, all measured in the same run.

    .venv/bin/python benchmarks/rd.py            # full: 12 Kodak + study photo
    .venv/bin/python benchmarks/rd.py --quick    # 3 Kodak photos, fewer points
    .venv/bin/python benchmarks/rd.py --ablation # pca-patch bitstream 2, parts on and off

Writes benchmarks/results/rd.md and PNG plots next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import imcompress
from imcompress import rd
from imcompress.rd import bd_rate, mean_curve, plot_rd, psnr_at, rd_curves

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RATES = (0.15, 0.25, 0.5, 1.0, 2.0)
#: Published Kodak PSNR of integer matrix factorization (IMF), dB at bpp.
IMF = {0.15: 24.09, 0.25: 25.54, 0.3: 26.15, 0.5: 27.85}


#: Parts of bitstream 2 that the ablation switches (SearchSettings fields when off).
_PARTS = {
    "planar/angular prediction": {"modes": (1,)},
    "chroma from luma": {"cfl": False},
    "adaptive block sizes": {"log2max": 3, "log2min": 3},
    "deblocking": {"deblock": False},
}


def _ablation(images, n_points, progress=None):
    """rd_curves-shaped results of bitstream 2 with each part off alone, each on alone, all, none."""
    from imcompress.pca_patch._intra_codec import SearchSettings

    base = SearchSettings.for_speed(5)
    none = {k: v for part in _PARTS.values() for k, v in part.items()}
    variants = {"all parts (default)": {}, "no part (DC prediction, 8x8 blocks only)": none}
    for name, off in _PARTS.items():
        variants[f"all but {name}"] = off
        variants[f"only {name}"] = {k: v for k, v in none.items() if k not in off}
    return _variant_curves(images, {label: dataclasses.replace(base, **fields) for label, fields in variants.items()},
                           n_points, progress)


def _variant_curves(images, variants, n_points, progress=None):
    """rd_curves-shaped results of bitstream 2 with each ``SearchSettings`` of ``variants`` ({label: settings});
    ``seconds`` holds each variant's encoder CPU time (process time, every image and point)."""
    from imcompress import metrics
    from imcompress.format import pack_container
    from imcompress.pca_patch._intra_codec import IntraEncoder
    from imcompress.pca_patch._quantize import quality_to_step

    result = {"methods": {}, "seconds": {}}
    for label, settings in variants.items():
        cpu = 0.0
        per = {}
        for name, img in images:
            if progress is not None:
                progress(label, name)
            enc = IntraEncoder(img, chroma="auto", speed=5, settings=settings)
            rows = []
            for q in np.linspace(6, 72, n_points):
                c0 = time.process_time()
                sections, _ = enc.encode(quality_to_step(q))
                cpu += time.process_time() - c0
                data = pack_container(3, img.shape[0], img.shape[1], 3, sections)
                out = imcompress.decompress(data)
                rows.append((8.0 * len(data) / (img.shape[0] * img.shape[1]), metrics.psnr(img, out), np.nan,
                             len(data)))
            per[name] = np.array(sorted(rows), dtype=np.float64)
        result["methods"][label] = per
        result["seconds"][label] = cpu
    return result


def _speed_levels_main(args, kodak, points, progress):
    """BD-rate and encoder CPU time of each ``--speed`` level against speed 5 (the default until 2026-12-02)."""
    from imcompress.pca_patch._intra_codec import SearchSettings

    levels = [int(s) for s in args.speed_levels.split(",")]
    if 5 not in levels:
        levels = [5] + levels
    t0 = time.time()
    load0 = os.getloadavg()
    images = [(p.stem, _crop(imcompress.load_image(p), args.crop)) for p in kodak]
    data = _variant_curves(images, {f"speed {s}": SearchSettings.for_speed(s) for s in levels}, points, progress)
    load1 = os.getloadavg()
    names = [n for n, _ in images]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ref = data["methods"]["speed 5"]
    lines = ["# pca-patch speed levels: rate-distortion cost against speed 5", "",
             f"Run {now}, {time.time() - t0:.0f} s, load average {load0[0]:.1f} at the start, {load1[0]:.1f} at "
             f"the end ({os.cpu_count()} cores). {_versions()}.", "",
             f"Command: `.venv/bin/python benchmarks/rd.py {' '.join(sys.argv[1:])}`"
             + (f" (centre {args.crop} crops)" if args.crop else "") + f". {points} qualities from 6 to 72 per "
             "photo, every file decoded. BD-rate: Bjøntegaard delta rate against speed 5 over 0.25–2 bpp "
             "(positive = more bytes at equal PSNR), mean of the per-photo values. CPU: the encoder's process "
             "time over every photo and quality, relative to speed 5 (one thread).", "",
             "| level | BD-rate vs speed 5 | worst photo | encoder CPU s | CPU vs speed 5 |", "|---|---|---|---|---|"]
    for s in levels:
        label = f"speed {s}"
        vals = [bd_rate(ref[n], data["methods"][label][n]) for n in names]
        cpu = data["seconds"][label]
        lines.append(f"| {s} | {np.mean(vals):+.2f} % | {max(vals):+.2f} % | {cpu:.1f} | "
                     f"{cpu / data['seconds']['speed 5']:.2f} |")
    lines += ["", "Per photo (BD-rate vs speed 5):", "", "| level | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for s in levels:
        vals = [bd_rate(ref[n], data["methods"][f"speed {s}"][n]) for n in names]
        lines.append(f"| {s} | " + " | ".join(f"{v:+.1f}" for v in vals) + " |")
    out = Path(args.out or ROOT / "benchmarks" / "results" / "rd_speed_levels.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _against(data, ours, peer, rates):
    """Per image, ours minus the peer in PSNR at each rate, and where ours is at or above it."""
    lines = [f"{ours} minus {peer}, PSNR (dB) at each rate, per Kodak photo (≥ 0: at or above):", "",
             "| image | " + " | ".join(f"{r:g} bpp" for r in rates) + " | at or above at every rate |",
             "|---|" + "---|" * (len(rates) + 1)]
    wins = 0
    for name in data["images"]:
        d = [psnr_at(data["methods"][ours][name], r) - psnr_at(data["methods"][peer][name], r) for r in rates]
        ok = all(np.isfinite(x) and x >= 0 for x in d)
        wins += ok
        lines.append(f"| {name} | " + " | ".join(f"{x:+.2f}" for x in d) + f" | {'yes' if ok else 'no'} |")
    mean = [mean_curve(data, ours, [r])[0] - mean_curve(data, peer, [r])[0] for r in rates]
    lines.append("| mean | " + " | ".join(f"{x:+.2f}" for x in mean)
                 + f" | {'yes' if all(x >= 0 for x in mean) else 'no'} |")
    lines += ["", f"{ours} is at or above {peer} at every one of these rates on {wins} of "
              f"{len(data['images'])} photos."]
    return lines


def _merge(data, extra):
    data["methods"].update(extra["methods"])
    data["seconds"].update(extra["seconds"])


def _fmt(x, nd=2):
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _versions():
    import numba
    import PIL
    import scipy
    import sklearn

    text = (f"imcompress {imcompress.__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}, numba {numba.__version__}, "
            f"Pillow {PIL.__version__}")
    try:
        import imagecodecs
        import pillow_heif

        info = pillow_heif.libheif_info()
        text += (f", imagecodecs {imagecodecs.__version__} (libavif {imagecodecs.avif_version()}, "
                 f"libjxl {imagecodecs.jpegxl_version()}, OpenJPEG {imagecodecs.jpeg2k_version()}), "
                 f"pillow-heif {pillow_heif.__version__} (libheif {info['libheif']}, {info['HEIF']})")
    except ImportError:
        text += " (anchors not installed: pip install -e '.[bench]')"
    return text


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
    """Median encode/decode seconds (wall and this process's CPU) on a 768x512 Kodak photo and on a
    1024x1024 mosaic of four Kodak crops."""
    import io as _io

    from PIL import Image

    tiles = [imcompress.load_image(p)[:512, :512] for p in kodak[:4]]
    while len(tiles) < 4:
        tiles.append(tiles[-1][::-1])
    mosaic = np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0)
    photo = imcompress.load_image(kodak[0])

    def pil(fmt, **kw):
        def enc(img):
            buf = _io.BytesIO()
            Image.fromarray(img).save(buf, fmt, **kw)
            return buf.getvalue()

        def dec(data):
            with Image.open(_io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))

        return enc, dec

    def ours(**kw):
        return (lambda img: imcompress.compress(img, "pca-patch", **kw)), imcompress.decompress

    cases = {
        "pca-patch q=40 (bitstream 2, speed 5)": ours(quality=40),
        "pca-patch q=40 (bitstream 2, speed 9)": ours(quality=40, speed=9),
        "pca-patch q=40 (bitstream 1)": ours(quality=40, bitstream=1),
        "jpeg q=85 (optimize)": pil("JPEG", quality=85, optimize=True),
        "webp q=80 (method 6)": pil("WEBP", quality=80, method=6),
        "avif q=60 (speed 6)": pil("AVIF", quality=60, speed=6),
    }
    lines = []
    for label, img in ((f"a {photo.shape[1]}x{photo.shape[0]} Kodak photo ({kodak[0].stem})", photo),
                       (f"a {mosaic.shape[1]}x{mosaic.shape[0]} mosaic of four Kodak crops", mosaic)):
        rows = []
        for name, (enc, dec) in cases.items():
            data = enc(img)
            dec(data)  # warm-up: numba kernels load from the on-disk cache
            te, td, ce, cd = [], [], [], []
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                data = enc(img)
                te.append(time.perf_counter() - t)
                ce.append(time.process_time() - c)
                t, c = time.perf_counter(), time.process_time()
                dec(data)
                td.append(time.perf_counter() - t)
                cd.append(time.process_time() - c)
            rows.append((name, np.median(te), np.median(ce), np.median(td), np.median(cd),
                         8 * len(data) / img.shape[0] / img.shape[1]))
        load = os.getloadavg()[0]
        lines += [f"Speed on {label}, median of {repeats} runs after a warm-up, same process, load average "
                  f"{load:.1f} on {os.cpu_count()} cores (wall time grows with the load; CPU time is this "
                  "process's own):", "",
                  "| codec | encode wall (s) | encode CPU (s) | decode wall (s) | decode CPU (s) | bpp |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {n} | {e:.3f} | {ce:.3f} | {d:.3f} | {cd:.3f} | {b:.2f} |" for n, e, ce, d, cd, b in rows]
        lines.append("")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 Kodak photos, fewer points, no SSIM")
    ap.add_argument("--methods", default=None, help="comma-separated (default: all available)")
    ap.add_argument("--kodak", type=int, default=None, help="use only the first N Kodak photos")
    ap.add_argument("--points", type=int, default=None, help="points per imcompress curve")
    ap.add_argument("--no-ssim", action="store_true")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed table")
    ap.add_argument("--no-study-photo", action="store_true", help="Kodak only")
    ap.add_argument("--patch-study", action="store_true",
                    help="also run pca-patch at patch sizes 4/8/16 with learned and DCT bases")
    ap.add_argument("--crop", default=None, metavar="WxH",
                    help="use the centre WxH crop of each Kodak photo (for quicker ablations)")
    ap.add_argument("--ablation", action="store_true",
                    help="only the ablation of pca-patch bitstream 2 (with JPEG and bitstream 1 for reference)")
    ap.add_argument("--speed-levels", default=None, metavar="S,S,...",
                    help="only pca-patch's --speed levels: BD-rate and encoder CPU time against speed 5 "
                         "(results/rd_speed_levels.md)")
    ap.add_argument("--out", default=None, help="markdown output (default: benchmarks/results/rd.md, "
                    "or ablation.md with --ablation)")
    args = ap.parse_args(argv)

    kodak = sorted((DATA / "kodak").glob("*.png"))
    if not kodak:
        sys.exit(f"Kodak photos not found in {DATA / 'kodak'}")
    n_kodak = args.kodak if args.kodak is not None else (3 if args.quick else len(kodak))
    kodak = kodak[:n_kodak]
    points = args.points or (8 if args.quick else 14)
    ssim = not (args.no_ssim or args.quick)
    avail = imcompress.available_methods()
    if args.speed_levels:
        return _speed_levels_main(args, kodak, points, progress=lambda m, n: print(f"  {m} {n}", file=sys.stderr))
    if args.ablation:
        return _ablation_main(args, kodak, points, progress=lambda m, n: print(f"  {m} {n}", file=sys.stderr))
    anchors = [m for m in rd.available_peers(anchors=True) if rd.PEERS[m].anchor]
    if args.methods:
        methods = args.methods.split(",")
    else:
        methods = (["pca-patch", "pca-patch:bitstream=1"] + [m for m in ("pca-rows", "kmeans") if m in avail]
                   + ["jpeg", "webp", "avif"] + anchors)

    def progress(m, name):
        print(f"  {m:10s} {name}", file=sys.stderr, flush=True)

    t0 = time.time()
    kimages = [(p.stem, imcompress.load_image(p)) for p in kodak]
    kdata = rd_curves(kimages, methods, n_points=points, ssim=ssim, progress=progress)
    edata = None
    if (DATA / "elephant.jpg").exists() and not (args.quick or args.no_study_photo):
        eimages = [("elephant", imcompress.load_image(DATA / "elephant.jpg"))]
        edata = rd_curves(eimages, methods, n_points=points, ssim=ssim, progress=progress)
    elapsed = time.time() - t0

    out = Path(args.out or ROOT / "benchmarks" / "results" / "rd.md")
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
    if "pca-patch" in methods and not args.no_speed:
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
    if "pca-patch" in methods and "avif" in methods:
        lines += [""] + _against(kdata, "pca-patch", "avif", (0.25, 0.5, 1.0, 2.0))
    if "pca-patch" in methods:
        direct = []
        for m in methods:
            if m in ("pca-patch", "jpeg"):
                continue
            vals = [bd_rate(kdata["methods"][m][n], kdata["methods"]["pca-patch"][n]) for n in kdata["images"]]
            finite = [v for v in vals if np.isfinite(v)]
            if finite:
                direct.append(f"{m} {np.mean(finite):+.1f} % ({len(finite)}/{len(vals)}; "
                              f"{sum(v < 0 for v in finite)} photos below 0)")
        lines += ["", "BD-rate of pca-patch against each codec directly (over 0.25–2 bpp where both curves "
                  "reach, mean of the per-photo values; negative: pca-patch needs fewer bytes): "
                  + "; ".join(direct) + "."]
    json_out = out.with_suffix(".json")
    json_out.write_text(json.dumps({
        "images": {n: list(map(int, s)) for n, s in kdata["images"].items()},
        "columns": ["bpp", "psnr", "ssim", "bytes"],
        "methods": {m: {n: np.asarray(v).tolist() for n, v in per.items()} for m, per in kdata["methods"].items()},
    }))
    lines += ["", f"Every point of every Kodak curve: [{json_out.name}]({json_out.name})."]
    if args.patch_study:
        variants = [f"pca-patch:patch_size={p},basis={b},bitstream=1" for p in (4, 8, 16) for b in ("pca", "dct")]
        sdata = rd_curves([(p.stem, imcompress.load_image(p)) for p in kodak], variants,
                          n_points=points, ssim=False, progress=progress)
        sdata["methods"]["jpeg"] = kdata["methods"]["jpeg"]
        if "pca-patch" in kdata["methods"]:
            sdata["methods"]["pca-patch bitstream 1 (8, auto)"] = kdata["methods"]["pca-patch:bitstream=1"]
        lines += [""] + _table(sdata, list(sdata["methods"]), "Patch-size study (pca-patch variants, Kodak)",
                               list(kdata["images"]))
        lines += ["", "Time per variant (all images and points): "
                  + ", ".join(f"{m.split(':')[1]} {s:.0f} s" for m, s in sdata["seconds"].items()) + ".", ""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _crop(img, spec):
    if not spec:
        return img
    w, h = (int(v) for v in spec.lower().split("x"))
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


def _ablation_main(args, kodak, points, progress):
    t0 = time.time()
    images = [(p.stem, _crop(imcompress.load_image(p), args.crop)) for p in kodak]
    data = rd_curves(images, ["jpeg", "pca-patch:bitstream=1"], n_points=points, ssim=False, progress=progress)
    _merge(data, _ablation(images, points, progress))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    names = list(data["images"])
    lines = ["# Ablation of pca-patch bitstream 2", "",
             f"Run {now}, {time.time() - t0:.0f} s, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
             f"({os.cpu_count()} cores). {_versions()}.", "",
             f"Command: `.venv/bin/python benchmarks/rd.py {' '.join(sys.argv[1:])}`"
             + (f" (centre {args.crop} crops)" if args.crop else "") + ". Encoder at speed 5; a part "
             "switched off is: planar/angular prediction -> DC prediction only; chroma from luma -> not offered; "
             "adaptive block sizes -> 8x8 blocks only; deblocking -> strength 0.", ""]
    lines += _table(data, list(data["methods"]), f"Kodak, {len(names)} photos ({', '.join(names)})", names)
    lines += ["", "BD-rate against JPEG per photo:", "", "| variant | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for m in data["methods"]:
        if m == "jpeg":
            continue
        vals = [bd_rate(data["methods"]["jpeg"][n], data["methods"][m][n]) for n in names]
        lines.append(f"| {m} | " + " | ".join(f"{v:+.1f} %" for v in vals) + " |")
    out = Path(args.out or ROOT / "benchmarks" / "results" / "ablation.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
