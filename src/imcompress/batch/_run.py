"""The client side of a batch: plan, skip what is done, send the rest to Dask, record.

Memory on the client stays flat whatever the number of inputs: the plan
holds paths and a stat per input, at most ``window`` futures exist at once
(refilled through :class:`distributed.as_completed`), results are written to
the manifest as they arrive and only counters and the few slowest files are
kept for the summary.

A task is a group of inputs (:func:`_groups`), not one file: Dask costs about
10–15 ms of CPU per task (scheduler, worker, client), as much as compressing
a thumbnail, so small files travel together, while every group stays a small
share of the work so that the workers finish together.
"""

from __future__ import annotations

import copy
import heapq
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from .._errors import UsageError, WriteError
from ._manifest import Manifest, is_done, read_journal
from ._plan import plan_batch
from ._settings import BatchSettings

__all__ = ["BatchSummary", "run_batch"]

STATUSES = ("ok", "copied", "skipped", "failed")
#: Failures kept in memory for the closing summary (all are in the manifest).
_KEEP_FAILURES = 50
_KEEP_SLOWEST = 5
#: A group of inputs (one task) holds at most this many files and input bytes
#: (a file larger than that goes alone), and at most 1/8 of the bytes not yet
#: grouped per worker thread, but not less than 1/32 of all bytes per thread:
#: groups shrink towards the end, so that the workers finish together.
GROUP_FILES = 32
GROUP_BYTES = 4 << 20
_GROUPS_PER_THREAD = 8
_SMALLEST_SHARE = 32

#: Dask settings for the local cluster that ``run_batch`` starts (and for
#: nothing else; docs/batch.md gives them for ``--scheduler`` clusters).
LOCAL_CLUSTER_CONFIG = {
    # Dask's nanny puts MALLOC_TRIM_THRESHOLD_=65536 in each worker's
    # environment. Setting any of glibc's malloc thresholds also switches off
    # its dynamic mmap threshold, so every temporary array above 128 KiB is
    # then a fresh mmap, page-faulted in and unmapped again: 7-14x the page
    # faults and 15-25 % more CPU on pca-patch (measured, docs/batch.md). A task
    # keeps nothing in worker memory between files, so there is nothing for
    # the trim to return. A MALLOC_TRIM_THRESHOLD_ in the user's own
    # environment still wins (Dask's precedence).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # The statistical profiler samples every thread's stack every 10 ms for
    # the dashboard, which the local cluster does not open.
    "distributed.worker.profile.enabled": False,
    # Dask's periodic self-checks, in every worker and in the scheduler and
    # nannies of this process: the event-loop latency probe (every 20 ms),
    # the system monitor behind the dashboard's plots (500 ms) and the
    # memory-limit check (100 ms). Together 26 ms of CPU per second in this
    # process and 17 ms in each worker, idle or busy, taken from the cores the
    # files are compressed on; 6 and 3 ms at these intervals (measured,
    # docs/batch.md). A blocked event loop is still reported (after 3 s), a
    # worker over its memory limit is still paused or restarted, within 0.5 s.
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


@dataclass
class BatchSummary:
    """What a batch did; every figure is about this run (``up_to_date``: left as they were).

    Attributes
    ----------
    counts : dict
        Inputs per status (``ok``, ``copied``, ``skipped``, ``failed``) this run.
    up_to_date : int
        Inputs already done with the same parameters (nothing redone).
    recovered : int
        Results finished by workers after a previous client died, now recorded.
    bytes_in, bytes_out : int
        Input and output bytes of the files written this run (``ok`` and ``copied``).
    seconds : float
        Wall time of the whole run; ``startup_seconds`` of it to start (or
        reach) the cluster and set up its workers, ``work_seconds`` from then
        to the last result (the rest: planning, and stopping a local cluster).
    slowest : list of (seconds, input)
    failures : list of (input, error)
        The first failures (``n_failures`` counts them all).
    manifest : str
    workers : int
        Workers that took part.
    """

    counts: dict = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    up_to_date: int = 0
    recovered: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    work_seconds: float = 0.0
    slowest: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    n_failures: int = 0
    manifest: str = ""
    workers: int = 0
    total: int = 0

    @property
    def ratio(self) -> float | None:
        return self.bytes_in / self.bytes_out if self.bytes_out else None

    def add(self, record: dict) -> None:
        status = record["status"]
        self.counts[status] = self.counts.get(status, 0) + 1
        if status in ("ok", "copied"):
            self.bytes_in += record.get("bytes_in") or 0
            self.bytes_out += record.get("bytes_out") or 0
        if status == "failed":
            self.n_failures += 1
            if len(self.failures) < _KEEP_FAILURES:
                self.failures.append((record["input"], record.get("error") or "failed"))
        if record.get("seconds") is not None:
            item = (float(record["seconds"]), record["input"])
            if len(self.slowest) < _KEEP_SLOWEST:
                heapq.heappush(self.slowest, item)
            else:
                heapq.heappushpop(self.slowest, item)

    def as_dict(self) -> dict:
        return {
            "counts": dict(self.counts), "up_to_date": self.up_to_date, "recovered": self.recovered,
            "total": self.total, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "ratio": self.ratio,
            "seconds": self.seconds, "startup_seconds": self.startup_seconds,
            "work_seconds": self.work_seconds, "workers": self.workers,
            "slowest": [{"input": i, "seconds": s} for s, i in sorted(self.slowest, reverse=True)],
            "failures": [{"input": i, "error": e} for i, e in self.failures], "n_failures": self.n_failures,
            "manifest": self.manifest,
        }


class _Silent:
    def start(self, total, done):
        pass

    def update(self, record):
        pass

    def close(self):
        pass


def _refusal_record(ref, params: str) -> dict:
    return {
        "input": ref.src, "output": None, "status": ref.status, "error": ref.reason,
        "bytes_in": ref.size, "bytes_out": None, "bpp": None, "psnr": None, "seconds": None, "worker": None,
        "input_sha256": None, "params_sha256": params, "output_sha256": None,
        "input_size": ref.size, "input_mtime_ns": ref.mtime_ns,
    }


def _refusal_unchanged(ref, prev, params) -> bool:
    return (prev is not None and ref.status == "skipped" and prev.status == "skipped" and prev.params == params
            and prev.output is None and (prev.input_size, prev.input_mtime_ns) == (ref.size, ref.mtime_ns))


def _key(params: str, group) -> str:
    h = hashlib.sha1()
    for job in group:
        h.update(job.src.encode("utf-8", "surrogateescape") + b"\0")
    return f"imcompress-{params[:10]}-{len(group)}-{h.hexdigest()[:20]}"


def _groups(jobs, n_threads: int, *, max_files=GROUP_FILES, max_bytes=GROUP_BYTES):
    """Cut ``jobs`` (a list, in order) into tuples of consecutive jobs, lazily.

    Guided scheduling: each group takes 1/8 per worker thread of the bytes
    not yet grouped, so the last groups are small and the worker that takes
    the last one does not keep the others waiting long; no group is smaller
    than 1/32 per thread of all bytes (or one file), so that Dask's cost per
    task stays a small share.

    Examples
    --------
    >>> from imcompress.batch import Job
    >>> jobs = [Job(f"/s/{i}.png", f"{i}.imc", None, 1000, 0) for i in range(100)]
    >>> [len(g) for g in _groups(jobs, 1)]  # 1/8 of what is left, then no less than 1/32 of the whole
    [13, 11, 10, 8, 7, 6, 6, 5, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 2]
    >>> [len(g) for g in _groups(jobs, 2, max_files=5)][:4]
    [5, 5, 5, 5]
    """
    total = sum(max(job.size, 1) for job in jobs)
    share = _GROUPS_PER_THREAD * max(n_threads, 1)
    smallest = total / (_SMALLEST_SHARE * max(n_threads, 1))
    left = total
    group, size = [], 0
    target = max(left / share, smallest)
    for job in jobs:
        grown = size + max(job.size, 1)
        # full: the caps, or the target nearer without this job than with it
        if group and (len(group) >= max_files or grown > max_bytes or grown - target > target - size):
            yield tuple(group)
            left -= size
            target = max(left / share, smallest)
            group, grown = [], max(job.size, 1)
        group.append(job)
        size = grown
    if group:
        yield tuple(group)


class _Cluster:
    """A client on an existing scheduler, or on a local cluster of processes it starts and stops."""

    def __init__(self, scheduler, workers, threads_per_worker, connect_timeout):
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        try:
            if scheduler is None:
                n = workers or os.cpu_count() or 1
                with dask.config.set(LOCAL_CLUSTER_CONFIG):
                    # A nanny reads its workers' environment when it is made, but
                    # hands each worker process it (re)starts a shallow copy of the
                    # global config, which this `with` restores on exit: it gets
                    # its own copy, so a restarted worker has the same settings.
                    config = {"distributed": copy.deepcopy(dask.config.get("distributed"))}
                    self.cluster = LocalCluster(
                        n_workers=n, threads_per_worker=threads_per_worker or 1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR, config=config,
                        # no dashboard; Dask's small HTTP server (health, metrics) on
                        # a free loopback port, not 8787, and closed with the cluster
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    )
                self.client = Client(self.cluster)
            else:
                self.client = Client(scheduler, timeout=connect_timeout)
        except OSError as exc:
            self.close()
            where = scheduler or "the local cluster"
            raise UsageError(f"cannot reach Dask scheduler at {where} ({exc}); start it with "
                             "'dask scheduler' and workers with 'dask worker ADDRESS', or check the address") from None

    def wait_for_workers(self, timeout):
        if self.cluster is not None:
            return
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise UsageError(f"no Dask worker joined the scheduler within {timeout:g} s; start some with "
                             f"'dask worker {self.client.scheduler.address}'") from None

    def nthreads(self) -> int:
        return sum(self.client.nthreads().values())

    def close(self):
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()


def run_batch(sources, dst, settings: BatchSettings, *, recursive=False, include=(), exclude=(),
              follow_symlinks=False, workers=None, threads_per_worker=None, scheduler=None,
              window=None, progress=None, connect_timeout=30.0) -> BatchSummary:
    """Compress every image of ``sources`` into ``dst`` on Dask, resumably.

    Parameters
    ----------
    sources : sequence of path-like
        Files and folders (see :func:`plan_batch`).
    dst : path-like
        Output folder, created if needed; it mirrors the structure of each
        SRC folder and receives ``manifest.jsonl``.
    settings : BatchSettings
    recursive, include, exclude, follow_symlinks
        Which files are taken (see :func:`plan_batch`).
    workers : int, optional
        Workers of the local cluster (default: one per core). Local only.
    threads_per_worker : int, optional
        Threads of each local worker (default 1). Local only.
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``). Its workers must
        see SRC and DST at the same paths (shared storage).
    window : int, optional
        Tasks in flight at once (default: 4 per worker thread, at least 8);
        a task is a group of up to ``GROUP_FILES`` small inputs.
    progress : object, optional
        Receives ``start(total, up_to_date)``, ``update(record)`` and ``close()``.

    Returns
    -------
    BatchSummary

    Raises
    ------
    UsageError
        Bad sources, a DST locked by another batch, an unreachable scheduler.
    WriteError
        DST cannot be created or the manifest cannot be written.
    """
    if scheduler is not None and (workers is not None or threads_per_worker is not None):
        raise UsageError("--workers and --threads-per-worker size the local cluster; "
                         "with --scheduler the cluster's own workers are used")
    t0 = time.perf_counter()
    progress = progress or _Silent()
    dst = Path(os.path.abspath(os.fspath(dst)))
    plan = plan_batch(sources, dst, settings, recursive=recursive, include=include, exclude=exclude,
                      follow_symlinks=follow_symlinks)
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{dst}: cannot create the output folder ({exc.strerror or exc})") from None
    manifest = Manifest(dst)
    summary = BatchSummary(manifest=str(manifest.path), total=len(plan.jobs) + len(plan.refusals))
    try:
        params = settings.digest()
        latest = manifest.load()
        summary.recovered = manifest.recover(latest)
        for ref in plan.refusals:
            if _refusal_unchanged(ref, latest.get(ref.src), params):
                summary.up_to_date += 1
                continue
            record = _refusal_record(ref, params)
            manifest.append(record)
            summary.add(record)
        todo = []
        for job in plan.jobs:
            if is_done(job, latest.get(job.src), params, dst):
                summary.up_to_date += 1
            else:
                todo.append(job)
        del latest, plan
        progress.start(len(todo), summary.up_to_date)
        try:
            if todo:
                _run_on_dask(todo, dst, settings, manifest, summary, progress, scheduler=scheduler,
                             workers=workers, threads_per_worker=threads_per_worker, window=window,
                             connect_timeout=connect_timeout, t0=t0)
        finally:
            progress.close()
        manifest.cleanup()
    finally:
        manifest.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_on_dask(todo, dst, settings, manifest, summary, progress, *, scheduler, workers, threads_per_worker,
                 window, connect_timeout, t0):
    from distributed import as_completed

    from ._plugin import BatchWorkerPlugin, run_task

    if workers is not None and scheduler is None:
        workers = min(workers, len(todo))  # no idle processes for a handful of files
    plugin = BatchWorkerPlugin(settings, own_processes=scheduler is None)
    cluster = _Cluster(scheduler, workers, threads_per_worker, connect_timeout)
    try:
        cluster.wait_for_workers(connect_timeout)
        cluster.client.register_plugin(plugin, name=plugin.name)
        summary.startup_seconds = time.perf_counter() - t0
        summary.workers = len(cluster.client.nthreads())
        nthreads = cluster.nthreads()
        size = window or max(8, 4 * nthreads)
        params = settings.digest()
        groups = _groups(todo, nthreads)
        by_future = {}

        def submit(group):
            fut = cluster.client.submit(run_task, group, plugin.name, str(dst), key=_key(params, group))
            by_future[fut.key] = group
            return fut

        queue = as_completed([submit(group) for group in islice(groups, size)])
        for fut in queue:
            group = by_future.pop(fut.key)
            try:
                records = fut.result()
            except Exception as exc:  # the task itself never raises: a worker died on this group
                # what the dead workers finished is in the journal; the rest is lost
                records = [read_journal(dst, job, params) or _lost_record(job, params, exc) for job in group]
            fut.release()
            for record in records:
                manifest.settle(record)
                summary.add(record)
                progress.update(record)
            nxt = next(groups, None)
            if nxt is not None:
                queue.add(submit(nxt))
        summary.work_seconds = time.perf_counter() - t0 - summary.startup_seconds
    finally:
        if scheduler is not None:  # an existing cluster: leave no plugin behind for later workers
            try:
                cluster.client.unregister_worker_plugin(plugin.name)
            except Exception:  # pragma: no cover - the scheduler is gone already
                pass
        cluster.close()


def _lost_record(job, params, exc) -> dict:
    name = type(exc).__name__
    if name == "KilledWorker":
        why = (f"{job.src}: the workers running it died repeatedly (KilledWorker); "
               "it may need more memory than a worker has")
    else:
        why = f"{job.src}: task lost ({name}: {exc})"
    return {
        "input": job.src, "output": None, "status": "failed", "error": why, "bytes_in": job.size,
        "bytes_out": None, "bpp": None, "psnr": None, "seconds": None, "worker": None, "input_sha256": None,
        "params_sha256": params, "output_sha256": None, "input_size": job.size, "input_mtime_ns": job.mtime_ns,
    }
