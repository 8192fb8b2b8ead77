"""The user-facing exception hierarchy and the CLI exit codes it maps to.

Every error a user can cause is an :class:`ImcompressError`; the CLI prints its
message as one line on stderr and exits with its ``exit_code``. Anything else is
a bug and keeps its traceback.
"""

from enum import IntEnum

__all__ = [
    "ExitCode",
    "ImcompressError",
    "UsageError",
    "InputError",
    "CorruptFileError",
    "UnsupportedVersionError",
    "OutputExistsError",
    "WriteError",
    "QualityError",
    "SkippedLargerError",
    "SomeFailedError",
]


class ExitCode(IntEnum):
    """Documented exit codes of the ``imcompress`` command (see README)."""

    OK = 0
    #: A bug: an unexpected exception (a traceback is printed).
    INTERNAL = 1
    #: An input image cannot be read: missing, empty, not an image, truncated,
    #: too many pixels (pngquant uses 2 for read errors too).
    INPUT = 2
    #: A ``.imc`` file is damaged, truncated, or from an unsupported version.
    CORRUPT = 3
    #: Bad command line: unknown option, value out of range (K < 2, variance
    #: outside (0, 1], ...), incompatible options.
    USAGE = 4
    #: The output exists and ``--force`` was not given.
    OUTPUT_EXISTS = 5
    #: The output cannot be written (folder missing or read-only, disk full).
    WRITE = 6
    #: ``batch``: some inputs failed (listed in ``DST/manifest.jsonl``, retried by
    #: a re-run); every other input was written.
    SOME_FAILED = 7
    #: ``--skip-if-larger``: the result would be larger than the input; nothing
    #: written (pngquant's code 98).
    SKIPPED = 98
    #: A quality or size target cannot be reached; nothing written (pngquant's
    #: code 99 for ``--quality``).
    QUALITY = 99


class ImcompressError(Exception):
    """Base class of every error a user can cause; message is one line."""

    exit_code = ExitCode.INTERNAL


class UsageError(ImcompressError, ValueError):
    """An option or argument has an invalid value."""

    exit_code = ExitCode.USAGE


class InputError(ImcompressError, ValueError):
    """An input image cannot be read or is not acceptable."""

    exit_code = ExitCode.INPUT


class CorruptFileError(ImcompressError, ValueError):
    """A compressed file is damaged or not a ``.imc`` file."""

    exit_code = ExitCode.CORRUPT


class UnsupportedVersionError(CorruptFileError):
    """A ``.imc`` file was written by a newer format version."""


class OutputExistsError(ImcompressError, FileExistsError):
    """The output file exists and overwriting was not requested."""

    exit_code = ExitCode.OUTPUT_EXISTS


class WriteError(ImcompressError, OSError):
    """The output cannot be written."""

    exit_code = ExitCode.WRITE


class QualityError(ImcompressError):
    """A quality or size target cannot be met."""

    exit_code = ExitCode.QUALITY


class SkippedLargerError(ImcompressError):
    """The compressed result would be larger than the input."""

    exit_code = ExitCode.SKIPPED


class SomeFailedError(ImcompressError):
    """``batch``: some inputs failed; the others were written (see the manifest)."""

    exit_code = ExitCode.SOME_FAILED
