"""Closing fixes what the export booked (docs/booking.md, "What the books keep of each record"):
nothing is read or booked again, no mapping is needed, and its time is the commands' clock."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exporter.books.database import Books
from exporter.books.snapshots import decode, encode
from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.sandbox import DEMO_KEY, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), obj=CliState(clock=lambda: NOW))


def test_close_keeps_the_exports_snapshot_byte_for_byte_without_its_mapping(server: SandboxServer, tmp_path: Path):
    out, mapping = tmp_path / "out", tmp_path / "accounts.toml"
    shutil.copy(ROOT / "templates" / "accounts_xero.toml", mapping)
    exported = run("export", "--period", "2024-01", "--out", str(out), "--base-url", server.url, "--api-key", DEMO_KEY,
                   "--format", "csv,xero", "--accounts", str(mapping), "-q")
    assert exported.exit_code == 0, exported.output
    with Books(out / "books.sqlite", write=False) as books:
        at_export = books.snapshot_data("2024-01")
        booked = books.snapshot("2024-01")
    assert at_export is not None and len(booked) == 4000
    assert booked.loc[booked["status"] == "completed", "entry"].notna().all()
    assert booked.loc[booked["status"] != "completed", "entry"].isna().all()  # pending, failed: not booked
    mapping.unlink()  # closing books nothing again: the mapping the export used may be gone

    closed = run("close", "--period", "2024-01", "--out", str(out))
    assert closed.exit_code == 0, closed.output
    with Books(out / "books.sqlite", write=False) as books:
        assert books.snapshot_data("2024-01") == at_export
        period = books.period("2024-01")
        events = books.db.execute("SELECT at, action FROM events WHERE label = '2024-01' ORDER BY rowid").fetchall()
    assert period is not None and period.closed and period.closed_at == NOW  # the commands' clock
    assert events[-1] == ("2024-02-03T04:05:06.000+00:00", "close")
    assert run("books", "check", "--out", str(out)).exit_code == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.sampled_from(["completed", "pending", "failed"]),
                          st.sampled_from(["usage", "refund", "top_up"]), st.text(max_size=8),
                          st.integers(-10**15, 10**15), st.one_of(st.none(), st.sampled_from(["WS2401U", "WS2401-01"])),
                          st.one_of(st.none(), st.integers(0, 30_000))),
                unique_by=lambda row: row[0], max_size=30),
       st.randoms(use_true_random=False), st.booleans())
def test_a_snapshot_is_exact_and_the_same_records_give_the_same_bytes(rows, rng, as_categories):
    """What the seal hashes: the bytes depend on the records only, not on their order or on how
    the frame holds its texts; reading them back gives every value exactly."""
    columns = ["id", "status", "type", "model", "amount", "entry", "day"]
    frame = pd.DataFrame(rows, columns=columns).assign(payment_method="card", currency="USD")
    frame["day"] = frame["day"].astype("Int64")
    frame["amount"] = frame["amount"].astype("int64")
    shuffled = frame.sample(frac=1, random_state=rng.randint(0, 2**31)).reset_index(drop=True)
    if as_categories:
        for column in ("status", "type", "model", "currency", "entry"):
            shuffled[column] = shuffled[column].astype("category").cat.add_categories(["never used"])
    assert encode(shuffled) == encode(frame)
    back = decode(encode(frame)).set_index("id").sort_index()
    want = frame.set_index("id").sort_index()
    for column in ("status", "type", "model", "payment_method", "currency"):
        assert back[column].tolist() == want[column].tolist()
    assert back["amount"].tolist() == want["amount"].tolist()
    assert [None if pd.isna(v) else v for v in back["entry"]] == [None if pd.isna(v) else v for v in want["entry"]]
    assert [None if pd.isna(v) else int(v) for v in back["day"]] == [None if pd.isna(v) else int(v) for v in want["day"]]


def test_a_column_of_categories_none_of_them_used_gives_the_bytes_of_its_text():
    """A month whose records were all left unbooked (one usage of 0.003 rounds to no entry): the
    entry column is categories with none used, every value missing. Found by test_books' gap test."""
    frame = pd.DataFrame({"id": ["b", "a"], "status": ["completed", "pending"], "type": "usage", "model": "m/x",
                          "payment_method": "", "currency": "USD", "amount": [-3_000, -1_000],
                          "entry": [None, None], "day": pd.array([19_732, None], dtype="Int64")})
    as_categories = frame.astype(dict.fromkeys(["status", "type", "model", "payment_method", "currency"], "category"))
    as_categories["entry"] = pd.Categorical([None, None], categories=[])
    assert encode(as_categories) == encode(frame)
    back = decode(encode(as_categories))
    assert back["id"].tolist() == ["a", "b"] and back["entry"].isna().all()
    assert back["status"].tolist() == ["pending", "completed"] and back["amount"].tolist() == [-1_000, -3_000]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["usage", "task_refund", "topup", None]), st.sampled_from(["USD", "EUR", "JPY"]),
                          st.integers(0, 6)), max_size=40),
       st.lists(st.tuples(st.sampled_from(["usage", "task_refund", "payout"]), st.sampled_from(["USD", "EUR", "GBP"]),
                          st.integers(-1, 7)), unique=True, max_size=24),
       st.booleans())
@example([("usage", "USD", 0), ("usage", "USD", 1), (None, "USD", 0)], [("usage", "USD", 1)], False)  # no role: no entry
def test_each_record_gets_the_summary_entry_of_its_role_currency_and_day_as_a_join_would(records, summaries, as_categories):
    """ledger._summary_codes (a lookup table) against a left join of the records on the summaries'
    (role, currency, day): records without a role, summaries of days or currencies no record has."""
    import numpy as np

    from exporter.books.ledger import _summary_codes

    frame = pd.DataFrame(records, columns=["role", "currency", "day"])
    if as_categories:  # as the transactions frame holds them: categories, some never used
        frame["role"] = pd.Categorical(frame["role"], categories=["usage", "topup", "task_refund", "payout", "credit"])
        frame["currency"] = frame["currency"].astype("category").cat.add_categories(["CHF"])
    days = np.datetime64("2024-01-01", "D") + frame["day"].to_numpy(dtype="int64")
    entries = [(role, currency, np.datetime64("2024-01-01", "D") + day, code) for code, (role, currency, day) in enumerate(summaries)]
    table = pd.DataFrame(entries, columns=["role", "currency", "when", "code"]).astype({"when": "datetime64[s]", "code": "int64"})
    joined = pd.DataFrame({"role": frame["role"].astype("object"), "currency": frame["currency"].astype("object"),
                           "when": days.astype("datetime64[s]")}).merge(table, on=["role", "currency", "when"], how="left")["code"]
    assert _summary_codes(frame["role"], frame["currency"], days, entries).tolist() == joined.fillna(-1).astype("int64").tolist()
