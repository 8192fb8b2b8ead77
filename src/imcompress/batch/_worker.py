"""What runs on a Dask worker: one task per input, and the warm-up.

:func:`compress_job` reads one file, compresses it with
:func:`imcompress.compress_to_target`, writes the output atomically and
returns its manifest record; a bad input becomes a ``failed`` record, never an
exception. :func:`warm_up` compiles the method's numba kernels by compressing
a tiny image; several workers starting together on one machine take turns (a
file lock), so the first compiles and writes numba's on-disk cache and the
others load it instead of racing to write the same cache files. Once a
warm-up with these settings and versions has finished on the machine (a
marker file beside the lock), later workers only load the cache and do it at
the same time, without the lock.

This module does not import Dask (the plugin that calls it is in
``_plugin.py``): :func:`compress_job` is called directly by the benchmark's
sequential loop.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._errors import ImcompressError, InputError
from ._manifest import read_journal, write_journal
from ._plan import Job
from ._settings import BatchSettings

__all__ = ["compress_job", "compress_group", "warm_up", "plugin_name", "cap_threads"]

log = logging.getLogger("imcompress.batch")


def plugin_name(settings: BatchSettings) -> str:
    return f"imcompress-batch-{settings.digest()[:16]}"


#: Read by imcompress._threads.max_threads at each call (K-means assignment, PNG
#: writing), and by OpenMP and the BLAS libraries when they are loaded.
THREAD_VARIABLES = ("IMCOMPRESS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cap_threads(n: int) -> None:
    """At most ``n`` threads per call: imcompress's own pools, BLAS/OpenMP (loaded now or later), numba."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    from threadpoolctl import threadpool_limits

    # the libraries loaded already (NumPy's BLAS); one loaded later (SciPy's) reads the variables
    threadpool_limits(limits=n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):  # pragma: no cover
        pass


def _warm_image() -> np.ndarray:
    """A small image with enough colours and texture for every method's code paths."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    base = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.float64)
    noisy = base + rng.normal(0.0, 12.0, base.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def warm_up(settings: BatchSettings) -> float:
    """Compile the kernels the settings use (encode, decode, measure); returns seconds.

    Serialized across the processes of this machine by a lock file until one
    warm-up of these settings has finished, so that numba's cache is written
    by one process and read by the others; after that, without the lock.
    """
    from PIL import Image

    from ..codecs import compress_to_target, get_codec
    from ..io import read_image

    start = time.perf_counter()
    get_codec(settings.method)  # the imports, outside the lock: they run in parallel
    # through the reading path a task takes too (Pillow loads its PNG plugin on first use)
    png = io.BytesIO()
    Image.fromarray(_warm_image()).save(png, format="PNG")
    image = read_image(io.BytesIO(png.getvalue()), alpha="keep").pixels
    lock, ready = _warm_files(settings)
    with open(lock, "a+b") as fh:
        # Loading a cache written in full is safe in parallel; the lock is for the
        # first start, when the kernels compile and the cache files are written.
        # (Were the marker stale, e.g. sources edited in place, numba still writes
        # each cache file by atomic rename: the cost is compiling twice.)
        locked = not ready.exists()
        if locked:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            for params in (settings.params, {}):
                try:
                    compress_to_target(image, settings.method, format=settings.format, **params)
                    break
                except ImcompressError:
                    continue  # options this tiny image cannot take: the defaults compile the same kernels
            ready.touch()
        finally:
            if locked:
                fcntl.flock(fh, fcntl.LOCK_UN)
    return time.perf_counter() - start


def _warm_files(settings: BatchSettings) -> tuple[Path, Path]:
    """The warm-up's lock file, and the marker of a finished warm-up of these settings and versions."""
    import sys

    import numba

    from .. import __version__

    # numba's cache lives beside the sources (or in NUMBA_CACHE_DIR): one lock and one marker per
    # copy of them, so that another installation compiling its own cache does not hold this one up
    where = f"{Path(__file__).resolve().parents[1]} {os.environ.get('NUMBA_CACHE_DIR', '')}"
    key = f"{settings.digest()} {__version__} {numba.__version__} {sys.version} {where}"
    key = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    copy = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()
    tmp = Path(tempfile.gettempdir())
    return (tmp / f"imcompress-numba-{os.getuid()}-{copy[:16]}.lock",
            tmp / f"imcompress-numba-{os.getuid()}-{key[:16]}.ready")


def _worker_label() -> str:
    import sys

    # a process that has not imported Dask is not a worker: importing it here cost the first file of a
    # plain loop over compress_job ~0.5 s of CPU (inside its timed cpu_seconds)
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return str(get_worker().address)
        except ValueError:
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def _read(job: Job) -> bytes:
    try:
        with open(job.src, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"{job.src}: cannot be read ({exc.strerror or exc})") from None


def compress_job(job: Job, settings: BatchSettings, dst: str) -> dict:
    """Compress one input to DST and return its manifest record; never raises for a bad input.

    The output is written atomically; the record is left in the journal
    before returning (see :mod:`._manifest`).
    """
    from ..codecs import compress_to_target
    from ..io import atomic_write, read_image

    try:
        import numba

        numba.set_num_threads(1)  # numba's thread count is per calling thread
    except (ImportError, ValueError):  # pragma: no cover
        pass
    start, cpu_start = time.perf_counter(), time.thread_time()
    record = {
        "input": job.src, "output": None, "status": "failed", "error": None,
        "bytes_in": job.size, "bytes_out": None, "bpp": None, "psnr": None, "seconds": None,
        "worker": _worker_label(), "method": settings.method,
        "input_sha256": None, "params_sha256": settings.digest(), "output_sha256": None,
        "input_size": job.size, "input_mtime_ns": job.mtime_ns,
    }
    try:
        raw = _read(job)
        record["bytes_in"] = len(raw)
        record["input_sha256"] = _sha(raw)
        source = io.BytesIO(raw)
        source.name = job.src
        image = read_image(source, alpha="keep", max_pixels=settings.max_pixels)
        h, w = image.pixels.shape[:2]
        result = compress_to_target(
            image.pixels, settings.method, target_psnr=settings.target_psnr, max_bytes=settings.max_bytes,
            best_effort=settings.best_effort, format=settings.format,
            icc_profile=None if settings.strip else image.icc_profile, **settings.params,
        )
        data, psnr_db = result.data, result.psnr
        if not result.met:
            record["error"] = "target not reached (--best-effort)"
        if len(data) > len(raw) and settings.if_larger != "write":
            larger = f"result ({len(data)} bytes) larger than the input ({len(raw)} bytes)"
            if settings.if_larger == "skip":
                record.update(status="skipped", error=f"{larger}; nothing written (--if-larger skip)")
                data = None
            else:
                record.update(status="copied", output=job.copy, error=f"{larger}; input copied (--if-larger copy)")
                data, psnr_db = raw, float("inf")
        else:
            record.update(status="ok", output=job.out)
        if data is not None:
            path = Path(dst) / record["output"]
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from .._errors import WriteError

                raise WriteError(f"{path.parent}: cannot create folder ({exc.strerror or exc})") from None
            atomic_write(path, data, force=True)
            record.update(bytes_out=len(data), bpp=8.0 * len(data) / (h * w), psnr=psnr_db,
                          output_sha256=_sha(data))
    except ImcompressError as exc:
        record.update(status="failed", error=" ".join(str(exc).split()), output=None)
    except MemoryError:
        record.update(status="failed", error=f"{job.src}: out of memory; use fewer threads per worker", output=None)
    except Exception as exc:  # a bug: the batch goes on, the manifest keeps the evidence
        log.exception("internal error on %s", job.src)
        record.update(status="failed", error=f"internal error ({type(exc).__name__}: {exc})", output=None)
    record["seconds"] = time.perf_counter() - start
    # CPU of this thread: the kernels run in it (one numba/BLAS thread), so this is the
    # file's whole compute, a figure that other programs on the machine hardly change
    record["cpu_seconds"] = time.thread_time() - cpu_start
    record["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if record["status"] != "failed":
        write_journal(Path(dst), record)
    return record


def compress_group(jobs, settings: BatchSettings, dst: str) -> list:
    """:func:`compress_job` for each input of a group, in order; returns their records.

    An input already in DST's journal with these parameters (the group is a
    retry after its worker died mid-group) is not compressed again: its
    journal record is returned, so no input is done twice.
    """
    params = settings.digest()
    records = []
    for job in jobs:
        done = read_journal(Path(dst), job, params)
        records.append(done if done is not None else compress_job(job, settings, dst))
    return records


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

