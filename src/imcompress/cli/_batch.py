"""The ``batch`` command: whole folders on Dask, resumable, with a manifest.

Parsing and printing only: the work is :func:`imcompress.batch.run_batch`.
Dask is imported when the command runs, never when ``imcompress`` starts.
"""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import click

from .._errors import SomeFailedError, UsageError
from .._json import json_safe
from ..codecs import available_methods
from ._compress import _codec_from_cli, _line, _method_options
from ._main import cli, short_help

__all__ = ["batch_cmd"]


class _Bar:
    """A live bar on stderr: files done / total, MB/s of input, ETA, failures so far."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[failed]}"),
            # redrawn twice a second: at rich's 10 the drawing thread took 15-17 ms of CPU per second
            # (3 at 2; measured on a pseudo-terminal under load 10), beside workers on the same cores
            console=self.console, transient=True, refresh_per_second=2,
        )
        self.task = None
        self.failed = 0
        self.bytes = 0

    def start(self, total, up_to_date):
        import time

        self.t0 = time.perf_counter()
        self.progress.start()
        label = "batch" + (f" ({up_to_date} up to date)" if up_to_date else "")
        self.task = self.progress.add_task(label, total=total, rate="", failed="")

    def update(self, record):
        import time

        self.bytes += record.get("bytes_in") or 0
        self.failed += record["status"] == "failed"
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, advance=1, rate=f"{self.bytes / elapsed / 1e6:.1f} MB/s",
                             failed=f"[red]{self.failed} failed" if self.failed else "")

    def close(self):
        self.progress.stop()


def _summary_lines(summary, dst) -> list:
    c = summary.counts
    lines = [
        f"{dst}: ok {c['ok']}, copied {c['copied']}, skipped {c['skipped']}, failed {c['failed']}, "
        f"up to date {summary.up_to_date}" + (f", recovered {summary.recovered}" if summary.recovered else ""),
    ]
    if summary.bytes_out:
        lines.append(f"  {summary.bytes_in:,} bytes in -> {summary.bytes_out:,} bytes out, "
                     f"ratio {summary.ratio:.2f}, {summary.seconds:.1f} s "
                     f"({summary.workers} workers, start-up {summary.startup_seconds:.1f} s)")
    if summary.slowest:
        slow = ", ".join(f"{Path(i).name} {s:.2f} s" for s, i in sorted(summary.slowest, reverse=True))
        lines.append(f"  slowest: {slow}")
    for src, error in summary.failures:
        lines.append(f"  failed: {error if src in error else f'{src}: {error}'}")
    if summary.n_failures > len(summary.failures):
        lines.append(f"  ... and {summary.n_failures - len(summary.failures)} more failures in {summary.manifest}")
    return lines


def _interrupt_on_sigterm():
    # a SIGTERM (kill, a scheduler's timeout) stops like Ctrl-C: the local
    # cluster is shut down and the manifest closed on whole lines
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # pragma: no cover - not the main thread
        pass


@cli.command("batch", short_help=short_help("batch"))
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.option("-o", "--output", "dst", required=True, metavar="DST", help="Output folder (mirrors SRC; gets manifest.jsonl).")
@click.option("-m", "--method", default="kmeans", show_default=True,
              type=click.Choice(available_methods()), help="Compression method.")
@click.option("--format", "fmt", type=click.Choice(["imc", "png"]), default="imc", show_default=True,
              help="Output format (png: kmeans only).")
@click.option("--ext", "suffix", metavar="SUFFIX", help="Suffix replacing each input's extension (default .METHOD.FORMAT).")
@click.option("-r", "--recursive", is_flag=True, help="Descend into the subfolders of SRC folders.")
@click.option("--include", multiple=True, metavar="GLOB", help="Take only files matching (path in SRC or name); repeatable.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files matching; repeatable.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks pointing outside SRC.")
@click.option("--if-larger", type=click.Choice(["write", "skip", "copy"]), default="write", show_default=True,
              help="A result larger than its input: write it, skip it, or copy the input into DST instead.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N", help="Local cluster: worker processes (default: one per core).")
@click.option("--threads-per-worker", type=click.IntRange(min=1), metavar="N", help="Local cluster: threads per worker (default 1).")
@click.option("--scheduler", metavar="ADDRESS", help="A running Dask scheduler, tcp://HOST:PORT (workers must see SRC and DST at the same paths).")
@click.option("--target-psnr", type=float, metavar="DB", help="Smallest file reaching this PSNR, per image.")
@click.option("--max-bytes", type=int, metavar="N", help="Best quality within N bytes, per image.")
@click.option("--best-effort", is_flag=True, help="Write the closest result when a target is not reachable.")
@click.option("--strip", is_flag=True, help="Drop the ICC colour profiles.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse larger images (default 100 million or IMCOMPRESS_MAX_PIXELS).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary (errors only).")
@_method_options
def batch_cmd(sources, dst, method, fmt, suffix, recursive, include, exclude, follow_symlinks, if_larger,
              workers, threads_per_worker, scheduler, target_psnr, max_bytes, best_effort, strip, max_pixels,
              as_json, quiet, **method_values):
    """Compress every image of SRC folders and files into DST, on Dask.

    Without --scheduler a local cluster of processes is started (and
    stopped). Images are taken by content; DST mirrors the folders of SRC.
    DST/manifest.jsonl gets one line per input as it finishes; a re-run does
    only what is missing, changed or failed. Exit 7 when some inputs failed.
    """
    import importlib.util

    from ..batch import BatchSettings, run_batch

    if importlib.util.find_spec("distributed") is None:
        raise UsageError("imcompress batch runs on Dask, which is not installed; "
                         "install it with: pip install 'imcompress[batch]'")
    if target_psnr is not None and not 0 < target_psnr < 200:
        raise UsageError(f"--target-psnr {target_psnr} should be in (0, 200) dB")
    if max_bytes is not None and max_bytes < 1:
        raise UsageError(f"--max-bytes {max_bytes} should be >= 1")
    codec = _codec_from_cli(method, method_values)
    if fmt not in codec.formats:
        raise UsageError(f"method {method} writes {' or '.join(codec.formats)} files, not {fmt}")
    if (target_psnr is not None or max_bytes is not None) and codec.rate_parameter is None:
        raise UsageError(f"method {method} has no rate parameter for --target-psnr/--max-bytes")
    settings = BatchSettings(
        method=method, params=codec.get_params(), format=fmt, suffix=suffix, target_psnr=target_psnr,
        max_bytes=max_bytes, best_effort=best_effort, strip=strip, if_larger=if_larger, max_pixels=max_pixels,
    )
    logging.getLogger("distributed").setLevel(logging.ERROR)
    _interrupt_on_sigterm()
    summary = run_batch(
        sources, dst, settings, recursive=recursive, include=include, exclude=exclude,
        follow_symlinks=follow_symlinks, workers=workers, threads_per_worker=threads_per_worker,
        scheduler=scheduler, progress=None if quiet else _Bar(),
    )
    if as_json:
        _line(json.dumps(json_safe(summary.as_dict())), to_stderr=False)
    elif not quiet:
        _line("\n".join(_summary_lines(summary, dst)), to_stderr=False)
    if summary.n_failures:
        raise SomeFailedError(f"{summary.n_failures} of {summary.total} inputs failed; see {summary.manifest} "
                              "(a re-run retries them)")
