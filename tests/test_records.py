from __future__ import annotations

from datetime import datetime, timezone

import pytest

from exporter import jsonexact
from exporter.errors import DataError
from exporter.records import parse_record

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
        ({"amount": jsonexact.Number("-0.00000001")}, "amount"),  # more precision than a micro
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": None}, "created_at"),
        ({"type": None}, "type"),
        ({"currency": ""}, "currency"),
        ({"status": jsonexact.Number("1")}, "status"),
        ({"model": jsonexact.Number("3")}, "model"),
    ],
)
def test_invalid_fields_are_named_with_the_record(changes, field):
    with pytest.raises(DataError, match=rf"'txn_1'.*page 2, item 5.*'{field}'"):
        parse_record(raw(**changes), "page 2, item 5")


def test_a_record_without_id_is_named_by_position():
    with pytest.raises(DataError, match=r"page 3, item 9: field 'id'"):
        parse_record(raw(id=None), "page 3, item 9")
