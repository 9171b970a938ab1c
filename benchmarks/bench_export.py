"""Extraction and render benchmark for wavespeed-export: ``python benchmarks/bench_export.py``.

Run by hand (not part of the test suite). Prints medians over ``--repeat`` runs, all taken on
this machine in this invocation, with the issue's targets marked PASS/FAIL:

- Extraction: the sandbox API (a separate process, so server and client do not share a GIL)
  serves ``--records`` records of 2024-01 with ``--latency-ms`` per request and a page cap of
  100. Timed: ``exporter.pipeline.fetch`` called in this process (records go to a no-op sink)
  at each ``--concurrency-levels``, a naive baseline (sequential ``requests.get`` loop,
  ``page_size=50``, ``response.json()``), and the full default export (``wavespeed-export
  export --period 2024-01`` in a child process: default formats, reconciliation, books) at each
  ``--full-export-levels``, with its ratio to the month's bound (issue 19's target: <= 1.5x at 8).
- Render: ``wavespeed-export export --from-source`` of a ``--render-records`` archive, one
  child process per run and format, with the child's wall time and peak RSS; beside it a naive
  pandas baseline (``json.loads`` + ``DataFrame`` + ``to_csv`` + ``to_excel``).
- Yardstick: a child that gunzips the same archive and ``json.loads`` each line, nothing else;
  the all-formats and csv renders are printed as ratios to it (issue 19's target: <= 1.5x).
- Memory scaling: peak RSS of the all-formats render at each ``--scaling`` size.

Peak RSS is the child's ``VmHWM`` (from ``/proc/self/status``): ``ru_maxrss`` of a child on
Linux starts from the parent's RSS at fork time, so it overstates small children. Both are kept
in ``--json``. Everything runs on 127.0.0.1 and in temporary folders.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exporter.config import ApiSettings, ExportConfig, LiveSource  # noqa: E402
from exporter.pipeline import fetch  # noqa: E402
from exporter.period import month_window  # noqa: E402
from exporter.sandbox import DEMO_KEY  # noqa: E402

PERIOD = "2024-01"
BILLINGS = "/api/v3/account/billings"
CLASSIC_FORMATS = "csv,xlsx,quickbooks"  # "all formats" before html, beancount, xero and focus: compare like with like
ALL_FORMATS = "csv,xlsx,quickbooks,beancount,html,xero,focus"
RENDER_FORMATS = ("csv", "xlsx", "quickbooks", CLASSIC_FORMATS, ALL_FORMATS)
RENDER_CASES = {"csv": "csv", "xlsx": "xlsx", "quickbooks": "quickbooks", "classic": CLASSIC_FORMATS, "all": ALL_FORMATS}
YARDSTICK = "gunzip + json.loads"
ACCOUNTS = REPO / "templates" / "accounts_xero.toml"  # has the account codes --format xero needs
MIB = 1024 * 1024
GB_LIMIT = 1.5e9  # the 1.5 GB peak-RSS target, in bytes

# -- child-process code (run with ``python -c CODE args...``; cwd is a temp folder) ----------

_PEAK = r"""
import json as _json, resource as _resource, sys as _sys
def _report_peak():
    hwm = None
    try:
        with open('/proc/self/status') as status:
            hwm = next((int(l.split()[1]) for l in status if l.startswith('VmHWM:')), None)
    except OSError:
        pass
    maxrss = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    _sys.stderr.write(_json.dumps({'vmhwm_kib': hwm, 'ru_maxrss_kib': maxrss}) + '\n')
"""

SANDBOX_CODE = r"""
import sys
from exporter.sandbox import Faults, generate_dataset, make_server
n, latency = int(sys.argv[1]), float(sys.argv[2])
dataset = generate_dataset(months=('2024-01',), records_per_month=n)
server = make_server('127.0.0.1', 0, dataset, Faults(latency_ms=latency, page_cap=100))
print(server.url, flush=True)
server.serve_forever()
"""

ARCHIVE_CODE = r"""
import gzip, json, math, sys
from pathlib import Path
from exporter.models import ExtractionStats
from exporter.period import month_window
from exporter.sandbox import generate_dataset
from exporter.archive import SourceContext, write_context
n, folder = int(sys.argv[1]), Path(sys.argv[2])
folder.mkdir(parents=True)
kept = 0
with gzip.open(folder / 'billings.jsonl.gz', 'wt', encoding='utf-8', compresslevel=6) as out:
    for line in generate_dataset(months=('2024-01',), records_per_month=n).lines():
        if json.loads(line)['created_at'].startswith('2024-01-'):  # drop the edge records outside
            out.write(line + '\n')
            kept += 1
stats = ExtractionStats(source='bench', server_total=kept, unique_fetched=kept, duplicates_dropped=0,
                        pages=math.ceil(kept / 100), in_period=kept)
write_context(folder, SourceContext(month_window('2024-01'), stats, None, []))
# --from-source reads an archive only as the pack's manifest.json vouches for it
from exporter.pack import file_entry
files = [file_entry(folder / name, folder.parent) for name in ('billings.jsonl.gz', 'context.json')]
(folder.parent / 'manifest.json').write_text(json.dumps({'files': files}))
print(kept)
"""

TOOL_RENDER_CODE = _PEAK + r"""
import atexit as _atexit
_atexit.register(_report_peak)  # after the command, before the interpreter's own teardown (timed too)
from exporter.cli import main
main()  # as the console script runs it
"""

# the yardstick a render is measured against: plain Python reading the same archive, nothing else
READ_YARDSTICK_CODE = _PEAK + r"""
import gzip, json
count = 0
with gzip.open(_sys.argv[1] + '/billings.jsonl.gz', 'rt', encoding='utf-8') as lines:
    for line in lines:
        json.loads(line)
        count += 1
print(count)
_report_peak()
"""

NAIVE_RENDER_CODE = _PEAK + r"""
import gzip, json
import pandas as pd
source, out = _sys.argv[1], _sys.argv[2]
with gzip.open(source + '/billings.jsonl.gz', 'rt', encoding='utf-8') as lines:
    records = [json.loads(line) for line in lines]
frame = pd.DataFrame(records)
frame.to_csv(out + '/transactions.csv', index=False)
by_model = frame.groupby('model')['amount'].sum().reset_index()
by_model.to_csv(out + '/by_model.csv', index=False)
with pd.ExcelWriter(out + '/pack.xlsx', engine='openpyxl') as workbook:
    frame.to_excel(workbook, sheet_name='Transactions', index=False)
    by_model.to_excel(workbook, sheet_name='By model', index=False)
_report_peak()
"""


def byte_compile(checkout: Path) -> None:
    """Compile the tool's modules once, as pip does when it installs a package (and an editable
    checkout's first import does): a child then times the tool, not the compiling of its source,
    also where PYTHONDONTWRITEBYTECODE is set (~0.1-0.2 s a start on this machine)."""
    compileall.compile_dir(str(checkout / "exporter"), quiet=1)


def _child_env() -> dict[str, str]:
    """The environment for child processes, with this checkout importable."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_child(code: str, args: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``python -c code args`` to completion: wall seconds and its own peak RSS (bytes)."""
    start, used = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=_child_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - used
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (exit {proc.returncode}): {args}\n{proc.stderr[-3000:]}")
    peak = json.loads(proc.stderr.strip().splitlines()[-1])
    kib = peak["vmhwm_kib"] if peak["vmhwm_kib"] is not None else peak["ru_maxrss_kib"]
    return {"seconds": wall, "cpu_seconds": cpu, "peak_rss_bytes": kib * 1024, "ru_maxrss_kib": peak["ru_maxrss_kib"],
            "load1": load1()}


def _children_cpu() -> float:
    """User + system CPU seconds of the finished children: steadier than wall time on a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every numeric field of the samples, plus the raw samples."""
    keys = [k for k, v in samples[0].items() if isinstance(v, (int, float))]
    return {**{f"median_{k}": statistics.median(s[k] for s in samples) for k in keys}, "samples": samples}


def load1() -> float:
    """The 1-minute load average: other work on a 2-core machine skews every figure."""
    return os.getloadavg()[0]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_target(targets: list[dict[str, Any]], text: str, value: float, shown: str, ok: bool) -> None:
    """Record one of the issue's targets with its measured value and PASS/FAIL."""
    targets.append({"target": text, "value": value, "shown": shown, "ok": ok})


# -- extraction ------------------------------------------------------------------------------


@contextmanager
def sandbox(records: int, latency_ms: float, cwd: Path) -> Iterator[str]:
    """The sandbox API in its own process; yields its URL and kills it on the way out."""
    proc = subprocess.Popen([sys.executable, "-c", SANDBOX_CODE, str(records), str(latency_ms)],
                            cwd=cwd, env=_child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"sandbox did not start (exit {proc.poll()}, said {url!r})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


def naive_fetch(url: str) -> tuple[int, int]:
    """The vendor's documented loop: sequential plain ``requests.get``, page_size 50, float
    amounts, items collected in a list: (records, pages)."""
    window = month_window(PERIOD)
    items: list[dict[str, Any]] = []
    page, page_size = 1, 50
    while True:
        response = requests.get(url + BILLINGS, headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=60,
                                params={"page": page, "page_size": page_size, "start_date": window.first_day.isoformat(),
                                        "end_date": window.last_day.isoformat()})
        response.raise_for_status()
        data = response.json()["data"]
        items.extend(data["items"])
        if page * page_size >= data["pagination"]["total"]:
            return len(items), page
        page += 1


def tool_fetch(url: str, concurrency: int) -> tuple[int, int]:
    """``exporter.pipeline.fetch`` in this process, lines to a no-op sink: (records, pages)."""
    config = ExportConfig(LiveSource(month_window(PERIOD)),
                          ApiSettings(base_url=url, api_key=DEMO_KEY, concurrency=concurrency, page_size=100))
    extraction = fetch(config, sink=lambda line: None)
    return extraction.stats.in_period, extraction.stats.pages


def timed(func: Callable[[], tuple[int, int]]) -> dict[str, Any]:
    """One sample: seconds of ``func()`` (after a garbage collection), its (records, pages), the load."""
    gc.collect()
    start = time.perf_counter()
    records, pages = func()
    return {"seconds": time.perf_counter() - start, "records": records, "pages": pages, "load1": load1()}


def full_export(url: str, concurrency: int, tmp: Path) -> dict[str, Any]:
    """One ``wavespeed-export export`` of the month with its default formats, reconciliation and
    books, in a child process (interpreter start included): its wall time and peak RSS."""
    out = tmp / "out-full-export"
    try:
        return run_child(TOOL_RENDER_CODE, ["export", "--period", PERIOD, "--base-url", url, "--api-key", DEMO_KEY,
                                            "--concurrency", str(concurrency), "--out", str(out), "-q"], tmp)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bench_extraction(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Baseline, tool and full export at each concurrency, interleaved per repeat, against one sandbox."""
    cases: dict[str, list[dict[str, Any]]] = {}
    with sandbox(args.records, args.latency_ms, tmp) as url:
        requests.get(url + "/api/v3/account/balance", headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=60)
        for r in range(args.repeat):
            runs = [] if args.skip_baseline else [("baseline", lambda: naive_fetch(url))]
            runs += [(f"c{c}", lambda c=c: tool_fetch(url, c)) for c in args.concurrency_levels]
            for name, func in runs:
                sample = timed(func)
                cases.setdefault(name, []).append(sample)
                log(f"  extract {name:<8} run {r + 1}: {sample['seconds']:7.2f} s, {sample['records']:,} records, "
                    f"{sample['pages']} pages, load {sample['load1']:.2f}")
            for c in args.full_export_levels:
                sample = full_export(url, c, tmp)
                cases.setdefault(f"export c{c}", []).append(sample)
                log(f"  full export c{c} run {r + 1}: {sample['seconds']:7.2f} s, {sample['cpu_seconds']:.2f} s CPU, "
                    f"{sample['peak_rss_bytes'] / MIB:.0f} MiB, load {sample['load1']:.2f}")
    out = {name: summarise(samples) for name, samples in cases.items()}
    pages = next((out[f"c{c}"]["median_pages"] for c in args.concurrency_levels), -(-args.records // 100))
    for c in args.concurrency_levels:
        out[f"c{c}"]["bound_s"] = out[f"c{c}"]["median_pages"] * args.latency_ms / 1000 / c
    for c in args.full_export_levels:  # the bound of the month's own walk (the export makes a few more requests)
        out[f"export c{c}"]["bound_s"] = pages * args.latency_ms / 1000 / c
    return out


def print_extraction(args: argparse.Namespace, res: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    print(f"\nExtraction: {args.records:,} records of {PERIOD}, latency {args.latency_ms:g} ms/request, page cap 100;"
          f"\n  sandbox in its own process; tool = exporter.pipeline.fetch in this process (page_size 100, no-op sink);"
          f"\n  bound = pages x latency / concurrency (pages at page size 100)")
    print(f"  {'case':<28}{'median s':>9}{'records/s':>11}{'vs baseline':>12}{'bound s':>9}{'vs bound':>9}{'load':>6}")
    base = res.get("baseline")
    names = (["baseline"] if base else []) + [f"c{c}" for c in args.concurrency_levels]
    for name in names:
        case = res[name]
        t, bound = case["median_seconds"], case.get("bound_s")
        label = "naive baseline (seq, ps 50)" if name == "baseline" else f"tool concurrency {name[1:]}"
        print(f"  {label:<28}{t:>9.2f}{case['median_records'] / t:>11,.0f}{ratio_text(base, t):>12}"
              f"{(f'{bound:.2f}' if bound else '-'):>9}{(f'{t / bound:.2f}x' if bound else '-'):>9}{case['median_load1']:>6.2f}")
    for c in args.full_export_levels:
        case = res[f"export c{c}"]
        t, bound = case["median_seconds"], case["bound_s"]
        label = f"full export concurrency {c}"
        print(f"  {label:<28}{t:>9.2f}{args.records / t:>11,.0f}{'-':>12}{bound:>9.2f}{t / bound:>8.2f}x"
              f"{case['median_load1']:>6.2f}   ({case['median_cpu_seconds']:.2f} s CPU, "
              f"{case['median_peak_rss_bytes'] / MIB:.0f} MiB)")
    if 8 in args.full_export_levels:
        over = res["export c8"]["median_seconds"] / res["export c8"]["bound_s"]
        add_target(targets, "full default export c=8 within 1.5x of pages x latency / 8", over, f"{over:.2f}x",
                   over <= 1.5)
    if 8 in args.concurrency_levels:
        c8 = res["c8"]
        if base:
            speedup = base["median_seconds"] / c8["median_seconds"]
            add_target(targets, "extraction c=8 >= 8x faster than the naive baseline", speedup, f"{speedup:.2f}x",
                       speedup >= 8)
        over = c8["median_seconds"] / c8["bound_s"]
        add_target(targets, "extraction c=8 within 1.5x of pages x latency / 8", over, f"{over:.2f}x", over <= 1.5)


def ratio_text(base: dict[str, Any] | None, seconds: float) -> str:
    """The baseline's median time over ``seconds``, as ``12.34x``."""
    return f"{base['median_seconds'] / seconds:.2f}x" if base else "-"


# -- render ----------------------------------------------------------------------------------


def make_archive(records: int, pack: Path, tmp: Path) -> Path:
    """``<pack>/source/``: an archive of ``records`` records, made in a child (keeps this process small)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", ARCHIVE_CODE, str(records), str(pack / "source")],
                          cwd=tmp, env=_child_env(), capture_output=True, text=True, check=True)
    log(f"  archive of {int(proc.stdout):,} records written in {time.perf_counter() - start:.1f} s")
    return pack


def render(pack: Path, formats: str, tmp: Path, label: str) -> dict[str, Any]:
    """One child run of the tool (or, for ``formats="naive"``, the baseline); output deleted after."""
    out = tmp / f"out-{'all' if formats == ALL_FORMATS else formats.replace(',', '+').replace(' ', '')}"
    out.mkdir()
    try:
        if formats == YARDSTICK:
            sample = run_child(READ_YARDSTICK_CODE, [str(pack / "source")], tmp)
        elif formats == "naive":
            sample = run_child(NAIVE_RENDER_CODE, [str(pack / "source"), str(out)], tmp)
        else:
            sample = run_child(TOOL_RENDER_CODE, ["export", "--from-source", str(pack), "--out", str(out),
                                                  "--format", formats, "--accounts", str(ACCOUNTS), "-q"], tmp)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    log(f"  {label:<38}: {sample['seconds']:7.2f} s, {sample['cpu_seconds']:7.2f} s CPU, {sample['peak_rss_bytes'] / MIB:6.0f} MiB, load {sample['load1']:.2f}")
    return sample


def bench_render(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Each format (and the naive baseline) once per repeat, interleaved."""
    if args.archive is not None and (args.archive / "source" / "billings.jsonl.gz").exists():
        pack = args.archive  # the same archive for two runs (before and after a change)
        log(f"  reusing the archive in {pack}")
    else:
        pack = make_archive(args.render_records, args.archive or tmp / "src", tmp)
    cases: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.repeat):
        cases.setdefault(YARDSTICK, []).append(render(pack, YARDSTICK, tmp, f"yardstick {YARDSTICK} run {r + 1}"))
        for formats in args.render_formats:
            cases.setdefault(formats, []).append(render(pack, formats, tmp, f"render {formats} run {r + 1}"))
        if not args.skip_baseline and r < args.baseline_repeat:
            cases.setdefault("baseline", []).append(render(pack, "naive", tmp, f"render naive baseline run {r + 1}"))
    return {name: summarise(samples) for name, samples in cases.items()}


def print_render(args: argparse.Namespace, res: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    print(f"\nRender: export --from-source of {args.render_records:,} records, one child process per run"
          f"\n  (wall = the child process, interpreter start included; peak RSS = the child's VmHWM)")
    print(f"  {'case':<36}{'median s':>10}{'CPU s':>8}{'peak RSS MiB':>14}{'runs':>6}{'load':>7}")
    yardstick = res[YARDSTICK]["median_seconds"]
    for name in [YARDSTICK, *RENDER_FORMATS, "baseline"]:
        if name in res:
            case = res[name]
            label = {"baseline": "naive pandas baseline (csv+xlsx)", YARDSTICK: f"yardstick: {YARDSTICK}"}.get(
                name, f"tool --format {'all' if name == ALL_FORMATS else name}")
            print(f"  {label:<36}{case['median_seconds']:>10.2f}{case['median_cpu_seconds']:>8.2f}"
                  f"{case['median_peak_rss_bytes'] / MIB:>14.0f}{len(case['samples']):>6}{case['median_load1']:>7.2f}"
                  f"{case['median_seconds'] / yardstick:>8.2f}x yardstick")
    if ALL_FORMATS not in res or "csv" not in res:
        return
    every = res[ALL_FORMATS]
    note = "" if args.render_records == 1_000_000 else f" (targets are for 1,000,000; ran {args.render_records:,})"
    wall, peak, csv_s = every["median_seconds"], every["median_peak_rss_bytes"], res["csv"]["median_seconds"]
    add_target(targets, f"render all formats <= 15 s wall{note}", wall, f"{wall:.2f} s", wall <= 15)
    add_target(targets, f"render all formats <= 1.5 GB peak RSS{note}", peak,
               f"{peak / 1e9:.2f} GB ({peak / MIB:,.0f} MiB)", peak <= GB_LIMIT)
    if "baseline" in res:
        ratio = res["baseline"]["median_seconds"] / wall
        print(f"  baseline / tool (all formats): {ratio:.2f}x")
        add_target(targets, f"render all formats >= 5x faster than the naive baseline{note}", ratio,
                   f"{ratio:.2f}x", ratio >= 5)
    add_target(targets, f"render csv alone <= 10 s{note}", csv_s, f"{csv_s:.2f} s", csv_s <= 10)
    over = wall / yardstick
    add_target(targets, f"render all formats <= 1.5x the {YARDSTICK} yardstick{note}", over, f"{over:.2f}x", over <= 1.5)
    add_target(targets, f"render all formats <= 500 MiB peak RSS{note}", peak, f"{peak / MIB:,.0f} MiB", peak <= 500 * MIB)


# -- memory scaling ----------------------------------------------------------------------------


def bench_scaling(args: argparse.Namespace, tmp: Path, rendered: dict[str, Any] | None) -> dict[str, Any]:
    """All-formats render at each size; the render section's runs are reused for its own size."""
    out: dict[str, Any] = {}
    for size in args.scaling:
        if rendered is not None and ALL_FORMATS in rendered and size == args.render_records:
            out[str(size)] = {**rendered[ALL_FORMATS], "reused_from_render": True}
            continue
        pack = make_archive(size, tmp / f"src-{size}", tmp)
        samples = [render(pack, ALL_FORMATS, tmp, f"scaling {size:,} run {r + 1}") for r in range(args.repeat)]
        shutil.rmtree(pack, ignore_errors=True)
        out[str(size)] = summarise(samples)
    return out


def print_scaling(res: dict[str, Any]) -> None:
    """Peak RSS per size, its marginal cost per record, and each point's distance from a linear fit."""
    sizes = sorted(int(k) for k in res)
    peaks = [res[str(s)]["median_peak_rss_bytes"] for s in sizes]
    slope, intercept = statistics.linear_regression(sizes, peaks) if len(sizes) >= 2 else (0.0, peaks[0])
    print(f"\nMemory scaling: export --format {ALL_FORMATS} --from-source, peak RSS (child VmHWM)")
    print(f"  {'records':>10}{'median s':>10}{'peak RSS MiB':>14}{'bytes/record':>14}{'marginal B/rec':>16}{'vs fit':>8}")
    for i, (size, peak) in enumerate(zip(sizes, peaks)):
        marginal = f"{(peak - peaks[i - 1]) / (size - sizes[i - 1]):,.0f}" if i else "-"
        fit = intercept + slope * size
        print(f"  {size:>10,}{res[str(size)]['median_seconds']:>10.2f}{peak / MIB:>14.0f}{peak / size:>14,.0f}"
              f"{marginal:>16}{(peak - fit) / fit * 100:>+7.1f}%")
    if len(sizes) >= 2:
        print(f"  linear fit: {intercept / MIB:,.0f} MiB + {slope:,.0f} bytes/record")
    res["fit"] = {"intercept_bytes": intercept, "bytes_per_record": slope}


# -- main ------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    """``"1,4,8"`` -> ``[1, 4, 8]``."""
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--records", type=int, default=200_000, help="records the sandbox serves for extraction")
    p.add_argument("--latency-ms", type=float, default=20.0, help="sandbox latency per request")
    p.add_argument("--concurrency-levels", type=int_list, default="1,4,8,16", help="comma-separated")
    p.add_argument("--full-export-levels", type=int_list, default="8",
                   help="concurrency of the full default export (a child `export` of the month, default formats, "
                        "reconciliation and books), comma-separated; empty: none")
    p.add_argument("--render-records", type=int, default=1_000_000, help="records in the render archive")
    p.add_argument("--scaling", type=int_list, default="250000,500000,1000000", help="comma-separated sizes")
    p.add_argument("--repeat", type=int, default=3, help="runs per case (medians are reported)")
    p.add_argument("--baseline-repeat", type=int, help="runs of the slow naive render baseline (default: --repeat)")
    p.add_argument("--render-formats", default=",".join(RENDER_CASES),
                   help=f"render cases, comma-separated, of {', '.join(RENDER_CASES)} (classic = {CLASSIC_FORMATS})")
    p.add_argument("--archive", type=Path, help="the render's pack folder: made there if missing, reused if present")
    p.add_argument("--json", type=Path, help="write every result and raw sample here")
    for part, what in [("extract", "extraction"), ("render", "render"), ("baseline", "naive baselines"),
                       ("scaling", "memory scaling")]:
        p.add_argument(f"--skip-{part}", action="store_true", help=f"skip the {what}")
    args = p.parse_args(argv)
    unknown = [name for name in args.render_formats.split(",") if name not in RENDER_CASES]
    if unknown:
        p.error(f"unknown --render-formats {', '.join(unknown)}")
    args.render_formats = [RENDER_CASES[name] for name in args.render_formats.split(",")]
    args.baseline_repeat = args.repeat if args.baseline_repeat is None else min(args.baseline_repeat, args.repeat)
    if args.repeat < 1 or args.records < 2 or args.render_records < 2 or any(s < 2 for s in args.scaling):
        p.error("--repeat must be >= 1 and record counts >= 2")
    return args


def load_text() -> str:
    """The load averages, as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


def code_version() -> str:
    """The checkout's commit, ``+dirty`` if exporter/ has uncommitted changes (others may be editing it)."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+dirty" if git("status", "--porcelain", "exporter") else "")


def environment() -> dict[str, Any]:
    import openpyxl
    import pandas

    return {"python": sys.version.split()[0], "pandas": pandas.__version__, "openpyxl": openpyxl.__version__,
            "requests": requests.__version__, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "code_start": code_version(), "loadavg_start": os.getloadavg(), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    results: dict[str, Any] = {"parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "environment": env, "targets": []}
    print(f"wavespeed-export benchmark: python {env['python']}, pandas {env['pandas']}, openpyxl {env['openpyxl']}, "
          f"{env['cpu_count']} CPUs, {env['platform']}; medians of {args.repeat} run(s)")
    print(f"code: {env['code_start']}; load average at start: {load_text()} (other work on this machine skews the figures)")
    started = time.perf_counter()
    byte_compile(REPO)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as temporary:
        tmp = Path(temporary)
        if not args.skip_extract:
            log("extraction ...")
            results["extraction"] = bench_extraction(args, tmp)
            print_extraction(args, results["extraction"], results["targets"])
        if not args.skip_render:
            log("render ...")
            results["render"] = bench_render(args, tmp)
            print_render(args, results["render"], results["targets"])
        if not args.skip_scaling and args.scaling:
            log("memory scaling ...")
            results["scaling"] = bench_scaling(args, tmp, results.get("render"))
            print_scaling(results["scaling"])
    if results["targets"]:
        print("\nTargets:")
        for t in results["targets"]:
            print(f"  [{'PASS' if t['ok'] else 'FAIL'}] {t['target']}: {t['shown']}")
    results["total_seconds"] = time.perf_counter() - started
    env["loadavg_end"], env["code_end"] = os.getloadavg(), code_version()
    if env["code_end"] != env["code_start"]:
        print(f"WARNING: the code changed during the run ({env['code_start']} -> {env['code_end']}): "
              "in-process extraction used the code imported at the start, render children the code of their time")
    print(f"\ntotal benchmark time: {results['total_seconds'] / 60:.1f} min; load average at end: {load_text()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
