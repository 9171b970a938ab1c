"""A pack on disk: its manifest's name, the checksums it lists, and what a pack written before
still is (verified against its manifest, described before a re-export replaces it).

The manifest itself is written by :mod:`.writers.manifest`; everything that reads a pack back
(the books' checks, ``--from-source``, the consolidated month) goes through here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError

MANIFEST_NAME = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path, folder: Path, sha256: str | None = None) -> dict[str, Any]:
    """A manifest's line for ``path``: its name within ``folder``, size and sha256 (``sha256``
    when the caller hashed the file already)."""
    return {"name": path.relative_to(folder).as_posix(), "size": path.stat().st_size,
            "sha256": sha256 if sha256 is not None else sha256_of(path)}


def pack_problem(folder: Path, manifest_sha256: str) -> str | None:
    """Why the pack in ``folder`` no longer is what was recorded (its manifest's sha256), or None.

    Checks the manifest itself, then every file it lists (size and sha256), naming the first
    file that differs or is missing.
    """
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return f"{manifest} is missing"
    if sha256_of(manifest) != manifest_sha256:
        return f"{manifest} was changed since the export"
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return f"{manifest} cannot be read"
    for entry in listed:
        path = folder / entry["name"]
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            return f"{path} was changed since the export"
    return None


def listed(folder: Path, name: str) -> tuple[int, str]:
    """(size, sha256) the manifest of the pack holding ``folder`` lists for ``<folder>/<name>``
    (``folder`` is a pack's subfolder, e.g. ``source``); DataError when it cannot say."""
    manifest = folder.parent / MANIFEST_NAME
    entry_name = f"{folder.name}/{name}"
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        entry = next(f for f in files if isinstance(f, dict) and f.get("name") == entry_name)
        size, digest = entry["size"], entry["sha256"]
    except FileNotFoundError:
        raise DataError(f"{folder / name} cannot be verified: no {MANIFEST_NAME} in {folder.parent}") from None
    except StopIteration:
        raise DataError(f"{folder / name} cannot be verified: {manifest} does not list {entry_name}") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{folder / name} cannot be verified: {manifest} is not a valid manifest") from None
    if type(size) is not int or not isinstance(digest, str):
        raise DataError(f"{folder / name} cannot be verified: {manifest} is not a valid manifest")
    return size, digest


@dataclass(frozen=True)
class PreviousPack:
    """A pack about to be replaced: its folder, how many files it held, when it was generated."""

    folder: Path
    files: int
    generated_at: str | None  # the manifest's generated_at, None when unreadable


def describe_pack(folder: Path) -> PreviousPack | None:
    """What is in ``folder`` now (None if nothing is), read before a re-export replaces it."""
    if not folder.is_dir():
        return None
    files = sum(1 for path in folder.rglob("*") if path.is_file())
    try:
        generated = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))["generated_at"]
    except (OSError, ValueError, KeyError, TypeError):
        generated = None
    return PreviousPack(folder, files, generated if isinstance(generated, str) else None)


__all__ = ["MANIFEST_NAME", "PreviousPack", "describe_pack", "file_entry", "listed", "pack_problem", "sha256_of"]
