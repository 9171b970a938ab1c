"""Two checkouts against each other: the 1M render (csv, every format), the 200k extraction at c8
and the full default export of those 200k records at c8.

Each round runs the two checkouts back to back, so machine load hits both alike: the base first
in even rounds, the new one first in odd ones (what ran second was seen to run slower). Prints
medians and the median of the paired ratios. Each side runs with its own Python (so the base can
run in the environment it was released with):

    python benchmarks/bench_ab.py --base ../base --base-python ../venv-base/bin/python \
        --new . --new-python .venv/bin/python --rounds 3
"""
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import argparse

_parser = argparse.ArgumentParser(description="the 1M render and the 200k extraction, two checkouts interleaved")
_parser.add_argument("--base", type=Path, required=True, help="the base checkout")
_parser.add_argument("--base-python", default=sys.executable, help="the base's interpreter")
_parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent, help="the new checkout")
_parser.add_argument("--new-python", default=sys.executable, help="the new checkout's interpreter")
_parser.add_argument("--rounds", type=int, default=3)
_parser.add_argument("--render-records", type=int, default=1_000_000)
_parser.add_argument("--fetch-records", type=int, default=200_000)
_parser.add_argument("--skip-render", action="store_true", help="only the extraction and the full export")
ARGS = _parser.parse_args()
BASE, NEW = ARGS.base.resolve(), ARGS.new.resolve()
PYTHON = {BASE: ARGS.base_python, NEW: ARGS.new_python}
sys.path.insert(0, str(NEW / "benchmarks"))
sys.path.insert(0, str(NEW))
import bench_export as be  # noqa: E402

ROUNDS = ARGS.rounds
ALL = be.ALL_FORMATS


def child(side: Path, code: str, args: list[str], cwd: Path) -> tuple[float, float]:
    env = {**be.os.environ, "PYTHONPATH": str(side)}
    start = time.perf_counter()
    proc = subprocess.run([PYTHON[side], "-c", code, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    peak = json.loads(proc.stderr.strip().splitlines()[-1])
    return wall, (peak["vmhwm_kib"] or peak["ru_maxrss_kib"]) / 1024


FETCH = """
import sys, time
sys.path.insert(0, sys.argv[3] + '/benchmarks')
import bench_export as be
start = time.perf_counter(); be.tool_fetch(sys.argv[1], int(sys.argv[2]))
print(time.perf_counter() - start)
"""


def fetch(side: Path, url: str, cwd: Path) -> float:
    env = {**be.os.environ, "PYTHONPATH": str(side)}
    proc = subprocess.run([PYTHON[side], "-c", FETCH, url, "8", str(side)], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    results: dict[str, dict[str, list[float]]] = {}
    for side in (BASE, NEW):
        be.byte_compile(side)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pack = None if ARGS.skip_render else be.make_archive(ARGS.render_records, tmp / "pack", tmp)
        with be.sandbox(ARGS.fetch_records, 20.0, tmp) as url:
            for r in range(ROUNDS):
                order = (("base", BASE), ("new", NEW))
                for name, side in order if r % 2 == 0 else order[::-1]:
                    for formats in () if pack is None else ("csv", ALL):
                        out = tmp / f"out-{name}"
                        out.mkdir()
                        seconds, mib = child(side, be.TOOL_RENDER_CODE, ["export", "--from-source", str(pack), "--out",
                                                                          str(out), "--format", formats, "--accounts",
                                                                          str(be.ACCOUNTS), "-q"], tmp)
                        be.shutil.rmtree(out)
                        key = "render csv" if formats == "csv" else "render every format"
                        results.setdefault(key, {}).setdefault(name, []).append(seconds)
                        results.setdefault(key + " MiB", {}).setdefault(name, []).append(mib)
                        print(f"round {r} {name} {key}: {seconds:.2f} s {mib:.0f} MiB load {be.load1():.2f}", flush=True)
                    seconds = fetch(side, url, tmp)
                    results.setdefault("extraction c8", {}).setdefault(name, []).append(seconds)
                    print(f"round {r} {name} extraction c8: {seconds:.2f} s load {be.load1():.2f}", flush=True)
                    out = tmp / f"out-{name}"
                    seconds, mib = child(side, be.TOOL_RENDER_CODE, ["export", "--period", be.PERIOD, "--base-url", url,
                                                                      "--api-key", be.DEMO_KEY, "--concurrency", "8",
                                                                      "--out", str(out), "-q"], tmp)
                    be.shutil.rmtree(out)
                    results.setdefault("full export c8", {}).setdefault(name, []).append(seconds)
                    print(f"round {r} {name} full export c8: {seconds:.2f} s {mib:.0f} MiB load {be.load1():.2f}", flush=True)
    print()
    for key, sides in results.items():
        base, new = sides["base"], sides["new"]
        ratios = [n / b for b, n in zip(base, new)]
        print(f"{key:24} base {statistics.median(base):8.2f}  new {statistics.median(new):8.2f}  "
              f"median paired ratio {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
