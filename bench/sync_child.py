"""One measured sync in a fresh process (after one warm-up run): prints its wall and CPU time, peak RSS and
request counts as JSON.

Run by `bench/__main__.py`, by path, with the settings in the environment and PYTHONPATH naming the tree whose
`sync_core` is measured; argv[1:] are the report days (YYYY-MM-DD), all synced by each run. `started` is the
measured run's start on the system clock (`time.time()`), so the parent can tell its requests from the warm-up's.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import date


def main() -> int:
    days = [date.fromisoformat(arg) for arg in sys.argv[1:]]
    # The Functions host ships log records through its own handler; here they go nowhere, so the run's cost
    # is the app's own work and not Python's last-resort printing of every warning to stderr.
    logging.getLogger().addHandler(logging.NullHandler())

    from sync_core.run.pipeline import RunRequest, run_sync
    from sync_core.services import Services
    from sync_core.settings import load_settings

    services = Services.build(load_settings())
    store = services.store
    rss_before_kib = _status_kib("VmHWM")
    # The first run in a process pays for first connections and first-use setup; the Functions worker is a
    # long-lived process, so the measured run is the second one (the first is reported as `cold`).
    cold0 = time.perf_counter()
    run_sync(RunRequest(trigger="cli", dates=days), services=services)
    cold = time.perf_counter() - cold0
    started = time.time()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    record = run_sync(RunRequest(trigger="cli", dates=days), services=services)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    json.dump(
        {
            "status": record.status,
            "error": record.error,
            "started": started,
            "wall_s": wall,
            "cold_wall_s": cold,
            "cpu_s": cpu,
            "peak_rss_mib": _status_kib("VmHWM") / 1024,
            "rss_after_imports_mib": rss_before_kib / 1024,
            "storage_requests": store.requests,
            "upstream_requests": record.upstream_requests,
            "fetched_rows": record.fetched_rows,
            "sent_records": record.sent_records,
        },
        sys.stdout,
    )
    return 0


def _status_kib(field: str) -> int:
    """The process's own high-water RSS. Not getrusage's ru_maxrss: on Linux a child inherits the parent's
    peak through fork and exec, and the parent here holds every stand-in's rows."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")


if __name__ == "__main__":
    sys.exit(main())
