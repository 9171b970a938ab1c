"""The sandbox's two API generations side by side: a 200,000-record January walked page by page
(100 a page) over loopback, legacy ``GET /api/v3/account/billings`` against current
``POST /api/v3/billings/search`` (newest and oldest first). The server runs in its own process,
so the client does not share its GIL; "server handler" is the time spent inside its request
handler (parsing, answering, logging, writing).

    python benchmarks/bench_sandbox_generations.py
"""
import multiprocessing as mp
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

def serve(port_q, spent, lock):
    """Generate the data, serve both generations, add each request's handler time to ``spent``."""
    from exporter.sandbox import generate_dataset, make_server
    from exporter.sandbox import server as srvmod
    orig = srvmod._Handler._handle
    def timed(self, *a):
        t0 = time.perf_counter(); orig(self, *a)
        with lock: spent.value += time.perf_counter() - t0
    srvmod._Handler._handle = timed
    d = generate_dataset(months=("2024-01",), records_per_month=200_000)
    t = time.perf_counter(); s = make_server(dataset=d, api="both"); print(f"server start (current blob built): {time.perf_counter()-t:.2f}s", flush=True)
    port_q.put(s.url); s.serve_forever()

if __name__ == "__main__":
    q, spent, lock = mp.Queue(), mp.Value("d", 0.0), mp.Lock()
    p = mp.Process(target=serve, args=(q, spent, lock), daemon=True); p.start()
    url = q.get(timeout=120)
    from exporter.sandbox import DEMO_KEY
    A = {"Authorization": f"Bearer {DEMO_KEY}"}; sess = requests.Session()
    def legacy():
        n, page = 0, 1
        while True:
            r = sess.get(url + "/api/v3/account/billings", params={"page": page, "page_size": 100, "start_date": "2024-01-01", "end_date": "2024-01-31"}, headers=A)
            data = r.json()["data"]; n += len(data["items"])
            if page * 100 >= data["pagination"]["total"]: return n
            page += 1
    def current(sort):
        n, page = 0, 1
        while True:
            r = sess.post(url + "/api/v3/billings/search", json={"page": page, "page_size": 100, "start_time": "1704067200000", "end_time": "1706745600000", "sort": sort}, headers=A)
            data = r.json()["data"]; n += len(data["items"])
            if page * 100 >= data["total"]: return n
            page += 1
    runs = [("legacy", legacy), ("current DESC", lambda: current("created_at DESC")), ("current ASC", lambda: current("created_at ASC"))] * 3
    for name, f in runs:
        with lock: spent.value = 0.0
        t = time.perf_counter(); n = f(); wall = time.perf_counter() - t
        print(f"{name:13s} {n} records, {-(-n//100)} pages: wall {wall:.2f}s, server handler {spent.value:.2f}s", flush=True)
    p.terminate()
