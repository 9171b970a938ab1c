"""The detail sheet's deflate on two cores (writers/excel/deflate.py): the pieces make one stream
that inflates to exactly what was written, and a zip member written through it reads back."""

from __future__ import annotations

import io
import os
import random
import zipfile
import zlib

import pytest

from exporter.writers.excel.deflate import ParallelDeflate, use_parallel_deflate


def _pieces(seed: int) -> list[bytes | memoryview]:
    rnd = random.Random(seed)
    sizes = [rnd.choice([0, 1, 5, 100, 40_000, 70_000, 300_000]) for _ in range(rnd.randrange(0, 9))]
    pieces: list[bytes | memoryview] = []
    for n in sizes:  # incompressible and repetitive parts: back-references across the pieces' seams
        data = os.urandom(n // 3) + b"<row r=\"1\">" * ((n - n // 3) // 11)
        pieces.append(memoryview(data) if rnd.random() < 0.5 else data)
    return pieces


@pytest.mark.parametrize("seed", range(40))
def test_the_pieces_inflate_to_what_was_written(seed: int) -> None:
    pieces = _pieces(seed)
    deflate = ParallelDeflate()
    stream = b"".join(deflate.compress(piece) for piece in pieces) + deflate.flush()
    assert zlib.decompress(stream, -15) == b"".join(bytes(piece) for piece in pieces)


def test_a_zip_member_written_through_it_reads_back_with_its_crc() -> None:
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
