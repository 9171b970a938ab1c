"""The output folder: where a pack may go, one run per period at a time, and what killed runs left.

``<out>/.<label>.lock`` is held (``flock``) by the run writing ``<out>/<label>/``: a second run of
the same period into the same folder waits up to ``--lock-timeout`` seconds and then stops, so
two runs never share the resume cache or replace each other's pack half-way. Whoever holds the
lock owns every ``.<label>.writing-*`` and ``.<label>.old-*`` folder too, so those it finds on
arrival were left by a run that was killed (SIGKILL, power loss) and are cleared.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError, DataError

LOCK_POLL_SECONDS = 0.1

log = logging.getLogger("exporter.outdir")


def pack_folder(out: Path, label: str) -> Path:
    """``<out>/<label>``, once it is proven to be a folder directly inside ``out`` (DataError if not).

    The label of an archive read back with --from-source comes from a file; it must not steer
    the export to a folder elsewhere (an absolute path, ``..``, a separator).
    """
    target = out / label
    if label in ("", ".", "..") or Path(label).name != label or target.parent.resolve() != out.resolve():
        raise DataError(f"the period label {label!r} does not name a folder inside {out}: refusing to write")
    return target


@contextmanager
def period_lock(out: Path, label: str, timeout: float = 0.0) -> Iterator[Path]:
    """Hold ``<out>/.<label>.lock`` for the block; ConfigError if another run keeps it ``timeout`` s."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f".{label}.lock"
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f", waited {timeout:g} s" if timeout else ""
                raise ConfigError(
                    f"another export of {label} into {out} is running ({path.name} is locked{waited}): "
                    "let it finish, or pass --lock-timeout SECONDS to wait for it"
                ) from None
            time.sleep(min(LOCK_POLL_SECONDS, remaining))
            continue
        if _still_named(fd, path):
            break
        os.close(fd)  # the previous holder removed the file while we waited: lock the new one
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still locked: a run waiting on this file sees it is gone
        os.close(fd)


def clear_leftovers(out: Path, label: str) -> None:
    """Remove the staging and retired folders of killed runs of ``label`` (hold its lock first).

    A run killed between moving the previous pack aside and moving the new one in leaves the
    previous pack in ``.<label>.old-*/<label>``: it is put back when no pack took its place.
    """
    target = out / label
    for retired in sorted(out.glob(f".{label}.old-*")):
        previous = retired / label
        if retired.is_dir() and not retired.is_symlink() and os.path.lexists(previous) and not os.path.lexists(target):
            previous.rename(target)
            log.warning("restored %s, left aside by an interrupted run", target)
        _remove(retired)
    for staging in out.glob(f".{label}.writing-*"):
        _remove(staging)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
    log.info("removed %s, left by an interrupted run", path)


def _still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
