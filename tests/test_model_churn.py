"""Model churn: months, quarters and ranges exported, closed and reopened in any order while the
provider's history moves (models appearing and vanishing, idle months, late changes to closed
months), through the real CLI and books against the sandbox on 127.0.0.1.

After every step (docs/booking.md, "One booking path", "Rounding", "Closed periods and late
changes", "What the books refuse"): exit 0 or 2 only, never a traceback; a refusal leaves the
books and every pack byte for byte as they were; every pack foots; every entry balances in IIF,
the QuickBooks Online journal, Beancount, Xero and the workbook, and all move the prepaid account
by the same cents; over the closed periods the prepaid account's postings are the exact running
balance rounded (never more than half a cent off); no record is booked in two periods; `books
check` passes.

The CI run draws the same 20 examples of 8 steps every time. Run longer with the environment: ``CHURN_EXAMPLES=500
CHURN_STEPS=12`` (``CHURN_NO_SHRINK=1`` reports the first failure as found: shrinking a long
machine takes minutes).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from beancount import loader
from beancount.core import data as bean
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from factories import booked_ids, booked_twice
from exporter.books.mapping_toml import load_mapping
from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from exporter.sandbox.data import Record, dataset_from_records
from exporter.sandbox.revisions import revise
from test_one_booking_path import (
    PREPAID,
    by_currency,
    cents,
    csv_rows,
    iif_nets,
    journal_sheet_nets,
    non_zero,
    qbo_bank_nets,
    qbo_journal_nets,
)
from test_writers_xero import journals_of, read_rows

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = ROOT / "templates" / "accounts_xero.toml"
MAPPING = load_mapping(ACCOUNTS)
assert MAPPING.prepaid == PREPAID  # the account test_one_booking_path's readers follow
PREPAID_CODE = MAPPING.accounts[MAPPING.prepaid].code
PREPAID_BEANCOUNT = "Assets:Prepaid-Expenses:WaveSpeedAI-Credits"
OPENING_BEANCOUNT = "Equity:Opening-Balances"
FORMATS = "csv,xlsx,quickbooks,beancount,xero"
CENT = Decimal("0.01")
HALF_CENT = Decimal("0.005")

MONTHS = [f"2024-{m:02d}" for m in range(1, 7)]
# a handful of models across the mapping's rules (wavespeed-ai/*, google/*, the [usage] default)
MODELS = ["wavespeed-ai/flux-dev", "wavespeed-ai/flux-schnell", "google/imagen4", "google/nano-banana",
          "openai/gpt-image-1"]
NEW_MODELS = ["bytedance/seedream-v3", "kwaivgi/kling-v2.1"]  # first seen in a late record


@dataclass(frozen=True)
class Window:
    """A period as the CLI takes it, its pack label and its UTC instants [start, end)."""

    args: tuple[str, ...]
    label: str
    start: date
    end: date  # exclusive

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end


def _gaps(spans: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The days between the first start and the last end that no span covers."""
    gaps, covered_to = [], None
    for first, last in sorted(spans):
        if covered_to is not None and first > covered_to:
            gaps.append((covered_to, first))
        covered_to = last if covered_to is None else max(covered_to, last)
    return gaps


def _month(label: str) -> Window:
    first = date.fromisoformat(label + "-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Window(("--period", label), label, first, following)


def _range(first: str, last: str) -> Window:
    return Window(("--start", first, "--end", last), f"{first}_{last}", date.fromisoformat(first),
                  date.fromisoformat(last) + timedelta(days=1))


WINDOWS = [
    *(_month(label) for label in MONTHS),
    Window(("--period", "2024-Q1"), "2024-Q1", date(2024, 1, 1), date(2024, 4, 1)),
    Window(("--period", "2024-Q2"), "2024-Q2", date(2024, 4, 1), date(2024, 7, 1)),
    _range("2024-01-15", "2024-02-10"),
    _range("2024-02-01", "2024-03-31"),
    _range("2024-03-10", "2024-05-20"),
    _range("2024-05-01", "2024-06-30"),
]


def _at(month: str, rng: random.Random) -> datetime:
    """A moment in ``month``; now and then its first or last millisecond (the window's edges)."""
    start = datetime.fromisoformat(month + "-01T00:00:00+00:00")
    edge = rng.random()
    if edge < 0.05:
        return start
    following = _month(month).end
    end = datetime(following.year, following.month, following.day, tzinfo=timezone.utc)
    if edge < 0.1:
        return end - timedelta(milliseconds=1)
    return start + timedelta(milliseconds=rng.randrange((end - start) // timedelta(milliseconds=1)))


def _usage_micros(rng: random.Random) -> int:
    """Mostly sub-cent and not-whole-cent prices (the rounding's hard cases), some larger tasks."""
    return rng.choice([2_500, 3_000, 5_000, 12_500, 15_000, 60_000, rng.randint(1, 400_000), rng.randint(1, 3_000_000)])


def _status(rng: random.Random) -> str:
    return rng.choices(["completed", "pending", "failed"], weights=[8, 1, 1])[0]


def _records(plan: list[tuple[frozenset[str], bool]], seed: int) -> list[Record]:
    """A few dozen records a month: the plan says which models are used and whether a top-up is
    made; a month with neither is idle."""
    rng = random.Random(seed)
    records: list[Record] = []
    for month, (models, topup) in zip(MONTHS, plan):
        n = 0
        for model in sorted(models):
            for _ in range(rng.randint(1, 8)):
                n += 1
                rid = f"txn_{month.replace('-', '')}{n:04d}"
                micros = _usage_micros(rng)
                if rng.random() < 0.08:  # a refunded task: positive, names the model
                    records.append(Record(rid, "refund", Decimal(micros).scaleb(-6), "USD", _status(rng),
                                          _at(month, rng), model=model))
                else:
                    records.append(Record(rid, "usage", -Decimal(micros).scaleb(-6), "USD", _status(rng),
                                          _at(month, rng), model=model))
        if topup:
            n += 1
            records.append(Record(f"top_{month.replace('-', '')}{n:04d}", "topup",
                                  Decimal(rng.randint(500, 5_000)).scaleb(-2), "USD", _status(rng), _at(month, rng),
                                  payment_method=rng.choice(["stripe", "paypal", "card"])))
    return records


PLANS = st.lists(st.tuples(st.frozensets(st.sampled_from(MODELS), max_size=3), st.booleans()),
                 min_size=len(MONTHS), max_size=len(MONTHS))

# --- reading a pack back ------------------------------------------------------------------------


def _decimal(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _foots(pack: Path) -> None:
    """transactions.csv ties to manifest.json's totals per currency and type; by_model.csv and
    by_day.csv tie to transactions.csv's completed records (the rules of tests/test_footing.py,
    read from the files)."""
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    done = [r for r in csv_rows(pack / "transactions.csv") if r["status"] == "completed"]
    totals: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal(0)])
    for r in done:
        totals[(r["currency"], r["type"])][0] += 1
        totals[(r["currency"], r["type"])][1] += Decimal(r["amount"])
    assert {(t["currency"], t["type"]): [t["count"], Decimal(t["amount"])] for t in manifest["totals"]} == dict(totals)

    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    with_model: dict[str, Decimal] = defaultdict(Decimal)
    for r in done:
        per_currency[r["currency"]] += Decimal(r["amount"])
        if r["model"]:
            with_model[r["currency"]] += Decimal(r["amount"])

    by_day_net: dict[str, Decimal] = defaultdict(Decimal)
    by_day_count: dict[str, int] = defaultdict(int)
    for r in csv_rows(pack / "by_day.csv"):
        parts = sum(Decimal(r[k]) for k in ("topups", "usage", "refunds", "other"))
        assert parts == Decimal(r["net"]), r
        by_day_net[r["currency"]] += Decimal(r["net"])
        by_day_count[r["currency"]] += int(r["count"])
    assert non_zero_d(by_day_net) == non_zero_d(per_currency)
    assert dict(by_day_count) == {c: sum(1 for r in done if r["currency"] == c) for c in by_day_count}
    assert sum(by_day_count.values()) == len(done)

    by_model_net: dict[str, Decimal] = defaultdict(Decimal)
    for r in csv_rows(pack / "by_model.csv"):
        assert Decimal(r["amount"]) + Decimal(r["refunds"]) == Decimal(r["net"]), r
        assert Decimal(r["amount"]) <= 0 <= Decimal(r["refunds"]), r
        by_model_net[r["currency"]] += Decimal(r["net"])
    assert non_zero_d(by_model_net) == non_zero_d(with_model)


def non_zero_d(values: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v for k, v in values.items() if v}


def _beancount_nets(pack: Path) -> dict[str, int]:
    """The prepaid account's net cents in the pack's Beancount transactions, each balancing
    exactly; the opening balance the books' first period posts is checked against the
    roll-forward's opening and left out (the other formats carry no opening). Loaded with the
    pack's accounts.beancount, as a ledger would; the closing balance assertion needs the earlier
    periods' files too, so its error is the one error allowed here."""
    (ledger,) = pack.glob("wavespeed_*.beancount")
    entries, errors, _ = loader.load_string((pack / "accounts.beancount").read_text(encoding="utf-8")
                                            + ledger.read_text(encoding="utf-8"))
    assert [e for e in errors if type(e).__name__ != "BalanceError"] == [], errors
    nets: dict[str, int] = defaultdict(int)
    for entry in entries:
        if isinstance(entry, bean.Transaction):
            balance: dict[str, Decimal] = defaultdict(Decimal)
            moved: dict[str, int] = defaultdict(int)
            for posting in entry.postings:
                balance[posting.units.currency] += posting.units.number
                if posting.account == PREPAID_BEANCOUNT:
                    moved[posting.units.currency] += cents(str(posting.units.number))
            assert set(balance.values()) <= {0}, entry  # exactly, not within Beancount's tolerance
            if any(posting.account == OPENING_BEANCOUNT for posting in entry.postings):
                assert dict(moved) == {"USD": cents(str(_round(Decimal(_opening(pack) or 0))))}, entry
                continue
            for currency, amount in moved.items():
                nets[currency] += amount
    return non_zero(nets)


def _xero_nets(pack: Path) -> dict[str, int]:
    journals = journals_of(read_rows(pack / "xero_manual_journals.csv"))
    net = 0
    for lines in journals.values():
        assert sum(cents(row["*Amount"]) for row in lines) == 0, lines  # every manual journal balances
        net += sum(cents(row["*Amount"]) for row in lines if row["*AccountCode"] == PREPAID_CODE)
    return non_zero({"USD": net})


def _rollforward(pack: Path) -> dict[str, str | None] | None:
    """The pack's USD roll-forward (None for an idle period: no currency moved)."""
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    (row,) = [r for r in manifest.get("rollforward", []) if r["currency"] == "USD"] or [None]
    return row


def _has_rollforward(pack: Path) -> bool:
    return _rollforward(pack) is not None


def _opening(pack: Path) -> str | None:
    """The pack's exact opening balance in USD (None: unknown)."""
    row = _rollforward(pack)
    return None if row is None else row["opening"]


def _every_book_balances(pack: Path) -> None:
    """Each entry balances in every format and all formats move the prepaid account alike
    (docs/booking.md, "One booking path")."""
    beancount = _beancount_nets(pack)
    iif = by_currency(iif_nets(pack), {"USD"})
    journal = by_currency(qbo_journal_nets(pack), {"USD"})
    bank = by_currency(qbo_bank_nets(pack), {"USD"})
    (workbook,) = pack.glob("wavespeed_*.xlsx")
    sheet = journal_sheet_nets(workbook)
    xero = _xero_nets(pack)
    assert iif == journal == bank == beancount == sheet == xero, (iif, journal, bank, beancount, sheet, xero)


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the machine --------------------------------------------------------------------------------


@dataclass
class Books:
    """What the test expects the books to hold: label -> (window, closed?)."""

    periods: dict[str, tuple[Window, bool]] = field(default_factory=dict)

    def closed(self) -> list[Window]:
        return sorted((w for w, c in self.periods.values() if c), key=lambda w: w.start)


class ModelChurn(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._temporary = tempfile.TemporaryDirectory()
        self.out = Path(self._temporary.name) / "out"
        self.books = Books()
        self.server: SandboxServer | None = None
        self._serving = None
        self.late = 0
        self.step = 0
        self.exported: dict[str, int] = {}  # label -> when it was last exported (a step number)
        self.basis: dict[str, frozenset[tuple[str, int]]] = {}  # label -> the exports it was booked on

    def teardown(self) -> None:
        if self._serving is not None:
            self._serving.__exit__(None, None, None)
        self._temporary.cleanup()

    @initialize(plan=PLANS, seed=st.integers(0, 2**32 - 1))
    def start(self, plan: list[tuple[frozenset[str], bool]], seed: int) -> None:
        dataset = dataset_from_records(_records(plan, seed), tuple(MONTHS), seed, Decimal("100.00"))
        self._serving = serve_in_thread(dataset=dataset)
        self.server = self._serving.__enter__()

    # -- running the CLI -------------------------------------------------------------------------

    def _run(self, *args: str) -> int:
        before = _tree(self.out) if self.out.exists() else {}
        result = CliRunner().invoke(cli, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
        event(f"{args[0]} exit {result.exit_code}")
        assert "Traceback" not in result.output, result.output
        if result.exit_code == 2:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line naming why
            assert (_tree(self.out) if self.out.exists() else {}) == before, args  # nothing changed
        else:
            checked = CliRunner().invoke(cli, ["books", "check", "--out", str(self.out)])
            assert checked.exit_code == 0, checked.output
        return result.exit_code

    def _export(self, window: Window) -> int:
        assert self.server is not None
        return self._run("export", *window.args, "--out", str(self.out), "--base-url", self.server.url,
                         "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", "--format", FORMATS,
                         "--accounts", str(ACCOUNTS))

    # -- steps -----------------------------------------------------------------------------------

    def _basis(self, window: Window) -> frozenset[tuple[str, int]]:
        """The exports ``window`` is booked on: the periods before it, each as last exported."""
        return frozenset((w.label, self.exported[w.label]) for w, _ in self.books.periods.values() if w.end <= window.start)

    def _leaves_a_gap(self, window: Window) -> bool:
        """Whether the books refuse ``window`` as leaving instants no period covers that were
        covered before, or as coming before a closed period (docs/booking.md, "What the books
        refuse": periods are contiguous)."""
        others = [(w, closed) for label, (w, closed) in self.books.periods.items() if label != window.label]
        if not others:
            return False
        before = _gaps([(w.start, w.end) for w, _ in self.books.periods.values()])
        after = _gaps([(w.start, w.end) for w, _ in others] + [(window.start, window.end)])
        if any(not any(old[0] <= gap[0] and gap[1] <= old[1] for old in before) for gap in after):
            return True
        return any(closed and w.start >= window.end for w, closed in others)

    @rule(window=st.sampled_from(WINDOWS))
    def export(self, window: Window) -> None:
        refused = (any(window.overlaps(w) for w in self.books.closed())  # the period itself, or one overlapping it
                   or self._leaves_a_gap(window))
        code = self._export(window)
        assert code == (2 if refused else 0), (window.label, self.books.periods)
        if code == 0:
            self.books.periods[window.label] = (window, False)
            self.exported[window.label] = self.step = self.step + 1
            self.basis[window.label] = self._basis(window)
            _foots(self.out / window.label)
            _every_book_balances(self.out / window.label)

    @precondition(lambda self: any(not closed for _, closed in self.books.periods.values()))
    @rule(data=st.data())
    def close_exported(self, data: st.DataObject) -> None:
        """Month end: close a period exported and still open (refused if it overlaps a closed one)."""
        self.close(data.draw(st.sampled_from(sorted((w for w, closed in self.books.periods.values() if not closed),
                                                     key=lambda w: (w.start, w.label)))))

    @rule()
    def export_next(self) -> None:
        """The month-end loop: export the month after the last closed period (or January)."""
        closed = self.books.closed()
        after = closed[-1].end if closed else date(2024, 1, 1)
        following = [w for w in WINDOWS[:len(MONTHS)] if w.start >= after]
        if following:
            self.export(following[0])

    @rule(window=st.sampled_from(WINDOWS))
    def close(self, window: Window) -> None:
        known = self.books.periods.get(window.label)
        earlier_open = any(not closed and other.end <= window.start for other, closed in self.books.periods.values())
        refused = (known is None or known[1] or earlier_open
                   or any(window.overlaps(w) for w in self.books.closed() if w.label != window.label))
        # booked on exports of the periods before it that have changed since (exported again,
        # added, or dropped as drafts a close superseded): refused, export it again first
        refused = refused or self.basis.get(window.label) != self._basis(window)
        # the closed period before it must meet it exactly
        closed_before = max((w.end for w in self.books.closed() if w.end <= window.start), default=None)
        refused = refused or (closed_before is not None and closed_before != window.start)
        code = self._run("close", *window.args, "--out", str(self.out), "--accounts", str(ACCOUNTS))
        assert code == (2 if refused else 0), (window.label, self.books.periods)
        if code == 0:
            # open exports overlapping it are drafts the close drops from the books
            for label, (other, _) in list(self.books.periods.items()):
                if label != window.label and other.overlaps(window):
                    del self.books.periods[label]
            self.books.periods[window.label] = (window, True)

    @precondition(lambda self: bool(self.books.closed()))
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        window = data.draw(st.sampled_from(self.books.closed()))
        later = any(w.start >= window.end for w in self.books.closed())  # periods reopen in reverse order
        code = self._run("reopen", *window.args, "--out", str(self.out), "--reason", "restated in a churn test")
        assert code == (2 if later else 0)
        if code == 0:
            self.books.periods[window.label] = (window, False)

    # the provider's history moves (docs/booking.md, "Closed periods and late changes")

    @rule(change=st.sampled_from(["pending_completes", "completed_fails", "amount_changes", "arrives_late",
                                  "record_removed", "model_vanishes"]), data=st.data())
    def history_moves(self, change: str, data: st.DataObject) -> None:
        pick = data.draw(st.integers(0, 10**6), label="pick")
        if change == "pending_completes":
            self._pending_completes(pick)
        elif change == "completed_fails":
            self._completed_fails(pick, data.draw(st.sampled_from(["failed", "pending"]), label="status"))
        elif change == "amount_changes":
            self._amount_changes(pick, data.draw(st.sampled_from(["0.5", "0.9", "1.05", "1.1", "2", "3.7"]), label="factor"))
        elif change == "arrives_late":
            self._arrives_late(data.draw(st.sampled_from(MONTHS), label="month"),
                               data.draw(st.sampled_from(MODELS + NEW_MODELS), label="model"),
                               data.draw(st.integers(1, 2_000_000), label="micros"),
                               data.draw(st.sampled_from(["completed", "completed", "pending"]), label="status"), pick)
        elif change == "record_removed":
            self._record_removed(pick)
        else:
            self._model_vanishes(data.draw(st.sampled_from(MONTHS), label="month"), pick)

    def _pick(self, pick: int, wanted) -> Record | None:
        assert self.server is not None
        candidates = [r for r in self.server.dataset.records if wanted(r)]
        return candidates[pick % len(candidates)] if candidates else None

    def _pending_completes(self, pick: int) -> None:
        found = self._pick(pick, lambda r: r.status == "pending")
        if found is not None:
            self.server.dataset = revise(self.server.dataset, statuses={found.id: "completed"})

    def _completed_fails(self, pick: int, status: str) -> None:
        found = self._pick(pick, lambda r: r.status == "completed")
        if found is not None:
            self.server.dataset = revise(self.server.dataset, statuses={found.id: status})

    def _amount_changes(self, pick: int, factor: str) -> None:
        found = self._pick(pick, lambda r: r.status == "completed")
        if found is not None:
            amount = (found.amount * Decimal(factor)).quantize(Decimal("0.000001"))
            if amount:
                self.server.dataset = revise(self.server.dataset, amounts={found.id: amount})

    def _arrives_late(self, month: str, model: str, micros: int, status: str, seed: int) -> None:
        self.late += 1
        record = Record(f"late_{self.late:04d}", "usage", -Decimal(micros).scaleb(-6), "USD", status,
                        _at(month, random.Random(seed)), model=model)
        self.server.dataset = revise(self.server.dataset, added=[record])

    def _record_removed(self, pick: int) -> None:
        found = self._pick(pick, lambda r: True)
        if found is not None:
            self.server.dataset = revise(self.server.dataset, removed=[found.id])

    def _model_vanishes(self, month: str, pick: int) -> None:
        """A model used in ``month`` disappears from it: none of its records are served any more."""
        found = self._pick(pick, lambda r: r.model is not None and r.created_at.strftime("%Y-%m") == month)
        if found is not None:
            gone = [r.id for r in self.server.dataset.records
                    if r.model == found.model and r.created_at.strftime("%Y-%m") == month]
            self.server.dataset = revise(self.server.dataset, removed=gone)

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def no_record_in_two_periods(self) -> None:
        if not (self.out / "books.sqlite").exists():
            return
        # a plain connection, only read: a read-only one would leave its -wal and -shm files behind
        db = sqlite3.connect(self.out / "books.sqlite")
        try:
            statuses = dict(db.execute("SELECT label, status FROM periods"))
        finally:
            db.close()
        expected = {label: ("closed" if closed else "open") for label, (_, closed) in self.books.periods.items()}
        assert statuses == expected
        assert booked_twice(self.out / "books.sqlite") == []
        booked = booked_ids(self.out / "books.sqlite")
        for window in self.books.closed():  # what a close keeps: every record of its pack
            ids = {r["id"] for r in csv_rows(self.out / window.label / "transactions.csv")}
            assert set(booked[window.label]) == ids, window.label

    @invariant()
    def prepaid_is_the_exact_running_balance_rounded(self) -> None:
        """Over the closed periods from the first, while they follow each other: opening + every
        completed record + every adjustment posted, exactly, vs the prepaid account's postings
        (docs/booking.md, "Rounding": never more than half a cent apart)."""
        chain: list[Window] = []
        for window in self.books.closed():
            if chain and window.start != chain[-1].end:
                break
            chain.append(window)
        if not chain:
            return
        exact: Decimal | None = None
        posted = Decimal(0)
        for window in chain:
            pack = self.out / window.label
            moved = Decimal(by_currency(qbo_journal_nets(pack), {"USD"}).get("USD", 0)).scaleb(-2)
            if exact is None:  # the chain starts at the first period that moves the credit
                if not _has_rollforward(pack):
                    assert moved == 0, window.label  # an idle period posts nothing
                    continue
                # the running total starts at the opening balance; at 0 when it is unknown
                opening = Decimal(_opening(pack) or 0)
                exact, posted = opening, _round(opening)
            exact += sum((Decimal(r["amount"]) for r in csv_rows(pack / "transactions.csv") if r["status"] == "completed"),
                         Decimal(0))
            if (pack / "adjustments.csv").exists():
                exact += sum((Decimal(r["delta"]) for r in csv_rows(pack / "adjustments.csv")), Decimal(0))
            posted += moved
            assert abs(posted - exact) <= HALF_CENT, (window.label, posted, exact)
            assert posted == _round(exact), (window.label, posted, exact)

    @invariant()
    def the_closed_beancount_files_make_one_ledger(self) -> None:
        """The closed periods that follow each other from the books' first one, loaded as one
        ledger (the latest accounts.beancount, then every period's file): bean-check passes,
        balance assertions included (docs/booking.md, "Beancount": "One ledger across months")."""
        chain: list[Window] = []
        for window in self.books.closed():
            if chain and window.start != chain[-1].end:
                break
            chain.append(window)
        if not chain or OPENING_BEANCOUNT not in _ledger_text(self.out / chain[0].label):
            return  # not the books' first period: its opening is in a pack outside the chain
        text = (self.out / chain[-1].label / "accounts.beancount").read_text(encoding="utf-8")
        text += "".join(_ledger_text(self.out / window.label) for window in chain)
        _, errors, _ = loader.load_string(text)
        assert errors == [], ([w.label for w in chain], errors)


def _ledger_text(pack: Path) -> str:
    (ledger,) = pack.glob("wavespeed_*.beancount")
    return ledger.read_text(encoding="utf-8")


def machine_settings(prefix: str, steps: int) -> settings:
    """A state machine test's settings: CI draws the same 20 examples of ``steps`` steps every run;
    ``<prefix>_EXAMPLES`` and ``<prefix>_STEPS`` draw new ones for a long run, and
    ``<prefix>_NO_SHRINK=1`` reports the first failure as found (shrinking a long machine takes minutes)."""
    return settings(
        max_examples=int(os.environ.get(f"{prefix}_EXAMPLES", "20")),
        stateful_step_count=int(os.environ.get(f"{prefix}_STEPS", str(steps))),
        derandomize=not os.environ.get(f"{prefix}_EXAMPLES"),
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get(f"{prefix}_NO_SHRINK") else list(Phase),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


ModelChurn.TestCase.settings = machine_settings("CHURN", 8)
TestModelChurn = ModelChurn.TestCase

