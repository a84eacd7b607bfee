"""One worker process with the telemetry the host's Python worker sets up, driven through `azure_functions_runtime`.

`python -m tests.runtime.telemetry_child '<plan JSON>'` from the repo root, with
`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true` and `APPLICATIONINSIGHTS_CONNECTION_STRING` in the environment:
the worker's init configures the Azure Monitor distro itself (as on Flex Consumption), then each step of the plan is
one invocation with the `traceparent` of the host's invocation span. Before it exits the process flushes what the
distro buffered, so the test reads every item at its ingestion endpoint. OpenTelemetry's providers are global to a
process, hence a process of its own.

The plan: {"lock_wait_s": float or null, "flush_s": the most the flush may take (20 s), "steps": [{"do": "timer" | "trigger" | "deliver", "traceparent": "...",
"body": {...} (trigger), "dequeue_count": int (deliver)}]}; `deliver` takes the messages of the last `trigger`.
Prints one JSON line: per step, whether the invocation succeeded, its error, and the messages /trigger queued.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

FLUSH_BUDGET_S = 20.0


def main(plan: dict[str, Any]) -> list[dict[str, Any]]:
    from azure_functions_runtime import start_threadpool_executor, stop_threadpool_executor

    from tests.runtime.worker import Host, start_worker

    start = start_worker()
    if not start.ok:
        raise SystemExit(f"the worker refused the app: {start.failure}")
    if plan.get("lock_wait_s") is not None:
        from sync_core.services import Timing, use_timing

        # The real wait is two minutes; this process ends with the plan, so the timing is never restored.
        use_timing(Timing(backfill_lock_wait_s=plan["lock_wait_s"])).__enter__()
    host = Host(start)
    results: list[dict[str, Any]] = []
    queued: list[str] = []
    start_threadpool_executor()
    try:
        for step in plan["steps"]:
            traceparent = step["traceparent"]
            if step["do"] == "timer":
                done = host.fire_timer(None, traceparent=traceparent)
                results.append({"ok": done.ok, "error": done.error})
            elif step["do"] == "trigger":
                done = host.post_trigger(step.get("body") or b"", traceparent=traceparent)
                queued = done.queue_messages("queued_runs")
                results.append({"ok": done.ok, "error": done.error, "status": done.http.status_code, "queued": queued})
            else:
                for message in queued:
                    done = host.deliver(message, step.get("dequeue_count", 1), traceparent=traceparent)
                    results.append({"ok": done.ok, "error": done.error})
    finally:
        stop_threadpool_executor()
        flush(plan.get("flush_s", FLUSH_BUDGET_S))
    return results


def flush(budget_s: float = FLUSH_BUDGET_S) -> None:
    """What the worker's distro holds, sent now (the host would keep the worker running instead). An export that
    cannot get a token keeps asking for one, so each provider flushes on a thread of its own, within the budget."""
    from opentelemetry import _logs, metrics, trace

    # The SDK's providers flush; the API's abstract ones (telemetry off) do not: only callables are started.
    flushes = [
        getattr(provider, "force_flush", None)
        for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(), metrics.get_meter_provider())
    ]
    threads = [threading.Thread(target=flush_now, daemon=True) for flush_now in flushes if callable(flush_now)]
    deadline = time.monotonic() + budget_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
    # Flushed already: the providers' exit hooks would export again, with no bound when no token can be had.
    os._exit(0)
