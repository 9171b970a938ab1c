"""Top-ups from the user's own file (``--topups``), for the current API, which has none.

docs/booking.md, "Top-ups with the current API". The vendor's current billing API lists charges
and refunds only; top-ups are made and invoiced in its web console. The payment receipts, kept
as a CSV file (``date,amount,reference`` and optionally ``currency``, ``payment_method``), become
top-up records here: booked like the legacy API's top-ups, archived with the pack as
``source/topups.csv``, and tied out against the provider's balance by the roll-forward. Without
the file nothing is invented: the roll-forward derives the period's top-ups from the balance and
says so.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from .errors import ConfigError, DataError, os_reason
from .extract.records import parse_records
from .money import parse_amount

TOPUPS_NAME = "topups.csv"
REQUIRED = ("date", "amount", "reference")
OPTIONAL = ("currency", "payment_method")
ID_PREFIX = "topup:"  # a top-up's record id is this and its reference: unique, and never a provider id


def read_topups(path: Path, tz_name: str) -> pd.DataFrame:
    """The file's top-ups as validated records (``records.RECORD_COLUMNS``), in file order.

    A day is a day of the export's time zone (its midnight is the record's instant). ConfigError
    naming the file, the line and the field for anything that cannot be booked exactly.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"[[topups]]: cannot read {path}: {os_reason(exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"[[topups]]: {path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise ConfigError(f"[[topups]]: {path} needs the columns {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)});"
                          f" {'missing ' + ', '.join(missing) if missing else 'unknown ' + ', '.join(unknown)}")
    reader.fieldnames = header
    zone = ZoneInfo(tz_name)
    records, seen = [], set()
    for line, row in enumerate(reader, start=2):
        where = f"--topups: {path} line {line}"
        if None in row or any(row.get(name) is None for name in REQUIRED):
            raise ConfigError(f"{where}: expected {len(header)} fields")
        reference = row["reference"].strip()
        if not reference:
            raise ConfigError(f"{where}: 'reference' is empty (a receipt or invoice number)")
        if reference in seen:
            raise ConfigError(f"{where}: reference {reference!r} appears twice")
        seen.add(reference)
        try:
            day = date.fromisoformat(row["date"].strip())
        except ValueError:
            raise ConfigError(f"{where}: 'date' must be YYYY-MM-DD, got {row['date'][:20]!r}") from None
        try:
            micros, amount = parse_amount(row["amount"].strip())
        except ValueError as exc:
            raise ConfigError(f"{where}: 'amount' {exc}") from None
        if micros <= 0:
            raise ConfigError(f"{where}: 'amount' must be positive (a top-up adds credit), got {amount}")
        instant = datetime.combine(day, time(0), zone).astimezone(timezone.utc)
        records.append({
            "id": ID_PREFIX + reference, "type": "topup", "amount": Decimal(amount), "status": "completed",
            "currency": (row.get("currency") or "USD").strip(), "payment_method": (row.get("payment_method") or "").strip(),
            "created_at": instant.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        })
    try:
        return parse_records(records, lambda i: f"{path} line {i + 2}")
    except DataError as exc:  # the shared validation refuses it (currency, text): the user's file is wrong
        raise ConfigError(f"[[topups]]: {exc}") from None
