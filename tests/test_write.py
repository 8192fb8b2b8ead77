"""Atomic, non-clobbering writes (io/_write.py)."""

import os

import pytest

from imcompress import OutputExistsError, WriteError
from imcompress.io import atomic_write, check_writable


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_bytes_and_returns_count(tmp_path):
    path = tmp_path / "out.bin"
    assert atomic_write(path, b"hello") == 5
    assert path.read_bytes() == b"hello"
    assert _leftovers(tmp_path) == []


def test_refuses_existing_file_without_force(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="already exists; use -f/--force"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"


def test_force_overwrites(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    atomic_write(path, b"new", force=True)
    assert path.read_bytes() == b"new"


@pytest.mark.parametrize("victim", ["replace", "fsync"])
def test_failure_mid_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, victim):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, victim, boom)
    with pytest.raises(WriteError, match="cannot write .*No space left"):
        atomic_write(path, b"new contents", force=True)
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert _leftovers(tmp_path) == []


def test_failure_on_new_file_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "new.bin"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(WriteError, match="I/O error"):
        atomic_write(path, b"data")
    monkeypatch.undo()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_dash_writes_stdout(capsysbinary):
    atomic_write("-", b"\x00\x01binary")
    assert capsysbinary.readouterr().out == b"\x00\x01binary"


def test_check_writable_errors(tmp_path):
    with pytest.raises(WriteError, match="does not exist; create it first"):
        check_writable(tmp_path / "missing" / "out.imc")
    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(WriteError, match="is a folder"):
        check_writable(folder, force=True)
    (tmp_path / "x").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="already exists"):
        check_writable(tmp_path / "x")
    assert check_writable(tmp_path / "x", force=True) == tmp_path / "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WriteError, match="not writable"):
            atomic_write(folder / "out.bin", b"x")
    finally:
        folder.chmod(0o700)
