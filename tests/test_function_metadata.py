"""The indexed metadata the host reads: triggers, routes, methods, auth levels, schedule, queue, and binding names."""

from __future__ import annotations

import inspect
import json

import pytest

from tests.functions_helpers import indexed_functions

HTTP = {
    # function: (route, methods, auth level)
    "service_info": ("{ignored:maxlength(0)?}", ["GET"], "anonymous"),
    "health": ("health", ["GET"], "anonymous"),
    "status": ("status", ["GET"], "function"),
    "runs": ("runs/{run_id?}", ["GET"], "function"),
    "logs": ("logs", ["GET"], "function"),
    "logs_download": ("logs/download", ["GET"], "function"),
    "trigger": ("trigger", ["POST"], "function"),
    "openapi": ("openapi.json", ["GET"], "anonymous"),
    "docs": ("docs", ["GET"], "anonymous"),
    "dashboard": ("dashboard", ["GET"], "function"),
}


@pytest.fixture(scope="module")
def functions():
    with pytest.MonkeyPatch.context() as env:  # the defaults, whatever the shell has set
        env.delenv("SYNC_SCHEDULE", raising=False)
        env.delenv("SYNC_RUN_ON_STARTUP", raising=False)
        return indexed_functions()


def bindings(fn) -> list[dict]:
    return [json.loads(raw) for raw in fn.get_raw_bindings()]


def test_the_app_has_exactly_the_functions_of_the_spec(functions) -> None:
    assert sorted(functions) == sorted([*HTTP, "sync_timer", "sync_worker"])


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_functions(functions, name: str) -> None:
    route, methods, auth = HTTP[name]
    trigger = next(b for b in bindings(functions[name]) if b["direction"] == "IN")
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == route
    assert [m.upper() for m in trigger["methods"]] == methods
    assert trigger["authLevel"].lower() == auth
    assert any(b["type"] == "http" and b["name"] == "$return" for b in bindings(functions[name]))


def test_the_timer(functions) -> None:
    (timer,) = bindings(functions["sync_timer"])
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "0 */10 * * * *"
    assert timer["runOnStartup"] is False


def test_the_queue_worker_and_the_trigger_output_use_the_same_queue(functions) -> None:
    (worker,) = bindings(functions["sync_worker"])
    assert worker["type"] == "queueTrigger"
    assert worker["queueName"] == "leadpier-sync-runs"
    assert worker["connection"] == "AzureWebJobsStorage"
    output = next(b for b in bindings(functions["trigger"]) if b["type"] == "queue")
    assert output["direction"] == "OUT"
    assert output["queueName"] == "leadpier-sync-runs"
    assert output["connection"] == "AzureWebJobsStorage"


@pytest.mark.parametrize("name", sorted([*HTTP, "sync_timer", "sync_worker"]))
def test_every_binding_name_is_a_parameter_and_every_parameter_a_binding(functions, name: str) -> None:
    # The worker refuses a function whose binding names and parameters differ: only a deploy would show it.
    parameters = set(inspect.signature(functions[name].get_user_function()).parameters) - {"context"}
    names = {b["name"] for b in bindings(functions[name])} - {"$return"}
    assert names == parameters


def test_every_function_takes_the_context_for_its_invocation_id(functions) -> None:
    for fn in functions.values():
        assert "context" in inspect.signature(fn.get_user_function()).parameters
