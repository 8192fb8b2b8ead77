"""imcompress batch against a real ``dask scheduler`` and two ``dask worker`` processes.

The test starts them on 127.0.0.1 (free ports, no dashboard) and stops them at
the end; it kills a worker mid-batch (SIGKILL), then the batch command itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import imcompress
from imcompress import ExitCode
from imcompress.batch import BatchSettings, run_batch
from imcompress.cli import main

from batch_helpers import K, check_dst, make_tree, manifest, ok_counts

pytestmark = pytest.mark.xdist_group("batch-real-cluster")

_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _dask(*args, log):
    exe = Path(sys.executable).with_name("dask")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "dask", *args]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_ENV, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class RealCluster:
    def __init__(self, root: Path):
        self.root = root
        self.log = open(root / "dask.log", "wb")
        self.file = root / "scheduler.json"
        self.scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.file),
                               log=self.log)
        deadline = time.monotonic() + 60
        while not self.file.exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start; see {root / 'dask.log'}")
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        self.workers = [
            _dask("worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-nanny", "--no-dashboard", "--local-directory", str(root / f"w{i}"), "--name", f"w{i}",
                  log=self.log)
            for i in range(2)
        ]
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            self.worker_pids = client.run(os.getpid)  # address -> pid

    def close(self):
        for proc in self.workers:
            _stop(proc)
        _stop(self.scheduler)
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = RealCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c
    finally:
        c.close()


def test_batch_on_a_real_scheduler_and_two_workers(tmp_path, cluster, capsys):
    expected = make_tree(tmp_path)
    dst = tmp_path / "dst"
    args = ["batch", str(tmp_path / "src"), "-o", str(dst), "-r", "-k", K, "--if-larger", "copy",
            "--scheduler", cluster.address, "--json"]
    assert main(args) == ExitCode.SOME_FAILED
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"ok": 4, "copied": 1, "skipped": 2, "failed": 1} and summary["workers"] == 2
    check_dst(dst, expected)
    assert {r["worker"] for r in manifest(dst) if r["worker"]} <= set(cluster.worker_pids)
    assert main(args) == ExitCode.SOME_FAILED  # a re-run: only the failure is retried
    summary = json.loads(capsys.readouterr().out)
    assert summary["up_to_date"] == 7 and summary["counts"]["failed"] == 1
    assert len(manifest(dst)) == 9


def _photos(src: Path, n: int, size=(120, 160)):
    src.mkdir()
    photo = imcompress.sample_image()
    h, w = size
    for i in range(n):
        y, x = (i * 29) % (512 - h), (i * 53) % (512 - w)
        Image.fromarray(photo[y:y + h, x:x + w]).save(src / f"p{i:02d}.png")
    return sorted(str(p) for p in src.iterdir())


def _wait_lines(dst: Path, n: int, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = dst / "manifest.jsonl"
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return path.read_bytes().count(b"\n")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} manifest lines after {timeout} s")


def _check_complete(dst: Path, inputs):
    assert ok_counts(dst) == {src: 1 for src in inputs}  # one ok line per input: none done twice
    for src in inputs:
        out = dst / (Path(src).stem + ".kmeans.imc")
        assert imcompress.decompress(out.read_bytes()).shape == (120, 160, 3)
    assert not (dst / ".imcompress-journal").exists()


def test_sigkill_a_worker_mid_batch(tmp_path, cluster):
    inputs = _photos(tmp_path / "src", 20)
    dst = tmp_path / "dst"
    settings = BatchSettings("kmeans", {"n_colors": 32, "random_state": 0})
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        summary=run_batch([tmp_path / "src"], dst, settings, scheduler=cluster.address)))
    runner.start()
    seen = _wait_lines(dst, 2)
    victim = manifest(dst)[0]["worker"]  # a worker that has taken part
    os.kill(cluster.worker_pids[victim], signal.SIGKILL)
    runner.join(300)
    assert not runner.is_alive()
    assert seen < len(inputs), "the batch ended before the worker was killed"
    summary = result["summary"]
    assert summary.counts["ok"] == len(inputs) and summary.n_failures == 0
    _check_complete(dst, inputs)
    workers = {r["worker"] for r in manifest(dst)}
    assert victim in workers and len(workers) == 2  # both worked; the survivor finished


def test_kill_the_batch_command_then_rerun(tmp_path, cluster):
    inputs = _photos(tmp_path / "src", 16)
    dst = tmp_path / "dst"
    cmd = [sys.executable, "-m", "imcompress", "batch", str(tmp_path / "src"), "-o", str(dst), "-k", "32",
           "--seed", "0", "--scheduler", cluster.address, "-q"]
    proc = subprocess.Popen(cmd, env=_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = _wait_lines(dst, 2)
    finally:
        proc.kill()
        proc.wait(30)
    assert seen < len(inputs), "the batch ended before it was killed"
    time.sleep(2)  # tasks already running on the workers finish into the journal
    done = subprocess.run(cmd[:-1] + ["--json"], env=_ENV, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["up_to_date"] + summary["counts"]["ok"] == len(inputs)  # recovered ones are up to date
    _check_complete(dst, inputs)
    lines = (dst / "manifest.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # no torn line


# defined outside any importable module, so Dask sends it by value to a worker that cannot import this file
_PROBE = {"__name__": "imcompress_test_probe"}
exec("""
import os

def probe(dask_worker):
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), "profile" in dask_worker.periodic_callbacks
""", _PROBE)
_probe_worker = _PROBE["probe"]


def _docs_worker_config() -> str:
    """The Dask configuration docs/batch.md recommends for the workers of a --scheduler cluster."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "batch.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if "MALLOC_TRIM_THRESHOLD_" in b]
    return block


def test_the_documented_worker_settings_reach_a_dask_worker_with_its_nanny(tmp_path, cluster):
    """docs/batch.md's YAML, given to a `dask worker` (with its nanny, Dask's default), does what it says."""
    from distributed import Client

    config = tmp_path / "imcompress.yaml"
    config.write_text(_docs_worker_config())
    env = {k: v for k, v in _ENV.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    states = {}
    with Client(cluster.address, timeout=60) as client:
        before = set(client.scheduler_info()["workers"])
        for label, extra in (("documented", {"DASK_CONFIG": str(config)}), ("dask default", {})):
            exe = Path(sys.executable).with_name("dask")
            cmd = [str(exe), "worker", "--scheduler-file", str(cluster.file), "--host", "127.0.0.1", "--nthreads",
                   "1", "--no-dashboard", "--local-directory", str(tmp_path / label), "--name", f"nanny-{label}"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                    env={**env, **extra}, start_new_session=True)
            try:
                deadline = time.monotonic() + 90
                while not (new := set(client.scheduler_info()["workers"]) - before):
                    assert proc.poll() is None and time.monotonic() < deadline, "the dask worker did not join"
                    time.sleep(0.2)
                (address,) = new
                states[label] = client.run(_probe_worker, workers=[address])[address]
            finally:
                _stop(proc)
            deadline = time.monotonic() + 30
            while set(client.scheduler_info()["workers"]) - before and time.monotonic() < deadline:
                time.sleep(0.2)
    assert states["dask default"] == ("65536", True)  # what the documented settings are there to change
    assert states["documented"] == (None, False)
