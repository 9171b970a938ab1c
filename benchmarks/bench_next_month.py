"""The month after a closed month: what exporting it costs the provider and the clock.

Closes a January of ``--records`` records (nothing pending, nothing changing afterwards) against
the sandbox (a thread of this process on 127.0.0.1, with ``--latency-ms`` per request), then exports
February ``--repeat`` times each way, in the same invocation:

- ``--recheck full``: every closed day re-read, as every export did before late changes were
  found from the provider's day totals (docs/booking.md, "Finding late changes");
- the default: only the days whose totals changed (none here), by type for top-ups and refunds.

Prints, per way, the median wall time, the billing requests and the records served (the server
counts them), and the February export alone without books as the yardstick.

    python benchmarks/bench_next_month.py --records 1000000      # the issue's case (a few minutes)
    python benchmarks/bench_next_month.py --records 100000 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.cli import cli  # noqa: E402
from exporter.sandbox import DEMO_KEY, Faults, make_server  # noqa: E402
from exporter.sandbox.data import MODEL_NAMES, Record, dataset_from_records  # noqa: E402


def history(january: int, february: int) -> list[Record]:
    records = []
    for month, count, days in ((1, january, 31), (2, february, 29)):
        step = days * 86_400_000 // max(count, 1)
        for n in range(count):
            at = datetime(2024, month, 1, tzinfo=timezone.utc) + timedelta(milliseconds=n * step)
            records.append(Record(f"u{month}_{n:07d}", "usage", Decimal("-0.0025") * (1 + n % 7), "USD", "completed",
                                  at, model=MODEL_NAMES[n % 5]))
    return records


def export(url: str, out: Path, period: str, *extra: str) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["export", "--period", period, "--out", str(out), "--base-url", url,
                                      "--api-key", DEMO_KEY, "--format", "csv", "-q", "--concurrency", "8", *extra])
    if result.exit_code != 0:
        raise SystemExit(f"export {period} failed: {result.output}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="January's records (default 200,000)")
    parser.add_argument("--february", type=int, default=10_000, help="February's records (default 10,000)")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="added to every request (default 5)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--api", choices=["current", "legacy"], default="current")
    args = parser.parse_args()

    dataset = dataset_from_records(history(args.records, args.february), ("2024-01", "2024-02"), 0, Decimal("1000"))
    server = make_server("127.0.0.1", 0, dataset, Faults(latency_ms=args.latency_ms, page_cap=100), args.api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        books = Path(tmp) / "books"
        export(server.url, books, "2024-01", "--close", "--page-size", "100")
        for name, extra, folder in (("February alone (no books)", (), None),
                                    ("--recheck full (as before)", ("--recheck", "full"), books),
                                    ("by day totals (default)", (), books)):
            times, requests, served = [], [], []
            for n in range(args.repeat):
                server.reset()
                times.append(export(server.url, folder or Path(tmp) / f"alone{n}", "2024-02", "--page-size", "100", *extra))
                requests.append(len(server.requests))
                served.append(server.records_served)
            rows.append((name, statistics.median(times), statistics.median(requests), statistics.median(served)))
    server.shutdown()
    print(f"January {args.records:,} records closed, February {args.february:,}, {args.latency_ms} ms per request, "
          f"{args.api} API, medians of {args.repeat}")
    print(f"{'February export':30} {'seconds':>8} {'requests':>9} {'records served':>15}")
    for name, seconds, requests_made, records_served in rows:
        print(f"{name:30} {seconds:8.2f} {requests_made:9,.0f} {records_served:15,.0f}")
    alone = rows[0]
    for name, seconds, _, records_served in rows[1:]:
        print(f"{name}: {seconds / alone[1]:.2f}x the time of February alone; "
              f"{(records_served - alone[3]) / args.records:.2%} of January re-read")


if __name__ == "__main__":
    main()
