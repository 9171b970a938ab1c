"""The manifest's summary (--json): one source; the roll-forward always, unknown figures as null."""

from __future__ import annotations

from dataclasses import replace

from exporter.models import RollForward
from exporter.writers.manifest import build_manifest, report_summary, summary_of
from factories import make_report, topup_record, usage_record


def test_the_rollforward_is_in_the_manifest_and_its_summary_with_unknowns_as_null(tmp_path):
    report = make_report([topup_record("100.00"), usage_record("a/model", "-1.0025")])
    (alone,) = build_manifest(report, tmp_path, [])["rollforward"]  # no books, no provider balance
    assert (alone["opening"], alone["closing"], alone["topups"]) == (None, None, "100.00")
    assert alone["opening_source"].startswith("unknown")
    assert report_summary(report)["rollforward"] == [alone]

    known = RollForward("USD", 5_000_000, 100_000_000, -1_002_500, 0, 0, 0, 103_997_500, "closing of 2023-12 in the books")
    unknown = RollForward("EUR", None, 0, 0, 0, 0, 0, None, "unknown")
    with_rollforward = replace(report, booked=replace(report.booked, rollforward=(known, unknown)))
    manifest = build_manifest(with_rollforward, tmp_path, [], ("csv",))
    assert manifest["rollforward"][0] == {
        "currency": "USD", "opening": "5.00", "opening_source": "closing of 2023-12 in the books", "topups": "100.00",
        "usage": "-1.0025", "refunds": "0.00", "other": "0.00", "adjustments": "0.00", "closing": "103.9975",
        "provider_balance": None, "pending": "0.00",
    }
    assert manifest["rollforward"][1]["opening"] is None and manifest["rollforward"][1]["closing"] is None
    summary = summary_of(manifest)
    assert summary["rollforward"] == manifest["rollforward"] and summary["formats"] == ["csv"]
    assert report_summary(with_rollforward)["rollforward"] == manifest["rollforward"]
    assert set(summary) == {"period", "formats", "counts", "totals", "rollforward", "warnings", "files"}
