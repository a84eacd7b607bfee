"""`python -m bench.dashboard`: how long GET /dashboard takes and how big it is with a full week of runs (7 x 144).

Starts Azurite on 127.0.0.1 (or uses the one `python -m bench` started), writes a made-up week of run records and
their day summaries, as runs do, and calls the page's code as the function does, side by side in one process:
before (every run record read by a new worker, as the page did before the summaries) and after (the days'
summaries), each first on a new worker (cold) and then as a worker that has served it before (warm).
Printed, never asserted.
"""

from __future__ import annotations

import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WARM_CALLS = 7
COLD_CALLS = 3  # a new worker each: its first render


def measure(connection_string: str) -> dict[str, Any]:
    """Every figure of the page, before and after, against the storage at `connection_string`."""
    from sandbox.history import record_counted, synthetic_runs
    from sync_core.settings import load_settings
    from sync_core.state import summaries
    from sync_core.state.records import utcnow
    from sync_core.state.store import StateStore
    from sync_core.web import dashboard

    os.environ.update(
        {
            "AzureWebJobsStorage": connection_string,
            "SYNC_STATE_CONTAINER": "bench-dashboard",
            "LEADPIER_USERNAME": "bench",
            "LEADPIER_PASSWORD": "bench",
            "LE_API_URL": "http://127.0.0.1:9/le",
        }
    )
    settings = load_settings()
    store = StateStore(settings.storage)
    store.ensure_container()
    now = utcnow()
    runs = list(synthetic_runs(now, tz=settings.timezone))
    record_counted(store, runs, now)  # as the runs left it: each counted, nothing left to repair
    by_day: dict[Any, list[Any]] = {}
    for record in runs:
        by_day.setdefault(summaries.run_day(record.run_id), []).append(record)
    for day, records in by_day.items():
        summaries.add_runs(store, day, records, replace=True)

    def timed(cache: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        page = dashboard.dashboard_page({"code": "bench-key"}, cache=cache)
        return (time.perf_counter() - started) * 1000, page

    figures: dict[str, Any] = {"runs": len(runs)}
    for label, use_summaries in (("before", False), ("after", True)):
        cold, reads = [], 0
        for _ in range(COLD_CALLS):
            cache = dashboard.RunCache(summaries=use_summaries)
            ms, page = timed(cache)
            cold.append(ms)
            reads = cache.reads + cache.summary_reads
        warm = [timed(cache)[0] for _ in range(WARM_CALLS)]
        figures[label] = {
            "cold_ms": statistics.median(cold),
            "warm_ms": statistics.median(warm),
            "blob_reads_cold": reads,
            "status": page.status_code,
        }
    view = dashboard.collect({"code": "bench-key"}, cache=cache)
    html_ms = []
    for _ in range(WARM_CALLS):
        started = time.perf_counter()
        html = dashboard.render(view)
        html_ms.append((time.perf_counter() - started) * 1000)
    body = html.encode()
    figures["html_ms"] = statistics.median(html_ms)
    figures["page_bytes"] = len(body)
    figures["page_gzip_bytes"] = len(gzip.compress(body))
    return figures


def report(figures: dict[str, Any]) -> str:
    """The figures as a table, before and after side by side."""
    before, after = figures["before"], figures["after"]
    return "\n".join(
        [
            f"GET /dashboard with {figures['runs']:,} runs in the window (Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})",
            f"{'':46} {'before':>8} {'after':>8}  target",
            f"{'first render, new worker (median of 3), ms':46} {before['cold_ms']:8.0f} {after['cold_ms']:8.0f}  <= 300",
            f"{'  blobs read one by one (records / summaries)':46} {before['blob_reads_cold']:8,} "
            f"{after['blob_reads_cold']:8,}",
            f"{'later renders (median of 7), ms':46} {before['warm_ms']:8.0f} {after['warm_ms']:8.0f}  <= 60",
            f"{'building the HTML alone (median of 7), ms':46} {'':8} {figures['html_ms']:8.1f}",
            f"{'page, bytes (gzipped, as sent to a browser)':46} {'':8} {figures['page_bytes']:8,}  <= 120,000 "
            f"({figures['page_gzip_bytes']:,})",
        ]
    )


def main() -> int:
    sys.path.insert(0, str(REPO))
    from sandbox.azurite import Azurite

    with tempfile.TemporaryDirectory(prefix="leadpier-bench-") as workdir, Azurite(Path(workdir)) as azurite:
        print(report(measure(azurite.connection_string)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
