"""Changing the past, for tests of closed periods: what a provider does to its history later.

Tasks that were pending complete, completed ones are failed or re-priced, records appear late
with an old timestamp, others vanish. :func:`revise` returns a new dataset; a test swaps it in
with ``server.dataset = revise(server.dataset, ...)`` while the server runs (each request reads
the attribute once). The balance follows, since it is computed from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from .data import Dataset, Record, dataset_from_records


def revise(
    dataset: Dataset,
    *,
    statuses: Mapping[str, str] | None = None,
    amounts: Mapping[str, Decimal] | None = None,
    removed: Iterable[str] = (),
    added: Iterable[Record] = (),
) -> Dataset:
    """``dataset`` with records' statuses or amounts changed (by id), some removed, some added."""
    statuses, amounts, gone = dict(statuses or {}), dict(amounts or {}), set(removed)
    known = {record.id for record in dataset.records}
    unknown = (set(statuses) | set(amounts) | gone) - known
    if unknown:
        raise KeyError(f"no such record(s): {', '.join(sorted(unknown))}")
    kept = [
        replace(record, status=statuses.get(record.id, record.status), amount=amounts.get(record.id, record.amount))
        for record in dataset.records
        if record.id not in gone
    ]
    return dataset_from_records([*kept, *added], dataset.months, dataset.seed, dataset.opening_balance)


__all__ = ["revise"]
