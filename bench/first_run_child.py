"""A new Functions worker's start and its first two timer runs, in this fresh process: prints their times as JSON.

Run by `bench/first_run.py` by path, with the settings in the environment and PYTHONPATH pointing at the tree to
measure (the working tree, or the code before a change): the worker is started as the host starts it
(`tests.runtime.worker`: init, the import and indexing of `function_app`, the metadata and load requests), then
`sync_timer` is invoked twice through the runtime's native path. argv[1] is how many days the run's clock is moved
ahead for the first run (the second is one day later), so both runs sync two report days (today and the unfinalized
yesterday) and do the same work.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import AbstractContextManager
from datetime import timedelta


def main() -> int:
    shift = timedelta(days=int(sys.argv[1]))
    # The host ships log records through its own handler; here they go nowhere, as in bench/sync_child.py.
    logging.getLogger().addHandler(logging.NullHandler())
    # The host's side: loaded before the app in a real worker, so not part of the worker's start below.
    from azure_functions_runtime import start_threadpool_executor, stop_threadpool_executor

    from tests.runtime.worker import Host, start_worker

    before = set(sys.modules)
    start0 = time.perf_counter()
    start = start_worker()
    start_s = time.perf_counter() - start0
    if not start.ok:
        raise SystemExit(f"the worker refused the app: {start.failure}")
    at_start = set(sys.modules)

    start_threadpool_executor()
    host = Host(start)
    runs: list[float] = []
    outcomes: list[dict[str, object]] = []
    after_first: set[str] = set()
    try:
        for run in range(2):
            run0 = time.perf_counter()
            if run == 0:
                # Inside the first run's time: installing the clock loads sync_core.services, which the run loads.
                _install_clock(shift)
            else:
                _CLOCK[0] += timedelta(days=1)
            fired = host.fire_timer(None)
            runs.append(time.perf_counter() - run0)
            after_first = after_first or set(sys.modules)
            if not fired.ok:
                raise SystemExit(f"the timer run failed: {fired.error}")
            outcomes.append(_last_run())
    finally:
        stop_threadpool_executor()
    json.dump(
        {
            "worker_start_s": start_s,
            "first_run_s": runs[0],
            "warm_run_s": runs[1],
            "modules_at_start": len(at_start - before),
            "modules_first_run": len(after_first - at_start),
            "packages_first_run": sorted({_package(m) for m in after_first - at_start}),
            "runs": outcomes,
        },
        sys.stdout,
    )
    return 0


def _package(module: str) -> str:
    """A module's distribution as far as its name tells: `azure.storage.blob` for the SDK's parts, else the top."""
    parts = module.split(".")
    return ".".join(
        parts[:3] if parts[0] == "azure" and parts[1:2] == ["storage"] else parts[: 2 if parts[0] == "azure" else 1]
    )


_CLOCK = [timedelta(0)]
_KEPT: list[AbstractContextManager[object]] = []


def _install_clock(shift: timedelta) -> None:
    """Every run of this process on a clock `shift` ahead of the real one (moved on between the runs)."""
    from dataclasses import replace

    from sync_core.services import timing, use_timing

    _CLOCK[0] = shift
    real = timing().clock
    _KEPT.append(use_timing(replace(timing(), clock=lambda: real() + _CLOCK[0])))
    _KEPT[-1].__enter__()  # kept, and never left: the process ends with it


def _last_run() -> dict[str, object]:
    """The run just made, as job_stats.json's last execution tells it: its status, report days and records."""
    from sync_core.services import services

    last = services().store.load_job_stats()[0].last_execution
    if last is None:
        return {"status": None}
    return {"status": last.status, "report_dates": last.report_dates, "sent_records": last.sent_records}


if __name__ == "__main__":
    sys.exit(main())
