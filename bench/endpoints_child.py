"""Latency of /health, /status and /logs?lines=50 called as functions, in a fresh process; prints JSON.

Run by `bench/__main__.py` with the settings in the environment; argv: calls per route, MiB of log to write first.
The storage requests each call sends are counted at the client (StateStore's per-request hook), with the
byte range of every read, to show that /logs reads the tail of the log and not the whole blob.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
import uuid
from typing import Any

ROUTES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("health", "/health", {}),
    ("status", "/status", {}),
    ("logs", "/logs", {"lines": "50"}),
)


class Context:
    """The parts of func.Context the app uses."""

    def __init__(self, function_name: str) -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.thread_local_storage = type("Local", (), {})()


def main() -> int:
    calls, log_mib = int(sys.argv[1]), int(sys.argv[2])
    logging.getLogger().addHandler(logging.NullHandler())

    from sync_core.settings import load_settings
    from sync_core.state import store as store_module
    from sync_core.state.records import utcnow

    sent: list[tuple[str, str | None]] = []
    counted = store_module.StateStore._count_request

    def count_request(self: store_module.StateStore, _request: Any) -> None:
        http = _request.http_request
        sent.append((http.method, http.headers.get("x-ms-range") or http.headers.get("Range")))
        counted(self, _request)

    store_module.StateStore._count_request = count_request  # type: ignore[method-assign]

    settings = load_settings()
    store = store_module.StateStore(settings.storage)
    today = utcnow().astimezone(settings.timezone).date()
    log_bytes = sum(size for _, size in store.log_parts(today))
    line = (
        "2026-01-31 10:00:00,000 - sync_core.pipeline - WARNING - Unmatched campaign code 'mta_0131-xyz-e7' "
        "(unknown_domain); sending it anyway\n"
    )
    target = log_mib * 2**20
    if log_bytes < target:
        padding = line * ((target - log_bytes) // len(line) + 1)
        # As a run does: the lines go to the day's log and their count to job_stats.json.
        store.update_job_stats(lambda stats: stats.count_log_lines(f"{today:%Y%m%d}", padding.count("\n")))
        store.append_log(today, padding)
        log_bytes = sum(size for _, size in store.log_parts(today))

    import azure.functions as func

    import function_app

    functions = {fn.get_function_name(): fn.get_user_function() for fn in function_app.app.get_functions()}
    figures: dict[str, Any] = {}
    logs_ranges: list[str | None] = []
    for name, path, params in ROUTES:
        handler = functions[name]

        def call(handler: Any = handler, name: str = name, path: str = path, params: dict[str, str] = params) -> Any:
            request = func.HttpRequest("GET", f"http://127.0.0.1:7071{path}", params=params, body=b"")
            return handler(req=request, context=Context(name))

        for _ in range(5):  # warm: first imports, first connections
            call()
        times = []
        del sent[:]
        for _ in range(calls):
            start = time.perf_counter()
            response = call()
            times.append((time.perf_counter() - start) * 1000)
        ranges = [r for _, r in sent]
        if name == "logs":
            logs_ranges = ranges[: len(ranges) // calls]
        times.sort()
        figures[name] = {
            "status": response.status_code,
            "p50_ms": statistics.median(times),
            "p95_ms": times[max(0, int(round(0.95 * len(times))) - 1)],
            "max_ms": times[-1],
            "storage_requests": len(sent) / calls,
            # The SDK reads a whole blob as a range from 0 of its first-chunk size (32 MiB): count those apart
            # from reads of a blob's tail.
            "whole_blob_reads": sum(1 for r in ranges if r and r.startswith("bytes=0-") and _range_length(r) >= 2**25)
            / calls,
        }
    json.dump({"routes": figures, "log_bytes": log_bytes, "logs_ranges": logs_ranges}, sys.stdout)
    print()
    return 0


def _range_length(text: str | None) -> int:
    if not text:
        return 0
    first, _, last = text.removeprefix("bytes=").partition("-")
    return int(last) - int(first) + 1 if last else 0


if __name__ == "__main__":
    sys.exit(main())
