"""Where the books' records came from, and whether a new export's source is the same account.

docs/booking.md, "The books' source". Each exported period records its source: the base URL (or
``sandbox`` for the built-in sandbox, whose port changes every run), a salted HMAC of the API key
(never the key; the salt is the books' own) and the API generation (``api``, None until known).
An export from another source is checked by what it serves: the reference period (the last closed
one, or with none closed the last exported one) must come back as the books hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import ConfigError
from .database import Books, Period

SANDBOX = "sandbox"


@dataclass(frozen=True)
class Source:
    """One source of records: ``name`` (base URL or "sandbox"), ``fingerprint`` (HMAC-SHA256 of
    the key under the books' salt), ``api`` (the API generation, "legacy"/"current", or None)."""

    name: str
    fingerprint: str
    api: str | None = None

    def same(self, other: Source) -> bool:
        return self.name == other.name and self.fingerprint == other.fingerprint


@dataclass(frozen=True)
class SourceCheck:
    """A source other than the books' own: what it must serve for the books to continue."""

    recorded: Source  # the source of the reference period
    current: Source
    period: Period  # the reference period
    booked: pd.DataFrame  # its records as the books hold them: id, amount (micros)


def source_name(base_url: str, sandbox: bool) -> str:
    return SANDBOX if sandbox else base_url.rstrip("/")


def check_needed(books: Books, current: Source) -> SourceCheck | None:
    """None when ``current`` is the books' source or there is nothing to compare; otherwise what
    the new source must serve (the reference period's records as booked)."""
    reference = _reference(books)
    if reference is None:
        return None
    period, recorded = reference
    if recorded.same(current):
        return None
    return SourceCheck(recorded, current, period, _as_booked(books, period))


def _reference(books: Books) -> tuple[Period, Source] | None:
    """The last closed period with a recorded source, or with none closed the last exported one."""
    periods = [p for p in books.periods() if books.source(p.label) is not None]  # older books may lack one
    closed = [p for p in periods if p.closed]
    candidates = closed or periods
    if not candidates:
        return None
    period = max(candidates, key=lambda p: (p.end_utc, p.exported_at))
    recorded = books.source(period.label)
    assert recorded is not None
    return period, Source(*recorded)


def _as_booked(books: Books, period: Period) -> pd.DataFrame:
    """id and amount of the reference period's records: kept at close, or the open pack's archive."""
    if period.closed:
        frame = books.booked([period.label])
        return pd.DataFrame({"id": frame["id"].astype("str"), "amount": frame["amount"].astype("int64")})
    from ..archive import read_archive, resolve_source_folder  # the pack of an open period

    try:
        records = read_archive(resolve_source_folder(books.pack_folder(period)))
    except Exception:  # noqa: BLE001  the pack was moved or edited: nothing left to compare with
        records = pd.DataFrame({"id": [], "amount_micros": []})
    return pd.DataFrame({"id": records["id"].astype("str"), "amount": records["amount_micros"].astype("int64")})


def verify(check: SourceCheck, served: pd.DataFrame) -> str:
    """The note to print when ``served`` (the new source's records of the reference period: id,
    amount_micros) matches the books; ConfigError naming both sources otherwise.

    The same account serves the same records: more than half of the reference period's booked
    records must come back with the same id and amount (late changes may have altered a few);
    when the books hold none, the new source must serve none either."""
    booked = dict(zip(check.booked["id"], check.booked["amount"]))
    now = dict(zip(served["id"].astype("str"), served["amount_micros"].astype("int64")))
    same = sum(1 for record, amount in booked.items() if now.get(record) == amount)
    label, was, new = check.period.label, _describe(check.recorded), _describe(check.current)
    if (booked and 2 * same > len(booked)) or (not booked and not now):
        return (f"note: the source changed ({was} -> {new}) but it serves {label} as booked "
                f"({same:,} of {len(booked):,} records): the same account, continuing")
    raise ConfigError(
        f"these books hold records from {was}, but {new} does not serve {label} as booked "
        f"({same:,} of {len(booked):,} records match): another account? Use another --books or --out"
    )


def record_source(books: Books, label: str, source: Source) -> None:
    """Keep ``source`` as period ``label``'s (inside the export's transaction)."""
    books.add_source(label, source.name, source.fingerprint, source.api)


def _describe(source: Source) -> str:
    return f"{source.name} (key {source.fingerprint[:8]})"


__all__ = ["SANDBOX", "Source", "SourceCheck", "check_needed", "record_source", "source_name", "verify"]
