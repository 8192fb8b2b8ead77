"""imcompress batch on a local Dask cluster against a sequential loop over the library calls.

Run from the repository root::

    .venv/bin/python benchmarks/batch.py                       # 200 images, kmeans and pca-patch, + client memory
    .venv/bin/python benchmarks/batch.py --images 60 --repeats 1 --memory 200,1000   # quick

Inputs: ``--images`` PNG crops (mixed sizes, 96x128 to 320x480) of the study photo and the
Kodak set (``../shared/data``; scikit-image's bundled photos when absent), in 4 folders.
For each method, interleaved and repeated:

- ``sequential``: one process, a loop calling the library for each file (read, compress,
  decode and measure, write atomically: :func:`imcompress.batch.compress_job`, the very
  function the workers run), after compiling the numba kernels once (not timed), with
  imcompress's own thread pools at one thread (``IMCOMPRESS_NUM_THREADS=1``) as in a worker:
  the baseline of the speed-ups; ``sequential, all cores``: the same loop with the library's
  default threads (K-means' assignment step threads large colour tables), for reference;
- ``batch 1w`` / ``batch 2w``: :func:`imcompress.batch.run_batch` with a local cluster of 1 or
  2 worker processes (1 thread each), into a fresh DST; ``batch 1w, Dask defaults``: the same
  without the settings the command gives its local cluster (``LOCAL_CLUSTER_CONFIG``: Dask's
  own ``MALLOC_TRIM_THRESHOLD_`` and profiler), to show what they change in the same run.
  ``start-up`` is the time to start the cluster and set up its workers (numba kernels
  loaded); ``work`` runs from then to the last result; ``total`` is the whole call
  (planning and stopping the cluster included).

Speed-up = sequential time / batch work time (and / total time, start-up included).
CPU times (user+sys) change less than wall times with the load of other programs (on this
machine a loaded core still inflates them by up to ~40 %, so compare rows of one run):
``files CPU`` is the sum of the manifest's ``cpu_seconds`` (each file's compute, in the thread
that ran it; the helper threads of ``sequential, all cores`` count in its ``client CPU`` only), ``workers CPU`` all CPU of the worker processes (``RUSAGE_CHILDREN``: start-up,
imports, warm-up and Dask's own threads included), ``client CPU`` that of the benchmark's process
(the sequential loop; or the client, scheduler and nannies of a batch);
``worker RSS`` is the largest RSS of one worker process seen during the run (psutil, every 0.05 s).
Client memory: the batch client's peak RSS (a sampling thread, psutil) for N tiny inputs
(24x24 PNGs, kmeans K=4: the cheapest work, so that the client's share shows), each N in
its own process. Workers are other processes and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SIZES = [(96, 128), (160, 200), (240, 320), (320, 480)]
METHODS = {"kmeans": {"n_colors": 32, "random_state": 0}, "pca-patch": {"quality": 50.0}}


def _photos():
    paths = ([DATA / "elephant.jpg"] if (DATA / "elephant.jpg").exists() else []) + sorted((DATA / "kodak").glob("*.png"))
    if paths:
        from imcompress import load_image

        return [load_image(p) for p in paths], "study photo + Kodak"
    import skimage.data

    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()], "scikit-image photos"


def make_inputs(root: Path, n: int, seed=0):
    photos, label = _photos()
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = (min(a, b) for a, b in zip(SIZES[i % len(SIZES)], img.shape))  # the fallback photos are smaller
        y = int(rng.integers(0, img.shape[0] - h + 1))
        x = int(rng.integers(0, img.shape[1] - w + 1))
        folder = root / f"set{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{i:05d}.png"
        Image.fromarray(img[y:y + h, x:x + w]).save(path)
        total += path.stat().st_size
    return label, total


def _load():
    return os.getloadavg()[0]


def _cpu():
    """user+sys seconds of this process, and of its finished (waited-for) descendants."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return np.array([me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime])


def sequential(src: Path, dst: Path, settings, *, threads=1):
    """The loop in this process; ``threads=1`` caps imcompress's own thread pools as a worker's are."""
    from unittest import mock

    from imcompress.batch import compress_job, plan_batch

    plan = plan_batch([src], dst, settings, recursive=True)
    dst.mkdir(parents=True)
    with mock.patch.dict(os.environ):  # restored on exit
        os.environ.pop("IMCOMPRESS_NUM_THREADS", None)
        if threads:
            os.environ["IMCOMPRESS_NUM_THREADS"] = str(threads)
        c0, t0 = _cpu(), time.perf_counter()
        files_cpu = 0.0
        for job in plan.jobs:
            rec = compress_job(job, settings, str(dst))
            assert rec["status"] == "ok", rec
            files_cpu += rec["cpu_seconds"]
        total = time.perf_counter() - t0
    own, _ = _cpu() - c0
    return {"total": total, "startup": 0.0, "work": total, "files_cpu": files_cpu, "client_cpu": own,
            "workers_cpu": None, "rss": None}


class _PeakRSS:
    """The largest RSS of any one child process, sampled by a thread while the block runs."""

    def __enter__(self):
        import psutil

        me, self.peak, self._stop = psutil.Process(), 0, threading.Event()

        def sample():
            while not self._stop.wait(0.05):
                for child in me.children(recursive=True):
                    try:
                        self.peak = max(self.peak, child.memory_info().rss)
                    except psutil.Error:
                        pass

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def batch(src: Path, dst: Path, settings, workers: int, *, dask_defaults=False):
    from unittest import mock

    from imcompress.batch import _run, run_batch

    config = {} if dask_defaults else _run.LOCAL_CLUSTER_CONFIG
    c0, t0 = _cpu(), time.perf_counter()
    with _PeakRSS() as rss, mock.patch.dict(_run.LOCAL_CLUSTER_CONFIG, config, clear=True):
        summary = run_batch([src], dst, settings, recursive=True, workers=workers, threads_per_worker=1)
    total = time.perf_counter() - t0
    assert summary.counts["ok"] == summary.total and summary.n_failures == 0, summary.as_dict()
    own, workers = _cpu() - c0
    records = [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]
    return {"total": total, "startup": summary.startup_seconds, "work": summary.work_seconds,
            "files_cpu": sum(r["cpu_seconds"] for r in records), "client_cpu": own, "workers_cpu": workers,
            "rss": rss.peak / 2**20}


def client_memory(n: int) -> dict:
    """Run in a child process: peak RSS of this (client) process over a batch of n tiny inputs."""
    import psutil

    from imcompress.batch import BatchSettings, run_batch

    with tempfile.TemporaryDirectory(prefix="imc-bench-mem-") as tmp:
        src = Path(tmp) / "src"
        rng = np.random.default_rng(0)
        for i in range(n):
            folder = src / f"d{i // 500:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"t{i:05d}.png")
        me = psutil.Process()
        base = me.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], me.memory_info().rss)
                time.sleep(0.05)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        summary = run_batch([src], Path(tmp) / "dst", BatchSettings("kmeans", {"n_colors": 4}), recursive=True,
                            workers=2)
        seconds = time.perf_counter() - t0
        stop.set()
        thread.join()
        assert summary.counts["ok"] == n, summary.as_dict()
        return {"n": n, "rss_before_mb": base / 2**20, "rss_peak_mb": peak[0] / 2**20, "seconds": seconds}


def _versions():
    import dask
    import distributed
    import numba

    import imcompress

    return (f"Python {platform.python_version()}, NumPy {np.__version__}, numba {numba.__version__}, "
            f"dask {dask.__version__}, distributed {distributed.__version__}, imcompress {imcompress.__version__}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each configuration")
    ap.add_argument("--no-dask-defaults", dest="dask_defaults", action="store_false",
                    help="skip the 'batch 1w, Dask defaults' run (the local cluster without LOCAL_CLUSTER_CONFIG)")
    ap.add_argument("--methods", default="kmeans,pca-patch")
    ap.add_argument("--memory", default="200,5000", help="input counts of the client-memory runs ('' to skip)")
    ap.add_argument("--client-memory", type=int, help=argparse.SUPPRESS)  # the child process of one memory run
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch.md")
    args = ap.parse_args(argv)
    if args.client_memory:
        print(json.dumps(client_memory(args.client_memory)))
        return
    from imcompress.batch import BatchSettings
    from imcompress.batch._worker import warm_up

    lines = [f"# imcompress batch benchmark ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {_versions()}", ""]
    loads = [_load()]
    with tempfile.TemporaryDirectory(prefix="imc-bench-batch-") as tmp:
        src = Path(tmp) / "src"
        label, src_bytes = make_inputs(src, args.images)
        lines += [f"{args.images} PNG crops of the {label} ({src_bytes / 1e6:.1f} MB), sizes "
                  + ", ".join(f"{w}x{h}" for h, w in SIZES) + "; 1 thread per worker.", ""]
        rows = []
        for method in args.methods.split(","):
            settings = BatchSettings(method, METHODS[method])
            warm_up(settings)  # the sequential loop compiles once too, untimed
            runs = {"sequential": [], "sequential, all cores": [], "batch 1w": [], "batch 2w": []}
            if args.dask_defaults:
                runs["batch 1w, Dask defaults"] = []
            for r in range(args.repeats):
                for name in runs:
                    dst = Path(tmp) / f"dst-{method}-{name.replace(' ', '').replace(',', '')}-{r}"
                    loads.append(_load())
                    if name.startswith("sequential"):
                        res = sequential(src, dst, settings, threads=None if "all cores" in name else 1)
                    else:
                        res = batch(src, dst, settings, int(name[6]), dask_defaults="defaults" in name)
                    runs[name].append(res)
                    shutil.rmtree(dst)
                    print(f"{method} {name} run {r}: total {res['total']:.1f} s, start-up {res['startup']:.1f} s, "
                          f"work {res['work']:.1f} s, files CPU {res['files_cpu']:.1f} s, load {loads[-1]:.1f}",
                          flush=True)
            seq = statistics.median(x["total"] for x in runs["sequential"])
            for name, res in runs.items():
                med = {k: statistics.median(x[k] for x in res) if res[0][k] is not None else None for k in res[0]}
                rows.append((method, name, med, args.images / med["work"], src_bytes / 1e6 / med["work"],
                             seq / med["work"], seq / med["total"]))
        loads.append(_load())
        lines += ["| method | run | total s | start-up s | work s | images/s | MB/s | speed-up (work) | "
                  "speed-up (total) | files CPU s | workers CPU s | client CPU s | worker RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

        def fmt(value, spec):
            return "—" if value is None else format(value, spec)

        for m, n, d, ips, mbs, su, sut in rows:
            lines.append(f"| {m} | {n} | {d['total']:.1f} | {d['startup']:.1f} | {d['work']:.1f} | {ips:.1f} "
                         f"| {mbs:.2f} | {su:.2f}x | {sut:.2f}x | {d['files_cpu']:.1f} "
                         f"| {fmt(d['workers_cpu'], '.1f')} | {d['client_cpu']:.1f} | {fmt(d['rss'], '.0f')} |")
    lines += ["", f"Medians of {args.repeats} interleaved runs. Load average during the runs: "
              f"{min(loads):.1f}-{max(loads):.1f} (1-minute; the machine has {os.cpu_count()} cores)."]
    if args.memory:
        lines += ["", "Client peak RSS (tiny 24x24 inputs, kmeans K=4, 2 workers; each N in its own process):", "",
                  "| inputs | RSS before MB | peak RSS MB | seconds |", "|---|---|---|---|"]
        mems = []
        for n in [int(v) for v in args.memory.split(",")]:
            out = subprocess.run([sys.executable, __file__, "--client-memory", str(n)], capture_output=True,
                                 text=True, check=True)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            mems.append(m)
            lines.append(f"| {n} | {m['rss_before_mb']:.0f} | {m['rss_peak_mb']:.0f} | {m['seconds']:.1f} |")
            print(lines[-1], flush=True)
        if len(mems) > 1:
            lines += ["", f"Peak growth from {mems[0]['n']} to {mems[-1]['n']} inputs: "
                      f"{mems[-1]['rss_peak_mb'] - mems[0]['rss_peak_mb']:+.0f} MB."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
