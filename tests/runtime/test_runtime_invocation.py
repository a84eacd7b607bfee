"""Every function invoked through the runtime's own path, with inputs shaped as the host sends them, against Azurite
and the loopback LeadPier and LE: what a caller gets back, what the runs leave in storage, what LE receives."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("azure_functions_runtime", reason="the Functions Python runtime is installed on Python 3.13+ only")

from azure.storage.blob import ContainerClient

from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.rules.schedule import next_occurrence
from sync_core.services import timing, use_timing
from tests.runtime.worker import Host, WorkerStart, http_request

IST = ZoneInfo("Asia/Kolkata")


def today() -> date:
    return datetime.now(IST).date()


@pytest.fixture
def host(worker: WorkerStart, threadpool: None, sync_env: dict[str, str], leadpier: FakeLeadPier) -> Host:
    for day in (today(), today() - timedelta(days=1)):
        leadpier.set_rows(day, generate_rows(12, day))
    return Host(worker)


def blob_names(container: ContainerClient) -> list[str]:
    if not container.exists():
        return []
    return sorted(b.name for b in container.list_blobs())


def run_record(host: Host, run_id: str) -> dict:
    shown = host.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id})
    assert shown.status_code == 200
    return shown.json()


# -- GET /, /health, /openapi.json, /docs -------------------------------------------------------------------------


def test_service_info(host: Host) -> None:
    response = host.get("service_info", "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    info = response.json()
    assert info["service"] == "LeadPier Data Sync Service" and info["status"] == "running"
    assert {"health", "status", "runs", "logs", "logs_download", "trigger", "openapi", "docs"} <= set(info["endpoints"])


def test_health_of_a_fresh_app(host: Host) -> None:
    response = host.get("health", "/health")
    assert response.status_code == 200
    shown = response.json()
    assert shown["status"] == "healthy"
    assert shown["checks"]["storage"]["status"] == "ok"


def test_openapi_and_docs(host: Host) -> None:
    spec = host.get("openapi", "/openapi.json")
    assert spec.status_code == 200 and spec.headers["content-type"] == "application/json"
    assert spec.json()["openapi"].startswith("3.")
    page = host.get("docs", "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b"swagger-ui" in page.body and b"/openapi.json" in page.body


# -- POST /trigger, its queue output, and the queue worker ---------------------------------------------------------


def test_a_trigger_queues_a_run_that_the_worker_does_from_the_output_binding(
    host: Host, blob_container, le: FakeLE
) -> None:
    answer = host.post_trigger()
    assert answer.ok, answer.error
    response = answer.http
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    run_id = response.json()["run_id"]
    assert response.json()["status"] == "triggered"
    (message,) = answer.queue_messages("queued_runs")
    assert json.loads(message)["run_id"] == run_id
    assert run_record(host, run_id)["status"] == "queued"

    delivered = host.deliver(message)
    assert delivered.ok, delivered.error
    assert delivered.return_value is None and delivered.output_data == {}

    record = run_record(host, run_id)
    assert record["status"] == "success" and record["trigger"] == "manual"
    assert record["queued_at"] and record["started_at"]
    assert le.received_days()
    assert [n for n in blob_names(blob_container) if run_id in n] == [f"runs/{run_id[:8]}/{run_id}.json"]


def test_a_backfill_is_one_message_per_day_each_done_by_the_worker(
    host: Host, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    first = today() - timedelta(days=4)
    for i in range(3):
        leadpier.set_rows(first + timedelta(days=i), generate_rows(5, first + timedelta(days=i), seed=i))
    answer = host.post_trigger({"from": first.isoformat(), "to": (first + timedelta(days=2)).isoformat()})
    assert answer.http.status_code == 202
    parent = answer.http.json()["run_id"]
    messages = answer.queue_messages("queued_runs")
    assert [json.loads(m)["dates"] for m in messages] == [[(first + timedelta(days=i)).isoformat()] for i in range(3)]
    for message in messages:
        delivered = host.deliver(message)
        assert delivered.ok, delivered.error
    record = run_record(host, parent)
    assert record["status"] == "success"
    assert record["fetched_rows"] == 15
    assert set(le.received_days()) >= {(first + timedelta(days=i)).isoformat() for i in range(3)}


@pytest.mark.parametrize(
    "bad_body, says",
    [
        (b"{not json", "not JSON"),
        ({"date": "13/02/2026"}, "YYYY-MM-DD"),
        ({"from": "2026-01-01"}, "go together"),
        ({"date": "2999-01-01"}, "after today"),
    ],
)
def test_a_bad_trigger_body_is_400_and_queues_nothing(host: Host, blob_container, bad_body, says: str) -> None:
    answer = host.post_trigger(bad_body)
    assert answer.http.status_code == 400
    assert says in answer.http.json()["error"]
    assert answer.output_data == {}
    assert blob_names(blob_container) == []


def test_a_plain_trigger_while_a_run_holds_the_lock_is_409(host: Host, held_lock) -> None:
    answer = host.post_trigger()
    assert answer.http.status_code == 409
    assert answer.http.json()["status"] == "already_running"
    assert answer.output_data == {}


def test_a_queued_day_that_cannot_get_the_lock_fails_the_invocation_until_the_last_delivery(
    host: Host, held_lock, monkeypatch: pytest.MonkeyPatch
) -> None:

    with use_timing(replace(timing(), backfill_lock_wait_s=0.5)):  # the real wait is two minutes
        (message,) = host.post_trigger({"date": today().isoformat()}).queue_messages("queued_runs")
        run_id = json.loads(message)["run_id"]

        first = host.deliver(message, dequeue_count=1)
        assert not first.ok and "LockBusy" in (first.error or "")  # the host delivers the message again
        assert run_record(host, run_id)["status"] == "queued"

        last = host.deliver(
            message, dequeue_count=3
        )  # the last delivery host.json allows (maxDequeueCount); the worker passes the count it is given
        assert not last.ok
        record = run_record(host, run_id)
        assert record["status"] == "failed" and "poison" in record["error"]


# -- the timer ---------------------------------------------------------------------------------------------------


def test_a_past_due_timer_firing_runs_and_its_schedule_status_shows_in_status(host: Host, caplog) -> None:
    # The firing after next: shown as the host said (one of the schedule's firings), not the computed next.
    following = next_occurrence("0 */10 * * * *", datetime.now(UTC))
    assert following is not None
    upcoming = next_occurrence("0 */10 * * * *", following)
    assert upcoming is not None
    status = {
        "Last": "2026-02-13T17:50:00+00:00",
        "Next": upcoming.isoformat(),
        "LastUpdated": "2026-02-13T17:50:00+00:00",
    }
    with caplog.at_level("WARNING"):
        fired = host.fire_timer(status, past_due=True)
    assert fired.ok, fired.error
    assert any("past due" in r.getMessage() for r in caplog.records)
    latest = host.get("runs", "/runs").json()["runs"][0]
    assert (latest["trigger"], latest["status"]) == ("timer", "success")
    shown = host.get("status", "/status").json()
    assert shown["scheduler"]["next_run"] == f"{upcoming.astimezone(IST):%Y-%m-%d %H:%M:%S} IST"
    assert shown["last_execution"]["status"] == "success"


def test_the_first_timer_firing_has_no_schedule_status_yet(host: Host) -> None:
    fired = host.fire_timer(None)
    assert fired.ok, fired.error
    latest = host.get("runs", "/runs").json()["runs"][0]
    assert (latest["trigger"], latest["status"]) == ("timer", "success")


# -- GET /status, /runs ------------------------------------------------------------------------------------------


def test_status(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    response = host.get("status", "/status")
    assert response.status_code == 200
    scheduler = response.json()["scheduler"]
    assert (scheduler["running"], scheduler["schedule"], scheduler["timezone"]) == (
        True,
        "0 */10 * * * *",
        "Asia/Kolkata",
    )
    monkeypatch.setenv("AzureWebJobs.sync_timer.Disabled", "true")
    assert host.get("status", "/status").json()["scheduler"]["running"] is False


def test_runs_listed_with_a_limit_from_the_query(host: Host) -> None:
    ids = [host.post_trigger({"date": today().isoformat()}).http.json()["run_id"] for _ in range(3)]
    listed = host.get("runs", "/runs", query={"limit": "2"}).json()
    assert listed["count"] == 2
    assert [r["run_id"] for r in listed["runs"]] == ids[::-1][:2]
    assert host.get("runs", "/runs").json()["count"] == 3


@pytest.mark.parametrize(
    "query, route_params, code, says",
    [
        ({"limit": "0"}, {}, 400, "1 to 100"),
        ({}, {"run_id": "../source.json"}, 400, "run id"),
        ({}, {"run_id": "20260213T180335123Z-1a2b3c"}, 404, "20260213T180335123Z-1a2b3c"),
    ],
    ids=["bad-limit", "malformed-id", "unknown-id"],
)
def test_runs_refusals(host: Host, query, route_params, code: int, says: str) -> None:
    path = "/runs" + (f"/{route_params['run_id']}" if route_params else "")
    response = host.get("runs", path, query=query, route_params=route_params)
    assert response.status_code == code
    assert says in response.json()["error"]


# -- GET /logs, /logs/download ------------------------------------------------------------------------------------


def test_logs_and_their_download_after_a_run(host: Host) -> None:
    (message,) = host.post_trigger({"date": today().isoformat()}).queue_messages("queued_runs")
    assert host.deliver(message).ok
    day = {"date": today().isoformat()}
    shown = host.get("logs", "/logs", query={"lines": "2", **day})
    assert shown.status_code == 200
    assert shown.json()["showing"] == 2 and len(shown.json()["logs"]) == 2
    assert shown.json()["log_file"] == f"logs/scheduler_{today():%Y%m%d}.log"

    download = host.get("logs_download", "/logs/download", query=day)
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["content-disposition"] == f'attachment; filename="scheduler_{today():%Y%m%d}.log"'
    lines = download.body.decode("utf-8").splitlines()
    assert len(lines) == shown.json()["total_lines"]
    assert lines[-2:] == shown.json()["logs"]


@pytest.mark.parametrize(
    "function, path, query, code, says",
    [
        ("logs", "/logs", {"lines": "abc"}, 400, "1 to 1000"),
        ("logs", "/logs", {"date": "13-02-2026"}, 400, "YYYY-MM-DD"),
        ("logs_download", "/logs/download", {"date": "2020-01-01"}, 404, "2020-01-01"),
    ],
    ids=["bad-lines", "bad-date", "no-log-that-day"],
)
def test_logs_refusals(host: Host, function: str, path: str, query, code: int, says: str) -> None:
    response = host.get(function, path, query=query)
    assert response.status_code == code
    assert says in response.json()["error"]


# -- a failure inside a function ---------------------------------------------------------------------------------


def test_an_unexpected_failure_is_a_json_500_with_the_hosts_invocation_id(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sync_core.web.api

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(sync_core.web.api, "status", broken)
    invocation_id = str(uuid.uuid4())
    answer = host.http("status", http_request("GET", "/status"), invocation_id=invocation_id)
    assert answer.ok  # answered, not raised: the caller gets JSON, not the host's bare 500
    assert answer.http.status_code == 500
    assert answer.http.json()["invocation_id"] == invocation_id
    assert "boom" not in answer.http.body.decode()
