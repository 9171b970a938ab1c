"""The output folder: where a pack may go, one run per period at a time, what killed runs left,
and the staging folder a pack is written in before it replaces the previous one (all or nothing).

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
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError, DataError, OutputError, os_reason

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


class Pack:
    """A pack being written in ``folder`` beside ``target``; :meth:`publish` swaps it into place."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.folder = target.parent / f".{target.name}.writing-{secrets.token_hex(4)}"
        self.retired: Path | None = None
        self.published = False

    def publish(self) -> None:
        """Move the previous pack aside and this one into place (undone if that fails)."""
        if self.target.exists():
            retired = self.target.parent / f".{self.target.name}.old-{secrets.token_hex(4)}"
            retired.mkdir()
            try:
                self.target.rename(retired / self.target.name)
            except OSError:
                retired.rmdir()
                raise
            self.retired = retired
        try:
            self.folder.rename(self.target)
        except OSError:
            self._restore()
            raise
        self.published = True

    def undo(self) -> None:
        """After a failure: the previous pack back in place, nothing of this one left."""
        if self.published:
            self.target.rename(self.folder)
            self.published = False
        self._restore()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _restore(self) -> None:
        """Put the previous pack back; say where it is kept if even that fails."""
        if self.retired is None:
            return
        previous = self.retired / self.target.name
        try:
            previous.rename(self.target)
        except OSError as exc:
            raise OutputError(
                f"cannot replace {self.target} ({os_reason(exc)}); the previous export is kept in {previous}"
            ) from None
        shutil.rmtree(self.retired, ignore_errors=True)
        self.retired = None


@contextmanager
def staging(target: Path) -> Iterator[Pack]:
    """A temporary folder beside ``target`` that replaces it only if the block succeeds
    (publishing it itself, or at the end)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(target.parent, target.name)  # under the period's lock: nothing else owns them
    pack = Pack(target)
    pack.folder.mkdir()  # unlike mkdtemp, keeps the user's umask: the pack is as readable as any file
    try:
        yield pack
        if not pack.published:
            pack.publish()
    except BaseException:
        pack.undo()
        raise
    if pack.retired is not None:
        shutil.rmtree(pack.retired, ignore_errors=True)
