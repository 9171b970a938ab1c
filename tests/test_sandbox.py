"""The sandbox itself: its data and its HTTP behaviour, over real HTTP on loopback."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests

from exporter.sandbox import DEMO_KEY, Dataset, Faults, generate_dataset, serve_in_thread
from exporter.sandbox.data import MODEL_NAMES, record_json
from exporter.sandbox.server import BALANCE, BILLINGS, USAGE, SandboxServer

AUTH = {"Authorization": f"Bearer {DEMO_KEY}"}
JANUARY = {"start_date": "2024-01-01", "end_date": "2024-01-31"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UTC = timezone.utc


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate_dataset(months=("2024-01",), records_per_month=300)


@pytest.fixture(scope="module")
def default() -> Dataset:
    return generate_dataset()


@pytest.fixture
def server(small: Dataset) -> Iterator[SandboxServer]:
    with serve_in_thread(small) as running:
        yield running


def get(server: SandboxServer, path: str, headers: dict[str, str] | None = AUTH, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=headers, timeout=5)


def data_of(response: requests.Response) -> Any:
    """The envelope's data, after checking it is a success; numbers stay exact."""
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert (body["code"], body["message"]) == (200, "success")
    return body["data"]


def walk(server: SandboxServer, page_size: int = 100, **params: Any) -> list[dict[str, Any]]:
    """Every item of a query, page after page, as the server paginates it."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        data = data_of(get(server, BILLINGS, page=page, page_size=page_size, **params))
        if not data["items"]:
            return items
        items.extend(data["items"])
        p = data["pagination"]
        if p["page"] * p["page_size"] >= p["total"]:
            return items
        page += 1


def in_days(dataset: Dataset, first: date, last: date) -> list[Any]:
    return [r for r in dataset.records if first <= r.created_at.date() <= last]


# -- data --------------------------------------------------------------------------------


def test_generation_is_deterministic(small: Dataset) -> None:
    again = generate_dataset(months=("2024-01",), records_per_month=300)
    assert again == small
    assert list(again.lines()) == list(small.lines())
    assert generate_dataset(months=("2024-01",), records_per_month=300, seed=7) != small
    assert generate_dataset() == generate_dataset()


def test_a_month_does_not_depend_on_the_other_months(default: Dataset) -> None:
    alone = generate_dataset(months=("2024-01",), records_per_month=4000)
    jan = date(2024, 1, 1), date(2024, 1, 31)
    assert [r.id for r in in_days(alone, *jan)] == [r.id for r in in_days(default, *jan)]
    assert in_days(alone, *jan) == in_days(default, *jan)


def test_default_sizes(default: Dataset) -> None:
    per_month = Counter(r.created_at.strftime("%Y-%m") for r in default.records)
    assert per_month["2024-01"] == 4000
    for month in ("2023-11", "2023-12", "2024-02", "2024-03"):
        assert 1500 <= per_month[month] <= 2500
    # the boundary records just outside the generated months
    assert per_month["2023-10"] == 1 and per_month["2024-04"] == 1


def test_records_are_well_formed_and_serialised_exactly(default: Dataset) -> None:
    lines = list(default.lines())
    assert len(lines) == len(default.records) == len(default)
    for line, record in zip(lines, default.records):
        parsed = json.loads(line, parse_float=Decimal)
        assert parsed["id"] == record.id
        assert parsed["amount"] == record.amount  # exact: parsed without float
        assert TIMESTAMP.match(parsed["created_at"])
        assert record_json(record) == line
        keys = list(parsed)
        if record.type == "topup":
            assert keys == ["id", "type", "amount", "currency", "status", "payment_method", "created_at"]
            assert record.amount > 0 and record.payment_method in ("stripe", "paypal", "card")
            assert re.search(r'"amount":\d+\.\d\d,', line)  # e.g. 100.00
        else:
            assert keys == ["id", "type", "amount", "currency", "status", "model", "created_at"]
            assert record.model in MODEL_NAMES
            assert (record.amount < 0) == (record.type == "usage")
    assert len({r.id for r in default.records}) == len(default.records)
    order = [(r.created_at, r.id) for r in default.records]
    assert order == sorted(order, reverse=True)


def test_mix_of_types_statuses_and_prices(default: Dataset) -> None:
    jan = in_days(default, date(2024, 1, 1), date(2024, 1, 31))
    types = Counter(r.type for r in jan)
    assert 2 <= types["topup"] <= 15 and 2 <= types["refund"] <= 10
    statuses = Counter(r.status for r in default.records)
    assert 0.01 < statuses["pending"] / len(default) < 0.03
    assert 0.004 < statuses["failed"] / len(default) < 0.02
    amounts = {r.amount for r in default.records if r.type == "usage"}
    assert Decimal("-0.0025") in amounts and Decimal("-0.0045") in amounts
    assert any(a <= Decimal("-3.20") for a in amounts)
    models = Counter(r.model for r in default.records if r.type == "usage")
    assert models["wavespeed-ai/flux-schnell"] > 10 * models["google/veo3"] > 0
    assert default.balance > 0


def test_every_month_has_its_boundary_records(default: Dataset) -> None:
    stamps = {r.created_at for r in default.records}
    for year, month in ((2023, 11), (2023, 12), (2024, 1), (2024, 2), (2024, 3), (2024, 4)):
        first = datetime(year, month, 1, tzinfo=UTC)
        assert first in stamps
        assert datetime.fromtimestamp(first.timestamp() - 0.001, UTC) in stamps
    line = next(line for line in default.lines() if "2024-01-31T23:59:59.999Z" in line)
    assert json.loads(line)["status"] == "completed"


def test_usage_by_model_is_exact(small: Dataset) -> None:
    usage = small.usage_by_model(date(2024, 1, 1), date(2024, 1, 31))
    completed = [r for r in small.records if r.type == "usage" and r.status == "completed"
                 and r.created_at.month == 1 and r.created_at.year == 2024]
    assert sum(u.requests for u in usage.values()) == len(completed)
    assert sum(u.cost for u in usage.values()) == -sum(r.amount for r in completed)
    assert all(u.cost > 0 for u in usage.values())


def test_a_million_records_are_compact() -> None:
    # not a million here (the suite stays fast): the storage holds one blob, not dicts
    dataset = generate_dataset(months=("2024-01",), records_per_month=20_000)
    assert len(dataset) == 20_002
    assert sum(len(line) + 1 for line in dataset.lines()) == len(dataset._blob)


# -- the billings endpoint -----------------------------------------------------------------


def test_page_size_defaults_to_20_and_is_capped(server: SandboxServer) -> None:
    data = data_of(get(server, BILLINGS))
    assert data["pagination"] == {"page": 1, "page_size": 20, "total": len(server.dataset)}
    assert len(data["items"]) == 20
    data = data_of(get(server, BILLINGS, page_size=500))
    assert data["pagination"]["page_size"] == 100 and len(data["items"]) == 100
    server.faults.page_cap = 30
    data = data_of(get(server, BILLINGS, page_size=50))
    assert data["pagination"]["page_size"] == 30 and len(data["items"]) == 30


def test_pages_join_to_exactly_the_month(default: Dataset) -> None:
    with serve_in_thread() as server:  # the default dataset
        items = walk(server, **JANUARY)
        past_end = data_of(get(server, BILLINGS, page=41, page_size=100, **JANUARY))
    expected = in_days(default, date(2024, 1, 1), date(2024, 1, 31))
    assert len(expected) == 4000
    assert [i["id"] for i in items] == [r.id for r in expected]
    assert len({i["id"] for i in items}) == 4000
    assert [i["amount"] for i in items] == [r.amount for r in expected]
    assert past_end["items"] == [] and past_end["pagination"]["total"] == 4000


def test_type_filter(server: SandboxServer, small: Dataset) -> None:
    for type_ in ("topup", "usage", "refund"):
        items = walk(server, type=type_)
        assert items and {i["type"] for i in items} == {type_}
        assert [i["id"] for i in items] == [r.id for r in small.records if r.type == type_]


def test_date_filter_takes_whole_utc_days(server: SandboxServer, small: Dataset) -> None:
    items = walk(server, start_date="2024-01-31", end_date="2024-01-31")
    assert items[0]["created_at"] == "2024-01-31T23:59:59.999Z"
    assert all(i["created_at"].startswith("2024-01-31") for i in items)
    assert len(items) == len(in_days(small, date(2024, 1, 31), date(2024, 1, 31)))
    items = walk(server, start_date="2024-02-01")
    assert [i["created_at"] for i in items] == ["2024-02-01T00:00:00.000Z"]
    items = walk(server, end_date="2023-12-31")
    assert [i["created_at"] for i in items] == ["2023-12-31T23:59:59.999Z"]
    assert len(walk(server, start_date="2023-12-31", end_date="2024-02-01")) == 302


@pytest.mark.parametrize("params", [
    {"page": "0"}, {"page": "x"}, {"page_size": "-5"}, {"type": "adjustment"},
    {"start_date": "2024-1-5"}, {"end_date": "2024-02-30"},
    {"start_date": "2024-02-01", "end_date": "2024-01-01"},
])
def test_bad_params_answer_400(server: SandboxServer, params: dict[str, str]) -> None:
    response = get(server, BILLINGS, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["data"] is None and body["message"]


def test_key_is_required_and_never_logged(server: SandboxServer) -> None:
    wrong = get(server, BILLINGS, headers={"Authorization": "Bearer not-the-key"})
    missing = get(server, BALANCE, headers=None)
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json() == {"code": 401, "message": "invalid api key", "data": None}
    get(server, BALANCE)
    assert [(r.path, r.status) for r in server.requests] == [(BILLINGS, 401), (BALANCE, 401), (BALANCE, 200)]
    assert DEMO_KEY not in repr(server.requests) and "not-the-key" not in repr(server.requests)


def test_unknown_path_is_404(server: SandboxServer) -> None:
    response = get(server, "/api/v3/account/nothing")
    assert response.status_code == 404 and response.json()["code"] == 404


def test_request_log_keeps_path_query_and_status(server: SandboxServer) -> None:
    get(server, BILLINGS, page=2, page_size=10, type="usage")
    assert server.requests[-1] == (BILLINGS, {"page": "2", "page_size": "10", "type": "usage"}, 200)


def test_connections_are_kept_alive(server: SandboxServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    try:
        for page in (1, 2, 3):
            connection.request("GET", f"{BILLINGS}?page={page}", headers=AUTH)
            response = connection.getresponse()
            assert response.status == 200 and response.version == 11
            assert json.loads(response.read())["data"]["pagination"]["page"] == page
    finally:
        connection.close()
    assert len(server.requests) == 3


def test_closing_does_not_wait_for_idle_connections(small: Dataset) -> None:
    session = requests.Session()
    with serve_in_thread(small) as server:
        session.get(server.url + BALANCE, headers=AUTH, timeout=5)  # the connection stays open
        started = time.monotonic()
    assert time.monotonic() - started < 2
    session.close()


# -- usage and balance ---------------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_usage_matches_the_data_rounded_half_up(default: Dataset) -> None:
    with serve_in_thread() as server:
        data = data_of(get(server, USAGE, **JANUARY))
    exact = default.usage_by_model(date(2024, 1, 1), date(2024, 1, 31))
    assert data["period"] == "2024-01-01..2024-01-31"
    assert {row["model"]: (row["requests"], row["cost"]) for row in data["by_model"]} == {
        model: (u.requests, cents(u.cost)) for model, u in exact.items()
    }
    assert data["total_requests"] == sum(u.requests for u in exact.values())
    assert data["total_cost"] == cents(sum(u.cost for u in exact.values()))
    assert data["total_cost"] > 0
    # recomputed from the records, not from the helper the server shares
    flux = [r for r in in_days(default, date(2024, 1, 1), date(2024, 1, 31))
            if r.type == "usage" and r.status == "completed" and r.model == "wavespeed-ai/flux-schnell"]
    row = next(row for row in data["by_model"] if row["model"] == "wavespeed-ai/flux-schnell")
    assert (row["requests"], row["cost"]) == (len(flux), cents(-sum(r.amount for r in flux)))


def test_usage_skew_and_model_filter(server: SandboxServer, small: Dataset) -> None:
    plain = {row["model"]: row for row in data_of(get(server, USAGE, **JANUARY))["by_model"]}
    server.faults.usage_skew = {"wavespeed-ai/flux-dev": Decimal("0.05"), "acme/unused": Decimal("1.25")}
    skewed = data_of(get(server, USAGE, **JANUARY))
    rows = {row["model"]: row for row in skewed["by_model"]}
    assert rows["wavespeed-ai/flux-dev"]["cost"] == plain["wavespeed-ai/flux-dev"]["cost"] + Decimal("0.05")
    assert rows["acme/unused"] == {"model": "acme/unused", "requests": 0, "cost": Decimal("1.25")}
    others = {m: r for m, r in rows.items() if m not in ("wavespeed-ai/flux-dev", "acme/unused")}
    assert others == {m: r for m, r in plain.items() if m != "wavespeed-ai/flux-dev"}
    only = data_of(get(server, USAGE, model="wavespeed-ai/flux-dev", **JANUARY))
    assert [row["model"] for row in only["by_model"]] == ["wavespeed-ai/flux-dev"]
    assert only["total_cost"] == rows["wavespeed-ai/flux-dev"]["cost"]


def test_balance_is_the_opening_plus_the_exact_sum_of_completed_amounts(server: SandboxServer, small: Dataset) -> None:
    data = data_of(get(server, BALANCE))
    expected = small.opening_balance + sum(r.amount for r in small.records if r.status == "completed")
    assert data == {"balance": expected, "currency": "USD"}
    assert small.opening_balance == Decimal("100.00") and data["balance"] > 0
    server.faults.balance_skew = Decimal("0.05")  # a provider that disagrees with its own records
    assert data_of(get(server, BALANCE))["balance"] == expected + Decimal("0.05")


# -- faults ------------------------------------------------------------------------------


def test_rate_limit_every_nth_request_with_retry_after(server: SandboxServer) -> None:
    server.faults.rate_limit_every = 2
    server.faults.retry_after = "Wed, 21 Oct 2015 07:28:00 GMT"
    statuses = [get(server, BILLINGS) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 200, 429]
    assert statuses[1].headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert statuses[1].json()["code"] == 429
    assert get(server, BALANCE).status_code == 200  # only billings requests are limited


def test_error_every_nth_request_html_or_json(server: SandboxServer) -> None:
    server.faults.error_every = 3
    responses = [get(server, BILLINGS) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 502]
    assert responses[2].headers["Content-Type"].startswith("text/html")
    assert responses[2].text == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    server.faults.error_html = False
    server.faults.error_status = 504
    responses = [get(server, BILLINGS) for _ in range(3)]
    assert responses[2].status_code == 504
    assert responses[2].json() == {"code": 504, "message": "gateway timeout", "data": None}


def test_fail_next_then_success(server: SandboxServer) -> None:
    server.faults.fail_next = 2
    responses = [get(server, BALANCE), get(server, BILLINGS), get(server, BALANCE)]
    assert [r.status_code for r in responses] == [502, 502, 200]
    assert "Bad Gateway" in responses[0].text
    assert server.faults.fail_next == 0


def test_down_answers_503_html_everywhere(server: SandboxServer) -> None:
    server.faults.down = True
    for path in (BILLINGS, USAGE, BALANCE, "/nothing"):
        response = get(server, path)
        assert response.status_code == 503
        assert response.text == "<html><body><h1>503 Service Unavailable</h1></body></html>"
    server.faults.down = False
    assert get(server, BALANCE).status_code == 200


def test_duplicate_across_pages(server: SandboxServer, small: Dataset) -> None:
    server.faults.duplicate_across_pages = True
    pages = [data_of(get(server, BILLINGS, page=p, page_size=100))["items"] for p in (1, 2, 3, 4)]
    assert pages[1][0] == pages[0][-1] and pages[2][0] == pages[1][-1] and pages[3][0] == pages[2][-1]
    assert data_of(get(server, BILLINGS, page=2, page_size=100))["pagination"]["total"] == len(small)
    ids = [i["id"] for page in pages for i in page]
    assert len(ids) - len(set(ids)) == 3
    assert list(dict.fromkeys(ids)) == [r.id for r in small.records]  # nothing lost
    assert data_of(get(server, BILLINGS, page=5, page_size=100))["items"] == []


def test_ignore_page_serves_page_one_again(server: SandboxServer) -> None:
    first = data_of(get(server, BILLINGS, page=1, page_size=50))
    server.faults.ignore_page = True
    third = data_of(get(server, BILLINGS, page=3, page_size=50))
    assert third["items"] == first["items"] and third["pagination"]["page"] == 3


def test_malformed_records(server: SandboxServer, small: Dataset) -> None:
    a, b, c = (r.id for r in small.records[:3])
    server.faults.malformed = {a: "amount", b: "created_at", c: "id"}
    items = data_of(get(server, BILLINGS, page_size=5))["items"]
    assert items[0]["amount"] == "abc"
    assert items[1]["created_at"] == "not-a-date" and items[1]["id"] == b
    assert "id" not in items[2] and items[2]["created_at"] == record_json(small.records[2])[-26:-2]
    assert [i["id"] for i in items[3:]] == [r.id for r in small.records[3:5]]


def test_wrong_total(server: SandboxServer, small: Dataset) -> None:
    server.faults.wrong_total = 42
    data = data_of(get(server, BILLINGS, page_size=100))
    assert data["pagination"]["total"] == 42 and len(data["items"]) == 100


def test_latency(server: SandboxServer) -> None:
    server.faults.latency_ms = 60
    started = time.monotonic()
    assert get(server, BALANCE).status_code == 200
    assert time.monotonic() - started >= 0.06


def test_faults_given_at_start(small: Dataset) -> None:
    with serve_in_thread(small, Faults(page_cap=7)) as server:
        data = data_of(get(server, BILLINGS, page_size=100))
    assert data["pagination"]["page_size"] == 7
    assert [i["id"] for i in data["items"]] == [r.id for r in small.records[:7]]
