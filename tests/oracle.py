"""The byte-for-byte oracle (issue 19): every file of a few packs, rendered in every format, as digests.

The packs: the sandbox's January through both API generations (``--sandbox --sandbox-as-of``,
the clock stopped) and each re-rendered ``--from-source``; and a generated month of a few
thousand hostile records (sub-cent, exponent-written and zero amounts, refunds, top-ups,
pending/failed/refunded/unknown statuses, an unknown type, a second currency, non-ASCII and
formula-looking ids, models and key names, offsets, zoneless and space-separated timestamps
and others the reader takes, unknown fields) rendered ``--from-source``.

``digests(root)`` renders them under ``root`` and returns ``{"<case>/<path>": sha256}``. The
clock is stopped, so the manifest's generated_at is compared as it is. What legitimately varies
between two runs is normalised first, and only that:

- an xlsx is compared member by member, with ``docProps/core.xml``'s created/modified blanked;
- the in-process sandbox listens on a free port, named in the source URL: ``PORT`` everywhere;
- the manifest's size and sha256 of the files that vary so (the xlsx, source/context.json) are
  dropped: those files are compared themselves; every other file's are compared;
- ``books.sqlite`` is compared by its SQL dump (the same rows, not the same free pages) with the
  salt and the salted key fingerprint (random by design), the manifest's sha256 (follows the
  xlsx) and the temporary folder's path masked.

``tests/golden/oracle/digests.txt`` holds the output of the implementation the columnar core
replaces. Regenerate it (``python tests/oracle.py --write``) ONLY for a deliberate change of
output, stated in the commit: the test's whole point is that a faster core changes no byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import random
import re
import sqlite3
import sys
import tempfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from click.testing import CliRunner

if __name__ == "__main__":  # run as a script: this checkout's exporter
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.archive import SourceContext, write_context
from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.models import ExtractionStats
from exporter.period import month_window
from exporter.writers import FORMATS

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "oracle" / "digests.txt"
ACCOUNTS = REPO / "templates" / "accounts_xero.toml"  # has the account codes --format xero needs
CLOCK = datetime(2024, 2, 1, 12, 0, tzinfo=timezone.utc)
GENERATED_RECORDS = 3_000

_MODELS = [
    "wavespeed-ai/flux-dev", "wavespeed-ai/flux-schnell", "alibaba/wan-2.1", "bytedance/seedream-v3",
    "модель/видео-ünïcødé", "画像/生成", "emoji/🎨-art", "=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0",
    "-2+3", "@SUM(1,1)", "\tindented/model", "quote\"comma,model", "x\r\nnewline/model",
]
_KEYS = [("prod", "key_1"), ("=evil", "+key"), ("clé-été", "key_3"), ("@k", "-k"), ("", "")]
_AMOUNTS_USAGE = ["-0.0025", "-0.003", "-0.000001", "-0.013", "-0.0090", "-1.5", "-0.25", "-12.345678", "-0.01",
                  "-2.5E-3", "-1E+1", "-0", "0.00", "-0.005", "-0.015", "-0.004"]
_AMOUNTS_REFUND = ["0.0025", "0.003", "0.013", "1.5", "0.004", "1E-6"]
_AMOUNTS_TOPUP = ["100.00", "25", "10.5", "0.01", "1000.000000", "5E+1"]


def generated_lines(n: int = GENERATED_RECORDS, seed: int = 19) -> list[str]:
    """A month of raw archive lines (JSON text as the archive holds it), shuffled, deterministic."""
    rnd = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    lines = []
    for i in range(n):
        kind = rnd.choices(["usage", "refund", "topup", "adjustment"], [90, 5, 4, 1])[0]
        status = rnd.choices(["completed", "pending", "failed", "refunded", "weird-state"], [85, 5, 5, 4, 1])[0]
        record_id = rnd.choice([f"txn_{i:06d}", f"txn_{i:06d}", f"txn_{i:06d}", f"=id{i}", f"+{i}", f"-{i}",
                                f"@{i}", f"\tid{i}", f"ид_{i}_ß", f"{i:06d}"])
        when = start + timedelta(seconds=rnd.randrange(31 * 86400))
        if i % 97 == 0:  # right at the month's edges (UTC), inside it
            when = rnd.choice([start, start + timedelta(days=31) - timedelta(milliseconds=1)])
        stamp = _stamp(rnd, when)
        record: dict[str, Any] = {"id": record_id, "type": kind}
        if kind == "topup":
            amount = rnd.choice(_AMOUNTS_TOPUP)
            record["payment_method"] = rnd.choice(["stripe", "paypal", "=card", "carte bancaire é"])
        elif kind == "refund":
            amount = rnd.choice(_AMOUNTS_REFUND)
            record["model"] = rnd.choice(_MODELS)
        elif kind == "adjustment":
            amount = rnd.choice(["-0.50", "0.25"])
        else:
            amount = rnd.choice(_AMOUNTS_USAGE)
            if rnd.random() < 0.97:
                record["model"] = rnd.choice(_MODELS)
            elif rnd.random() < 0.5:
                record["model"] = None
        record["amount"] = _Raw(amount)
        record["currency"] = "EUR" if rnd.random() < 0.03 else "USD"
        record["status"] = status
        record["created_at"] = stamp
        if rnd.random() < 0.5:
            name, key = rnd.choice(_KEYS)
            if name:
                record["api_key_name"], record["api_key_id"] = name, key
            else:
                record["api_key_name"] = None
        if rnd.random() < 0.1:
            record["extra"] = {"nested": [1, 2.5, None, True], "note": "ignored"}
        lines.append(_dumps(record))
    return lines


class _Raw(str):
    """A number's JSON text, written bare."""


def _dumps(record: dict[str, Any]) -> str:
    parts = []
    for key, value in record.items():
        text = str(value) if isinstance(value, _Raw) else json.dumps(value, ensure_ascii=bool(len(parts) % 2))
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def _stamp(rnd: random.Random, when: datetime) -> str:
    form = rnd.randrange(8)
    if form == 0:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 1:  # an offset: the same instant written in another zone
        return when.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    if form == 2:
        return when.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat(timespec="microseconds")
    if form == 5:  # no zone: read as UTC
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if form == 6:
        return when.strftime("%Y-%m-%d %H:%M:%S+00:00")
    if form == 3:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "z"
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def generated_source(root: Path, lines: list[str]) -> Path:
    """An export's source/ folder holding ``lines``, vouched for by a manifest (as --from-source needs)."""
    folder = root / "source"
    folder.mkdir(parents=True)
    with open(folder / "billings.jsonl.gz", "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write("".join(line + "\n" for line in lines).encode("utf-8"))
    n = len(lines)
    stats = ExtractionStats(source="oracle", server_total=n, unique_fetched=n, duplicates_dropped=0,
                            pages=math.ceil(n / 100), in_period=n)
    write_context(folder, SourceContext(month_window("2024-01"), stats, None, ["a warning archived with the records"]))
    files = [{"name": f"source/{path.name}", "size": path.stat().st_size,
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()} for path in sorted(folder.iterdir())]
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    return root


def _export(*args: str) -> None:
    result = CliRunner().invoke(cli, ["export", "--format", ",".join(FORMATS), "--accounts", str(ACCOUNTS), "-q", *args],
                                obj=CliState(clock=lambda: CLOCK), catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"export {args} exited {result.exit_code}: {result.output[-2000:]}")


def render_all(root: Path) -> list[Path]:
    """Render every case under ``root``; returns the case folders (each an --out)."""
    cases = []
    for api in ("current", "legacy"):
        live = root / f"sandbox-{api}"
        _export("--sandbox", "--sandbox-api", api, "--sandbox-as-of", "2024-02-01", "--period", "2024-01",
                "--out", str(live))
        again = root / f"sandbox-{api}-from-source"
        _export("--from-source", str(live / "2024-01"), "--out", str(again))
        cases += [live, again]
    source = generated_source(root / "generated-source", generated_lines())
    generated = root / "generated-from-source"
    _export("--from-source", str(source), "--out", str(generated))
    cases.append(generated)
    return cases


_CORE_STAMPS = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


_PORT = re.compile(rb"http://127\.0\.0\.1:\d+")


def _no_port(data: bytes) -> bytes:
    """The in-process sandbox listens on a free port, named in the source's URL."""
    return _PORT.sub(b"http://127.0.0.1:PORT", data)


def _xlsx_digest(data: bytes) -> str:
    digest = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        for info in book.infolist():
            member = _no_port(book.read(info))
            if info.filename == "docProps/core.xml":
                member = _CORE_STAMPS.sub(rb"\1\3", member)
            digest.update(info.filename.encode() + b"\0" + hashlib.sha256(member).digest())
    return digest.hexdigest()


# files whose bytes legitimately vary (docProps stamps; the sandbox's port in the source URL):
# the manifest's size and sha256 of them are dropped, every other file's are compared
_VARYING_FILES = (".xlsx", "source/context.json")


def _manifest_digest(data: bytes) -> str:
    manifest = json.loads(data)
    _normalise_manifest(manifest)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _normalise_manifest(value: Any) -> None:
    if isinstance(value, dict):
        if str(value.get("name", "")).endswith(_VARYING_FILES):  # compared themselves, normalised
            value.pop("sha256", None)
            value.pop("size", None)
        for item in value.values():
            _normalise_manifest(item)
    elif isinstance(value, list):
        for item in value:
            _normalise_manifest(item)


_BOOKS_VARY = (  # random by design (a salt and what it salts), or following a file compared itself
    "UPDATE meta SET value = '<salt>' WHERE key = 'source_salt'",
    "UPDATE sources SET key_fingerprint = '<salted>'",
    "UPDATE periods SET manifest_sha256 = '<manifest>'",
)


def _sqlite_digest(path: Path, root: Path) -> str:
    books, copy = sqlite3.connect(f"file:{path}?mode=ro", uri=True), sqlite3.connect(":memory:")
    try:
        books.backup(copy)
        for statement in _BOOKS_VARY:
            copy.execute(statement)
        dump = "\n".join(copy.iterdump()).replace(str(root), "<root>")
        return hashlib.sha256(_no_port(dump.encode())).hexdigest()
    finally:
        books.close()
        copy.close()


def file_digest(path: Path, root: Path) -> str:
    if path.suffix == ".sqlite":
        return _sqlite_digest(path, root)
    data = _no_port(path.read_bytes())
    if path.suffix == ".xlsx":
        return _xlsx_digest(data)
    if path.name == "manifest.json":
        return _manifest_digest(data)
    return hashlib.sha256(data).hexdigest()


def digests(root: Path) -> dict[str, str]:
    out = {}
    for case in render_all(root):
        for path in sorted(p for p in case.rglob("*") if p.is_file() and not p.name.endswith((".lock", "-journal", "-wal", "-shm"))):
            out[f"{case.name}/{path.relative_to(case).as_posix()}"] = file_digest(path, root)
    return out


def read_golden() -> dict[str, str]:
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line and not line.startswith("#"))}


def write_golden(values: dict[str, str]) -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    header = ("# sha256 of every file the oracle renders (tests/oracle.py). Regenerate with\n"
              "# `python tests/oracle.py --write` ONLY for a deliberate output change, said in the commit.\n")
    GOLDEN.write_text(header + "".join(f"{digest}  {name}\n" for name, digest in sorted(values.items())), encoding="utf-8")


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="oracle-") as first, tempfile.TemporaryDirectory(prefix="oracle-") as second:
        values, again = digests(Path(first)), digests(Path(second))
    if values != again:
        print("not deterministic:", sorted(k for k in values if values[k] != again.get(k)), file=sys.stderr)
        return 1
    if "--write" in argv:
        write_golden(values)
        print(f"wrote {len(values)} digests to {GOLDEN}")
        return 0
    golden = read_golden()
    changed = sorted(k for k in set(values) | set(golden) if values.get(k) != golden.get(k))
    print("\n".join(changed) or "identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
