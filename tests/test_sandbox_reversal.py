"""A charge given back, as the current API shows it: the charge stays and a refund for the same
prediction appears, dated when the credit was given back (docs/api.md "A failed prediction",
docs/sandbox.md). The legacy generation keeps showing the record ``failed`` (a late change to a
closed month); the current one serves the refund, booked in the month it happened.

Every expectation is computed from the sandbox's own history (:mod:`exporter.sandbox.history`).
"""

from __future__ import annotations

import csv
import json
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, generate_dataset, serve_in_thread
from exporter.sandbox.data import Dataset, Record
from exporter.sandbox.history import Timeline, as_of, timelines
from exporter.sandbox.items import REFUND_SUFFIX, current_dataset, view_of
from factories import expected_late_changes
from exporter.sandbox.server import default_dataset

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2024, 3, 1, tzinfo=UTC)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def month(record: Record) -> str:
    return record.created_at.strftime("%Y-%m")


def served_by_current(view: Dataset) -> dict[str, Record]:
    """What the current API lists of an as-of view, worked out from the view and its reversal
    instants alone: charges and refunds not failed, a reversed charge as it was (completed) plus
    its refund at the reversal instant."""
    served: dict[str, Record] = {}
    for record in view.records:
        if record.type not in ("usage", "refund"):
            continue
        at = view.reversals.get(record.id)
        if at is not None:
            served[record.id] = replace(record, status="completed")
            served[record.id + REFUND_SUFFIX] = Record(
                record.id + REFUND_SUFFIX, "refund", -record.amount, record.currency, "completed",
                EPOCH + at * MS, record.model)
        elif record.status != "failed":
            served[record.id] = record
    return served


def post(url: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {DEMO_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read(), parse_float=Decimal)["data"]


def get(url: str, path: str) -> Any:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {DEMO_KEY}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read(), parse_float=Decimal)["data"]


def reversed_in_february() -> list[Timeline]:
    """The January charges reversed in February (after January's close as of 1 February)."""
    found = [t for t in timelines(default_dataset()) if t.reversed_at is not None
             and month(t.record) == "2024-01" and FEB_1 <= EPOCH + t.reversed_at * MS < MAR_1]
    assert found, "the default data reverses some January charges in February"
    return sorted(found, key=lambda t: t.reversed_at or 0)


# -- the sandbox ---------------------------------------------------------------------------


def test_the_refund_appears_at_the_reversal_instant_for_the_same_prediction():
    timeline = reversed_in_february()[0]
    charge, at = timeline.record, EPOCH + (timeline.reversed_at or 0) * MS
    tail = charge.id.removeprefix("txn_")
    for instant, refunded in ((at, False), (at + MS, True)):  # what happens at an instant is not seen yet
        with serve_in_thread(as_of=instant, api="both") as server:
            items = post(server.url, "/api/v3/billings/search",
                         {"prediction_uuids": [f"pred_{tail}"], "page_size": 100})["items"]
            legacy = get(server.url, f"/api/v3/account/billings?start_date={charge.created_at:%Y-%m-%d}"
                                     f"&end_date={charge.created_at:%Y-%m-%d}&page_size=100&type=usage")
        by_uuid = {item["uuid"]: item for item in items}
        deduct = by_uuid[charge.id]
        assert (deduct["billing_type"], deduct["order"]["state"]) == ("deduct", "done")
        assert Decimal(deduct["price"]) == -charge.amount  # as before the reversal
        old = next(r for r in legacy["items"] if r["id"] == charge.id)
        assert old["status"] == ("failed" if refunded else "completed")  # the legacy view: unchanged
        if not refunded:
            assert list(by_uuid) == [charge.id]
            continue
        assert set(by_uuid) == {charge.id, charge.id + REFUND_SUFFIX}
        refund = by_uuid[charge.id + REFUND_SUFFIX]
        assert refund["billing_type"] == "refund" and refund["order"]["state"] == "done"
        assert Decimal(refund["price"]) == Decimal(deduct["price"])
        assert refund["created_at"] == f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"
        assert refund["prediction"]["uuid"] == deduct["prediction"]["uuid"] == f"pred_{tail}"
        assert refund["prediction"]["model_uuid"] == deduct["prediction"]["model_uuid"] == charge.model
        assert (refund["access_key_name"], refund["access_key_id"]) == (
            deduct["access_key_name"], deduct["access_key_id"])


def test_the_current_view_is_the_same_bytes_for_the_same_date():
    first = view_of(as_of(default_dataset(), MAR_1))
    again = view_of(as_of(generate_dataset(), MAR_1))  # independently generated: no cache shared
    assert first is not again
    every = range(len(first.served))
    assert len(again.served) == len(first.served)
    blob = first.items_json(every, "positive", "access_key_id", None, None)
    assert blob == again.items_json(every, "positive", "access_key_id", None, None)
    assert REFUND_SUFFIX.encode() in blob


def test_balance_and_usage_follow_what_the_current_api_serves():
    view = as_of(default_dataset(), MAR_1)
    shown = current_dataset(view)
    served = served_by_current(view)
    listed = {r.id for r in shown.records if r.type in ("usage", "refund") and r.status != "failed"}
    assert listed == set(served)
    # the refund gives the credit back, as the legacy reversal did: one balance for both generations
    assert shown.balance == view.balance
    with serve_in_thread(as_of=MAR_1, api="both") as server:
        assert Decimal(get(server.url, "/api/v3/balance")["balance"]) == view.balance
        assert Decimal(get(server.url, "/api/v3/account/balance")["balance"]) == view.balance
    # a charge given back is still usage of its day (its deduct is served); the refund is not usage
    timeline = reversed_in_february()[0]
    day = timeline.record.created_at.date()
    model = timeline.record.model
    assert model is not None
    charged = shown.usage_by_day(day, day)[day][model]
    legacy = view.usage_by_day(day, day).get(day, {}).get(model)
    assert charged.cost - (legacy.cost if legacy else 0) == -timeline.record.amount > 0
    assert charged.requests - (legacy.requests if legacy else 0) == 1


def test_without_as_of_both_generations_serve_the_generated_data_unchanged():
    dataset = default_dataset()
    assert not dataset.reversals
    assert current_dataset(dataset) is dataset
    assert not [r for r in dataset.records if r.id.endswith(REFUND_SUFFIX)]


# -- the month-end loop on the current API -----------------------------------------------------


def test_current_api_books_a_reversal_as_a_refund_in_the_month_it_happened(tmp_path):
    """January closed as of 1 February, February exported as of 1 March, on the current API:
    no missing record; each January charge reversed in February is a refund of exactly its amount
    in February's transactions; January's other late changes are February's adjustments; the
    roll-forward, chained from January and given February's receipts, closes on the provider's
    balance as of 1 March."""
    dataset = default_dataset()
    at_close, now = as_of(dataset, FEB_1), as_of(dataset, MAR_1)
    january_net = sum((r.amount for r in at_close.records if r.status == "completed" and month(r) == "2024-01"),
                      Decimal(0))
    opening = at_close.balance - january_net  # the balance at the start of January, as January sees it
    receipts = tmp_path / "receipts.csv"
    february_topups = [r for r in now.records if r.type == "topup" and month(r) == "2024-02"
                       and r.status == "completed"]
    assert february_topups
    receipts.write_text("date,amount,reference\n" + "".join(
        f"{r.created_at:%Y-%m-%d},{r.amount},{r.id}\n" for r in february_topups), encoding="utf-8")

    out = tmp_path / "books"
    closed = invoke("export", "--sandbox", "--sandbox-api", "current", "--sandbox-as-of", "2024-02-01",
                    "--period", "2024-01", "--close", "--opening-balance", str(opening), "--out", str(out),
                    "--format", "csv", "-q")
    assert closed.exit_code == 0, closed.output
    february = invoke("export", "--sandbox", "--sandbox-api", "current", "--sandbox-as-of", "2024-03-01",
                      "--period", "2024-02", "--topups", str(receipts), "--out", str(out), "--format", "csv")
    assert february.exit_code == 0, february.output
    assert "no longer returned" not in february.output
    pack = out / "2024-02"
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["warnings"] == []

    # each January charge reversed in February: a refund of exactly the charge in February
    transactions = {row["id"]: row for row in rows(pack / "transactions.csv")}
    for timeline in reversed_in_february():
        charge = timeline.record
        refund = transactions[charge.id + REFUND_SUFFIX]
        assert refund["type"] == "refund" and refund["status"] == "completed"
        assert Decimal(refund["amount"]) == -charge.amount
        assert refund["model"] == charge.model
        assert refund["date"] == f"{EPOCH + (timeline.reversed_at or 0) * MS:%Y-%m-%d}"
    # and every refund the history gives back in February, whatever month the charge was in
    given_back = {rid + REFUND_SUFFIX for rid, at in now.reversals.items() if FEB_1 <= EPOCH + at * MS < MAR_1}
    assert {rid for rid in transactions if rid.endswith(REFUND_SUFFIX)} == given_back

    # January's late changes as the current API shows them: no reversal among them
    before = {rid: r for rid, r in served_by_current(at_close).items() if month(r) == "2024-01"}
    after = {rid: r for rid, r in served_by_current(now).items() if month(r) == "2024-01"}
    expected = expected_late_changes(before, after)
    assert before.keys() <= after.keys()  # nothing vanishes: no missing record
    adjustments = rows(pack / "adjustments.csv")
    booked = {row["id"]: (row["change"], Decimal(row["amount_before"]), Decimal(row["amount_after"]),
                          Decimal(row["delta"])) for row in adjustments}
    assert booked == expected
    changes = [change for change, *_ in booked.values()]
    assert changes.count("completed_late") >= 1
    assert "reversed" not in changes and "missing" not in changes
    pending_then = {r.id for r in at_close.records if month(r) == "2024-01" and r.status == "pending"
                    and r.type == "usage"}
    done_now = {r.id for r in now.records if r.id in pending_then and r.status == "completed"}
    assert {rid for rid, (change, *_) in booked.items() if change == "completed_late"} == done_now

    # the roll-forward: opening chained from January, closing on the provider's balance of 1 March
    (roll,) = manifest["rollforward"]
    assert roll["opening_source"] == "closing of 2024-01 in the books"
    assert Decimal(roll["opening"]) == at_close.balance
    assert Decimal(roll["topups"]) == sum((r.amount for r in february_topups), Decimal(0))
    assert Decimal(roll["closing"]) == now.balance == Decimal(roll["provider_balance"])
    assert all(row["status"] == "ok" for row in rows(pack / "reconciliation.csv"))


def test_the_legacy_api_still_books_the_reversal_as_a_late_change(tmp_path):
    """The same two months on the legacy generation: the charge shows failed, booked as a
    ``reversed`` adjustment to January, and no refund record is listed."""
    # every January day re-read: one reversal is cancelled in its day's totals by a late arrival
    # (docs/booking.md, "Finding late changes")
    for as_of_day, period, extra in (("2024-02-01", "2024-01", ["--close"]), ("2024-03-01", "2024-02", ["--recheck", "full"])):
        result = invoke("export", "--sandbox", "--sandbox-api", "legacy", "--sandbox-as-of", as_of_day,
                        "--period", period, *extra, "--out", str(tmp_path), "--format", "csv", "-q")
        assert result.exit_code == 0, result.output
    reversed_ = {row["id"] for row in rows(tmp_path / "2024-02" / "adjustments.csv") if row["change"] == "reversed"}
    assert reversed_ == {t.record.id for t in reversed_in_february()}
    assert not [row for row in rows(tmp_path / "2024-02" / "transactions.csv") if row["id"].endswith(REFUND_SUFFIX)]
