"""What the worker tells the host about the app when it starts: every function, its bindings and their settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("azure_functions_runtime", reason="the Functions Python runtime is installed on Python 3.13+ only")

from tests.runtime import protos_standin as protos
from tests.runtime.worker import REPO_ROOT, WorkerStart

QUEUE = {"queueName": "leadpier-sync-runs", "connection": "AzureWebJobsStorage"}


def http(route: str, method: str, auth: str, *more: dict[str, Any]) -> list[dict[str, Any]]:
    """An HTTP function's bindings: its trigger `req`, its response as `$return`, and any others."""
    return [
        {
            "name": "req",
            "type": "httpTrigger",
            "direction": "IN",
            "route": route,
            "methods": [method],
            "authLevel": auth,
        },
        {"name": "$return", "type": "http", "direction": "OUT"},
        *more,
    ]


# Every function of the app and the bindings the host must read for it (each binding: these keys at least).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "sync_timer": [
        {
            "name": "timer",
            "type": "timerTrigger",
            "direction": "IN",
            "schedule": "0 */10 * * * *",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ],
    "sync_worker": [{"name": "message", "type": "queueTrigger", "direction": "IN", **QUEUE}],
    "service_info": http("{ignored:maxlength(0)?}", "GET", "ANONYMOUS"),
    "health": http("health", "GET", "ANONYMOUS"),
    "status": http("status", "GET", "FUNCTION"),
    "runs": http("runs/{run_id?}", "GET", "FUNCTION"),
    "logs": http("logs", "GET", "FUNCTION"),
    "logs_download": http("logs/download", "GET", "FUNCTION"),
    "trigger": http(
        "trigger", "POST", "FUNCTION", {"name": "queued_runs", "type": "queue", "direction": "OUT", **QUEUE}
    ),
    "openapi": http("openapi.json", "GET", "ANONYMOUS"),
    "docs": http("docs", "GET", "ANONYMOUS"),
    "dashboard": http("dashboard", "GET", "FUNCTION"),
}

DIRECTIONS = {"IN": getattr(protos.BindingInfo, "in"), "OUT": protos.BindingInfo.out}


def test_the_worker_indexes_and_loads_every_function(worker: WorkerStart) -> None:
    assert worker.ok, worker.failure
    assert sorted(m.name for m in worker.metadata) == sorted(EXPECTED)
    assert len(worker.loads) == len(EXPECTED)
    assert {load.function_id for load in worker.loads} == {m.function_id for m in worker.metadata}
    assert all(load.result.status == protos.StatusResult.Success for load in worker.loads)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_raw_bindings_the_host_reads(worker: WorkerStart, name: str) -> None:
    shown = {b["name"]: b for b in worker.raw_bindings(name)}
    expected = {b["name"]: b for b in EXPECTED[name]}
    assert sorted(shown) == sorted(expected)
    for binding, wanted in expected.items():
        assert {key: shown[binding].get(key) for key in wanted} == wanted, binding


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_function_metadata(worker: WorkerStart, name: str) -> None:
    metadata = worker.function(name)
    assert metadata.entry_point == name
    assert metadata.language == "python"
    assert metadata.directory == str(REPO_ROOT)
    assert os.path.basename(metadata.script_file) == "function_app.py"
    assert metadata.retry_options is None  # no retry policy: redelivery is the queue's
    assert metadata.properties == {"worker_indexed": "True"}
    assert {n: (b.type, b.direction) for n, b in metadata.bindings.items()} == {
        b["name"]: (b["type"], DIRECTIONS[b["direction"]]) for b in EXPECTED[name]
    }


def test_function_ids_are_distinct(worker: WorkerStart) -> None:
    assert len({m.function_id for m in worker.metadata}) == len(worker.metadata)


def start_in_subprocess(times: int = 1, **settings: str) -> list[dict[str, Any]]:
    """`python -m tests.runtime.worker` in a fresh process with only these settings: one summary per start."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.runtime.worker", str(times)],
        env={"PATH": os.environ.get("PATH", ""), **settings},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_second_indexing_in_one_process_fails_so_each_process_starts_the_worker_once() -> None:
    first, second = start_in_subprocess(times=2)
    assert first["ok"] and sorted(first["functions"]) == sorted(EXPECTED)
    assert not second["ok"]
    assert "does not have a unique function name" in second["failure"]


@pytest.mark.parametrize(
    "settings, schedule, on_startup",
    [
        ({"SYNC_SCHEDULE": "0 0 */2 * * MON-FRI", "SYNC_RUN_ON_STARTUP": "true"}, "0 0 */2 * * MON-FRI", True),
        ({"SYNC_SCHEDULE": "0 0 0 L * *", "SYNC_RUN_ON_STARTUP": "maybe"}, "0 */10 * * * *", False),
    ],
    ids=["valid", "invalid-falls-back"],
)
def test_the_schedule_settings_reach_the_timer_the_host_reads(
    settings: dict[str, str], schedule: str, on_startup: bool
) -> None:
    (start,) = start_in_subprocess(1, **settings)
    assert start["ok"], start["failure"]
    (timer,) = start["functions"]["sync_timer"]["raw_bindings"]
    assert (timer["schedule"], timer["runOnStartup"], timer["useMonitor"]) == (schedule, on_startup, True)
