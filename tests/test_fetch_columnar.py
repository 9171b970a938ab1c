"""The page walk reads its batches with the columnar reader (issue 19, item 4): valid pages give
the frame the per-record path gives, and every record the per-record path refuses is refused with
the same message and exit code, named by its page and item, over a real loopback server."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.archive import ArchiveWriter
from exporter.cli import cli
from exporter.errors import DataError
from exporter.extract import billings, extract, jsonexact
from exporter.extract.client import BillingClient
from exporter.extract.records import parse_record, parse_records
from exporter.period import month_window
from loopback import record_line, serve_billings

KEY = "sk-test-columnar-0123456789"
PAGE = 100  # the loopback server's default page size


def good_lines(count: int) -> list[str]:
    amounts = ["-0.0025", "-0.0090", "-1.5", "100.00", "-0.000001", "0", "-12"]
    return [record_line(f"txn_{n:05d}", amounts[n % len(amounts)], model=f"m/{n % 3}",
                        created_at=f"2024-01-{1 + n % 28:02d}T10:{n % 60:02d}:00.{n % 1000:03d}Z") for n in range(count)]


def per_record_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the batches handed to the per-record path (the real one runs)."""
    calls: list[int] = []

    def spy(raws, *args, **kwargs):
        calls.append(len(raws))
        return parse_records(raws, *args, **kwargs)

    monkeypatch.setattr(billings, "parse_records", spy)
    return calls


def test_valid_pages_are_read_by_the_columns_into_the_per_record_frame(monkeypatch):
    monkeypatch.setattr(billings, "VALIDATE_BATCH", 250)  # several batches, split inside pages
    calls = per_record_calls(monkeypatch)
    lines = good_lines(1_234)
    with serve_billings(lambda n: lines) as url, BillingClient(url, KEY) as client:
        result = extract(client, month_window("2024-01"), api="legacy", concurrency=4)
    assert calls == []  # no batch needed the per-record path
    expected = parse_records([jsonexact.loads(line) for line in lines], str)
    got = result.records.sort_values("id", ignore_index=True)
    assert got.equals(expected.sort_values("id", ignore_index=True))
    assert list(got["amount"].head(3)) == ["-0.0025", "-0.0090", "-1.5"]  # the source's digits, exact


SURROGATE = "m\\ud800"  # JSON text: the escape of a lone surrogate
BAD = [
    pytest.param(record_line("", "-1.00"), id="empty id"),
    pytest.param(record_line("\u2003", "-1.00"), id="blank id (a Unicode space)"),
    pytest.param(record_line("txn_bad", '"-1.00"'), id="amount as a string"),
    pytest.param(record_line("txn_bad", "null"), id="amount null"),
    pytest.param(record_line("txn_bad", "true"), id="amount a boolean"),
    pytest.param(record_line("txn_bad", "-0.0000001"), id="seven decimal places"),
    pytest.param(record_line("txn_bad", "1e400"), id="amount 1e400"),
    pytest.param(record_line("txn_bad", "-10000000000"), id="amount beyond the bound"),
    pytest.param(record_line("txn_bad", model=SURROGATE), id="lone surrogate in model"),
    pytest.param(record_line("txn\\udc80", "-1.00"), id="lone surrogate in id"),
    pytest.param(record_line("txn_bad", currency="usd"), id="currency in lowercase"),
    pytest.param(record_line("txn_bad", currency="US"), id="currency of two letters"),
    pytest.param(record_line("txn_bad", created_at="2024-02-30T00:00:00Z"), id="created_at not a date"),
    pytest.param(record_line("txn_bad", type=""), id="empty type"),
    pytest.param(record_line("txn_bad", "-1.00").replace('"model":"m/x"', '"model":7'), id="model a number"),
    pytest.param('["not", "an", "object"]', id="record not an object"),
]


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_record_is_refused_as_the_per_record_path_refuses_it(bad, tmp_path, monkeypatch):
    monkeypatch.setattr(billings, "VALIDATE_BATCH", 150)
    lines = good_lines(260)
    lines.insert(217, bad)  # page 3, item 18, in the second batch
    with pytest.raises(DataError) as per_record:
        parse_record(jsonexact.loads(bad), "page 3, item 18")
    with serve_billings(lambda n: lines) as url:
        result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", url, "--api-key", KEY,
                                          "--out", str(tmp_path / "out"), "--format", "csv", "--no-reconcile", "-q"])
    assert result.exit_code == 5, result.output
    assert f"Error: {per_record.value}" in result.stderr
    assert not (tmp_path / "out" / "2024-01").exists()


def test_the_first_bad_record_of_a_batch_is_the_one_named(monkeypatch):
    lines = good_lines(120)
    lines[104] = record_line("txn_first", "-0.1234567")
    lines[110] = record_line("txn_second", currency="eur")
    with serve_billings(lambda n: lines) as url, BillingClient(url, KEY) as client, \
            pytest.raises(DataError, match=r"'txn_first' \(page 2, item 5\): field 'amount'"):
        extract(client, month_window("2024-01"), api="legacy")


def test_a_batch_the_columns_cannot_vouch_for_is_read_record_by_record(monkeypatch):
    calls = per_record_calls(monkeypatch)
    lines = good_lines(30)
    lines[7] = record_line("txn_offset", created_at="2024-01-05T10:00:00+02:00")  # valid, not the API's own form
    lines[8] = record_line("txn_zoneless", created_at="2024-01-05T10:00:00")  # valid, read as UTC with a warning
    lines[9] = record_line("txn_nan", model="NaN-model")  # valid, but the columns leave NaN to Python
    with serve_billings(lambda n: lines) as url, BillingClient(url, KEY) as client:
        result = extract(client, month_window("2024-01"), api="legacy")
    assert calls == [30] and len(result.records) == 30  # the one batch, record by record
    expected = parse_records([jsonexact.loads(line) for line in lines], str)
    assert result.records.sort_values("id", ignore_index=True).equals(expected.sort_values("id", ignore_index=True))
    assert any("txn_zoneless" in warning and "without a time zone" in warning for warning in result.warnings)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Decimal(str(d))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_dumps_writes_what_it_read_back_with_the_same_digits(value):
    text = jsonexact.dumps(value)
    assert "\n" not in text  # one record, one line
    assert jsonexact.loads(text) == value
    if not any(isinstance(v, Decimal) for v in _leaves(value)):
        assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for number in (v for v in _leaves(value) if isinstance(v, Decimal)):
        assert str(number) in text  # 0.0090 stays 0.0090


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def test_the_archive_is_the_bytes_of_one_gzip_stream(tmp_path: Path):
    lines = [record_line(f"txn_{n:06d}", f"-{n % 97}.{n % 10}") for n in range(ArchiveWriter.BLOCK_LINES * 3 + 7)]
    writer = ArchiveWriter(tmp_path)
    for line in lines:
        writer.write(line)
    writer.close()
    one_shot = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=one_shot, mtime=0, compresslevel=6) as stream:
        stream.write(("\n".join(lines) + "\n").encode("utf-8"))  # the whole archive in one write
    assert writer.lines == len(lines)
    assert writer.path.read_bytes() == one_shot.getvalue()
