"""`python -m bench.dashboard`: how long GET /dashboard takes and how big it is with a full week of runs (7 x 144).

Starts Azurite on 127.0.0.1, writes a made-up week of run records, and calls the page's code as the function does:
first with nothing kept (every record read), then as a worker that has served it before. Printed, never asserted.
"""

from __future__ import annotations

import gzip
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(REPO))
    from sandbox.azurite import Azurite
    from sandbox.history import synthetic_runs
    from sync_core.settings import load_settings
    from sync_core.state.records import utcnow
    from sync_core.state.store import StateStore
    from sync_core.web import dashboard

    with tempfile.TemporaryDirectory(prefix="leadpier-bench-") as workdir, Azurite(Path(workdir)) as azurite:
        os.environ.update(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "LEADPIER_USERNAME": "bench",
                "LEADPIER_PASSWORD": "bench",
                "LE_API_URL": "http://127.0.0.1:9/le",
            }
        )
        settings = load_settings()
        store = StateStore(settings.storage)
        store.ensure_container()
        runs = list(synthetic_runs(utcnow(), tz=settings.timezone))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(store.save_run, runs))
        cache = dashboard.RunCache()
        started = time.perf_counter()
        first = dashboard.dashboard_page({"code": "bench-key"}, cache=cache)
        cold_ms = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(7):
            started = time.perf_counter()
            page = dashboard.dashboard_page({"code": "bench-key"}, cache=cache)
            warm.append((time.perf_counter() - started) * 1000)
        view = dashboard.collect({"code": "bench-key"}, cache=cache)
        html_ms = []
        for _ in range(7):
            started = time.perf_counter()
            dashboard.render(view)
            html_ms.append((time.perf_counter() - started) * 1000)
        print(
            f"GET /dashboard with {len(runs):,} runs in the window (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
        )
        print(
            f"  first render (every run record read: {cache.reads:,} reads)   {cold_ms:8.0f} ms   status {first.status_code}"
        )
        print(f"  later renders (listings only), median of 7          {statistics.median(warm):8.0f} ms")
        print(f"  building the HTML alone, median of 7                 {statistics.median(html_ms):8.1f} ms")
        print(
            f"  page size                                            {len(page.body):8,} bytes "
            f"({len(gzip.compress(page.body)):,} gzipped)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
