"""Errors the exporter raises on purpose, the exit code of each, and the reading of foreign ones.

ExportError            exit 1  base class; also an internal consistency failure (a bug)
├── ConfigError        exit 2  a bad option, a malformed mapping file, an unreadable input, a busy port
│                              (click's own usage errors are 2 too)
├── AuthError          exit 3  the API rejected the key (401/403)
├── ApiError           exit 4  network, HTTP or envelope failure after retries
├── DataError          exit 5  a record (from the API or an archive) cannot be used, or an archive is damaged
├── StrictError        exit 6  --strict and the export produced warnings
├── OutputError        exit 7  the output could not be written (permissions, disk full, a path that is
│                              not a folder); nothing was changed, a previous export is intact
└── Interrupted        exit 130  Ctrl-C

Causes are translated where they are known (the HTTP client, the archive reader, the mapping
loader, the pipeline's output step, record validation). What still escapes is read by
:func:`from_foreign`, the last resort, with this table (first match wins):

=================================================================  =====  ===========
foreign exception                                                  exit   becomes
=================================================================  =====  ===========
``requests.RequestException``, ``urllib3.exceptions.HTTPError``    4      ApiError
``tomllib.TOMLDecodeError``                                        2      ConfigError
``EOFError``, ``zlib.error``, ``gzip.BadGzipFile``,                5      DataError
``json.JSONDecodeError``, ``UnicodeError``
``decimal.DecimalException`` (InvalidOperation, Overflow, ...),    5      DataError
``OverflowError``
``BrokenPipeError`` (the reader of stdout went away)               7      OutputError
any other ``OSError``                                              7      OutputError
``KeyboardInterrupt``                                              130    Interrupted
``MemoryError``                                                    1      ExportError
anything else (a bug)                                              1      ExportError
=================================================================  =====  ===========

The CLI turns every error into one line and its exit code in one place (cli.ExporterGroup).
Messages never contain the API key: they name the path, status and cause only.
"""

from __future__ import annotations

import decimal
import re
import sys
from collections.abc import Callable
import gzip
import json
import tomllib
import zlib


SETTING = re.compile(r"\[\[([a-z_]+)\]\]")
"""A setting named in an error's text, ``[[period]]``: the library says the setting's name, the
CLI the option that sets it (``--period``); a configuration file's user is not told of a flag."""


def setting(name: str) -> str:
    """``name`` marked as a setting in an error's text (:data:`SETTING`)."""
    return f"[[{name}]]"


class ExportError(Exception):
    """Base class of every error the exporter raises deliberately."""

    exit_code = 1

    def __str__(self) -> str:
        return self.text(lambda name: name.replace("_", " "))

    def text(self, name: Callable[[str], str]) -> str:
        """The message with each setting it names written by ``name`` (the CLI: its option)."""
        return SETTING.sub(lambda m: name(m.group(1)), super().__str__())

    @property
    def settings(self) -> list[str]:
        """The settings the message concerns, in order."""
        return SETTING.findall(super().__str__())


class ConfigError(ExportError):
    """An option or a configuration file is wrong; raised before anything is fetched or written."""

    exit_code = 2


class AuthError(ExportError):
    """The API rejected the key (HTTP 401 or 403)."""

    exit_code = 3


class ApiError(ExportError):
    """The API could not be reached, or answered with a failure, after all retries."""

    exit_code = 4

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DataError(ExportError):
    """The API answered, but a record is invalid; names the record and the field."""

    exit_code = 5


class StrictError(ExportError):
    """--strict was given and the export produced warnings; nothing was written."""

    exit_code = 6

    def __init__(self, warnings: list[str]) -> None:
        super().__init__(f"[[strict]]: {len(warnings)} warning(s): " + "; ".join(warnings))
        self.warnings = warnings


class OutputError(ExportError):
    """The output could not be written; nothing was changed and a previous export is intact."""

    exit_code = 7


class Interrupted(ExportError):
    """Ctrl-C: the run stopped; like any failure it leaves no partial output folder."""

    exit_code = 130


def os_reason(exc: OSError) -> str:
    """'No space left on device: /path' -- the system's words and the file, on one line."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else reason


def _network_errors() -> tuple[type[BaseException], ...]:
    """requests' and urllib3's base errors, if they were loaded: they are only by a run that calls
    the API (extract/client.py), and where they were not, nothing can have raised them."""
    requests, urllib3 = sys.modules.get("requests"), sys.modules.get("urllib3.exceptions")
    return ((requests.RequestException,) if requests is not None else ()) + (
        (urllib3.HTTPError,) if urllib3 is not None else ())


def from_foreign(exc: BaseException) -> ExportError:
    """The last-resort reading of an exception no layer translated (the table above)."""
    if isinstance(exc, ExportError):
        return exc
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, _network_errors()):
        return ApiError(f"network error: {text}")
    if isinstance(exc, tomllib.TOMLDecodeError):
        return ConfigError(f"not valid TOML: {exc}")
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile, json.JSONDecodeError, UnicodeError)):
        return DataError(f"input that cannot be read: {text}")
    if isinstance(exc, (decimal.DecimalException, OverflowError)):
        return DataError(f"a number out of range: {text}")
    if isinstance(exc, BrokenPipeError):
        return OutputError("standard output was closed (broken pipe) before everything was printed")
    if isinstance(exc, OSError):
        return OutputError(f"cannot write: {os_reason(exc)}")
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted")
    if isinstance(exc, MemoryError):
        return ExportError("out of memory")
    return ExportError(f"internal error ({text}); run with [[debug]] for the traceback")

