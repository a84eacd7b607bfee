"""A new worker's first timer run loads what a run needs and nothing else: not the HTTP routes' code (the dashboard,
the OpenAPI document), not the identity library under a connection string, not the queue SDK (only /health counts
the poison queue). Checked in a fresh process by what is in sys.modules, so an eager import added anywhere on the
run's path fails here; how long the imports take is the benchmark's business (`python -m bench`, first-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from sandbox.data import generate_rows
from sandbox.upstream import FakeLeadPier
from tests.functions_helpers import REPO_ROOT

CHILD = """
import importlib.util, json, sys, types
spec = importlib.util.spec_from_file_location("function_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["function_app"] = module
spec.loader.exec_module(module)
from azure.functions.timer import TimerRequest
timer = next(f for f in module.app.get_functions() if f.get_function_name() == "sync_timer")
context = types.SimpleNamespace(invocation_id="first-run", function_name="sync_timer", trace_context=None)
timer.get_user_function()(timer=TimerRequest(past_due=False, schedule_status={}), context=context)
from sync_core.services import services
last = services().store.load_job_stats()[0].last_execution
print(json.dumps({"status": last and last.status, "modules": sorted(sys.modules)}))
"""

# What a timer run must not load: the routes' code, and SDK parts it never uses.
NOT_FOR_A_RUN = ("sync_core.web", "azure.identity", "msal", "azure.storage.queue", "opentelemetry", "azure.monitor")


def test_a_first_timer_run_loads_no_route_code_nor_unused_sdk_parts(
    sync_env: dict[str, str], leadpier: FakeLeadPier
) -> None:
    leadpier.rows_for_day = lambda day: generate_rows(20, date.fromisoformat(day))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO_ROOT / "function_app.py")],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["status"] == "success"
    loaded = [m for m in shown["modules"] if m.startswith(NOT_FOR_A_RUN)]
    assert loaded == []
    assert "azure.storage.blob" in shown["modules"]  # the run did reach storage
