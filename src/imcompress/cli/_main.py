"""The ``imcompress`` command group and its error handling.

Commands live in their own modules (``_report.py``, ``_compress.py``...) and
attach themselves to :data:`cli`. This layer only parses arguments, calls the
library and prints; user errors become one line on stderr and an exit code
from :class:`imcompress.ExitCode`.
"""

from __future__ import annotations

import errno
import sys

import click

from .._errors import ExitCode, ImcompressError

__all__ = ["cli", "main", "echo_error"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imcompress", prog_name="imcompress")
def cli():
    """Compress images with K-means, row PCA and patch PCA, and measure them honestly.

    Exit codes: 0 ok, 1 internal error (a bug), 2 unreadable input image,
    3 corrupt or unsupported .imc file, 4 usage error, 5 output exists (use -f),
    6 cannot write output, 98 skipped because larger (--skip-if-larger),
    99 quality or size target not reachable.
    """


def echo_error(message: str) -> None:
    """Print one error line on stderr."""
    text = " ".join(str(message).split())  # one line, whatever the message held
    click.echo(f"imcompress: error: {text}", err=True)


def main(argv=None) -> int:
    """Entry point of the console script; returns the exit code."""
    from . import _commands  # noqa: F401  (attaches the commands)

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


def _quiet_stdout() -> None:
    # further writes (and the interpreter's final flush) go nowhere instead of
    # raising again at exit
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run() -> None:  # pragma: no cover - thin wrapper for ``python -m``
    sys.exit(main())
