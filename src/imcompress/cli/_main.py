"""The ``imcompress`` command group and its error handling.

Commands live in their own modules (``_report.py``, ``_compress.py``...) and
attach themselves to :data:`cli`. This layer only parses arguments, calls the
library and prints; user errors become one line on stderr and an exit code
from :class:`imcompress.ExitCode`.

A command's module is imported only when that command runs (or shows its own
``--help``): ``imcompress --help`` lists the commands from :data:`COMMANDS`
without importing numba or any codec, and ``imcompress compress`` does not
import the report's or the batch's dependencies.
"""

from __future__ import annotations

import errno
import importlib
import re
import sys
from contextlib import contextmanager

import click

from .._errors import ExitCode, ImcompressError

__all__ = ["COMMANDS", "cli", "main", "echo_error", "flag_names", "short_help"]

#: Every command: name -> (module defining it, the one line ``imcompress --help`` shows).
#: The modules pass that line to ``@cli.command(short_help=...)`` (:func:`short_help`).
COMMANDS = {
    "batch": ("._batch", "Compress folders of images on Dask, resumable, with a manifest."),
    "compress": ("._compress", "Compress images (kmeans: palette PNG; others: .imc)."),
    "decompress": ("._compress", "Decode an .imc file to PNG or any image format Pillow writes."),
    "info": ("._compress", "Describe an .imc file without decoding its pixels."),
    "palette": ("._palette", "Learn one K-colour palette for a set of images."),
    "report": ("._report", "Run the study on an image and write the HTML report."),
}


def short_help(name: str) -> str:
    """The line listing command ``name`` in ``imcompress --help``."""
    return COMMANDS[name][1]


class _LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx):
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name][0], __package__)  # attaches itself to cli
        return self.commands.get(cmd_name)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else self.commands[name].get_short_help_str())
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imcompress", prog_name="imcompress")
def cli():
    """Compress images with K-means, row PCA and patch PCA, and measure them honestly.

    Exit codes: 0 ok, 1 internal error (a bug), 2 unreadable input image,
    3 corrupt or unsupported .imc file, 4 usage error, 5 output exists (use -f),
    6 cannot write output, 7 some inputs of a batch failed, 98 skipped because larger (--skip-if-larger),
    99 quality or size target not reachable.
    """


def echo_error(message: str) -> None:
    """Print one error line on stderr."""
    text = " ".join(str(message).split())  # one line, whatever the message held
    click.echo(f"imcompress: error: {text}", err=True)


def with_flag_names(message: str, flags: dict) -> str:
    """``message`` plus the command-line flag of each keyword it names.

    The library names its options as keyword arguments (``n_colors=1 should
    be ...``, ``raise it with max_pixels=``); a CLI user needs the flag that
    sets them. ``flags`` maps keyword names to flag spellings.

    Examples
    --------
    >>> with_flag_names("n_colors=1 should be >= 2", {"n_colors": "-k/--colors"})
    'n_colors=1 should be >= 2 (on the command line n_colors= is -k/--colors)'
    """
    named = [name for name in flags if re.search(rf"(?<![\w-]){re.escape(name)}=", message)]
    if not named:
        return message
    said = ", ".join(f"{name}= is {flags[name]}" for name in named)
    return f"{message} (on the command line {said})"


@contextmanager
def flag_names(flags: dict):
    """Add the flag names of ``flags`` to any :class:`ImcompressError` raised inside."""
    try:
        yield
    except ImcompressError as exc:
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (with_flag_names(exc.args[0], flags), *exc.args[1:])
        raise


def main(argv=None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="imcompress", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click >= 8.2
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return ExitCode.USAGE
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        echo_error(exc.format_message() + hint)
        return ExitCode.USAGE
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            echo_error("interrupted")
            return 130
        echo_error("aborted")
        return ExitCode.INTERNAL
    except SystemExit as exc:
        # click answers a closed stdout (EPIPE) by wrapping sys.stdout and
        # calling sys.exit(1), even in non-standalone mode; name it like our
        # own broken-pipe handling
        context = exc.__context__
        pacified = type(sys.stdout).__name__ == "_PacifyFlushWrapper"
        if pacified or (isinstance(context, OSError) and context.errno == errno.EPIPE):
            _quiet_stdout()
            echo_error("broken pipe: the reader of stdout went away")
            return ExitCode.WRITE
        raise
    except ImcompressError as exc:
        echo_error(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        echo_error("interrupted")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        echo_error("broken pipe: the reader of stdout went away")
        return ExitCode.WRITE
    return ExitCode.OK


def run() -> None:
    """The console script (``imcompress``, ``python -m imcompress``): :func:`main`, then exit.

    A process that has loaded numba spends about 0.2 s of every command
    tearing down the interpreter (LLVM's JIT and its modules; measured on the
    study photo's commands, where the whole work takes 1.2-1.5 s), although
    nothing is left to do: every output file is written and closed by then.
    So the process runs the exit handlers, flushes its streams and ends with
    :func:`os._exit`. It falls back to the ordinary exit when another
    non-daemon thread or a child process is still alive, since those are
    waited for on an ordinary exit.
    """
    import atexit
    import os
    import threading

    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    # children of multiprocessing only exist where it was imported (importing it costs ~8 ms)
    mp = sys.modules.get("multiprocessing")
    if others or (mp is not None and mp.active_children()):
        sys.exit(code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        echo_error("broken pipe: the reader of stdout went away")
        code = ExitCode.WRITE
    except (OSError, ValueError):  # a closed or failing stdout: nothing more can be said there
        code = code or ExitCode.WRITE
    atexit._run_exitfuncs()  # what an ordinary exit runs first (weakref finalizers, logging)
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(int(code))


def _quiet_stdout() -> None:
    # further writes (and the interpreter's final flush) go nowhere instead of
    # raising again at exit
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
