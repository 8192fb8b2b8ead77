"""From SRC paths to a list of jobs: which files, and where each one goes in DST.

Everything here runs on the client, before any work is sent, and touches only
names, ``stat`` and the first bytes of each file (to tell images by content).
The rules that keep DST safe live here:

- DST mirrors each SRC folder's structure; an SRC file goes to DST's top.
- A symlink pointing outside its SRC folder is not followed unless
  ``follow_symlinks``; DST itself is never read as input when it lies in SRC.
- Every output is checked to resolve inside DST (no ``..``, no symlinked
  folder in DST leading out), and two inputs claiming one output are both
  refused: nothing is overwritten by a sibling.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._errors import UsageError
from ._settings import BatchSettings

__all__ = ["Job", "Refusal", "Plan", "plan_batch", "is_image_file"]

#: Names of the batch's own files in DST, never taken as inputs.
MANIFEST_NAME = "manifest.jsonl"
JOURNAL_DIR = ".imcompress-journal"


@dataclass(frozen=True, slots=True)
class Job:
    """One input to compress; only paths and a stat, never pixels.

    Attributes
    ----------
    src : str
        Absolute path of the input file.
    out : str
        Output path relative to DST (POSIX separators).
    copy : str or None
        Where ``--if-larger copy`` puts the input file itself, relative to DST
        (the input's own name, so the extension still tells the format).
    size, mtime_ns : int
        ``stat`` of the input when planned (a re-run compares them first).
    """

    src: str
    out: str
    copy: str | None
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """An input not sent to a worker, with the reason (one line)."""

    src: str
    status: str  # "skipped" or "failed"
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass
class Plan:
    jobs: list
    refusals: list


def is_image_file(path) -> bool:
    """True when the file's content is an image Pillow knows (not its extension).

    A known signature is enough (a damaged PNG is still an image, and then
    fails loudly); otherwise Pillow must open the header.
    """
    from PIL import Image, UnidentifiedImageError

    Image.init()
    try:
        with open(path, "rb") as fh:
            prefix = fh.read(16)
    except OSError:
        return False
    if not prefix:
        return False
    for _factory, accept in Image.OPEN.values():
        try:
            if accept is not None and accept(prefix):
                return True
        except Exception:  # a plugin's signature test on odd bytes  # pragma: no cover
            continue
    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False
    except Exception:  # pragma: no cover - a Pillow plugin's own bug on junk
        return False


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _matches(rel: str, patterns) -> bool:
    name = PurePosixPath(rel).name
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _output_name(rel: str, suffix: str) -> str:
    p = PurePosixPath(rel)
    return str(p.with_name(p.stem + suffix)) if p.stem else str(p) + suffix


class _Scanner:
    def __init__(self, dst: Path, settings: BatchSettings, *, recursive, include, exclude, follow_symlinks):
        self.dst = dst
        self.dst_real = os.path.realpath(dst)
        self.settings = settings
        self.recursive = recursive
        self.include = tuple(include or ())
        self.exclude = tuple(exclude or ())
        self.follow = follow_symlinks
        self.found: list = []  # (src, rel, stat)
        self.refusals: list = []

    def refuse(self, src, status, reason, st=None):
        self.refusals.append(Refusal(src, status, reason, st.st_size if st else None, st.st_mtime_ns if st else None))

    def _stat(self, func, path):
        try:
            return func(path)
        except OSError as exc:
            self.refuse(path, "failed", f"{path}: cannot be read ({exc.strerror or exc})")
            return None

    def consider(self, path: str, rel: str, root_real: str | None):
        """A file met while walking (``root_real`` None: named on the command line)."""
        if self.include and not _matches(rel, self.include):
            return
        if self.exclude and _matches(rel, self.exclude):
            return
        lst = self._stat(os.lstat, path)
        if lst is None:
            return
        if stat.S_ISLNK(lst.st_mode):
            target = os.path.realpath(path)
            if root_real is not None and not self.follow and not _within(target, root_real):
                self.refuse(path, "skipped", f"{path}: symlink pointing outside SRC (to {target}); "
                            "not followed (use --follow-symlinks)", lst)
                return
            if not os.path.exists(target):
                self.refuse(path, "skipped", f"{path}: broken symlink (to {target})", lst)
                return
        st = self._stat(os.stat, path)
        if st is None:
            return
        if not stat.S_ISREG(st.st_mode):
            self.refuse(path, "skipped", f"{path}: not a regular file", lst)
            return
        if not is_image_file(path):
            self.refuse(path, "skipped", f"{path}: not an image file (by content)", st)
            return
        self.found.append((path, rel, st))

    def walk(self, root: str):
        root_real = os.path.realpath(root)
        if _within(root_real, self.dst_real):
            raise UsageError(f"SRC {root} lies inside DST {self.dst}; give an output folder outside SRC "
                             "(or inside it, as a subfolder)")
        seen = {root_real}
        for dirpath, dirnames, filenames in os.walk(root, followlinks=self.follow):
            here_real = os.path.realpath(dirpath)
            if _within(here_real, self.dst_real):
                dirnames[:] = []
                continue  # DST inside SRC: our own outputs are not inputs
            keep = []
            for d in sorted(dirnames):
                path = os.path.join(dirpath, d)
                real = os.path.realpath(path)
                if os.path.islink(path):
                    if not self.follow:
                        if not _within(real, root_real):
                            self.refuse(path, "skipped", f"{path}: symlink to a folder outside SRC (to {real}); "
                                        "not followed (use --follow-symlinks)")
                        continue
                    if real in seen or _within(root_real, real):
                        continue  # a loop, or a folder walked already
                if _within(real, self.dst_real) or real in seen:
                    continue
                seen.add(real)
                keep.append(d)
            dirnames[:] = keep if self.recursive else []
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                rel = Path(os.path.relpath(path, root)).as_posix()
                self.consider(path, rel, root_real)


def plan_batch(sources, dst, settings: BatchSettings, *, recursive=False, include=(), exclude=(),
               follow_symlinks=False) -> Plan:
    """List the jobs and the refused inputs of a batch.

    Parameters
    ----------
    sources : sequence of path-like
        Files and folders. A folder's images go to DST with the same relative
        paths (its subfolders only with ``recursive``); a file goes to DST's top.
    dst : path-like
        Output folder (need not exist yet).
    settings : BatchSettings
    recursive : bool, default=False
    include, exclude : sequence of str
        Glob patterns matched against each file's path relative to its SRC
        folder and against its name (``*.png``, ``raw/*``).
    follow_symlinks : bool, default=False
        Follow symlinks pointing outside their SRC folder.

    Returns
    -------
    Plan
        ``jobs`` (list of :class:`Job`, in walking order) and ``refusals``
        (list of :class:`Refusal`: non-images, links not followed, outputs
        that would collide or escape DST).
    """
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"-o {dst}: exists and is not a folder; give a folder for the outputs")
    scanner = _Scanner(dst, settings, recursive=recursive, include=include, exclude=exclude,
                       follow_symlinks=follow_symlinks)
    for src in sources:
        src = os.path.abspath(os.fspath(src))
        if os.path.isdir(src):
            scanner.walk(src)
        elif os.path.lexists(src):
            scanner.consider(src, os.path.basename(src), None)
        else:
            raise UsageError(f"{src}: no such file or folder; check the SRC paths")
    suffix = settings.output_suffix
    claims: dict = {}
    staged = []
    for path, rel, st in scanner.found:
        out = _output_name(rel, suffix)
        copy = rel if settings.if_larger == "copy" else None
        staged.append((path, out, copy, st))
        for name in {out, copy} - {None}:
            claims.setdefault(name, []).append(path)
    jobs = []
    for path, out, copy, st in staged:
        rivals = sorted({p for name in {out, copy} - {None} for p in claims[name]} - {path})
        if rivals:
            scanner.refuse(path, "failed", f"{path}: would write DST/{out} like {rivals[0]}; "
                           "rename one of them or use --ext", st)
            continue
        for name in {out, copy} - {None}:
            real = os.path.realpath(os.path.join(scanner.dst_real, name))
            if not _within(real, scanner.dst_real) or real == scanner.dst_real:
                scanner.refuse(path, "failed", f"{path}: its output {name} would resolve outside DST "
                               f"(to {real}); remove the symlink in DST", st)
                break
        else:
            jobs.append(Job(path, out, copy, st.st_size, st.st_mtime_ns))
    return Plan(jobs, scanner.refusals)
