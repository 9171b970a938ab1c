"""The sandbox's current API generation, over real HTTP on loopback, compared with the legacy data."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, Dataset, Record, generate_dataset, serve_in_thread
from exporter.sandbox import current
from exporter.sandbox.current import BALANCE, SCHEDULER, SEARCH, USAGE_STATS
from exporter.sandbox.data import dataset_from_records
from exporter.sandbox.server import BILLINGS, SandboxServer

AUTH = {"Authorization": f"Bearer {DEMO_KEY}"}
JAN = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-02-01T00:00:00Z"}
JAN_MS = {"start_time": "1704067200000", "end_time": "1706745600000"}
UTC = timezone.utc
KEY_ID = re.compile(r"^ak_[0-9a-f]{24}$")


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate_dataset(months=("2024-01",), records_per_month=1500)


@pytest.fixture
def server(small: Dataset) -> Iterator[SandboxServer]:
    with serve_in_thread(small, api="current") as running:
        yield running


def post(server: SandboxServer, path: str, body: Any, headers: dict[str, str] | None = AUTH) -> requests.Response:
    return requests.post(server.url + path, json=body, headers=headers, timeout=10)


def envelope(response: requests.Response) -> dict[str, Any]:
    return json.loads(response.text, parse_float=Decimal)


def data_of(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    body = envelope(response)
    assert (body["code"], body["message"]) == (200, "success")
    return body["data"]


def refused(response: requests.Response, status: int = 400) -> str:
    """The message of an error envelope with ``status``."""
    assert response.status_code == status, response.text
    body = envelope(response)
    assert body["code"] == status and body["data"] is None
    return body["message"]


def walk(server: SandboxServer, page_size: int = 100, path: str = SEARCH, **body: Any) -> list[dict[str, Any]]:
    """Every item of a search, page after page, by the total the server reports."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        data = data_of(post(server, path, {"page": page, "page_size": page_size, **body}))
        assert data["page"] == page
        items.extend(data["items"])
        if not data["items"] or page * page_size >= data["total"]:
            return items
        page += 1


def january(dataset: Dataset) -> list[Record]:
    return [r for r in dataset.records if r.created_at.strftime("%Y-%m") == "2024-01"]


def served(records: list[Record]) -> list[Record]:
    """What the current API lists of legacy records: no top-ups, no failed tasks."""
    return [r for r in records if r.type in ("usage", "refund") and r.status in ("completed", "pending")]


# -- billings/search: content --------------------------------------------------------------


def test_january_search_serves_every_charge_and_refund_exactly_once(server: SandboxServer, small: Dataset) -> None:
    jan = january(small)
    assert {r.type for r in jan} == {"usage", "refund", "topup"}
    assert {r.status for r in jan} == {"completed", "pending", "failed"}
    items = walk(server, **JAN)
    ids = [item["uuid"] for item in items]
    assert len(ids) == len(set(ids))
    expected = served(jan)
    assert set(ids) == {r.id for r in expected}
    assert len(ids) == len(expected) < len(jan)
    for type_, billing_type in (("usage", "deduct"), ("refund", "refund")):
        legacy = sum((abs(r.amount) for r in expected if r.type == type_), Decimal(0))
        now = sum((abs(i["price"]) for i in items if i["billing_type"] == billing_type), Decimal(0))
        assert now == legacy > 0


def test_items_map_the_legacy_records(server: SandboxServer, small: Dataset) -> None:
    by_id = {r.id: r for r in small.records}
    items = walk(server, **JAN)
    assert Counter(i["order"]["state"] for i in items).keys() == {"done", "pre"}
    for item in items:
        record = by_id[item["uuid"]]
        assert list(item) == ["uuid", "billing_type", "price", "created_at", "updated_at", "order", "prediction",
                              "access_key_name", "access_key_id"]
        suffix = record.id.removeprefix("txn_")
        assert item["price"] == abs(record.amount) > 0
        assert item["created_at"] == record.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{record.created_at.microsecond // 1000:03d}Z"
        created = datetime.fromisoformat(item["created_at"])
        assert 2 <= (datetime.fromisoformat(item["updated_at"]) - created).total_seconds() <= 4
        order, prediction = item["order"], item["prediction"]
        assert order["uuid"] == f"ord_{suffix}" and prediction["uuid"] == f"pred_{suffix}"
        assert order["price"] == order["origin_price"] == item["price"]
        assert order["ak_id"] == item["access_key_id"]
        assert prediction["model_uuid"] == record.model
        done = record.status == "completed"
        assert (order["state"], order["status"]) == (("done", 1) if done else ("pre", 0))
        want = "processing" if not done else ("completed" if record.type == "usage" else "failed")
        assert prediction["status"] == want


def test_order_desc_by_default_and_asc(server: SandboxServer) -> None:
    desc = walk(server, **JAN)
    asc = walk(server, sort="created_at ASC", **JAN)
    assert [i["uuid"] for i in asc] == [i["uuid"] for i in reversed(desc)]
    stamps = [(i["created_at"], i["uuid"]) for i in asc]
    assert stamps == sorted(stamps)
    assert walk(server, sort="created_at DESC", **JAN) == desc
    assert "invalid sort" in refused(post(server, SEARCH, {"sort": "amount"}))


def test_page_size_bounds_and_cap(server: SandboxServer) -> None:
    for bad in (0, 101, -1, "x"):
        assert "page_size" in refused(post(server, SEARCH, {"page_size": bad, **JAN}))
    assert "page" in refused(post(server, SEARCH, {"page": 0, **JAN}))
    assert len(data_of(post(server, SEARCH, {"page_size": 100, **JAN}))["items"]) == 100
    assert len(data_of(post(server, SEARCH, JAN))["items"]) == 20  # the default
    server.faults.page_cap = 7
    assert len(data_of(post(server, SEARCH, {"page_size": 50, **JAN}))["items"]) == 7


def test_billing_type_filter(server: SandboxServer, small: Dataset) -> None:
    refunds = walk(server, billing_type="refund", **JAN)
    assert {i["uuid"] for i in refunds} == {r.id for r in served(january(small)) if r.type == "refund"}
    assert {i["billing_type"] for i in refunds} == {"refund"}
    deducts = walk(server, billing_type="deduct", **JAN)
    assert len(deducts) + len(refunds) == len(walk(server, **JAN))
    assert "billing_type" in refused(post(server, SEARCH, {"billing_type": "topup"}))


def test_prediction_uuids_filter(server: SandboxServer, small: Dataset) -> None:
    wanted = [r.id for r in served(january(small))[:3]]
    items = walk(server, prediction_uuids=[f"pred_{w.removeprefix('txn_')}" for w in wanted], **JAN)
    assert sorted(i["uuid"] for i in items) == sorted(wanted)
    assert "prediction_uuids" in refused(post(server, SEARCH, {"prediction_uuids": "pred_1"}))


# -- time forms ----------------------------------------------------------------------------

FORMS = {
    "ms text": ("1704067200000", "1706745600000"),
    "ms number": (1704067200000, 1706745600000),
    "rfc3339": ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
    "rfc3339 fraction": ("2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"),
    "rfc3339 offset": ("2024-01-01T00:00:00+00:00", "2024-02-01T01:00:00+01:00"),
}


@pytest.mark.parametrize("time_form", ["both", "ms", "rfc3339"])
@pytest.mark.parametrize("form", list(FORMS))
def test_time_forms(server: SandboxServer, time_form: str, form: str) -> None:
    server.faults.time_form = time_form
    start, end = FORMS[form]
    response = post(server, SEARCH, {"start_time": start, "end_time": end, "page_size": 1})
    accepted = time_form == "both" or time_form == form.split()[0]
    if not accepted:
        assert refused(response) == "invalid start_time"
        return
    data = data_of(response)
    server.faults.time_form = "both"
    assert data["total"] == data_of(post(server, SEARCH, {**JAN, "page_size": 1}))["total"]


def test_start_is_inclusive_and_end_exclusive(server: SandboxServer) -> None:
    first = data_of(post(server, SEARCH, {**JAN, "sort": "created_at ASC", "page_size": 1}))["items"][0]
    assert first["created_at"] == "2024-01-01T00:00:00.000Z"
    last = data_of(post(server, SEARCH, {**JAN, "page_size": 1}))["items"][0]
    assert last["created_at"] == "2024-01-31T23:59:59.999Z"
    # the record at 2024-02-01T00:00:00.000 (just outside the generated month) is the newest of all
    assert data_of(post(server, SEARCH, {"page_size": 1}))["items"][0]["created_at"] == "2024-02-01T00:00:00.000Z"
    for bad in ("2024-01-01", "yesterday", "2024-01-01T00:00:00", True):
        assert refused(post(server, SEARCH, {"start_time": bad})) == "invalid start_time"


# -- faults of the current API -------------------------------------------------------------


def test_pagination_shapes(server: SandboxServer) -> None:
    body = {**JAN, "page_size": 100}
    assert list(data_of(post(server, SEARCH, body))) == ["page", "total", "items"]
    server.faults.pagination = "has_more"
    first = data_of(post(server, SEARCH, body))
    assert list(first) == ["page", "has_more", "items"] and first["has_more"] is True
    pages = []
    page = 1
    while True:
        data = data_of(post(server, SEARCH, {**body, "page": page}))
        pages.append(data)
        if not data["has_more"]:
            break
        page += 1
    assert all(p["items"] for p in pages)
    server.faults.pagination = "both"
    data = data_of(post(server, SEARCH, {**body, "page": page}))
    assert list(data) == ["page", "total", "has_more", "items"] and data["has_more"] is False
    assert (page - 1) * 100 < data["total"] <= page * 100


def test_price_signs(server: SandboxServer) -> None:
    def prices(sign: str) -> dict[str, set[bool]]:
        server.faults.price_sign = sign
        seen: dict[str, set[bool]] = {"deduct": set(), "refund": set()}
        for item in walk(server, **JAN):
            seen[item["billing_type"]].add(item["price"] > 0)
            assert item["order"]["price"] == item["price"]
        return seen

    assert prices("positive") == {"deduct": {True}, "refund": {True}}
    assert prices("negative") == {"deduct": {False}, "refund": {False}}
    assert prices("signed") == {"deduct": {False}, "refund": {True}}


def test_key_id_field_and_absurd_price(server: SandboxServer, small: Dataset) -> None:
    server.faults.key_id_field = "access_key_uuid"
    item = data_of(post(server, SEARCH, JAN))["items"][0]
    assert "access_key_id" not in item and KEY_ID.match(item["access_key_uuid"])
    assert list(item)[-2:] == ["access_key_name", "access_key_uuid"]
    target = served(january(small))[5].id
    server.faults.absurd_price = target
    items = {i["uuid"]: i for i in walk(server, **JAN)}
    assert items[target]["price"] == 24300
    assert all(i["price"] < 1000 for uuid, i in items.items() if uuid != target)


def test_api_keys_are_deterministic_and_split(server: SandboxServer, small: Dataset) -> None:
    items = walk(server, **JAN)
    names = Counter(i["access_key_name"] for i in items)
    assert set(names) == {"prod-app", "staging", "client-acme"}
    share = {name: n / len(items) for name, n in names.items()}
    assert 0.6 < share["prod-app"] < 0.8 and 0.12 < share["staging"] < 0.28 and 0.04 < share["client-acme"] < 0.16
    ids = {(i["access_key_name"], i["access_key_id"]) for i in items}
    assert len(ids) == 3 and all(KEY_ID.match(key) for _, key in ids)
    again = generate_dataset(months=("2024-01",), records_per_month=1500)
    with serve_in_thread(again, api="current") as other:
        assert walk(other, **JAN) == items  # same bytes from another server and another dataset object


def test_legacy_faults_apply(server: SandboxServer, small: Dataset) -> None:
    faults = server.faults
    faults.rate_limit_every = 2
    assert post(server, SEARCH, JAN).status_code == 200
    assert refused(post(server, SEARCH, JAN), 429) == "too many requests"
    faults.rate_limit_every = 0
    faults.fail_next, faults.error_html = 1, False
    assert post(server, SEARCH, JAN).status_code == 502
    faults.wrong_total = 3
    assert data_of(post(server, SEARCH, JAN))["total"] == 3
    faults.wrong_total = None
    target = served(january(small))[0].id  # records are newest first: on page 1 of a DESC search
    faults.malformed = {target: "price"}
    first = data_of(post(server, SEARCH, JAN))["items"][0]
    assert (first["uuid"], first["price"]) == (target, "abc")
    faults.malformed = None
    page1 = data_of(post(server, SEARCH, {**JAN, "page_size": 10}))["items"]
    faults.duplicate_across_pages = True
    page2 = data_of(post(server, SEARCH, {**JAN, "page_size": 10, "page": 2}))["items"]
    assert page2[0] == page1[-1] and len(page2) == 11
    faults.duplicate_across_pages, faults.ignore_page = False, True
    assert data_of(post(server, SEARCH, {**JAN, "page_size": 10, "page": 3}))["items"] == page1


def test_arrivals(server: SandboxServer) -> None:
    full = data_of(post(server, SEARCH, JAN))
    server.reset()
    server.faults.arrivals, server.faults.arrive_after = 2, 1
    early = data_of(post(server, SEARCH, JAN))
    assert early["total"] == full["total"] - 2 and early["items"][:18] == full["items"][2:]
    assert data_of(post(server, SEARCH, JAN)) == full


# -- the other current endpoints ------------------------------------------------------------


def test_scheduler_query_month_oldest_first_deducts_negative(server: SandboxServer, small: Dataset) -> None:
    items = walk(server, page_size=1000, path=SCHEDULER, year_month="2024-01")
    assert [i["uuid"] for i in items] == [r.id for r in reversed(served(january(small)))]
    for item in items:
        assert (item["price"] < 0) == (item["billing_type"] == "deduct")
    assert walk(server, page_size=1000, path=SCHEDULER, year_month="2024-03") == []
    assert "page_size" in refused(post(server, SCHEDULER, {"year_month": "2024-01", "page_size": 1001}))
    for bad in (None, "2024-13", "2024-1", "january"):
        assert "year_month" in refused(post(server, SCHEDULER, {"year_month": bad}))


def test_scheduler_query_serves_at_most_the_cap(server: SandboxServer, small: Dataset,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(current, "SCHEDULER_CAP", 50)
    data = data_of(post(server, SCHEDULER, {"year_month": "2024-01", "page_size": 1000}))
    assert data["total"] == 50
    assert [i["uuid"] for i in data["items"]] == [r.id for r in reversed(served(january(small)))][:50]
    assert data_of(post(server, SCHEDULER, {"year_month": "2024-01", "page": 2, "page_size": 40}))["items"] == \
        data["items"][40:50]


def test_balance(server: SandboxServer, small: Dataset) -> None:
    response = requests.get(server.url + BALANCE, headers=AUTH, timeout=5)
    assert data_of(response) == {"balance": small.balance}
    server.faults.balance_skew = Decimal("0.05")
    skewed = data_of(requests.get(server.url + BALANCE, headers=AUTH, timeout=5))
    assert skewed == {"balance": small.balance + Decimal("0.05")}
    assert refused(requests.post(server.url + BALANCE, headers=AUTH, timeout=5), 405)


def rounded(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def test_usage_stats_equal_the_completed_usage(server: SandboxServer, small: Dataset) -> None:
    body = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-31T23:59:59Z"}
    data = data_of(post(server, USAGE_STATS, body))
    usage = small.usage_by_model(date(2024, 1, 1), date(2024, 1, 31))
    per_model = {row["model_uuid"]: row for row in data["per_model_usage"]}
    assert set(per_model) == set(usage)
    for name, row in per_model.items():
        assert row["total_cost"] == rounded(usage[name].cost) and row["total_count"] == usage[name].requests
        assert row["last_used_date"].startswith("2024-01-")
    costs = [(-row["total_cost"], row["model_uuid"]) for row in data["per_model_usage"]]
    assert costs == sorted(costs)
    summary = data["summary"]
    assert summary["total_cost"] == rounded(sum((u.cost for u in usage.values()), Decimal(0)))
    assert summary["success_requests"] == sum(u.requests for u in usage.values())
    completed = [r for r in january(small) if r.type == "usage" and r.status == "completed"]
    assert summary["success_requests"] == len(completed)
    assert summary["total_requests"] == sum(1 for r in january(small) if r.type == "usage")
    days = data["daily_usage"]
    assert [d["date"] for d in days] == sorted(d["date"] for d in days) and len(days) == 31
    assert sum(d["count"] for d in days) == len(completed)
    for day in days:
        exact = sum((-r.amount for r in completed if r.created_at.date().isoformat() == day["date"]), Decimal(0))
        assert day["amount"] == rounded(exact)
        assert sum(m["count"] for m in day["models"]) == day["count"]


def test_usage_stats_range_model_and_skew(server: SandboxServer, small: Dataset) -> None:
    def stats(start: str, end: str, **more: Any) -> requests.Response:
        return post(server, USAGE_STATS, {"start_time": start, "end_time": end, **more})

    assert refused(stats("2024-01-01T00:00:00Z", "2024-02-02T00:00:00Z")) == "time range exceeds 31 days"
    assert data_of(stats("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"))["daily_usage"][-1]["date"] == "2024-01-31"
    assert "end_time" in refused(stats("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"))
    assert "start_time" in refused(post(server, USAGE_STATS, {"end_time": "2024-01-01T00:00:00Z"}))
    one_day = data_of(stats("2024-01-05T00:00:00Z", "2024-01-05T23:59:59Z", model_uuid="wavespeed-ai/sdxl"))
    assert [row["model_uuid"] for row in one_day["per_model_usage"]] == ["wavespeed-ai/sdxl"]
    assert [d["date"] for d in one_day["daily_usage"]] == ["2024-01-05"]
    before = one_day["summary"]["total_cost"]
    server.faults.usage_skew = {"wavespeed-ai/sdxl": Decimal("1.5")}
    skewed = data_of(stats("2024-01-05T00:00:00Z", "2024-01-05T23:59:59Z", model_uuid="wavespeed-ai/sdxl"))
    assert skewed["summary"]["total_cost"] == before + Decimal("1.5")
    assert skewed["per_model_usage"][0]["total_cost"] == before + Decimal("1.5")
    assert skewed["daily_usage"][0]["amount"] == before + Decimal("1.5")


# -- generations, requests and the log ------------------------------------------------------


def test_generation_selection(small: Dataset) -> None:
    legacy_query = {"start_date": "2024-01-01", "end_date": "2024-01-31"}
    with serve_in_thread(small, api="current") as now:
        assert refused(requests.get(now.url + BILLINGS, params=legacy_query, headers=AUTH, timeout=5), 404)
        assert data_of(post(now, SEARCH, JAN))["total"] > 0
    with serve_in_thread(small) as default:  # the library default stays legacy
        assert default.api == "legacy"
        assert refused(post(default, SEARCH, JAN), 404)
        assert refused(requests.get(default.url + BALANCE, headers=AUTH, timeout=5), 404)
        assert requests.get(default.url + BILLINGS, params=legacy_query, headers=AUTH, timeout=5).status_code == 200
    with serve_in_thread(small, api="both") as both:
        assert data_of(post(both, SEARCH, JAN))["total"] > 0
        assert requests.get(both.url + BILLINGS, params=legacy_query, headers=AUTH, timeout=5).status_code == 200
    with pytest.raises(ValueError, match="api"):
        serve_in_thread(small, api="v2").__enter__()


def test_bodies_keys_and_the_request_log(server: SandboxServer) -> None:
    assert refused(post(server, SEARCH, JAN, headers=None), 401) == "invalid api key"
    bad = requests.post(server.url + SEARCH, data=b"{not json", headers=AUTH, timeout=5)
    assert refused(bad) == "invalid JSON body"
    assert refused(requests.post(server.url + SEARCH, json=[1], headers=AUTH, timeout=5)).startswith("invalid JSON")
    assert refused(requests.get(server.url + SEARCH, headers=AUTH, timeout=5), 405)
    server.reset()
    post(server, SEARCH, {**JAN_MS, "page": 2, "page_size": 5, "prediction_uuids": ["pred_a", "pred_b"]})
    post(server, USAGE_STATS, {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"})
    log = server.requests.snapshot()
    assert [(r.path, r.status) for r in log] == [(SEARCH, 200), (USAGE_STATS, 200)]
    assert log[0].query == {**JAN_MS, "page": "2", "page_size": "5", "prediction_uuids": "pred_a,pred_b"}
    assert log[1].query["end_time"] == "2024-01-02T00:00:00Z"
    assert server.billings_answered() == 1  # usage_stats is not a billings request


def test_records_of_any_id_are_served(small: Dataset) -> None:
    odd = Record(id="manual-1", type="refund", amount=Decimal("0.5"), currency="USD", status="completed",
                 created_at=datetime(2024, 1, 2, 3, 4, 59, 999000, tzinfo=UTC), model=None)
    dataset = dataset_from_records([odd], ("2024-01",), 1, Decimal(0))
    with serve_in_thread(dataset, api="current") as running:
        (item,) = data_of(post(running, SEARCH, {}))["items"]
    assert item["uuid"] == "manual-1" and item["order"]["uuid"] == "ord_manual-1"
    assert item["prediction"] == {"uuid": "pred_manual-1", "model_uuid": None, "status": "failed"}
    assert item["updated_at"].startswith("2024-01-02T03:05:0")


# -- command line ---------------------------------------------------------------------------


def test_cli_sandbox_api_options() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0 and "--api [current|legacy|both]" in result.output
    result = runner.invoke(cli, ["export", "--help"])
    assert "--sandbox-api [current|legacy]" in result.output
    result = runner.invoke(cli, ["export", "--sandbox-api", "legacy", "--period", "2024-01"],
                           env={"WAVESPEED_API_KEY": "x"})
    assert result.exit_code == 2, result.output
    assert "--sandbox-api" in result.output
