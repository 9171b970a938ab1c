"""Closing a big month: seconds, peak memory and what the books keep per record, two checkouts.

Makes one source archive of ``--records`` records of 2024-01 (the sandbox generator's ids,
``txn_2024010000001``...) and a copy with random UUIDs as ids, then for each checkout (``--base``
and ``--new``, each with its own interpreter) and each archive: ``export --from-source`` into
fresh books (csv only), then ``close --period 2024-01`` in a child process. Prints the close's
wall time and peak RSS (medians over ``--repeat`` closes of fresh copies of the exported books),
and books.sqlite's size after the close per record (checkpointed, so the -wal file is in it).

    python benchmarks/bench_close.py --base ../base --base-python ../venv-base/bin/python --records 1000000
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_export as be  # noqa: E402

from exporter.pack import file_entry  # noqa: E402

MIB = 1024 * 1024


def uuid_copy(pack: Path, to: Path) -> Path:
    """The same archive with every id replaced by a random UUID (as the current API's may be)."""
    (to / "source").mkdir(parents=True)
    shutil.copy(pack / "source" / "context.json", to / "source" / "context.json")
    with gzip.open(pack / "source" / "billings.jsonl.gz", "rt", encoding="utf-8") as src, \
            gzip.open(to / "source" / "billings.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as dst:
        for line in src:
            start = line.index('"id":"') + 6
            end = line.index('"', start)
            dst.write(line[:start] + str(uuid.uuid4()) + line[end:])
    files = [file_entry(to / "source" / name, to) for name in ("billings.jsonl.gz", "context.json")]
    (to / "manifest.json").write_text(be.json.dumps({"files": files}))  # what --from-source verifies
    return to


def child(python: str, side: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    env = {**be.os.environ, "PYTHONPATH": str(side)}
    start = time.perf_counter()
    proc = subprocess.run([python, "-c", be.TOOL_RENDER_CODE, *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{side}: {' '.join(args[:2])} failed: {proc.stdout[-1000:]}{proc.stderr[-2000:]}")
    peak = be.json.loads(proc.stderr.strip().splitlines()[-1])
    return wall, (peak["vmhwm_kib"] or peak["ru_maxrss_kib"]) / 1024


def books_bytes(books: Path) -> int:
    with sqlite3.connect(books) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return books.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the base checkout")
    parser.add_argument("--base-python", default=sys.executable)
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--new-python", default=sys.executable)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sides = {"base": (args.base.resolve(), args.base_python), "new": (args.new.resolve(), args.new_python)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        packs = {"sequential ids": be.make_archive(args.records, tmp / "pack", tmp)}
        packs["UUID ids"] = uuid_copy(packs["sequential ids"], tmp / "pack-uuid")
        rows = []
        for kind, pack in packs.items():
            exported = {}
            for name, (side, python) in sides.items():
                out = tmp / f"exported-{name}"
                seconds, _ = child(python, side, ["export", "--from-source", str(pack), "--out", str(out), "--format",
                                                  "csv", "-q"], tmp)
                be.log(f"  {kind}, {name}: exported in {seconds:.1f} s")
                exported[name] = out
            samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
            for _ in range(args.repeat):
                for name, (side, python) in sides.items():  # interleaved: load hits both alike
                    out = tmp / f"close-{name}"
                    shutil.rmtree(out, ignore_errors=True)
                    shutil.copytree(exported[name], out)
                    books_bytes(out / "books.sqlite")
                    seconds, mib = child(python, side, ["close", "--period", "2024-01", "--out", str(out)], tmp)
                    samples[name].append((seconds, mib, books_bytes(out / "books.sqlite")))
                    be.log(f"  {kind}, {name}: closed in {seconds:.2f} s, {mib:.0f} MiB")
            for name, runs in samples.items():
                rows.append((kind, name, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                             runs[-1][2] / args.records))
            for folder in exported.values():
                shutil.rmtree(folder)
    print(f"\nclose --period 2024-01 of {args.records:,} records (medians of {args.repeat}; base {sides['base'][0]}, "
          f"new {sides['new'][0]})")
    print(f"  {'ids':<16}{'side':<6}{'close s':>9}{'peak MiB':>10}{'books B/record':>16}")
    for kind, name, seconds, mib, per_record in rows:
        print(f"  {kind:<16}{name:<6}{seconds:>9.2f}{mib:>10.0f}{per_record:>16.1f}")


if __name__ == "__main__":
    main()
