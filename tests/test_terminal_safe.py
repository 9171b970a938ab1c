"""Server text never reaches the terminal (or report.html) with its control characters: a model
name carrying an OSC sequence (sets the terminal title) and a C1 CSI, served by a loopback API."""

from __future__ import annotations

import json

from click.testing import CliRunner

from exporter.cli import cli
from exporter.display import REPLACEMENT, json_text, visible
from tests.loopback import record_line, serve_billings

EVIL = "evil\\u001b]0;pwned\\u0007model\\u009b2J"  # as JSON text: ESC ] 0 ; pwned BEL model CSI 2 J
SHOWN = f"evil{REPLACEMENT}]0;pwned{REPLACEMENT}model{REPLACEMENT}2J"
CONTROLS = ("\x1b", "\x07", "\x9b")


def records(_: int) -> list[str]:
    return [record_line("r1", "-1.25", model=EVIL), record_line("r2", "-0.50", model="m/plain",
                                                                created_at="2024-01-16T10:00:00Z")]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"WAVESPEED_API_KEY": "test-key-0001"})


def test_control_characters_from_the_server_are_shown_visibly_everywhere(tmp_path):
    with serve_billings(records) as url:
        api = ["--base-url", url, "--period", "2024-01", "--backoff", "0.01"]
        summary = invoke("summary", *api)
        as_json = invoke("summary", *api, "--json")
        export = invoke("export", *api, "--out", str(tmp_path), "--format", "csv,html", "--no-reconcile")
    for result in (summary, as_json, export):
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in CONTROLS)
    assert SHOWN in summary.output
    assert json.loads(as_json.output)["by_model"][0]["model"] == "evil\x1b]0;pwned\x07model\x9b2J"  # exact in JSON
    report = (tmp_path / "2024-01" / "report.html").read_bytes()
    assert b"\x1b" not in report and b"\x07" not in report and "\x9b".encode() not in report
    assert SHOWN.encode() in report


def test_the_one_function_keeps_newlines_and_replaces_every_other_control():
    assert visible("a\nb") == "a\nb"
    assert visible("a\tb\rc\x00d\x7fe\x85f") == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf"
    assert visible("naïve 模型") == "naïve 模型"
    assert json.loads(json_text({"m": "x\x9b\x1b"})) == {"m": "x\x9b\x1b"}
    assert "\x9b" not in json_text({"m": "x\x9b"})


def test_an_error_message_is_one_terminal_safe_line():
    from exporter.cli import _one_line

    assert _one_line("bad\x1b[2Jthing\nnext") == f"bad{REPLACEMENT}[2Jthing next"
