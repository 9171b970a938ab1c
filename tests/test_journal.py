"""The journal: booking by sign, rounding once per entry, numbering, warnings and the bug guard."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.books import journal, numbering
from exporter.books.carry import Carry
from exporter.books.mapping import AccountMapping
from exporter.books.mapping_toml import load_mapping as load_accounts
from exporter.errors import ConfigError, ExportError
from exporter.models import JournalEntry, JournalLine
from exporter.money import MICROS_PER_CENT, format_micros, round_to_cents
from exporter.period import month_window, range_window
from factories import make_report, record, topup_record, usage_record


def build_journal(report, mapping, granularity="monthly"):
    """(entries, warnings) of the report's records booked with ``mapping``."""
    built = journal.build_journal(report.summaries.transactions, report.context.window, mapping, granularity)
    return list(built.entries), list(built.warnings)

SAMPLE = Path(__file__).parent / "golden" / "accounts_sample.toml"
MAPPING = load_accounts(SAMPLE)
PREPAID = MAPPING.prepaid


def spread(model: str, total_micros: int, count: int, **fields) -> list[dict]:
    """``count`` usage records of ``model`` adding up exactly to ``total_micros``."""
    each = total_micros // count
    amounts = [each] * (count - 1) + [total_micros - each * (count - 1)]
    return [usage_record(model, format_micros(micros, 0), **fields) for micros in amounts]


def lines_of(entry: JournalEntry) -> list[tuple[str, int, str]]:
    return [(line.account, line.amount_cents, line.klass) for line in entry.lines]


def prepaid_cents(entries: list[JournalEntry], accounts: AccountMapping = MAPPING) -> int:
    return sum(line.amount_cents for entry in entries for line in entry.lines if line.account == accounts.prepaid)


def test_the_worked_example_books_as_documented():
    # docs/booking.md, "Worked example": 4 model classes, exact 17.020 -> 10.01 / 5.00 / 2.00 / 0.01
    raws = [
        topup_record("100.00", payment_method="card", created_at="2024-01-03T09:00:00Z", id="tu_1001"),
        topup_record("50.00", payment_method="card", status="failed", created_at="2024-01-10T09:00:00Z"),
        topup_record("25.00", payment_method="card", status="pending", created_at="2024-01-31T23:50:00Z"),
        record("refund", "-20.00", model=None, payment_method="card", created_at="2024-01-20T09:00:00Z", id="rf_2001"),
        *spread("model-a", -10_004_000, 812),
        *spread("model-b", -5_004_000, 604),
        *spread("model-c", -2_004_000, 491),
        *spread("model-d", -8_000, 5),
    ]
    entries, warnings = build_journal(make_report(raws), MAPPING)

    assert warnings == []
    assert [e.number for e in entries] == ["WS2401T001", "WS2401P001", "WS2401U"]
    topup, payout, usage = entries
    assert (topup.date, topup.role, topup.source_ids) == (date(2024, 1, 3), "topup", ("tu_1001",))
    assert lines_of(topup) == [(PREPAID, 10000, ""), ("Company Visa", -10000, "")]
    assert "tu_1001" in topup.memo and "card" in topup.memo
    assert lines_of(payout) == [("Company Visa", 2000, ""), (PREPAID, -2000, "")]
    assert (usage.date, usage.role, usage.currency) == (date(2024, 1, 31), "usage", "USD")
    assert lines_of(usage) == [
        ("AI API Usage", 1001, "AI Models:model-a"),
        ("AI API Usage", 500, "AI Models:model-b"),
        ("AI API Usage", 200, "AI Models:model-c"),
        ("AI API Usage", 1, "AI Models:model-d"),
        (PREPAID, -1702, ""),
    ]
    assert usage.lines[0].memo == "Usage 2024-01 model-a (812 tasks, UTC)"
    assert usage.lines[-1].memo == "Usage 2024-01 total (1912 tasks, UTC)"
    assert prepaid_cents(entries) == 6298  # 100.00 - 20.00 - 17.02, as in the worked example


def test_daily_granularity_gives_one_usage_entry_per_local_day():
    raws = [
        usage_record("model-a", "-0.006", created_at="2024-01-15T10:00:00Z"),
        usage_record("model-a", "-0.006", created_at="2024-01-15T23:30:00Z"),  # 16th in Berlin
        usage_record("model-b", "-1.00", created_at="2024-01-16T10:00:00Z"),
        usage_record("model-a", "0.006", created_at="2024-01-16T11:00:00Z"),  # a refunded task
    ]

    report = make_report(raws, window=month_window("2024-01", "Europe/Berlin"))
    entries, _ = build_journal(report, MAPPING, "daily")
    # cumulative rounding: the 15th posts 0.006 as 0.01; on the 16th model-a is owed 0.002 more and
    # then 0.006 back, so its running total (0.006) stays at the cent already posted: no line, no
    # entry for the refunded task, and nothing lost
    assert [(e.number, e.date, e.role) for e in entries] == [
        ("WS2401U15", date(2024, 1, 15), "usage"),
        ("WS2401U16", date(2024, 1, 16), "usage"),
    ]
    assert lines_of(entries[0]) == [("AI API Usage", 1, "AI Models:model-a"), (PREPAID, -1, "")]
    assert lines_of(entries[1]) == [("AI API Usage", 100, "AI Models:model-b"), (PREPAID, -100, "")]
    assert entries[1].lines[0].memo == "Usage 2024-01-16 model-b (1 task, Europe/Berlin)"


def test_credits_back_with_a_model_are_summed_exactly_not_rounded_one_by_one():
    # 0.0025 rounds to 0.00 on its own; three of them are 0.0075 -> 0.01
    raws = [usage_record("model-a", "0.0025", id=f"rf_{i}") for i in range(3)]
    raws.append(record("refund", "0.004", model="model-b", id="rf_b"))
    raws.append(record("refund", "5.00", model="google/veo3", id="rf_v"))
    entries, warnings = build_journal(make_report(raws), MAPPING)
    (credit,) = entries
    assert (credit.number, credit.role) == ("WS2401R", "task_refund")
    assert set(credit.source_ids) == {"rf_0", "rf_1", "rf_2", "rf_b", "rf_v"}
    # exact 5.0115 -> 5.01; the spare cent goes to model-a's 0.0075, model-b's 0.004 gets no line
    assert lines_of(credit) == [
        (PREPAID, 501, ""),
        ("AI API Usage", -1, "AI Models:model-a"),
        ("Video Generation", -500, "AI Models:Google Video"),
    ]
    assert warnings == []


def test_a_sub_cent_credit_without_a_model_is_not_posted_but_reported():
    raws = [record("refund", "0.004", model=None, id="rf_tiny"), record("refund", "1.50", model=None, id="rf_big")]
    entries, warnings = build_journal(make_report(raws), MAPPING)
    (entry,) = entries
    assert (entry.number, entry.source_ids) == ("WS2401C001", ("rf_big",))
    assert lines_of(entry) == [(PREPAID, 150, ""), ("AI API Usage", -150, "")]
    (warning,) = warnings
    assert "rf_tiny" in warning and "0.00" in warning and "0.004 USD" in warning


def test_sub_cent_singles_round_through_the_prepaid_running_total():
    """Rounded one by one, two credits of 0.004 would post nothing against 0.008 exact: the prepaid
    account would drift past half a cent (docs/booking.md, "Rounding")."""
    raws = [record("refund", "0.004", model=None, id=f"rf_{n}") for n in (1, 2)] + [topup_record("25.00", id="tp")]
    entries, warnings = build_journal(make_report(raws), MAPPING)
    assert prepaid_cents(entries) == 2501  # round(25.008), not 2500
    assert [lines_of(e)[0][1] for e in sorted(entries, key=lambda e: e.number)] == [1, 2500]  # the top-up posts itself
    assert any("rf_1" in w for w in warnings)  # the first posted nothing by itself: reported


def test_suspense_takes_what_the_rules_cannot_place():
    raws = [
        topup_record("-5.00", id="tu_neg", created_at="2024-01-02T00:00:00Z"),
        record("chargeback", "-2.50", model=None, id="cb_1", created_at="2024-01-03T00:00:00Z"),
    ]
    entries, warnings = build_journal(make_report(raws), MAPPING)
    assert [e.number for e in entries] == ["WS2401S001", "WS2401S002"]
    assert {e.role for e in entries} == {"suspense"}
    assert lines_of(entries[0]) == [("Ask My Accountant", 500, ""), (PREPAID, -500, "")]
    (warning,) = warnings
    assert "tu_neg" in warning and "cb_1" in warning and "Ask My Accountant" in warning


def test_unmapped_models_are_listed_once():
    raws = [
        usage_record("new/model", "-1.00", created_at="2024-01-02T00:00:00Z"),
        usage_record("new/model", "-1.00", created_at="2024-01-03T00:00:00Z"),
        usage_record("other/model", "0.50", created_at="2024-01-03T00:00:00Z"),
        usage_record("model-a", "-1.00"),
    ]
    _, warnings = build_journal(make_report(raws), MAPPING, "daily")
    (warning,) = warnings
    assert warning.count("new/model") == 1 and "other/model" in warning and "model-a" not in warning


def test_without_model_rules_every_model_goes_to_usage_silently():
    raws = [usage_record("new/model", "-1.00"), usage_record("other/model", "-2.00")]
    default = load_accounts()  # the shipped template: [usage.models] has no rules
    assert default.rules == ()
    entries, warnings = build_journal(make_report(raws), default)
    assert warnings == []
    (usage,) = entries
    assert [(line.account, line.amount_cents) for line in usage.lines] == [(default.usage, 300), (default.prepaid, -300)]


def test_only_completed_non_zero_records_are_posted():
    raws = [
        usage_record("model-a", "-1.00", status="failed"),
        usage_record("model-a", "-1.00", status="pending"),
        usage_record("model-a", "0"),
        topup_record("0.00"),
    ]
    assert build_journal(make_report(raws), MAPPING) == ([], [])


def test_usage_under_half_a_cent_is_carried_to_the_next_period_not_lost():
    january = journal.build_journal(make_report([usage_record("model-a", "-0.004")]).summaries.transactions,
                                    month_window("2024-01"), MAPPING)
    assert january.entries == () and january.warnings == ()
    key = ("AI API Usage", "AI Models:model-a", "USD")
    assert (january.carry.counters[key].exact, january.carry.counters[key].posted) == (4_000, 0)
    february = journal.build_journal(
        make_report([usage_record("model-a", "-0.002", created_at="2024-02-10T00:00:00Z")],
                    window=month_window("2024-02")).summaries.transactions,
        month_window("2024-02"), MAPPING, carry=january.carry)
    (entry,) = february.entries  # 0.004 + 0.002 = 0.006 -> 0.01, posted when the total reaches it
    assert lines_of(entry) == [("AI API Usage", 1, "AI Models:model-a"), (PREPAID, -1, "")]


def test_currencies_are_never_mixed():
    raws = [
        usage_record("model-a", "-1.004", currency="USD"),
        usage_record("model-a", "-2.004", currency="EUR"),
        topup_record("10.00", currency="EUR"),
        topup_record("20.00", currency="USD"),
    ]
    entries, _ = build_journal(make_report(raws), MAPPING)
    by_number = {e.number: e for e in entries}
    assert len(by_number) == len(entries) == 4
    assert by_number["WS2401U1"].currency == "EUR" and by_number["WS2401U1"].lines[-1].amount_cents == -200
    assert by_number["WS2401U2"].currency == "USD" and by_number["WS2401U2"].lines[-1].amount_cents == -100
    assert sorted((e.currency, e.lines[0].amount_cents) for e in entries if e.role == "topup") == [("EUR", 1000), ("USD", 2000)]


def test_postpaid_usage_is_owed_to_the_vendor(tmp_path):
    text = SAMPLE.read_text().replace("postpaid = false", "postpaid = true")
    path = tmp_path / "postpaid.toml"
    path.write_text(text)
    accounts = load_accounts(path)
    raws = [usage_record("model-a", "-3.00"), usage_record("model-a", "0.50"), topup_record("10.00")]
    entries, _ = build_journal(make_report(raws), accounts)
    credit, topup, usage = sorted(entries, key=lambda e: e.role)
    assert usage.lines[-1] == JournalLine("Accounts Payable", -300, usage.lines[-1].memo, "", "WaveSpeedAI")
    assert credit.lines[0].account == "Accounts Payable" and credit.lines[0].name == "WaveSpeedAI"
    assert lines_of(topup)[0] == (PREPAID, 1000, "")
    assert all(line.name == "" for e in entries for line in e.lines if line.account != "Accounts Payable")


def test_range_windows_number_from_their_first_day():
    window = range_window("2024-01-05", "2024-02-10")
    raws = [
        usage_record("model-a", "-1.00", created_at="2024-01-05T10:00:00Z"),
        usage_record("model-a", "-1.00", created_at="2024-02-10T10:00:00Z"),
        topup_record("5.00", created_at="2024-01-06T10:00:00Z"),
    ]
    monthly, _ = build_journal(make_report(raws, window=window), MAPPING)
    # monthly granularity over a range: one usage entry per calendar month, numbered by its offset
    assert [(e.number, e.date) for e in monthly] == [
        ("W240105T001", date(2024, 1, 6)), ("W240105U01", date(2024, 1, 31)), ("W240105U02", date(2024, 2, 10)),
    ]
    assert monthly[1].lines[0].memo.startswith("Usage 2024-01-05 to 2024-01-31 ")
    assert monthly[2].lines[0].memo.startswith("Usage 2024-02-01 to 2024-02-10 ")
    daily, _ = build_journal(make_report(raws, window=window), MAPPING, "daily")
    assert [e.number for e in daily] == ["W240105U01", "W240105T001", "W240105U37"]


def test_a_quarter_posts_one_usage_entry_per_month_numbered_within_eleven_characters():
    from exporter.period import quarter_window

    window = quarter_window("2024-Q1")
    raws = [
        usage_record(model, "-1.00", currency=currency, created_at=f"2024-{month:02d}-10T10:00:00Z")
        for month in (1, 2, 3) for model in ("model-a", "new/model") for currency in ("EUR", "USD")
    ] + [topup_record("5.00", created_at="2024-02-06T10:00:00Z")]
    monthly, _ = build_journal(make_report(raws, window=window), MAPPING)
    usage = [(e.number, e.date, e.currency) for e in monthly if e.role == "usage"]
    assert usage == [
        ("WS24Q1U011", date(2024, 1, 31), "EUR"), ("WS24Q1U012", date(2024, 1, 31), "USD"),
        ("WS24Q1U021", date(2024, 2, 29), "EUR"), ("WS24Q1U022", date(2024, 2, 29), "USD"),
        ("WS24Q1U031", date(2024, 3, 31), "EUR"), ("WS24Q1U032", date(2024, 3, 31), "USD"),
    ]
    assert [e.number for e in monthly if e.role == "topup"] == ["WS24Q1T001"]
    assert all(e.lines[0].memo.startswith(f"Usage 2024-{e.date.month:02d} ") for e in monthly if e.role == "usage")
    daily, _ = build_journal(make_report(raws, window=window), MAPPING, "daily")
    numbers = [e.number for e in daily if e.role == "usage"]
    assert numbers[:2] == ["WS24Q1U101", "WS24Q1U102"]  # day 10 of the quarter, then the currency
    assert max(map(len, numbers)) <= 11 and len(set(numbers)) == len(numbers)
    assert numbering.journal_prefix(quarter_window("2023-Q4")) == "WS23Q4"


def test_more_than_999_of_a_kind_still_fit_eleven_characters():
    window = range_window("2024-01-01", "2024-01-31")  # the longest prefix: W240101 leaves 3 characters
    raws = [topup_record("1.00", created_at=f"2024-01-{1 + i % 28:02d}T00:00:00Z") for i in range(1001)]
    entries, _ = build_journal(make_report(raws, window=window), MAPPING)
    numbers = [e.number for e in entries]
    assert len(set(numbers)) == 1001 and max(map(len, numbers)) <= 11
    for count, room in [(999, 4), (1000, 4), (10_000, 4), (1000, 3), (46_655, 3)]:
        codes = numbering._sequence(count, room)
        assert len(set(codes)) == count and {len(c) for c in codes} == {min(room, max(3, len(str(count))))}
    with pytest.raises(ExportError):
        numbering._sequence(46_656, 3)


def test_a_bad_granularity_is_a_config_error():
    with pytest.raises(ConfigError):
        build_journal(make_report([]), MAPPING, "weekly")  # type: ignore[arg-type]


def test_an_unbalanced_entry_is_caught_as_a_bug():
    report = make_report([topup_record("1.00")])
    bad = JournalEntry("WS2401T001", date(2024, 1, 15), "USD", "x", "topup",
                       (JournalLine(PREPAID, 100, "x"), JournalLine("Stripe Clearing", -99, "x")))
    with pytest.raises(ExportError, match="WS2401T001 does not balance by 0.01"):
        journal._check_ties([bad], report.summaries.transactions, None, MAPPING, 1)


def test_a_journal_that_loses_money_is_caught_as_a_bug():
    report = make_report([topup_record("1.00")])
    short = JournalEntry("WS2401T001", date(2024, 1, 15), "USD", "x", "topup",
                         (JournalLine(PREPAID, 97, "x"), JournalLine("Stripe Clearing", -97, "x")))
    with pytest.raises(ExportError, match="credit balance"):
        journal._check_ties([short], report.summaries.transactions, None, MAPPING, 1)


# -- properties --------------------------------------------------------------------------------

MODELS = ["model-a", "model-b", "google/veo3", "google/imagen", "new/x"]
RULES = [
    "",
    '{ class = "Models:C1" }',
    '{ account = "Usage:Video", type = "EXP" }',
    '{ account = "Usage:Image", type = "EXP", class = "Models:C2" }',
]
PATTERNS = ["model-a", "model-*", "google/*", "google/veo3", "new/x"]


def mapping_for(choices: list[int]) -> AccountMapping:
    rules = "\n".join(f'"{p}" = {RULES[c]}' for p, c in zip(PATTERNS, choices) if c)
    text = SAMPLE.read_text().split("[usage.models]")[0] + "[usage.models]\n" + rules + "\n"
    text += SAMPLE.read_text().split("[payment_methods]")[1].join(["[payment_methods]", ""])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.toml"
        path.write_text(text)
        return load_accounts(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    usage=st.lists(st.tuples(st.sampled_from(MODELS), st.integers(-5_000_000, -1)), min_size=1, max_size=30),
    credits=st.lists(st.tuples(st.sampled_from(MODELS), st.integers(1, 5_000_000)), max_size=5),
    topups=st.lists(st.integers(1, 500_000).map(lambda cents: cents * MICROS_PER_CENT), max_size=3),
    choices=st.lists(st.integers(0, len(RULES) - 1), min_size=len(PATTERNS), max_size=len(PATTERNS)),
)
def test_property_entries_balance_and_lines_stay_within_a_cent(usage, credits, topups, choices):
    accounts = mapping_for(choices)
    raws = [usage_record(m, format_micros(v, 0)) for m, v in usage]
    raws += [usage_record(m, format_micros(v, 0)) for m, v in credits]
    raws += [topup_record(format_micros(v)) for v in topups]
    entries, _ = build_journal(make_report(raws), accounts)

    assert all(e.balance_cents == 0 for e in entries)
    assert all(line.amount_cents != 0 for e in entries for line in e.lines)
    # usage and refunded tasks share the running totals: the prepaid side is their net, rounded once
    summaries = [e for e in entries if e.role in ("usage", "task_refund")]
    net = sum(v for _, v in usage) + sum(v for _, v in credits)
    assert prepaid_cents(summaries, accounts) == round_to_cents(net)
    exact: dict[tuple[str, str], int] = defaultdict(int)
    for model, micros in [*usage, *credits]:
        account, klass, _ = accounts.expense_for(model)
        exact[(account, klass)] -= micros  # expense side, debit positive
    posted: dict[tuple[str, str], int] = defaultdict(int)
    for entry in summaries:
        for line in entry.lines:
            if line.account != accounts.prepaid:
                posted[(line.account, line.klass)] += line.amount_cents
    for key, micros in exact.items():  # every expense key within a cent of its exact total
        assert abs(posted.get(key, 0) * MICROS_PER_CENT - micros) < MICROS_PER_CENT
    if len(exact) == 1:  # one key: it is the prepaid side's mirror, rounded exactly too
        (micros,) = exact.values()
        assert sum(posted.values()) == round_to_cents(micros)

    booked_topups = sorted(e.lines[0].amount_cents for e in entries if e.role == "topup")
    assert booked_topups == sorted(round_to_cents(v) for v in topups)
    assert all(e.lines[0].account == accounts.prepaid for e in entries if e.role == "topup")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    periods=st.lists(
        st.lists(st.tuples(st.sampled_from(MODELS), st.integers(1, 28), st.integers(-60_000, 20_000).filter(bool)),
                 max_size=12),
        min_size=1, max_size=4,
    ),
    daily=st.booleans(),
    choices=st.lists(st.integers(0, len(RULES) - 1), min_size=len(PATTERNS), max_size=len(PATTERNS)),
)
def test_property_rounding_never_drifts_across_periods_and_days(periods, daily, choices):
    """docs/booking.md, "Rounding": over any sequence of months (and days), what is posted on the
    prepaid side equals the exact running total rounded, and each expense key stays within a cent."""
    accounts = mapping_for(choices)
    carry = None
    entries: list[JournalEntry] = []
    running = 0
    exact: dict[tuple[str, str], int] = defaultdict(int)
    for n, records in enumerate(periods):
        window = month_window(f"2024-{n + 1:02d}")
        raws = [usage_record(m, format_micros(v, 0), created_at=f"2024-{n + 1:02d}-{day:02d}T12:00:00Z")
                for m, day, v in records]
        built = journal.build_journal(make_report(raws, window=window, mapping=accounts).summaries.transactions, window,
                                      accounts, "daily" if daily else "monthly", carry=carry)
        carry = built.carry
        entries += built.entries
        running += sum(v for _, _, v in records)
        for model, _, micros in records:
            account, klass, _ = accounts.expense_for(model)
            exact[(account, klass)] -= micros
        assert all(e.balance_cents == 0 for e in built.entries)
        assert prepaid_cents(entries, accounts) == round_to_cents(running)  # at every period end
    posted: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        for line in entry.lines:
            if line.account != accounts.prepaid:
                posted[(line.account, line.klass)] += line.amount_cents
    for key, micros in exact.items():
        assert abs(posted.get(key, 0) * MICROS_PER_CENT - micros) < MICROS_PER_CENT


# -- the summaries' grouping -------------------------------------------------------------------

KEY_RULES = '\n[[keys]]\nname = "prod-app"\nclass = "Projects:Production"\n[[keys]]\nname = "client-*"\nclass = "Clients:Other"\n'
KEY_NAMES = [None, "prod-app", "client-acme", "client-b", "zz"]


def with_key_rules() -> AccountMapping:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keys.toml"
        path.write_text(SAMPLE.read_text() + KEY_RULES)
        return load_accounts(path)


KEYED = with_key_rules()


def described(groups: dict) -> list:
    """A summary's groups with everything they hold, in their order."""
    return [(key, group.micros, group.count, list(group.models.items())) for key, group in groups.items()]


def reference_summaries(frame, window, accounts, granularity) -> list[tuple]:
    """The summaries record by record in plain Python: per (role, currency, period) in text then
    period order, the (model, key) lines in text order, counted and summed, and the ids."""
    builder = journal._Builder(window, accounts, granularity, Carry())
    rank = {name: {value: i for i, value in enumerate(sorted(frame[name].cat.categories))} for name in ("currency", "model", "api_key_name")}
    found: dict = {}
    for row in frame.itertuples(index=False):
        if row.status != "completed" or row.amount_micros == 0 or row.role not in ("usage", "task_refund"):
            continue
        start = row.date.date() if granularity == "daily" else row.date.date().replace(day=1)
        lines, ids = found.setdefault((row.role, row.currency, start), ({}, []))
        ids.append(row.id)
        key = row.api_key_name if accounts.keys else ""
        line = lines.setdefault((row.model, key), [0, 0])
        line[0] += 1
        line[1] += row.amount_micros
    expected = []
    for (role, currency, start), (lines, ids) in sorted(
            found.items(), key=lambda item: (item[0][0] != "usage", rank["currency"][item[0][1]], item[0][2])):
        ordered = sorted(lines.items(), key=lambda item: (rank["model"][item[0][0]], rank["api_key_name"].get(item[0][1], 0)))
        groups = builder.groups((model, key, count, micros) for (model, key), (count, micros) in ordered)
        label, day, number_part = builder.period_of(start)
        expected.append((role, currency, day, label, number_part, described(groups), tuple(ids) if role == "task_refund" else ()))
    return expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(st.sampled_from(["USD", "EUR", "GBP"]), st.sampled_from([*MODELS, None]),
                               st.sampled_from(KEY_NAMES), st.integers(0, 52),
                               st.integers(-3_000_000, 3_000_000).filter(bool)), max_size=40),
    daily=st.booleans(),
    keyed=st.booleans(),
    months=st.booleans(),
    reordered=st.booleans(),
)
def test_property_summaries_group_as_record_by_record(records, daily, keyed, months, reordered):
    """The one grouped pass over the frame's codes (no copy of its rows) makes the summaries a
    plain per-record accumulation makes: same order (text order, even with categories out of
    it), lines, counts, sums and refunded tasks' ids."""
    window = range_window("2023-12-20", "2024-02-10") if months else month_window("2024-01")
    days = [date.fromordinal(window.first_day.toordinal() + offset % ((window.last_day - window.first_day).days + 1))
            for _, _, _, offset, _ in records]
    raws = [record("usage" if micros < 0 else "refund", format_micros(micros, 0), model=model, currency=currency,
                   api_key_name=key, created_at=f"{day}T12:00:00Z")
            for (currency, model, key, _, micros), day in zip(records, days)]
    frame = make_report(raws, window=window).summaries.transactions.copy()
    if reordered:
        for name in ("currency", "model", "api_key_name"):
            frame[name] = frame[name].cat.reorder_categories(frame[name].cat.categories[::-1])
    accounts, granularity = (KEYED if keyed else MAPPING), ("daily" if daily else "monthly")

    builder = journal._Builder(window, accounts, granularity, Carry())
    done = ((frame["status"] == "completed") & (frame["amount_micros"] != 0)).to_numpy()
    for role in ("usage", "task_refund"):
        builder.summaries(frame, builder.summary_keys(frame), done & (frame["role"] == role).to_numpy(), role)
    made = [(s.role, s.currency, s.day, s.label, s.number_part, described(s.groups), s.source_ids) for s in builder.pending]

    assert made == reference_summaries(frame, window, accounts, granularity)
    assert all(type(s.currency) is str and all(type(i) is str for i in s.source_ids) for s in builder.pending)
    assert all(type(model) is str for s in builder.pending for group in s.groups.values() for model in group.models)
