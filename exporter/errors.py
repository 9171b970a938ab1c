"""Errors the exporter raises on purpose, and the exit code each one maps to.

ExportError            exit 1  base class; also an internal consistency failure (a bug)
├── ConfigError        exit 2  a bad option or a malformed mapping file (click's usage errors are 2 too)
├── AuthError          exit 3  the API rejected the key (401/403)
├── ApiError           exit 4  network, HTTP or envelope failure after retries
├── DataError          exit 5  the API answered, but a record cannot be used
└── StrictError        exit 6  --strict and the export produced warnings

The CLI turns these into a one-line message and the exit code in one place (cli.ExporterGroup).
Messages never contain the API key: they name the path, status and cause only.
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class of every error the exporter raises deliberately."""

    exit_code = 1


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
        super().__init__(f"--strict: {len(warnings)} warning(s): " + "; ".join(warnings))
        self.warnings = warnings
