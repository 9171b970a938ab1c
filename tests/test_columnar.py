"""The columnar archive reader (exporter/extract/columnar.py) against the per-record reader it
replaces for --from-source: the same frame for every archive the per-record reader accepts, the
same error (type and message, so the same exit code and the same record named) for every one it
refuses. The per-record reader stays as the columnar reader's fallback for data it cannot vouch
for, and for live pages and top-up receipts (extract/billings.py, topups.py)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from exporter.archive import ARCHIVE_NAME, read_archive, read_archive_per_record
from exporter.pack import listed
from exporter.errors import ExportError
from exporter.extract import columnar
from exporter.sandbox import generate_dataset
from factories import archive_of, source_folder
from oracle import generated_lines

GOOD = '{"id":"txn_1","type":"usage","amount":-0.0025,"currency":"USD","status":"completed","model":"m/a","created_at":"2024-01-15T10:30:00.000Z"}'


def line(**fields: Any) -> str:
    """GOOD with ``fields`` replaced (values are JSON text, written as given); None drops the field."""
    record = json.loads(GOOD)
    text = {key: json.dumps(value, ensure_ascii=False) for key, value in record.items()}
    for key, value in fields.items():
        if value is None:
            text.pop(key, None)
        else:
            text[key] = value
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in text.items()) + "}"


def outcome(read: Any) -> Any:
    try:
        return read()
    except ExportError as exc:
        return (type(exc).__name__, exc.exit_code, str(exc))


def both(folder: Path) -> tuple[Any, Any]:
    path = folder / ARCHIVE_NAME
    new = outcome(lambda: read_archive(folder))
    old = outcome(lambda: read_archive_per_record(path, listed(folder, ARCHIVE_NAME)))
    return new, old


def assert_same(new: Any, old: Any) -> None:
    if isinstance(old, pd.DataFrame):
        assert isinstance(new, pd.DataFrame), new
        pd.testing.assert_frame_equal(new, old, check_exact=True)
    else:
        assert new == old


def test_python_whitespace_is_listed_exactly():
    listed, chars, i = set(), columnar.PY_SPACE, 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            listed.update(chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1))
            i += 3
        else:
            listed.add(chars[i])
            i += 1
    assert listed == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def test_the_generated_month_reads_the_same_and_through_the_columns(tmp_path):
    lines = generated_lines()
    data = "".join(text + "\n" for text in lines).encode("utf-8")
    assert columnar.block_columns(data) is not None  # no fallback: the columns themselves agreed
    assert_same(*both(source_folder(tmp_path, archive_of(*lines))))


def test_the_sandbox_month_reads_the_same_and_through_the_columns(tmp_path):
    lines = [text for text in generate_dataset(months=("2024-01",), records_per_month=3_000).lines()]
    assert columnar.block_columns("".join(text + "\n" for text in lines).encode("utf-8")) is not None
    assert_same(*both(source_folder(tmp_path, archive_of(*lines))))


def test_blocks_split_anywhere_give_the_same_frame(tmp_path, monkeypatch):
    lines = generated_lines(500, seed=3)
    folder = source_folder(tmp_path, archive_of(*lines))
    whole = read_archive(folder)
    monkeypatch.setattr("exporter.archive.BLOCK_BYTES", 997)  # many blocks, cut mid-line
    pd.testing.assert_frame_equal(read_archive(folder), whole, check_exact=True)


RAW_BYTES = {  # invalid UTF-8 inside a string of an extra field
    "invalid UTF-8 in an extra field": b"\xff",
    "UTF-8 of a surrogate": b"\xed\xa0\x80",
    "overlong UTF-8": b"\xc0\xaf",
}

# Each case: lines of one archive; the columnar reader must agree with the per-record one.
CASES = {
    "valid": [GOOD],
    "amount text kept": [line(amount="-0.0090"), line(id='"b"', amount="1000.000000"), line(id='"c"', amount="-2.5E-3"),
                         line(id='"d"', amount="-1E+1"), line(id='"e"', amount="-0"), line(id='"f"', amount="-0.00250000000")],
    "space around the amount's colon": [GOOD.replace('"amount":', '"amount" :\t ')],
    "amount last": [GOOD.replace('"amount":-0.0025,', "")[:-1] + ',"amount":-0.00250}'],
    "an amount nested before the record's own": [GOOD.replace('{"id"', '{"meta":{"amount":-0.00250},"id"')],
    "duplicate amount, the same value written twice": [GOOD[:-1] + ',"amount":-0.00250}'],
    "model and keys absent or null": [line(model=None), line(id='"b"', model="null", api_key_name="null", payment_method='"x"')],
    "extra fields": [line(extra='{"amount":1}')],
    "model named amount": [line(model='"amount"')],
    "escaped amount key": [GOOD.replace('"amount"', '"\\u0061mount"')],
    "escaped id key": [GOOD.replace('"id"', '"\\u0069d"')],
    "offsets and zoneless": [line(created_at='"2024-01-15T10:30:00+02:00"'), line(id='"b"', created_at='"2024-01-15T10:30:00"'),
                             line(id='"c"', created_at='"2024-01-15T10:30:00.5z"'), line(id='"d"', created_at='"2024-01-15 10:30:00Z"')],
    "basic ISO 8601": [line(created_at='"20240115T103000Z"')],
    "nanoseconds": [line(created_at='"2024-01-15T10:30:00.123456789Z"')],
    "leading spaces": [" " + GOOD],
    "non-ASCII escaped and raw": [line(model='"\\u00e9t\\u00e9"'), line(id='"é"', model='"🎨"')],
    "escaped pair": [line(model='"\\ud83c\\udfa8"')],
    # refused: the same message and exit code
    "number id": [line(id="7")],
    "null id": [line(id="null")],
    "missing id": [line(id=None)],
    "blank id": [line(id='"  "')],
    "ideographic space id": [line(id='"\\u3000"')],
    "lone surrogate id": [line(id='"\\ud800"')],
    "lone surrogate model": [line(model='"x\\udc00"')],
    **{name: [] for name in RAW_BYTES},
    "NaN in an extra field": [line(extra="NaN")],
    "Infinity amount": [line(amount="-Infinity")],
    "string amount": [line(amount='"-0.5"')],
    "seven decimals": [line(amount="-0.0000001")],
    "huge amount": [line(amount="1e400")],
    "beyond a billion": [line(amount="1000000001")],
    "exactly a billion": [line(amount="-1000000000")],
    "null amount": [line(amount="null")],
    "lowercase currency": [line(currency='"usd"')],
    "blank type": [line(type='" "')],
    "number status": [line(status="1")],
    "object model": [line(model='{"a":1}')],
    "list key name": [line(api_key_name="[1]")],
    "bad date": [line(created_at='"2024-02-30T00:00:00Z"')],
    "not a date": [line(created_at='"yesterday"')],
    "missing created_at": [line(created_at=None)],
    "two objects on a line": [GOOD + line(id='"b"')],
    "blank line": [GOOD, "", line(id='"b"')],
    "carriage return": [GOOD + "\r" + line(id='"b"')],
    "not an object": ["[1]"],
    "duplicate key": [GOOD[:-1] + ',"id":"other"}'],
    "deeply nested": [line(extra="[" * 5000 + "]" * 5000)],
    "huge integer": [line(extra="9" * 5000)],
    "trailing comma": [GOOD[:-1] + ",}"],
    "duplicate escaped id": [GOOD[:-1] + ',"\\u0069d":"other"}'],
    "duplicate escaped amount": [GOOD[:-1] + ',"\\u0061mount":-0.5}'],
    "hour 24": [line(created_at='"2024-01-15T24:00:00Z"')],
    # the API's own millisecond form, which skips the regular expression: the calendar still judged
    "millisecond form, bad date": [GOOD, line(id='"b"', created_at='"2024-02-30T10:30:00.000Z"')],
    "millisecond form, hour 24": [line(created_at='"2024-01-15T24:00:00.000Z"')],
    "millisecond form, a letter for a digit": [line(created_at='"2024-01-15T1a:30:00.000Z"')],
    "millisecond form, slashes": [line(created_at='"2024/01/15T10:30:00.000Z"')],
    "millisecond form, lowercase z": [line(created_at='"2024-01-15T10:30:00.000z"')],
    "millisecond form beside a shorter one": [GOOD, line(id='"b"', created_at='"2024-01-15T10:30:00.5Z"')],
    "leap second": [line(created_at='"2024-01-15T23:59:60Z"')],
    "year 0": [line(created_at='"0000-01-15T10:00:00Z"')],
    "month 13": [line(created_at='"2024-13-15T10:00:00Z"')],
    "BOM": ["\ufeff" + GOOD],
}



@pytest.mark.parametrize("name", CASES)
def test_both_readers_agree(tmp_path, name):
    if name in RAW_BYTES:
        data = gzip.compress((line(extra='"x"') + "\n").encode().replace(b'"x"', b'"' + RAW_BYTES[name] + b'"'), mtime=0)
    else:
        data = archive_of(*CASES[name])
    assert_same(*both(source_folder(tmp_path, data)))


def _corrupt(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[10] = 0xFF  # the first deflate block header: block type 3 does not exist
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["truncated", "no trailing newline", "empty", "not gzip", "corrupt deflate"])
def test_damage_reads_the_same(tmp_path, damage):
    data = archive_of(GOOD, line(id='"b"'))
    data = {"truncated": data[:-12], "no trailing newline": gzip.compress(GOOD.encode(), mtime=0),
            "empty": gzip.compress(b"", mtime=0), "not gzip": b"plain text\n", "corrupt deflate": _corrupt(data)}[damage]
    new, old = both(source_folder(tmp_path, data))
    assert_same(new, old)
    assert isinstance(new, pd.DataFrame) == (damage in ("no trailing newline", "empty")), new  # the rest are refused


def test_without_isal_the_archive_reads_the_same(tmp_path, monkeypatch):
    lines = generated_lines(2_000, seed=5)
    folder = source_folder(tmp_path, archive_of(*lines))
    with_isal = read_archive(folder)
    monkeypatch.setattr("exporter.deflate_backend._igzip", None)
    pd.testing.assert_frame_equal(read_archive(folder), with_isal, check_exact=True)


def test_a_changed_archive_is_refused_by_both(tmp_path):
    folder = source_folder(tmp_path, archive_of(GOOD))
    (folder / ARCHIVE_NAME).write_bytes(archive_of(line(amount="-0.5")))
    new, old = both(folder)
    assert new == old and "does not match the size and sha256" in new[2]
