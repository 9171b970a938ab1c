"""report.html parsed back (stdlib html.parser): its figures against the Report, nothing external,
hostile model names shown as text, and the file in every pack."""

from __future__ import annotations

import csv
import json
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.money import format_micros
from exporter.writers.html_report import HtmlReportWriter, render

from factories import make_report, record, topup_record, usage_record, with_books

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</title></svg><script>alert(2)</script>",
    "a & b <i>",
]
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "h1", "h2", "h3",
    "p", "span", "b", "dl", "div", "dt", "dd", "table", "thead", "tbody", "tr", "th", "td", "figure",
    "figcaption", "svg", "g", "rect", "line", "text", "ul", "li", "wbr",
}


class Page(HTMLParser):
    """What the tests look at: tags, attributes, style text, headline figures, tables, all text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.style = ""
        self.figures: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._stack: list[str] = []
        self._figure: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        self.attributes += [(tag, name, value or "") for name, value in attrs.items()]
        if tag == "dd" and "data-figure" in attrs:
            self._figure = attrs["data-figure"]
            self.figures[self._figure] = ""
        if tag == "table":
            self._table = attrs.get("id", "")
            self.tables[self._table] = []
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in ("meta", "wbr", "rect", "line"):
            self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "dd":
            self._figure = None
        if tag == "table":
            self._table = None
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "style":
            self.style += data
            return
        self.text.append(data)
        if self._figure is not None:
            self.figures[self._figure] += data
        if self._cell is not None:
            self._cell.append(data)


def cents(micros: int) -> str:
    """The expected figure, computed here from micros: cents half up, thousands separators."""
    value = (Decimal(micros) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{value:,}"


@pytest.fixture(scope="module")
def report():
    return make_report([
        topup_record("1000.00", created_at="2024-01-02T08:00:00Z"),
        topup_record("250.00", created_at="2024-01-15T08:00:00Z"),
        *(usage_record(f"vendor/m{i:02d}", f"-{i}.0025", created_at=f"2024-01-{i:02d}T10:00:00Z") for i in range(1, 14)),
        usage_record("vendor/m13", "-1000.00", created_at="2024-01-13T11:00:00Z"),
        record("refund", "0.50", model="vendor/m01", created_at="2024-01-21T00:00:00Z"),
        usage_record("vendor/m01", "-2.00", status="pending", created_at="2024-01-30T00:00:00Z"),
    ], warnings=["page 3 was retried"])


def test_headline_figures_match_the_report(report):
    page = Page(render(report))
    by_model = report.summaries.by_model
    spend = -int(by_model["net_micros"].sum())
    topups = int(report.summaries.totals.loc[report.summaries.totals["type"] == "topup", "amount_micros"].sum())
    assert page.figures == {
        "spend": cents(spend), "change": "–", "topups": cents(topups), "closing": "–", "runway": "–",
    }
    assert cents(spend) == "1,090.53"  # 1,000 + 1+...+13 + 13 x 0.0025 - 0.50, half up, thousands separated
    text = " ".join(page.text)
    assert "2024-01-01 to 2024-01-31, time zone UTC" in text and "default" in text
    assert "1 pending usage record (2.00 USD)" in text and "page 3 was retried" in text


def test_top_models_table_foots_to_the_headline(report):
    page = Page(render(report))
    head, *rows = page.tables["top-models-USD"]
    assert head == ["Model", "Spend", "Share", "Tasks", "Unit cost"]  # no change columns without books
    ranked = report.summaries.by_model.sort_values(["amount_micros", "model"])["model"].tolist()
    assert [r[0] for r in rows[:10]] == ranked[:10]
    assert [r[0] for r in rows[10:]] == ["Other (3 models)", "Refunded tasks", "AI spend"]
    assert [rows[0][0], *rows[0][2:4]] == ["vendor/m13", "92.9%", "2"]
    assert abs(Decimal(rows[0][1].replace(",", "")) - Decimal("1013.0025")) < Decimal("0.01")  # cents shared out
    amounts = [Decimal(r[1].replace(",", "")) for r in rows]
    assert sum(amounts[:-1]) == amounts[-1] and rows[-1][1] == page.figures["spend"]


def test_all_models_table_has_every_model_exact(report):
    page = Page(render(report))
    head, *rows = page.tables["all-models-table"]
    assert head[:6] == ["Model", "Currency", "Tasks", "Usage", "Refunded", "Spend"]
    expected = {
        r.model: (format_micros(-r.amount_micros), format_micros(r.refunds_micros), format_micros(-r.net_micros))
        for r in report.summaries.by_model.itertuples()
    }
    shown = {r[0]: tuple(v.replace(",", "") for v in r[3:6]) for r in rows}
    assert shown == expected


def test_with_books_change_closing_runway_and_months(report):
    booked = with_books(
        report,
        history=[("2023-11", -900_000_000, 0), ("2023-12", -1_000_000_000, 1_000_000)],
        previous={"vendor/m13": -1_000_000_000},
        opening=5_000_000,
        closing=2_000_000_000,
    )
    page = Page(render(booked))
    assert page.figures["change"] == "+91.53"  # 1,090.5325 - 999.00
    assert page.figures["closing"] == "2,000.00" and page.figures["runway"] == "56 days"
    head, first, *_ = page.tables["top-models-USD"]
    assert head[5:] == ["vs 2023-12", "Change %"] and first[5:] == ["+13.00", "+1.3%"]
    labels = [value for tag, name, value in page.attributes if tag == "svg" and name == "aria-label"]
    assert labels == ["Spend by model (USD)", "Daily usage (USD)", "AI spend by period (USD)"]


def test_nothing_external(report):
    html = render(with_books(report, history=[("2023-12", -1_000_000, 0)], closing=1))
    page = Page(html)
    assert set(page.tags) <= ALLOWED_TAGS  # no script, link, img, iframe, object, embed, base
    for tag, name, value in page.attributes:
        assert name not in ("src", "href", "srcset", "action", "xlink:href", "background"), (tag, name)
        assert not name.startswith("on"), (tag, name)
        assert "http://" not in value and "https://" not in value and "url(" not in value, (tag, name, value)
    assert page.style and "@import" not in page.style and "url(" not in page.style
    assert "http://" not in page.style and "https://" not in page.style


def test_hostile_model_names_come_out_as_text(tmp_path):
    raws = [usage_record(name, f"-{i}.00") for i, name in enumerate(HOSTILE, 1)]
    warned = make_report(raws, warnings=[f"model {HOSTILE[0]} looks new"])
    (path,) = HtmlReportWriter().write(warned, tmp_path)
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    assert set(page.tags) <= ALLOWED_TAGS
    assert not any(name.startswith("on") for _, name, _ in page.attributes)
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<svg onload" not in html.lower()
    text = "".join(page.text)
    for name in HOSTILE:  # shown to the reader, character for character
        assert name in text, name
    rows = {r[0] for r in page.tables["all-models-table"][1:]}
    assert rows == set(HOSTILE)
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # tables, chart label and tooltip


def test_every_pack_has_the_report(sandbox, api_args, tmp_path):
    result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--out", str(tmp_path), *api_args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-01"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "report.html" in {f["name"] for f in manifest["files"]}
    page = Page((folder / "report.html").read_text(encoding="utf-8"))
    with open(folder / "by_model.csv", newline="", encoding="utf-8") as handle:
        net = sum(Decimal(r["net"]) for r in csv.DictReader(handle))
    assert page.figures["spend"] == cents(int(-net * 1_000_000))
    assert not any(name in ("src", "href") for _, name, _ in page.attributes)


@pytest.mark.parametrize(
    "raws, spend",
    [
        ([], None),
        ([topup_record("25.00")], "0.00"),
        ([record("usage", "-0.004", model=None)], "0.00"),  # no model name: its own line, rounded to the cent
    ],
)
def test_degenerate_periods_render(raws, spend):
    page = Page(render(make_report(raws)))
    assert page.figures.get("spend") == spend
    if spend is None:
        assert "No completed records in this period." in "".join(page.text)
    assert page.tables["all-models-table"][0][0] == "Model"
