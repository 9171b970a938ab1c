"""Options that cannot mean anything are refused before anything is fetched (issue 21, item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_closing_a_period_that_has_not_ended_is_refused_before_fetching(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("export", "--sandbox", "--period", "this-month", "--close", "--out", str(out), "-q")
    assert result.exit_code == 2, result.output
    assert "--close" in result.output and "has not ended" in result.output
    assert not out.exists()  # nothing fetched, nothing written, no books


@pytest.mark.parametrize("value", ["-1", "3661", "99999999999999999999"])
def test_lookback_is_bounded(tmp_path: Path, value: str) -> None:
    result = run("export", "--sandbox", "--period", "2024-01", "--lookback", value, "--out", str(tmp_path))
    assert result.exit_code == 2 and "--lookback" in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "0.01", "soon"])
def test_timeout_is_finite_and_positive(tmp_path: Path, value: str) -> None:
    result = run("export", "--sandbox", "--period", "2024-01", "--timeout", value, "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "--timeout" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "2024-01").exists()


@pytest.mark.parametrize("option", ["--backoff", "--max-wait"])
def test_retry_waits_are_finite(tmp_path: Path, option: str) -> None:
    result = run("fetch", "--sandbox", "--period", "2024-01", option, "nan")
    assert result.exit_code == 2 and option in result.output
