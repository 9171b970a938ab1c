"""Changing the past, for tests of closed periods: what a provider does to its history later.

Tasks that were pending complete, completed ones are failed or re-priced, records appear late
with an old timestamp, others vanish; a hostile history also rewrites a record's type, currency
or timestamp, or serves another record under an id it used before (``fields``). :func:`revise` returns a new dataset; a test swaps it in
with ``server.dataset = revise(server.dataset, ...)`` while the server runs (each request reads
the attribute once). The balance follows, since it is computed from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from decimal import Decimal
from typing import Any

from .data import Dataset, Record, dataset_from_records


def revise(
    dataset: Dataset,
    *,
    statuses: Mapping[str, str] | None = None,
    amounts: Mapping[str, Decimal] | None = None,
    removed: Iterable[str] = (),
    added: Iterable[Record] = (),
    fields: Mapping[str, Mapping[str, Any]] | None = None,
) -> Dataset:
    """``dataset`` with records' statuses or amounts changed (by id), some removed, some added.

    ``fields`` maps an id to any of its fields but the id rewritten (``type``, ``currency``,
    ``created_at``, ``model``, ``payment_method``, as well as ``status`` and ``amount``): a record
    moved to another day, turned from usage into a top-up, or another record served under the
    same id."""
    statuses, amounts, gone = dict(statuses or {}), dict(amounts or {}), set(removed)
    rewritten = {rid: dict(changes) for rid, changes in (fields or {}).items()}
    known = {record.id for record in dataset.records}
    unknown = (set(statuses) | set(amounts) | set(rewritten) | gone) - known
    if unknown:
        raise KeyError(f"no such record(s): {', '.join(sorted(unknown))}")
    names = {field.name for field in dataclass_fields(Record)} - {"id"}
    wrong = {name for changes in rewritten.values() for name in changes} - names
    if wrong:
        raise KeyError(f"no such record field(s): {', '.join(sorted(wrong))}")
    kept = [
        replace(record, **{"status": statuses.get(record.id, record.status),
                           "amount": amounts.get(record.id, record.amount), **rewritten.get(record.id, {})})
        for record in dataset.records
        if record.id not in gone
    ]
    return dataset_from_records([*kept, *added], dataset.months, dataset.seed, dataset.opening_balance)


__all__ = ["revise"]
