"""imcompress batch on a local Dask cluster against a sequential loop over the library calls.

Run from the repository root::

    .venv/bin/python benchmarks/batch.py              # 200 images, kmeans (5 rounds) and pca-patch (3), ~14 min idle
    .venv/bin/python benchmarks/batch.py --images 60 --repeats 1 --memory 200,1000   # quick

Inputs: ``--images`` PNG crops (mixed sizes, 96x128 to 320x480) of the study photo and the
Kodak set (``../shared/data``; scikit-image's bundled photos when absent), in 4 folders.
For each method, after an untimed warm-up (a sequential and a 2-worker run on 8 other crops:
numba's cache, the page cache, Python's bytecode), ``--repeats`` rounds; each round runs every
configuration once, each run in a fresh interpreter (as a command would; no state left by the
runs before it), in alternating order (ABC, CBA, ABC, ...), so that a slow drift of the
machine's speed reaches all configurations alike:

- ``sequential``: a loop calling the library for each file (read, compress, decode and
  measure, write atomically: :func:`imcompress.batch.compress_job`, the very function the
  workers run), after loading the numba kernels (not timed, as a worker's set-up is not),
  with imcompress's own thread pools and BLAS at one thread (``IMCOMPRESS_NUM_THREADS=1``,
  ``OMP/OPENBLAS/MKL_NUM_THREADS=1``), as in a worker: the baseline of the speed-ups;
  ``sequential, all cores`` (``--all-cores``): the same loop with the library's default
  threads, for reference;
- ``batch 1w`` / ``batch 2w``: :func:`imcompress.batch.run_batch` with a local cluster of 1 or
  2 worker processes (1 thread each), into a fresh DST; ``batch 1w, Dask defaults``
  (``--dask-defaults``): the same without the settings the command gives its local cluster
  (``LOCAL_CLUSTER_CONFIG``). ``start-up`` is the time to start the cluster and set up its
  workers (numba kernels loaded); ``work`` runs from then to the last result; ``total`` is
  the whole call (planning and stopping the cluster included).

Speed-up = the median sequential time / the row's median work time (and total time, start-up
included); ``per round`` gives the lowest and highest ratio of two runs of the same round.
CPU times (user+sys): on this machine (2 vCPUs of a shared host) the same work's CPU time
varies by up to ~30 % from one minute to the next with the host's load, so compare rows of one
run: ``files CPU`` is the sum of each file's ``cpu_seconds`` (its compute, in the thread that ran
it; the helper threads of ``sequential, all cores`` count in its ``client CPU`` only),
``workers CPU`` all CPU of the worker processes (``RUSAGE_CHILDREN``: start-up, imports, warm-up
and Dask's own threads included), ``client CPU`` that of the run's process (the sequential loop;
or the client, scheduler and nannies of a batch), ``workers busy`` the share of the workers'
work time spent in files (the rest: waiting for tasks, the tail), ``worker RSS`` the peak RSS
of the largest worker process (``ru_maxrss`` of the reaped workers: nothing samples them).
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
from unittest import mock

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


def _cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _records(dst: Path) -> list:
    return [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]


def _busy(records, workers: int, work: float) -> float:
    """Share of the workers' time spent in files (their ``seconds``): the rest is start, gaps, tail."""
    return sum(r["seconds"] for r in records) / (workers * work) if work > 0 else float("nan")


def run_one(spec: dict) -> dict:
    """One timed configuration, in this (fresh) process; see the module docstring."""
    from imcompress.batch import BatchSettings, compress_job, plan_batch, run_batch

    src, dst = Path(spec["src"]), Path(spec["dst"])
    settings = BatchSettings(spec["method"], METHODS[spec["method"]])
    if spec["kind"] == "sequential":
        from imcompress.batch._worker import warm_up

        warm_up(settings)  # compiles or loads the numba kernels, as a worker's set-up does: not timed
        plan = plan_batch([src], dst, settings, recursive=True)
        dst.mkdir(parents=True)
        c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
        files_cpu = 0.0
        for job in plan.jobs:
            rec = compress_job(job, settings, str(dst))
            assert rec["status"] == "ok", rec
            files_cpu += rec["cpu_seconds"]
        work = time.perf_counter() - t0
        return {"total": work, "startup": 0.0, "work": work, "files_cpu": files_cpu,
                "client_cpu": _cpu(resource.RUSAGE_SELF) - c0, "workers_cpu": None, "busy": None, "rss": None}
    from imcompress.batch import _run

    config = {} if spec.get("dask_defaults") else _run.LOCAL_CLUSTER_CONFIG
    c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    with mock.patch.dict(_run.LOCAL_CLUSTER_CONFIG, config, clear=True):
        summary = run_batch([src], dst, settings, recursive=True, workers=spec["workers"], threads_per_worker=1)
    total = time.perf_counter() - t0
    own = _cpu(resource.RUSAGE_SELF) - c0
    assert summary.counts["ok"] == summary.total and summary.n_failures == 0, summary.as_dict()
    records = _records(dst)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes, reaped when the cluster closed
    return {"total": total, "startup": summary.startup_seconds, "work": summary.work_seconds,
            "files_cpu": sum(r["cpu_seconds"] for r in records), "client_cpu": own,
            "workers_cpu": kids.ru_utime + kids.ru_stime, "busy": _busy(records, summary.workers, summary.work_seconds),
            "rss": kids.ru_maxrss / 1024}


def _spawn(spec: dict, threads) -> dict:
    """Run :func:`run_one` in a fresh interpreter, like a command: no state left by the runs before it."""
    env = dict(os.environ)
    for name in ("IMCOMPRESS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
        if threads:  # the sequential baseline at one thread, like a worker (the nanny sets the BLAS ones)
            env[name] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--run", json.dumps(spec)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise SystemExit(f"benchmark run {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


#: name -> (kind, local workers, thread cap of the sequential loop, Dask's defaults)
CONFIGS = {
    "sequential": ("sequential", None, 1, False),
    "sequential, all cores": ("sequential", None, None, False),
    "batch 1w": ("batch", 1, None, False),
    "batch 2w": ("batch", 2, None, False),
    "batch 1w, Dask defaults": ("batch", 1, None, True),
}


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


def _repeats(text: str, methods) -> dict:
    """``3`` for every method, or ``kmeans=7,pca-patch=3``."""
    if "=" not in text:
        return dict.fromkeys(methods, int(text))
    pairs = dict(item.split("=", 1) for item in text.split(","))
    return {m: int(pairs.get(m, 3)) for m in methods}


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", default="kmeans=5,pca-patch=3",
                    help="timed rounds per method: N, or METHOD=N,... (default kmeans=5,pca-patch=3)")
    ap.add_argument("--all-cores", action="store_true",
                    help="add 'sequential, all cores' (the loop with the library's default threads)")
    ap.add_argument("--dask-defaults", action="store_true",
                    help="add 'batch 1w, Dask defaults' (the local cluster without LOCAL_CLUSTER_CONFIG)")
    ap.add_argument("--methods", default="kmeans,pca-patch")
    ap.add_argument("--memory", default="200,5000", help="input counts of the client-memory runs ('' to skip)")
    ap.add_argument("--run", help=argparse.SUPPRESS)  # the child process of one timed run
    ap.add_argument("--client-memory", type=int, help=argparse.SUPPRESS)  # the child process of one memory run
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch.md")
    args = ap.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(json.loads(args.run))))
        return
    if args.client_memory:
        print(json.dumps(client_memory(args.client_memory)))
        return
    methods = args.methods.split(",")
    repeats = _repeats(args.repeats, methods)
    names = [n for n in CONFIGS if (n != "sequential, all cores" or args.all_cores)
             and (n != "batch 1w, Dask defaults" or args.dask_defaults)]
    started = datetime.now(timezone.utc)
    lines = [f"# imcompress batch benchmark ({started:%Y-%m-%d %H:%M} UTC)", "",
             f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {_versions()}", "",
             f"`benchmarks/batch.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace(" `", "`"), ""]
    loads = [_load()]
    rows, per_run = [], []
    with tempfile.TemporaryDirectory(prefix="imc-bench-batch-") as tmp:
        src = Path(tmp) / "src"
        label, src_bytes = make_inputs(src, args.images)
        warm_src = Path(tmp) / "warm"
        make_inputs(warm_src, 8, seed=1)
        lines += [f"{args.images} PNG crops of the {label} ({src_bytes / 1e6:.1f} MB), sizes "
                  + ", ".join(f"{w}x{h}" for h, w in SIZES) + "; 1 thread per worker.", ""]
        for method in methods:
            # untimed: numba's cache, the page cache (sources, inputs), Python's bytecode
            for name in ("sequential", "batch 2w"):
                kind, workers, threads, defaults = CONFIGS[name]
                _spawn({"kind": kind, "method": method, "src": str(warm_src), "dst": str(Path(tmp) / "dst-warm"),
                        "workers": workers}, threads)
                shutil.rmtree(Path(tmp) / "dst-warm")
            runs = {name: [] for name in names}
            for r in range(repeats[method]):
                order = names if r % 2 == 0 else names[::-1]  # ABC CBA: a drift of the machine cancels
                for name in order:
                    kind, workers, threads, defaults = CONFIGS[name]
                    dst = Path(tmp) / f"dst-{method}-{r}"
                    loads.append(_load())
                    res = _spawn({"kind": kind, "method": method, "src": str(src), "dst": str(dst),
                                  "workers": workers, "dask_defaults": defaults}, threads)
                    res["load"] = loads[-1]
                    runs[name].append(res)
                    per_run.append((method, r, name, res))
                    shutil.rmtree(dst)
                    print(f"{method} round {r} {name}: work {res['work']:.1f} s, start-up {res['startup']:.1f} s, "
                          f"files CPU {res['files_cpu']:.1f} s, client CPU {res['client_cpu']:.1f} s, "
                          f"load {res['load']:.1f}", flush=True)
            seq = runs["sequential"]
            seq_work = statistics.median(x["work"] for x in seq)
            for name, res in runs.items():
                med = {k: statistics.median(x[k] for x in res) if res[0][k] is not None else None for k in res[0]}
                paired = [a["work"] / b["work"] for a, b in zip(seq, res)]  # within each round
                rows.append((method, name, len(res), med, args.images / med["work"], src_bytes / 1e6 / med["work"],
                             seq_work / med["work"], (min(paired), max(paired)), seq_work / med["total"]))
        loads.append(_load())
    lines += ["| method | run | rounds | total s | start-up s | work s | images/s | MB/s | speed-up (work) | "
              "per round | speed-up (total) | files CPU s | workers CPU s | client CPU s | workers busy | "
              "worker RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, n, k, d, ips, mbs, su, (lo, hi), sut in rows:
        lines.append(f"| {m} | {n} | {k} | {d['total']:.1f} | {d['startup']:.1f} | {d['work']:.1f} | {ips:.1f} "
                     f"| {mbs:.2f} | **{su:.2f}x** | {lo:.2f}–{hi:.2f}x | {sut:.2f}x | {d['files_cpu']:.1f} "
                     f"| {_fmt(d['workers_cpu'], '.1f')} | {d['client_cpu']:.1f} "
                     f"| {_fmt(None if d['busy'] is None else 100 * d['busy'], '.0f')}{'' if d['busy'] is None else ' %'} "
                     f"| {_fmt(d['rss'], '.0f')} |")
    lines += ["", f"Medians over the rounds; each round runs every configuration once, in a fresh process, "
              f"in alternating order (ABC, CBA, ...), after an untimed warm-up. Speed-up = the sequential "
              f"loop's median / the row's median; 'per round': the lowest and highest ratio of runs of the "
              f"same round. Load average during the runs: {min(loads):.1f}-{max(loads):.1f} (1-minute; the "
              f"machine has {os.cpu_count()} cores).", "",
              "Every run, in the order run:", "",
              "| method | round | run | work s | files CPU s | workers CPU s | client CPU s | load |",
              "|---|---|---|---|---|---|---|---|"]
    for m, r, n, res in per_run:
        lines.append(f"| {m} | {r} | {n} | {res['work']:.1f} | {res['files_cpu']:.1f} "
                     f"| {_fmt(res['workers_cpu'], '.1f')} | {res['client_cpu']:.1f} | {res['load']:.1f} |")
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
    lines += ["", f"Finished {datetime.now(timezone.utc):%H:%M} UTC ({(datetime.now(timezone.utc) - started).seconds / 60:.0f} min)."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
