"""``DST/manifest.jsonl``: one JSON line per finished input, and the journal behind it.

Only the client writes the manifest, one ``os.write`` of one whole line per
record on a file opened with ``O_APPEND``: a killed process leaves whole
lines (a write is not split by a signal). A torn tail left by a power cut or
a full disk is cut off when the manifest is next opened. The manifest is
locked (``flock``) for the run, so two batches cannot write one DST.

Workers write each result to a small journal file (atomically) right after
the output itself. If the client dies between a worker finishing and the
line being appended, the next run finds the journal entry, checks the output
against it and appends the line: the work is not done twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._errors import UsageError, WriteError
from .._json import json_safe
from ._plan import JOURNAL_DIR, MANIFEST_NAME

__all__ = ["Manifest", "Done", "file_sha256", "journal_name", "write_journal", "read_journal",
           "record_holds", "read_manifest"]

#: Statuses after which an input needs no more work (with the same parameters).
FINAL = ("ok", "copied", "skipped")


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def journal_name(src: str, params_sha256: str) -> str:
    return hashlib.sha1(f"{params_sha256}\0{src}".encode("utf-8", "surrogateescape")).hexdigest() + ".json"


def write_journal(dst: Path, record: dict) -> None:
    """Atomically leave ``record`` in DST's journal (run on the worker)."""
    folder = Path(dst) / JOURNAL_DIR
    folder.mkdir(exist_ok=True)
    text = json.dumps(json_safe(record))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, folder / journal_name(record["input"], record["params_sha256"]))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_journal(dst: Path, job, params_sha256: str) -> dict | None:
    """The journal's record of ``job`` if one holds (same input stat, output intact), else None.

    A task retried after its worker died finds the inputs of its group that
    were already finished there, so they are not done twice.
    """
    path = Path(dst) / JOURNAL_DIR / journal_name(job.src, params_sha256)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("input") != job.src:
        return None
    if (record.get("input_size"), record.get("input_mtime_ns")) != (job.size, job.mtime_ns):
        return None
    return record if record_holds(Path(dst), record) else None


def record_holds(dst: Path, record: dict) -> bool:
    """True when a final ``record`` is still true on disk (its output has the recorded size and hash)."""
    if record.get("status") not in FINAL or "input" not in record or "params_sha256" not in record:
        return False
    out = record.get("output")
    if out is None:
        return record.get("status") == "skipped"
    path = dst / out
    try:
        return path.stat().st_size == record.get("bytes_out") and file_sha256(path) == record.get("output_sha256")
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Done:
    """What a re-run needs of an input's latest manifest line."""

    status: str
    params: str
    input_size: int | None
    input_mtime_ns: int | None
    input_sha256: str | None
    output: str | None
    bytes_out: int | None
    output_sha256: str | None

    @classmethod
    def of(cls, rec: dict) -> "Done":
        return cls(rec.get("status"), rec.get("params_sha256"), rec.get("input_size"), rec.get("input_mtime_ns"),
                   rec.get("input_sha256"), rec.get("output"), rec.get("bytes_out"), rec.get("output_sha256"))


def read_manifest(path):
    """The records of a manifest, in order; a torn last line is ignored.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "manifest.jsonl"
    >>> _ = p.write_text('{"input": "a.png", "status": "ok"}\\n{"input": "b.p')
    >>> [r["input"] for r in read_manifest(p)]
    ['a.png']
    """
    records = []
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
    return records


class Manifest:
    """The manifest of one DST, open and locked for appending."""

    def __init__(self, dst):
        self.dst = Path(dst)
        self.path = self.dst / MANIFEST_NAME
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise WriteError(f"{self.path}: cannot be written ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise UsageError(f"{self.path}: another batch is writing this DST now; wait for it "
                             "or choose another output folder") from None
        self._repair_tail()

    def _repair_tail(self):
        size = os.fstat(self.fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - (1 << 16)))
            tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= len(tail) else None)
        if keep is None:  # pragma: no cover - a line longer than 64 KiB: scan it all
            with open(self.path, "rb") as fh:
                keep = fh.read().rfind(b"\n") + 1
        os.ftruncate(self.fd, keep)

    def load(self) -> dict:
        """The latest record of each input, as :class:`Done` (memory: one small tuple per input)."""
        latest = {}
        for rec in read_manifest(self.path):
            if "input" in rec:
                latest[rec["input"]] = Done.of(rec)
        return latest

    def append(self, record: dict) -> None:
        # ASCII JSON: a file name that is not valid UTF-8 (surrogate escapes) stays exact
        line = (json.dumps(json_safe(record), separators=(",", ":")) + "\n").encode("ascii")
        try:
            written = os.write(self.fd, line)
        except OSError as exc:
            raise WriteError(f"{self.path}: cannot append ({exc.strerror or exc})") from None
        if written != len(line):  # a full disk: cut the torn line off again
            self._repair_tail()
            raise WriteError(f"{self.path}: disk full while appending; free space and re-run")

    def close(self):
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:  # pragma: no cover
                pass
            os.close(self.fd)  # releases the lock
            self.fd = None

    # -- the journal ----------------------------------------------------------------
    def journal_path(self, record: dict) -> Path:
        return self.dst / JOURNAL_DIR / journal_name(record["input"], record["params_sha256"])

    def settle(self, record: dict) -> None:
        """Append ``record`` and drop its journal entry (the line now holds it)."""
        self.append(record)
        try:
            os.unlink(self.journal_path(record))
        except OSError:
            pass

    def recover(self, latest: dict) -> int:
        """Append the results workers finished after the last client died; returns how many."""
        folder = self.dst / JOURNAL_DIR
        if not folder.is_dir():
            return 0
        n = 0
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):  # a worker's temporary file: the worker died mid-write
                entry.unlink(missing_ok=True)
                continue
            try:
                record = json.loads(entry.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                entry.unlink(missing_ok=True)
                continue
            if record_holds(self.dst, record) and latest.get(record.get("input")) != Done.of(record):
                self.append(record)
                latest[record["input"]] = Done.of(record)
                n += 1
            entry.unlink(missing_ok=True)
        return n

    def cleanup(self) -> None:
        """Remove the journal folder when no entry is left in it.

        A worker killed while writing an entry leaves a temporary file; every
        task of this run has ended, so it is litter.
        """
        folder = self.dst / JOURNAL_DIR
        try:
            for entry in folder.glob(".*.tmp"):
                entry.unlink(missing_ok=True)
            folder.rmdir()
        except OSError:
            pass


def is_done(job, prev: Done | None, params: str, dst: Path) -> bool:
    """True when ``job``'s latest record is final, with these parameters, and still true on disk."""
    if prev is None or prev.status not in FINAL or prev.params != params:
        return False
    if (prev.input_size, prev.input_mtime_ns) != (job.size, job.mtime_ns):
        try:
            if prev.input_sha256 is None or file_sha256(job.src) != prev.input_sha256:
                return False
        except OSError:
            return False
    if prev.status == "skipped" and prev.output is None:
        # a worker's --if-larger skip is a result; a refusal (never read by a worker) is not,
        # once the input is taken (--follow-symlinks)
        return prev.input_sha256 is not None
    if prev.output not in (job.out, job.copy):
        return False  # the output names changed (--ext)
    path = dst / prev.output
    try:
        return path.stat().st_size == prev.bytes_out and file_sha256(path) == prev.output_sha256
    except OSError:
        return False
