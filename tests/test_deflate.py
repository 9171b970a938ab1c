"""The detail sheet's deflate on two cores (writers/excel/deflate.py): the pieces make one stream
that inflates to exactly what was written, and a zip member written through it reads back; with
ISA-L's deflate (exporter/deflate_backend.py) and with zlib's, which installs without isal use."""

from __future__ import annotations

import gzip
import io
import os
import platform
import random
import zipfile
import zlib

import pytest

from exporter import deflate_backend
from exporter.writers.excel.deflate import ParallelDeflate, use_parallel_deflate

ISAL_WHEELS = {"x86_64", "AMD64", "aarch64", "arm64"}  # pyproject.toml's marker for the isal dependency


@pytest.fixture(params=["isal", "zlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: with ISA-L's deflate, and as an install without isal runs (zlib's)."""
    if request.param == "zlib":
        monkeypatch.setattr(deflate_backend, "_isal_zlib", None)
        monkeypatch.setattr(deflate_backend, "_igzip", None)
    return str(request.param)


def test_an_install_where_isal_has_wheels_deflates_with_it() -> None:
    assert deflate_backend.ISAL or platform.machine() not in ISAL_WHEELS
    assert type(deflate_backend.raw_compressor()).__module__ != "zlib" or not deflate_backend.ISAL


def _pieces(seed: int) -> list[bytes | memoryview]:
    rnd = random.Random(seed)
    sizes = [rnd.choice([0, 1, 5, 100, 40_000, 70_000, 300_000]) for _ in range(rnd.randrange(0, 9))]
    pieces: list[bytes | memoryview] = []
    for n in sizes:  # incompressible and repetitive parts: back-references across the pieces' seams
        data = os.urandom(n // 3) + b"<row r=\"1\">" * ((n - n // 3) // 11)
        pieces.append(memoryview(data) if rnd.random() < 0.5 else data)
    return pieces


@pytest.mark.parametrize("seed", range(40))
def test_the_pieces_inflate_to_what_was_written(seed: int, backend: str) -> None:
    pieces = _pieces(seed)
    deflate = ParallelDeflate()
    stream = b"".join(deflate.compress(piece) for piece in pieces) + deflate.flush()
    assert zlib.decompress(stream, -15) == b"".join(bytes(piece) for piece in pieces)


def test_a_zip_member_written_through_it_reads_back_with_its_crc(backend: str) -> None:
    pieces = _pieces(7) + [b"<tail/>"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("sheet.xml", "w") as member:
            use_parallel_deflate(member)
            for piece in pieces:
                member.write(piece)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.read("sheet.xml") == b"".join(bytes(piece) for piece in pieces)  # CRC checked on read
        assert archive.testzip() is None


@pytest.mark.parametrize("size", [0, 1, 100_000, 3_000_000])
def test_the_gzip_reader_gives_back_what_was_compressed(size: int, backend: str) -> None:
    data = (os.urandom(size // 4) + b'{"id":"txn_1"}\n' * (size // 20))[:size]
    with deflate_backend.gunzip_reader(io.BytesIO(gzip.compress(data, mtime=0))) as reader:
        pieces = iter(lambda: reader.read(65_536), b"")
        assert b"".join(pieces) == data


def test_a_damaged_stream_raises_one_of_the_errors_listed(backend: str) -> None:
    data = bytearray(gzip.compress(b"x" * 1000, mtime=0))
    data[10] = 0xFF  # the first deflate block header: block type 3 does not exist
    with pytest.raises(deflate_backend.ERRORS):
        with deflate_backend.gunzip_reader(io.BytesIO(bytes(data))) as reader:
            reader.read()


def test_zipfile_checksums_through_isal_are_zlibs_and_read_back(backend, monkeypatch, tmp_path):
    monkeypatch.setattr(zipfile, "crc32", zipfile.crc32)  # the process-wide choice, undone after the test
    deflate_backend.checksum_zips_with_isal()
    if backend == "isal":
        assert zipfile.crc32 is not zlib.crc32
    members = {"empty": b"", "text": "Übersicht & <Summe>\n".encode() * 5_000, "noise": os.urandom(300_000)}
    path = tmp_path / "checked.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            with out.open(name, "w") as handle:
                for at in range(0, len(data), 70_001):  # checksummed piece by piece, as the workbook is written
                    handle.write(memoryview(data)[at:at + 70_001])
    with zipfile.ZipFile(path) as back:
        assert back.testzip() is None
        assert {info.filename: info.CRC for info in back.infolist()} == {name: zlib.crc32(data) for name, data in members.items()}
        assert {name: back.read(name) for name in members} == members
