"""imcompress batch: planning, manifest, the worker task, and the command on a Dask cluster.

The command tests share one local cluster of processes (started once for the
group) through ``--scheduler``; one test lets the command start its own.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import imcompress
from imcompress import ExitCode, UsageError
from imcompress.batch import BatchSettings, compress_job, is_image_file, plan_batch, read_manifest
from imcompress.batch._manifest import Manifest
from imcompress.batch._plan import Job
from imcompress.cli import main

from batch_helpers import K, check_dst, growing_image, make_tree, manifest, ok_counts

SETTINGS = BatchSettings("kmeans", {"n_colors": 8, "random_state": 0})


def _job(src: Path, out="out.imc", copy=None):
    st = src.stat()
    return Job(str(src), out, copy, st.st_size, st.st_mtime_ns)


# -- planning (no cluster) ------------------------------------------------------------

def test_plan_takes_images_by_content_and_refuses_what_would_escape(tmp_path):
    expected = make_tree(tmp_path)
    plan = plan_batch([tmp_path / "src"], tmp_path / "dst", SETTINGS, recursive=True)
    jobs = {j.src: j.out for j in plan.jobs}
    refused = {r.src: (r.status, r.reason) for r in plan.refusals}
    want_jobs = {s: o for s, (st, o) in expected.items() if st in ("ok", "failed", "copied")}
    # grows.png is a job whose output name is the usual one (copy is the worker's decision)
    want_jobs = {s: (o if not s.endswith("grows.png") else "grows.kmeans.imc") for s, o in want_jobs.items()}
    want_jobs[str(tmp_path / "src/sub/corrupt.png")] = "sub/corrupt.kmeans.imc"
    assert jobs == want_jobs
    assert refused[str(tmp_path / "src/notes.txt")][0] == "skipped"
    assert "not an image" in refused[str(tmp_path / "src/notes.txt")][1]
    status, reason = refused[str(tmp_path / "src/link.png")]
    assert status == "skipped" and "outside SRC" in reason and "--follow-symlinks" in reason
    followed = plan_batch([tmp_path / "src"], tmp_path / "dst", SETTINGS, recursive=True, follow_symlinks=True)
    assert str(tmp_path / "src/link.png") in {j.src for j in followed.jobs}
    flat = plan_batch([tmp_path / "src"], tmp_path / "dst", SETTINGS)
    assert {Path(j.src).name for j in flat.jobs} == {"top.png", "grows.png"}


def test_plan_collisions_dst_inside_src_and_filters(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    img = np.full((8, 8, 3), 7, np.uint8)
    Image.fromarray(img).save(src / "a.png")
    Image.fromarray(img).save(src / "a.jpg")
    Image.fromarray(img).save(src / "b.png")
    inner = src / "out"
    inner.mkdir()
    Image.fromarray(img).save(inner / "old.png")  # inside DST: never an input
    plan = plan_batch([src], inner, SETTINGS, recursive=True)
    assert [Path(j.src).name for j in plan.jobs] == ["b.png"]
    clash = {Path(r.src).name: r for r in plan.refusals}
    assert set(clash) == {"a.png", "a.jpg"}
    assert all(r.status == "failed" and "would write DST/a.kmeans.imc" in r.reason for r in clash.values())
    only = plan_batch([src], tmp_path / "d", SETTINGS, include=["*.png"], exclude=["b*"])
    assert [Path(j.src).name for j in only.jobs] == ["a.png"]
    with pytest.raises(UsageError, match="lies inside DST"):
        plan_batch([inner], src, SETTINGS)
    with pytest.raises(UsageError, match="no such file or folder"):
        plan_batch([tmp_path / "missing"], tmp_path / "d", SETTINGS)


def test_plan_refuses_an_output_resolving_outside_dst(tmp_path):
    src = tmp_path / "src" / "sub"
    src.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "x.png")
    dst = tmp_path / "dst"
    dst.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, dst / "sub")  # a folder of DST leading out of it
    plan = plan_batch([tmp_path / "src"], dst, SETTINGS, recursive=True)
    assert plan.jobs == []
    (ref,) = plan.refusals
    assert ref.status == "failed" and "outside DST" in ref.reason


def test_is_image_file_by_content(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.txt", format="PNG")
    (tmp_path / "y.png").write_bytes(b"hello, not a PNG")
    (tmp_path / "empty.png").write_bytes(b"")
    assert is_image_file(tmp_path / "x.txt")
    assert not is_image_file(tmp_path / "y.png")
    assert not is_image_file(tmp_path / "empty.png")


# -- manifest (no cluster) ------------------------------------------------------------------

def test_manifest_cuts_a_torn_tail_and_is_locked(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b'{"input": "a", "status": "ok"}\n{"input": "b", "sta')
    m = Manifest(tmp_path)
    assert path.read_bytes() == b'{"input": "a", "status": "ok"}\n'
    with pytest.raises(UsageError, match="another batch is writing"):
        Manifest(tmp_path)
    m.append({"input": "c", "status": "failed", "psnr": float("inf")})
    m.close()
    assert [r["input"] for r in read_manifest(path)] == ["a", "c"]
    assert read_manifest(path)[1]["psnr"] is None  # valid JSON, no Infinity
    Manifest(tmp_path).close()  # the lock went with the first


def test_settings_digest_ignores_names_but_not_parameters():
    a = BatchSettings("kmeans", {"n_colors": 8})
    assert a.digest() == BatchSettings("kmeans", {"n_colors": 8}, suffix=".x.imc").digest()
    assert a.digest() != BatchSettings("kmeans", {"n_colors": 9}).digest()
    assert a.digest() != BatchSettings("kmeans", {"n_colors": 8}, if_larger="copy").digest()
    with pytest.raises(UsageError, match="if_larger"):
        BatchSettings("kmeans", if_larger="never")
    with pytest.raises(UsageError, match="without a folder"):
        BatchSettings("kmeans", suffix="../x.imc")


# -- the worker task, called directly ---------------------------------------------------------

def test_compress_job_record_matches_the_file(tmp_path, sample):
    src = tmp_path / "in.png"
    Image.fromarray(sample[:64, :80]).save(src)
    dst = tmp_path / "dst"
    dst.mkdir()
    rec = compress_job(_job(src, "a/b.imc"), SETTINGS, str(dst))
    assert rec["status"] == "ok" and rec["error"] is None
    data = (dst / "a/b.imc").read_bytes()
    decoded = imcompress.decompress(data)
    assert rec["psnr"] == pytest.approx(peak_signal_noise_ratio(sample[:64, :80], decoded, data_range=255), abs=1e-9)
    assert rec["bytes_out"] == len(data) and rec["bpp"] == pytest.approx(8 * len(data) / (64 * 80))
    # the same as the library call with the same options
    assert data == imcompress.compress(sample[:64, :80], "kmeans", n_colors=8, random_state=0)
    journal = list((dst / ".imcompress-journal").iterdir())
    assert len(journal) == 1 and json.loads(journal[0].read_text())["output_sha256"] == rec["output_sha256"]
    # one thread's CPU time cannot exceed the wall time it was measured in
    assert 0 < rec["cpu_seconds"] <= rec["seconds"] + 1e-3


_PLAIN_LOOP = """
import socket, sys
from pathlib import Path
from PIL import Image
import numpy as np
from imcompress.batch import BatchSettings, Job, compress_job
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(src)
rec = compress_job(Job(str(src), "o.imc", None, src.stat().st_size, 0), BatchSettings("kmeans", {"n_colors": 4}), str(dst))
print(rec["status"], rec["worker"].startswith(socket.gethostname() + ":"), "distributed" in sys.modules)
"""


def test_compress_job_outside_dask_does_not_import_it(tmp_path):
    """The benchmark's sequential loop: importing Dask for a worker label cost its first file ~0.5 s of CPU."""
    import subprocess
    import sys

    (tmp_path / "dst").mkdir()
    out = subprocess.run([sys.executable, "-c", _PLAIN_LOOP, str(tmp_path / "in.png"), str(tmp_path / "dst")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ok", "True", "False"]


@pytest.mark.parametrize("policy, status, written", [("write", "ok", "g.imc"), ("skip", "skipped", None),
                                                     ("copy", "copied", "g.png")])
def test_compress_job_if_larger(tmp_path, policy, status, written):
    src = tmp_path / "g.png"
    Image.fromarray(growing_image()).save(src, optimize=True)
    dst = tmp_path / "dst"
    dst.mkdir()
    settings = BatchSettings("kmeans", {"n_colors": 8}, if_larger=policy)
    rec = compress_job(_job(src, "g.imc", "g.png"), settings, str(dst))
    assert rec["status"] == status and rec["output"] == written
    files = sorted(p.name for p in dst.iterdir() if p.is_file())
    assert files == ([written] if written else [])
    if policy == "copy":
        assert (dst / "g.png").read_bytes() == src.read_bytes() and rec["bytes_out"] == src.stat().st_size
    if policy != "write":
        assert "larger than the input" in rec["error"]


def test_compress_job_bad_input_is_a_record_not_an_exception(tmp_path):
    src = tmp_path / "bad.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    rec = compress_job(_job(src), SETTINGS, str(tmp_path))
    assert rec["status"] == "failed" and str(src) in rec["error"] and rec["output"] is None
    assert not (tmp_path / "out.imc").exists()


def test_compress_job_target_psnr(tmp_path, sample):
    src = tmp_path / "in.png"
    Image.fromarray(sample[:48, :48]).save(src)
    settings = BatchSettings("kmeans", {"random_state": 0}, target_psnr=30.0)
    rec = compress_job(_job(src), settings, str(tmp_path))
    ref = imcompress.compress_to_target(sample[:48, :48], "kmeans", target_psnr=30.0, random_state=0)
    assert rec["status"] == "ok" and rec["psnr"] >= 30.0
    assert (tmp_path / "out.imc").read_bytes() == ref.data


# -- the command on a cluster -------------------------------------------------------------------

@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        yield cluster.scheduler_address


def _batch(*args):
    return main(["batch", *map(str, args)])


@pytest.mark.xdist_group("batch-local-cluster")
def test_batch_command_then_rerun_then_redo_one(tmp_path, scheduler, capsys):
    expected = make_tree(tmp_path)
    dst = tmp_path / "dst"
    args = [tmp_path / "src", "-o", dst, "-r", "-k", K, "--if-larger", "copy", "--scheduler", scheduler]
    assert _batch(*args) == ExitCode.SOME_FAILED
    out, err = capsys.readouterr()
    assert "ok 4, copied 1, skipped 2, failed 1" in out
    assert "1 of 8 inputs failed" in err and "corrupt" in out
    check_dst(dst, expected)
    assert len(manifest(dst)) == 8
    stamps = {p: p.stat().st_mtime_ns for p in dst.rglob("*.imc")}

    # a re-run does nothing but retry the failure
    assert _batch(*args, "--json") == ExitCode.SOME_FAILED
    summary = json.loads(capsys.readouterr().out)
    assert summary["up_to_date"] == 7 and summary["counts"]["failed"] == 1 and summary["counts"]["ok"] == 0
    new = manifest(dst)[8:]
    assert [(r["input"], r["status"]) for r in new] == [(str(tmp_path / "src/sub/corrupt.png"), "failed")]
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.imc")} == stamps

    # one output deleted: exactly that one is redone
    gone = dst / "sub/photo.kmeans.imc"
    gone.unlink()
    assert _batch(*args, "-q") == ExitCode.SOME_FAILED
    assert capsys.readouterr().out == ""
    new = manifest(dst)[9:]
    assert sorted((Path(r["input"]).name, r["status"]) for r in new) == [("corrupt.png", "failed"), ("photo.jpg", "ok")]
    check_dst(dst, expected)
    assert ok_counts(dst)[str(tmp_path / "src/sub/photo.jpg")] == 2 and max(ok_counts(dst).values()) == 2

    # different parameters: everything is done again, to the same names
    other = [tmp_path / "src", "-o", dst, "-r", "-k", "6", "--if-larger", "copy", "--scheduler", scheduler, "-q"]
    assert _batch(*other) == ExitCode.SOME_FAILED
    assert all(r["params_sha256"] != new[0]["params_sha256"] for r in manifest(dst)[11:])
    check_dst(dst, expected)


@pytest.mark.xdist_group("batch-local-cluster")
def test_batch_command_errors(tmp_path, scheduler, capsys):
    (tmp_path / "src").mkdir()
    assert _batch(tmp_path / "nowhere", "-o", tmp_path / "d", "--scheduler", scheduler) == ExitCode.USAGE
    assert "no such file or folder" in capsys.readouterr().err
    assert _batch(tmp_path / "src", "-o", tmp_path / "d", "--scheduler", scheduler, "--workers", "2") == ExitCode.USAGE
    assert "local cluster" in capsys.readouterr().err
    assert _batch(tmp_path / "src", "-o", tmp_path / "d", "-m", "pca-rows", "-k", "8") == ExitCode.USAGE
    assert "option of --method kmeans" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert _batch(tmp_path / "src", "-o", tmp_path / "file") == ExitCode.USAGE
    assert "not a folder" in capsys.readouterr().err


def test_batch_command_starts_and_stops_its_own_cluster(tmp_path, capsys):
    import psutil

    src = tmp_path / "src"
    src.mkdir()
    photo = imcompress.sample_image()
    for i in range(3):
        Image.fromarray(photo[i * 50:i * 50 + 40, :48]).save(src / f"p{i}.png")
    me = psutil.Process()

    def children():  # multiprocessing's resource tracker stays for the life of this process
        return {p.pid for p in me.children(recursive=True)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                and "resource_tracker" not in " ".join(p.cmdline())}

    before = children()
    listening = {c.laddr for c in me.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert _batch(src, "-o", tmp_path / "dst", "-k", K, "--workers", "1", "--json") == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["ok"] == 3 and summary["workers"] == 1 and summary["n_failures"] == 0
    assert summary["bytes_in"] == sum(p.stat().st_size for p in src.iterdir())
    assert children() <= before  # the local cluster's processes are gone
    assert {c.laddr for c in me.net_connections("tcp") if c.status == psutil.CONN_LISTEN} <= listening


def test_warm_up_takes_the_lock_until_a_warm_up_has_finished(tmp_path, monkeypatch):
    """The first warm-up on a machine holds the lock (it may compile); later ones load the cache in parallel."""
    import fcntl
    import tempfile
    import threading

    from imcompress.batch._worker import _warm_files, warm_up

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a machine where no batch ran yet
    lock, ready = _warm_files(SETTINGS)
    assert lock.parent == ready.parent == tmp_path and not ready.exists()
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another worker is compiling
        first = threading.Thread(target=warm_up, args=(SETTINGS,), daemon=True)
        first.start()
        first.join(3.0)
        assert first.is_alive() and not ready.exists()  # it waits for the lock
        fcntl.flock(held, fcntl.LOCK_UN)
        first.join(60.0)
        assert not first.is_alive() and ready.exists()

        fcntl.flock(held, fcntl.LOCK_EX)  # held again: a warm-up after the first does not wait for it
        later = threading.Thread(target=warm_up, args=(SETTINGS,), daemon=True)
        later.start()
        later.join(60.0)
        assert not later.is_alive()
        fcntl.flock(held, fcntl.LOCK_UN)
    other = BatchSettings("kmeans", {"n_colors": 4})
    assert _warm_files(other)[1] != ready and _warm_files(other)[0] == lock  # one marker per settings
    # another numba cache (another installation, or NUMBA_CACHE_DIR): its own lock, not held up by this one's
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    assert _warm_files(SETTINGS)[0] != lock and _warm_files(SETTINGS)[1] != ready


_HEAP_PROBE = """
import numpy as np

def big_temporaries_come_from_the_heap(dask_worker=None):
    # glibc's dynamic mmap threshold: once a 4 MiB block was freed, the next one comes from the
    # heap; with the threshold fixed (any MALLOC_*_THRESHOLD_ set) each is a fresh mmap
    for _ in range(3):
        a = np.ones(1 << 19)
        del a
    a = np.ones(1 << 19)
    with open("/proc/self/maps") as fh:
        for line in fh:
            if line.rstrip().endswith("[heap]"):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= a.ctypes.data < hi:
                    return True
    return False
"""


def _from_heap():
    namespace = {}
    exec(_HEAP_PROBE, namespace)
    return namespace["big_temporaries_come_from_the_heap"]()


def _worker_state(dask_worker):
    from imcompress._threads import max_threads

    return (os.environ.get("MALLOC_TRIM_THRESHOLD_"), "profile" in dask_worker.periodic_callbacks, _from_heap(),
            max_threads())


# sent by value (this module imports scikit-image, hence SciPy, wherever it is imported)
_LINALG_PROBE = {"__name__": "imcompress_test_linalg_probe"}
exec("import sys\ndef linalg_loaded():\n    return 'scipy.linalg' in sys.modules\n", _LINALG_PROBE)


def _intervals(server) -> dict:
    """The periods (ms) of a Dask server's periodic self-checks that LOCAL_CLUSTER_CONFIG sets."""
    return {name: server.periodic_callbacks[name].callback_time
            for name in ("tick", "monitor", "memory_monitor") if name in server.periodic_callbacks}


def _worker_intervals(dask_worker):
    return _intervals(dask_worker)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc/self/maps")
@pytest.mark.xdist_group("batch-local-cluster")
def test_the_local_cluster_workers_keep_glibc_dynamic_mmap_threshold(monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_ makes every big temporary a fresh mmap; our workers run without it."""
    import subprocess
    import sys

    import dask

    from imcompress.batch._run import _Cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    # the reference: the probe in plain processes, with Dask's default setting and without it
    script = _HEAP_PROBE + "\nprint(big_temporaries_come_from_the_heap())"
    reference = {}
    for label, extra in (("dask default", {"MALLOC_TRIM_THRESHOLD_": "65536"}), ("unset", {})):
        out = subprocess.run([sys.executable, "-c", script], env={**os.environ, **extra}, capture_output=True,
                             text=True, check=True)
        reference[label] = out.stdout.strip()
    assert reference == {"dask default": "False", "unset": "True"}  # the probe tells them apart

    from imcompress._threads import max_threads
    from imcompress.batch._plugin import BatchWorkerPlugin

    monkeypatch.delenv("IMCOMPRESS_NUM_THREADS", raising=False)
    cluster = _Cluster(None, 1, 1, 30.0)
    try:
        plugin = BatchWorkerPlugin(SETTINGS, own_processes=True)
        cluster.client.register_plugin(plugin, name=plugin.name)
        for when in ("started", "restarted by its nanny"):
            # numba set up (its kernels warmed up) without SciPy's linalg, as the command line sets it up
            assert cluster.client.run(_LINALG_PROBE["linalg_loaded"]) == {a: False for a in cluster.client.nthreads()}
            (state,) = cluster.client.run(_worker_state).values()
            # no trim variable, no profiler, heap reuse; imcompress's own pools at the worker's one thread
            assert state == (None, False, True, 1), (when, state, max_threads())
            # Dask's periodic self-checks at the slower periods, in the workers and in the scheduler and
            # nannies of this process (Dask's defaults: 20, 500 and 100 ms)
            (periods,) = cluster.client.run(_worker_intervals).values()
            assert periods == {"tick": 1000, "monitor": 2000, "memory_monitor": 500}, (when, periods)
            nannies = [_intervals(n) for n in cluster.cluster.workers.values()]
            assert nannies == [{"tick": 1000, "monitor": 2000, "memory_monitor": 500}], (when, nannies)
            assert _intervals(cluster.cluster.scheduler) == {"tick": 1000, "monitor": 2000}
            cluster.client.restart()
    finally:
        cluster.close()
    # only the cluster the command starts: Dask's own configuration is left as it was
    assert dask.config.get("distributed.worker.profile.enabled") is True
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536


_BLAS_THREADS = """
import sys
if sys.argv[1] == "capped":
    from imcompress.batch._worker import cap_threads
    cap_threads(1)
import scipy.linalg  # its BLAS loaded after the cap
from threadpoolctl import threadpool_info
# the BLAS libraries (NumPy's, SciPy's); OpenMP's is numba's threading layer, capped by numba.set_num_threads
print(max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"))
"""


def test_cap_threads_reaches_a_blas_loaded_after_it():
    """cap_threads does not import SciPy for its BLAS (0.2 s per worker): a BLAS loaded later is capped too."""
    import subprocess
    import sys

    from imcompress.batch._worker import THREAD_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    threads = {}
    for label in ("capped", "reference"):
        out = subprocess.run([sys.executable, "-c", _BLAS_THREADS, label], env=env, capture_output=True, text=True,
                             check=True)
        threads[label] = int(out.stdout.strip())
    assert threads["capped"] == 1
    if len(os.sched_getaffinity(0)) > 1:  # the reference: without the cap, the BLAS takes every core
        assert threads["reference"] > 1


def test_journal_recovers_work_finished_after_the_client_died(tmp_path, sample):
    from imcompress.batch._manifest import is_done

    src = tmp_path / "in.png"
    Image.fromarray(sample[:40, :40]).save(src)
    dst = tmp_path / "dst"
    dst.mkdir()
    job = _job(src, "in.kmeans.imc")
    rec = compress_job(job, SETTINGS, str(dst))  # a worker finished; no client recorded it
    m = Manifest(dst)
    latest = m.load()
    assert latest == {} and not is_done(job, None, SETTINGS.digest(), dst)
    assert m.recover(latest) == 1
    assert is_done(job, latest[str(src)], SETTINGS.digest(), dst)
    assert m.recover(latest) == 0  # the journal entry is gone
    m.cleanup()
    m.close()
    assert manifest(dst) == [json.loads(json.dumps(rec))] and sorted(os.listdir(dst)) == ["in.kmeans.imc", "manifest.jsonl"]
    # a damaged output is not recorded as done, and is redone
    (dst / "in.kmeans.imc").write_bytes(b"x")
    assert not is_done(job, latest[str(src)], SETTINGS.digest(), dst)


def test_a_refused_input_is_not_done_once_it_is_taken(tmp_path):
    from imcompress.batch._manifest import Done, is_done

    make_tree(tmp_path)
    params = SETTINGS.digest()
    (job,) = [j for j in plan_batch([tmp_path / "src"], tmp_path / "dst", SETTINGS, follow_symlinks=True).jobs
              if j.src.endswith("link.png")]
    # refused last time (not followed): skipped, never read by a worker; even with the same stat...
    refused = Done("skipped", params, job.size, job.mtime_ns, None, None, None, None)
    assert not is_done(job, refused, params, tmp_path / "dst")  # ...with --follow-symlinks it is work now
    # a worker's --if-larger skip is a result: done
    examined = Done("skipped", params, job.size, job.mtime_ns, "0" * 64, None, None, None)
    assert is_done(job, examined, params, tmp_path / "dst")


def test_a_retried_group_does_not_redo_what_its_dead_worker_finished(tmp_path, sample):
    from imcompress.batch._worker import compress_group

    dst = tmp_path / "dst"
    dst.mkdir()
    jobs = []
    for i in range(3):
        src = tmp_path / f"in{i}.png"
        Image.fromarray(sample[10 * i:10 * i + 40, :48]).save(src)
        jobs.append(_job(src, f"in{i}.kmeans.imc"))
    first = compress_job(jobs[0], SETTINGS, str(dst))  # the worker died after the first input of its group
    stamp = (dst / "in0.kmeans.imc").stat().st_mtime_ns
    records = compress_group(jobs, SETTINGS, str(dst))  # the retry, on another worker
    assert records[0] == json.loads(json.dumps(first))  # the journal's record, not a second run
    assert (dst / "in0.kmeans.imc").stat().st_mtime_ns == stamp
    assert [r["status"] for r in records] == ["ok"] * 3 and [r["input"] for r in records] == [j.src for j in jobs]
    # a journal entry whose output was damaged since is not trusted: that input is redone
    (dst / "in1.kmeans.imc").write_bytes(b"x")
    again = compress_group(jobs[1:2], SETTINGS, str(dst))
    assert again[0]["time"] >= records[1]["time"] and (dst / "in1.kmeans.imc").read_bytes() != b"x"


def test_groups_share_tasks_but_stay_a_small_share_of_the_work():
    from imcompress.batch import Job
    from imcompress.batch._run import GROUP_FILES, _groups

    small = [Job(f"/s/{i}.png", f"{i}.imc", None, 2_000, 0) for i in range(10_000)]
    groups = list(_groups(small, 2))
    assert max(map(len, groups)) == GROUP_FILES and [j for g in groups for j in g] == small
    big = [Job(f"/b/{i}.png", f"{i}.imc", None, 50 << 20, 0) for i in range(5)]
    assert [len(g) for g in _groups(big + small[:3], 2)] == [1, 1, 1, 1, 1, 3]  # a large file goes alone
    few = small[:20]
    assert len(list(_groups(few, 2))) >= 16  # 8 groups per worker thread when there is little work


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_groups_shrink_towards_the_end_so_that_the_workers_finish_together(threads):
    from imcompress.batch import Job
    from imcompress.batch._run import GROUP_BYTES, GROUP_FILES, _groups

    rng = np.random.default_rng(0)
    jobs = [Job(f"/s/{i}.png", f"{i}.imc", None, int(s), 0) for i, s in enumerate(rng.integers(20_000, 200_000, 400))]
    total = sum(job.size for job in jobs)
    groups = list(_groups(jobs, threads))
    assert [j for g in groups for j in g] == jobs
    sizes = [sum(job.size for job in g) for g in groups]
    # each group is about 1/8 per thread of what was left (the nearest whole file), never below 1/32,
    # unless it is full (GROUP_FILES files, or GROUP_BYTES)
    left = total
    for size, group, after in zip(sizes, groups, groups[1:]):  # the last: what is left
        target = min(max(left / (8 * threads), total / (32 * threads)), GROUP_BYTES)
        assert size <= GROUP_BYTES and len(group) <= GROUP_FILES
        if len(group) < GROUP_FILES:  # nearer to the target with its last file, and without the next
            assert abs(size - target) <= max(group[-1].size, after[0].size) / 2, (size, target)
        left -= size
    assert sizes[0] > 2.5 * sizes[-1]  # the first groups large (few tasks), the last small (a short tail)
    assert max(sizes[-3:]) <= total / (32 * threads) + 200_000
    assert len(groups) <= 40 * threads  # Dask's cost per task stays a small share


def test_progress_bar_shows_files_rate_and_failures_and_redraws_twice_a_second(monkeypatch):
    import io

    import rich.console

    from imcompress.cli._batch import _Bar

    out = io.StringIO()
    make = rich.console.Console
    monkeypatch.setattr(rich.console, "Console", lambda **kw: make(file=out, force_terminal=True, width=120))
    bar = _Bar()
    bar.start(3, 2)
    for status in ("ok", "failed", "ok"):
        bar.update({"status": status, "bytes_in": 1_000_000})
    bar.progress.refresh()
    text = out.getvalue()
    bar.close()
    assert "batch (2 up to date)" in text and "3/3" in text and "1 failed" in text and "MB/s" in text
    # its drawing thread shares the cores with the workers (15-17 ms of CPU per second at rich's 10 Hz)
    assert bar.progress.live.refresh_per_second == 2
