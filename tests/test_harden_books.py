"""The books refuse what would lose or misread them (issue 21, item 9): books inside folders exports
replace, files that are not books, paths that depend on the working directory, a full disk, a
read-only file, hand edits, an export interrupted between its pack and its books."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.books.snapshots import decode, encode
from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with serve_in_thread(api="legacy") as server:
        yield server


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def export(server: SandboxServer, out: Path | str, period: str = "2024-01", *extra: str):
    return run("export", "--period", period, "--out", str(out), "--format", "csv", "--base-url", server.url,
               "--api-key", DEMO_KEY, "-q", "--no-reconcile", *extra)


@pytest.mark.parametrize("inside", ["2024-01/books.sqlite", "2024-02/deep/books.sqlite", ".2024-01.pages/b.sqlite"])
def test_books_inside_a_folder_exports_replace_are_refused(server, tmp_path, inside):
    out = tmp_path / "out"
    result = export(server, out, "2024-01", "--books", str(out / inside))
    assert result.exit_code == 2, result.output
    assert "a folder exports replace" in result.output
    assert not (out / inside).exists()


def test_books_beside_or_outside_the_packs_are_fine(server, tmp_path):
    assert export(server, tmp_path / "out", "2024-01", "--books", str(tmp_path / "out" / "ledger" / "b.sqlite")).exit_code == 0
    assert export(server, tmp_path / "out", "2024-01", "--books", str(tmp_path / "elsewhere.sqlite")).exit_code == 0


def test_an_empty_books_file_is_refused_never_initialised(server, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "books.sqlite").write_bytes(b"")
    for result in (run("books", "--out", str(out)), run("books", "check", "--out", str(out)), export(server, out)):
        assert result.exit_code == 5, result.output
        assert "0 bytes" in result.output and "books.sqlite" in result.output
    assert (out / "books.sqlite").read_bytes() == b""
    assert not (out / "2024-01").exists()


def test_a_database_without_the_books_schema_is_refused_and_left_alone(server, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    other = out / "books.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()
    before = other.read_bytes()
    for result in (run("books", "--out", str(out)), export(server, out)):
        assert result.exit_code == 5, result.output
        assert "not a books database" in result.output
    assert other.read_bytes() == before


def test_books_check_works_from_any_working_directory(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export(server, "out", "2024-01", "--close").exit_code == 0  # a relative --out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("books", "check", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "1 closed period(s) match the books: 2024-01" in result.output


def test_relative_pack_paths_of_older_books_still_resolve(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export(server, "out", "2024-01", "--close").exit_code == 0
    with sqlite3.connect(tmp_path / "out" / "books.sqlite") as db:  # as books written before paths were absolute
        db.execute("UPDATE periods SET pack = 'out/2024-01'")
    db.close()
    assert run("books", "check", "--out", "out").exit_code == 0  # from where it was exported
    monkeypatch.chdir(tmp_path / "out")
    assert run("books", "check", "--out", ".").exit_code == 0  # elsewhere: the pack beside the books


def _in_subprocess(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_full_disk_while_writing_the_books_is_exit_7(server, tmp_path):
    """RLIMIT_FSIZE (SIGXFSZ ignored) makes every write past the limit fail as a full disk would."""
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    books = out / "books.sqlite"
    before = books.read_bytes()
    # closing writes a few pages (its status, its seal, an event): no room for the write-ahead log's
    # index (-shm, 32 KiB) fails it as surely as a full disk
    limit = 32 * 1024 - 1
    assert books.stat().st_size > limit
    result = _in_subprocess(f"""
import resource, signal, sys
from click.testing import CliRunner
from exporter.cli import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
result = CliRunner().invoke(cli, ["close", "--period", "2024-01", "--out", {str(out)!r}])
print(result.output)
sys.exit(result.exit_code)
""")
    assert result.returncode == 7, result.stdout + result.stderr
    assert "cannot write the books" in result.stdout and "internal error" not in result.stdout
    assert books.read_bytes() == before  # rolled back: the books as they were
    assert run("books", "--out", str(out)).output.count("open") == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="drops root to read as another user")
def test_read_only_books_can_be_listed_and_checked(server, tmp_path):
    """A folder and file the reading user cannot write (root drops to nobody, having imported
    everything first): listing and checking open the books read-only, WAL mode and all."""
    folder = Path(tempfile.mkdtemp(prefix="ro-books-"))
    try:
        folder.chmod(0o755)
        out = folder / "out"
        assert export(server, out, "2024-01", "--close").exit_code == 0
        for path in [out, *out.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        before = sorted(p.name for p in out.iterdir())
        result = _in_subprocess(f"""
import os, sys
from click.testing import CliRunner
from exporter.cli import cli
import exporter.closing, exporter.books.ledger, exporter.writers.manifest, exporter.archive
os.setgid(65534); os.setuid(65534)
runner = CliRunner()
listing = runner.invoke(cli, ["books", "--out", {str(out)!r}])
check = runner.invoke(cli, ["books", "check", "--out", {str(out)!r}])
print(listing.output); print(check.output)
sys.exit(listing.exit_code or check.exit_code)
""")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2024-01" in result.stdout and "1 closed period(s) match the books" in result.stdout
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


@pytest.mark.parametrize("edit", ["UPDATE periods SET first_day = 'not a date'",
                                  "UPDATE periods SET records = 'many'",
                                  "UPDATE periods SET exported_at = '2024-02-01T00:00:00'",
                                  "UPDATE rollforward SET usage = 'x'"])
def test_garbage_in_the_books_is_books_damaged_not_an_internal_error(server, tmp_path, edit):
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    with sqlite3.connect(out / "books.sqlite") as db:
        db.execute(edit)
    db.close()
    for result in (run("books", "--out", str(out)), export(server, out, "2024-02")):
        assert result.exit_code == 5, result.output
        assert "books damaged" in result.output and str(out / "books.sqlite") in result.output
        assert "internal error" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_export_interrupted_between_pack_and_books_is_said_once(server, tmp_path):
    """A run killed after publishing its pack and before committing its books: simulated by
    putting back the books as they were before the last export (the pack on disk is the newer)."""
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    saved = (out / "books.sqlite").read_bytes()
    assert export(server, out, "2024-01").exit_code == 0
    (out / "books.sqlite").write_bytes(saved)  # the second run's books never committed

    check = run("books", "check", "--out", str(out))
    assert check.exit_code == 0 and "2024-01 (open): the pack" in check.output and "interrupted" in check.output
    close = run("close", "--period", "2024-01", "--out", str(out))
    assert close.exit_code == 2 and "interrupted" in close.output

    again = run("export", "--period", "2024-01", "--out", str(out), "--format", "csv", "--base-url", server.url,
                "--api-key", DEMO_KEY, "--no-reconcile")
    assert again.exit_code == 0, again.output
    assert again.output.count("is not the one the books") == 1
    once_more = run("export", "--period", "2024-01", "--out", str(out), "--format", "csv", "--base-url", server.url,
                    "--api-key", DEMO_KEY, "--no-reconcile")
    assert once_more.exit_code == 0 and "is not the one the books" not in once_more.output
    assert run("close", "--period", "2024-01", "--out", str(out)).exit_code == 0


def _repriced_snapshot(db: sqlite3.Connection) -> None:
    """A hand edit of a closed period's booked records: one record re-priced by a micro, the
    snapshot re-encoded well-formed (the trigger that keeps it fixed dropped first)."""
    data = db.execute("SELECT data FROM snapshots WHERE label = '2024-01'").fetchone()[0]
    frame = decode(data)
    frame.loc[frame.index[-1], "amount"] -= 1
    db.execute("DROP TRIGGER snapshot_closed_fixed_update")
    db.execute("UPDATE snapshots SET data = ? WHERE label = '2024-01'", (encode(frame),))


def _flipped_byte(db: sqlite3.Connection) -> None:
    data = bytearray(db.execute("SELECT data FROM snapshots WHERE label = '2024-01'").fetchone()[0])
    data[len(data) // 2] ^= 0xFF
    db.execute("DROP TRIGGER snapshot_closed_fixed_update")
    db.execute("UPDATE snapshots SET data = ? WHERE label = '2024-01'", (bytes(data),))


@pytest.mark.parametrize("edit", [
    _repriced_snapshot,
    _flipped_byte,
    "INSERT INTO adjustments VALUES ('default', '2024-01', 'txn_x', '2023-12', 'repriced', 'usage', 'm', '', 'USD', "
    "'completed', 'completed', -1, -2, -1, 19723)",
    "UPDATE rollforward SET usage = usage + 1",
])
def test_hand_edits_of_a_closed_period_in_the_books_are_caught_by_check(server, tmp_path, edit):
    out = tmp_path / "out"
    assert export(server, out, "2024-01", "--close").exit_code == 0
    assert run("books", "check", "--out", str(out)).exit_code == 0
    with sqlite3.connect(out / "books.sqlite") as db:
        db.execute(edit) if isinstance(edit, str) else edit(db)
    db.close()
    result = run("books", "check", "--out", str(out))
    assert result.exit_code == 5, result.output
    assert "closed period 2024-01" in result.output and "changed since it was closed" in result.output


def test_a_first_export_interrupted_before_its_books_is_said_once(server, tmp_path):
    """The same, for a period's first export: its pack is on disk, the books never heard of it."""
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    saved = (out / "books.sqlite").read_bytes()
    assert export(server, out, "2024-02").exit_code == 0
    (out / "books.sqlite").write_bytes(saved)
    args = ("export", "--period", "2024-02", "--out", str(out), "--format", "csv", "--base-url", server.url,
            "--api-key", DEMO_KEY, "--no-reconcile")
    first, second = run(*args), run(*args)
    assert first.exit_code == 0 and first.output.count("is not in the books") == 1, first.output
    assert second.exit_code == 0 and "is not in the books" not in second.output
