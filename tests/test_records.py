from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from exporter.extract import jsonexact
from exporter.errors import DataError
from exporter.extract import records
from exporter.extract.records import RECORD_COLUMNS, parse_record, parse_records

GOOD = '{"id": "txn_1", "type": "usage", "amount": -0.0045, "currency": "USD", "status": "completed", "model": "google/veo3", "created_at": "2024-01-15T11:00:00.000Z"}'


def raw(**changes):
    record = jsonexact.loads(GOOD)
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    return record


def test_a_good_record():
    row = parse_record(raw(), "page 1, item 1")
    assert row.amount == "-0.0045" and row.amount_micros == -4500
    assert row.created_at == datetime(2024, 1, 15, 11, tzinfo=timezone.utc)
    assert (row.model, row.payment_method) == ("google/veo3", "")


def test_offsets_are_normalised_to_utc():
    row = parse_record(raw(created_at="2024-01-15T12:00:00+01:00"), "x")
    assert row.created_at == datetime(2024, 1, 15, 11, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"amount": "-0.0045"}, "amount"),  # a JSON string, not a number
        ({"amount": None}, "amount"),
        ({"amount": Decimal("-0.00000001")}, "amount"),  # more precision than a micro
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": None}, "created_at"),
        ({"type": None}, "type"),
        ({"currency": ""}, "currency"),
        ({"status": 1}, "status"),
        ({"model": Decimal("3")}, "model"),
    ],
)
def test_invalid_fields_are_named_with_the_record(changes, field):
    with pytest.raises(DataError, match=rf"'txn_1'.*page 2, item 5.*'{field}'"):
        parse_record(raw(**changes), "page 2, item 5")


def test_a_record_without_id_is_named_by_position():
    with pytest.raises(DataError, match=r"page 3, item 9: field 'id'"):
        parse_record(raw(id=None), "page 3, item 9")


def test_column_parsing_agrees_with_the_record_by_record_check():
    raws = [raw(id=f"txn_{i}", amount=Decimal(a), created_at=c) for i, (a, c) in enumerate([
        ("-0.0045", "2024-01-15T11:00:00.000Z"), ("100.00", "2024-01-15T12:00:00+01:00"),
        ("1e-3", "2024-01-15T11:00:00"), ("-0.0045", "2024-01-16T00:00:00.123456Z"),
        ("-0.0045", "2024-01-16T00:00:00.5z"),  # a lowercase z (ISO 8601 allows it): read alike on both paths
    ])]
    raws[1].pop("model")
    frame = parse_records(raws, lambda i: f"item {i}")
    rows = [parse_record(r, "x") for r in raws]
    assert list(frame.columns) == RECORD_COLUMNS
    for column in RECORD_COLUMNS:
        assert list(frame[column]) == [getattr(row, column) for row in rows], column
    assert frame["amount_micros"].dtype == "int64"


@pytest.mark.parametrize("changes, field", [({"amount": "1"}, "amount"), ({"created_at": "15/01/2024"}, "created_at"),
                                            ({"status": None}, "status"), ({"model": 5}, "model")])
def test_column_parsing_names_the_first_bad_record(changes, field):
    raws = [raw(id=f"txn_{i}") for i in range(5)]
    raws[3] = raw(id="txn_3", **changes)
    with pytest.raises(DataError, match=rf"'txn_3' \(page 7, item 4\).*'{field}'"):
        parse_records(raws, lambda i: f"page 7, item {i + 1}")


def test_no_records_give_typed_empty_columns():
    frame = parse_records([], lambda i: "")
    assert len(frame) == 0 and str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert frame["amount_micros"].dtype == "int64"


TEXT_FIELDS = ["id", "type", "status", "currency", "model", "payment_method"]


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_lone_surrogate_is_refused_naming_the_record_and_field(field):
    # JSON may escape a lone surrogate ("\ud800"); no UTF-8 file can hold it, so no writer could
    bad = raw(**{"id": "txn_3", field: "x\ud800y"})
    name = "'x\\\\ud800y'" if field == "id" else "'txn_3'"
    with pytest.raises(DataError, match=rf"{name} \(page 7, item 4\): field '{field}' is not valid Unicode"):
        parse_record(bad, "page 7, item 4")
    raws = [raw(id=f"txn_{i}") for i in range(5)]
    raws[3] = bad
    assert records._fast_columns(raws) is None  # the column path declines it ...
    with pytest.raises(DataError, match=rf"{name} \(page 7, item 4\): field '{field}' is not valid Unicode"):
        parse_records(raws, lambda i: f"page 7, item {i + 1}")  # ... and the record path names it


def test_valid_non_ascii_text_passes_both_paths():
    raws = [raw(id="txn_é", model="café/🚀-model", payment_method="carte bancaire ñ")]
    assert records._fast_columns(raws) is not None
    assert list(parse_records(raws, str)["model"]) == ["café/🚀-model"]


@pytest.mark.parametrize("amount", ["1e400", "-1e999999999", "1000000001", "12345678901234567890"])
def test_an_absurdly_large_amount_is_refused_by_both_paths(amount):
    bad = raw(amount=Decimal(amount))
    with pytest.raises(DataError, match=r"'txn_1' \(x\): field 'amount' .* is too large"):
        parse_record(bad, "x")
    assert records._fast_columns([bad]) is None
    with pytest.raises(DataError, match=r"'txn_1' \(item 0\): field 'amount' .* is too large"):
        parse_records([bad], lambda i: f"item {i}")
