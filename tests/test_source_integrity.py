"""--from-source trusts an archive only as far as the pack's manifest vouches for it, and its label
never steers the export out of --out (issue 9, items 1 and 11)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.errors import DataError
from exporter.outdir import pack_folder
from exporter.sandbox import DEMO_KEY, serve_in_thread


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real export of 2024-01 (CSV only), made once for the module; tests copy it."""
    out = tmp_path_factory.mktemp("live")
    with serve_in_thread() as server:
        result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", server.url, "--api-key", DEMO_KEY,
                                          "--out", str(out), "--format", "csv", "-q"])
    assert result.exit_code == 0, result.output
    yield out / "2024-01"


def copy_of(pack: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "pack" / "2024-01"
    shutil.copytree(pack, copy)
    return copy


def rerender(source: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["export", "--from-source", str(source), "--out", str(out), "--format", "csv", "-q", *extra])


def relist(pack: Path, name: str) -> None:
    """Update the manifest's size and sha256 of ``name`` as if the pack had been written so."""
    manifest = json.loads((pack / "manifest.json").read_text())
    data = (pack / name).read_bytes()
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (pack / "manifest.json").write_text(json.dumps(manifest))


def set_label(pack: Path, label: str, *, vouch: bool = True) -> None:
    context = json.loads((pack / "source" / "context.json").read_text())
    context["window"]["label"] = label
    (pack / "source" / "context.json").write_text(json.dumps(context))
    if vouch:
        relist(pack, "source/context.json")


# -- item 1: the label -------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["../../escaped", "{abs}", "2024-01/../../escaped", "2024-02", "2024-01\n", "..", ""])
def test_an_archive_label_cannot_steer_the_export(pack, tmp_path, label):
    label = label.replace("{abs}", str(tmp_path / "elsewhere" / "escaped"))
    source = copy_of(pack, tmp_path)
    set_label(source, label)  # the manifest vouches for the change: only the label check stands in the way
    out = tmp_path / "deep" / "down" / "out"
    result = rerender(source, out)
    assert result.exit_code == 5, result.output
    assert "label" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "elsewhere").exists()
    assert not (tmp_path / "deep" / "escaped").exists() and not (out / "2024-02").exists()
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_the_archive_label_still_works_when_it_is_right(pack, tmp_path):
    result = rerender(copy_of(pack, tmp_path), tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2024-01", "books.sqlite"]


@pytest.mark.parametrize("label", ["../x", "/tmp/x", "a/b", "..", "."])
def test_pack_folder_proves_the_target_is_inside_out(tmp_path, label):
    with pytest.raises(DataError, match="inside"):
        pack_folder(tmp_path / "out", label)
    assert pack_folder(tmp_path / "out", "2024-01") == tmp_path / "out" / "2024-01"


# -- item 11: the manifest vouches for the archive ---------------------------------------------


def tamper_amount(archive: Path) -> None:
    lines = gzip.decompress(archive.read_bytes()).decode().splitlines()
    tampered = re.sub(r'"amount":[^,}]+', '"amount":-999.99', lines[0])
    assert tampered != lines[0]
    lines[0] = tampered
    archive.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))


def test_a_tampered_archive_is_refused(pack, tmp_path):
    source = copy_of(pack, tmp_path)
    tamper_amount(source / "source" / "billings.jsonl.gz")
    for command in (["export", "--out", str(tmp_path / "out"), "--format", "csv"], ["summary"]):
        result = CliRunner().invoke(cli, [*command, "--from-source", str(source), "-q"])
        assert result.exit_code == 5, result.output
        assert "billings.jsonl.gz" in result.output and "manifest" in result.output
    assert not (tmp_path / "out" / "2024-01").exists()


def test_a_tampered_context_is_refused(pack, tmp_path):
    source = copy_of(pack, tmp_path)
    context = source / "source" / "context.json"
    context.write_text(context.read_text().replace('"warnings":[]', '"warnings":["planted"]'))
    result = rerender(source, tmp_path / "out")
    assert result.exit_code == 5, result.output
    assert "context.json" in result.output


def test_an_archive_without_its_manifest_is_refused(pack, tmp_path):
    source = copy_of(pack, tmp_path)
    (source / "manifest.json").unlink()
    result = rerender(source / "source", tmp_path / "out")
    assert result.exit_code == 5, result.output
    assert "billings.jsonl.gz" in result.output or "context.json" in result.output
    assert "manifest.json" in result.output


def test_a_re_render_copies_exactly_the_verified_bytes(pack, tmp_path):
    result = rerender(copy_of(pack, tmp_path), tmp_path / "out")
    assert result.exit_code == 0, result.output
    name = "source/billings.jsonl.gz"
    assert (tmp_path / "out" / "2024-01" / name).read_bytes() == (pack / name).read_bytes()
    assert rerender(tmp_path / "out" / "2024-01", tmp_path / "again").exit_code == 0  # and its manifest vouches again
