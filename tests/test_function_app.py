"""Every function of the app, called as the host calls it, against Azurite and the loopback LeadPier and LE."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from azure.functions.decorators.timer import TimerTrigger
from azure.storage.blob import ContainerClient

from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.rules.schedule import next_occurrence
from sync_core.services import timing, use_timing
from sync_core.settings import load_storage_target
from sync_core.state.store import StateStore
from tests.functions_helpers import REPO_ROOT, App, Context, body

IST = ZoneInfo("Asia/Kolkata")


def today() -> date:
    return datetime.now(IST).date()


@pytest.fixture
def app(sync_env: dict[str, str], leadpier: FakeLeadPier) -> App:
    for day in (today(), today() - timedelta(days=1)):
        leadpier.set_rows(day, generate_rows(12, day))
    return App()


def blob_names(container: ContainerClient) -> list[str]:
    if not container.exists():
        return []
    return sorted(b.name for b in container.list_blobs())


def run_blobs(container: ContainerClient) -> list[str]:
    return [n for n in blob_names(container) if n.startswith("runs/")]


# -- GET / --------------------------------------------------------------------------------------------


def test_service_info_names_the_service_and_its_endpoints(app: App) -> None:
    response = app.get("service_info", "/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    info = body(response)
    assert info["service"] == "LeadPier Data Sync Service"
    assert info["status"] == "running"
    assert info["version"]
    assert {"health", "status", "runs", "logs", "logs_download", "trigger", "openapi", "docs", "dashboard"} <= set(
        info["endpoints"]
    )


# -- POST /trigger and the queue worker ---------------------------------------------------------------


def test_trigger_queues_a_run_that_the_worker_then_does_under_the_same_id(app: App, blob_container, le: FakeLE) -> None:
    response, queued = app.post_trigger()
    assert response.status_code == 202
    accepted = body(response)
    assert accepted["status"] == "triggered" and accepted["message"]
    run_id = accepted["run_id"]
    assert len(queued.get()) == 1 and json.loads(queued.get()[0])["run_id"] == run_id

    shown = app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id})
    assert shown.status_code == 200
    assert body(shown)["status"] == "queued"
    assert body(shown)["trigger"] == "manual"

    app.work(queued.get()[0])

    record = body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))
    assert record["status"] == "success"
    assert record["run_id"] == run_id
    assert record["queued_at"] and record["started_at"]
    assert le.received_days()
    assert [n for n in run_blobs(blob_container) if run_id in n] == [f"runs/{run_id[:8]}/{run_id}.json"]
    listed = body(app.get("runs", "/runs"))
    assert [r["run_id"] for r in listed["runs"]].count(run_id) == 1


def test_a_redelivered_message_updates_the_same_record(app: App, blob_container) -> None:
    _, queued = app.post_trigger({"date": today().isoformat()})
    message = queued.get()[0]
    app.work(message, dequeue_count=1)
    app.work(message, dequeue_count=2)
    run_id = json.loads(message)["run_id"]
    assert len([n for n in run_blobs(blob_container) if run_id in n]) == 1
    assert body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))["status"] == "success"


def test_a_plain_trigger_while_a_run_holds_the_lock_is_refused(app: App, held_lock, blob_container) -> None:
    before = blob_names(blob_container)
    response, queued = app.post_trigger()
    assert response.status_code == 409
    assert body(response)["status"] == "already_running"
    assert body(response)["message"]
    assert queued.get() is None
    assert blob_names(blob_container) == before


def test_a_backfill_is_queued_as_one_message_per_day_under_one_parent(app: App, held_lock) -> None:
    first = today() - timedelta(days=4)
    response, queued = app.post_trigger({"from": first.isoformat(), "to": (first + timedelta(days=2)).isoformat()})
    assert response.status_code == 202  # a backfill is queued even while a run holds the lock
    parent = body(response)["run_id"]
    messages = [json.loads(m) for m in queued.get()]
    assert [m["dates"] for m in messages] == [[(first + timedelta(days=i)).isoformat()] for i in range(3)]
    assert {m["parent_run_id"] for m in messages} == {parent}
    assert [m["run_id"] for m in messages] == body(response)["child_run_ids"]
    record = body(app.get("runs", f"/runs/{parent}", route_params={"run_id": parent}))
    assert record["status"] == "queued"
    assert record["report_dates"] == [(first + timedelta(days=i)).isoformat() for i in range(3)]


def test_a_backfill_parent_shows_its_days_folded_in(app: App, leadpier: FakeLeadPier) -> None:
    first = today() - timedelta(days=3)
    for i in range(2):
        leadpier.set_rows(first + timedelta(days=i), generate_rows(8, first + timedelta(days=i), seed=i))
    response, queued = app.post_trigger({"from": first.isoformat(), "to": (first + timedelta(days=1)).isoformat()})
    parent = body(response)["run_id"]
    app.work(queued.get()[0])
    halfway = body(app.get("runs", f"/runs/{parent}", route_params={"run_id": parent}))
    assert halfway["status"] == "running"
    app.work(queued.get()[1])
    done = body(app.get("runs", f"/runs/{parent}", route_params={"run_id": parent}))
    assert done["status"] == "success"
    assert done["fetched_rows"] == 16
    listed = body(app.get("runs", "/runs"))
    assert [r["run_id"] for r in listed["runs"]] == [parent]  # the days are inside their parent
    assert listed["count"] == 1


def test_a_queued_day_that_cannot_get_the_lock_is_raised_for_redelivery(
    app: App, held_lock, monkeypatch: pytest.MonkeyPatch
) -> None:

    with use_timing(replace(timing(), backfill_lock_wait_s=0.5)):  # the real wait is two minutes
        _, queued = app.post_trigger({"date": today().isoformat()})
        run_id = json.loads(queued.get()[0])["run_id"]
        from sync_core.errors import LockBusy

        with pytest.raises(LockBusy):
            app.work(queued.get()[0], dequeue_count=1)
        assert body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))["status"] == "queued"
        with pytest.raises(LockBusy):
            app.work(queued.get()[0], dequeue_count=3)
        last = body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))
        assert last["status"] == "failed"
        assert "poison" in last["error"]


def test_a_plain_queued_run_that_finds_the_lock_taken_is_recorded_skipped(app: App) -> None:
    _, queued = app.post_trigger()
    run_id = json.loads(queued.get()[0])["run_id"]
    lock = StateStore(load_storage_target(os.environ)).lock()
    assert lock.try_acquire()
    try:
        app.work(queued.get()[0])
    finally:
        lock.release()
    record = body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))
    assert record["status"] == "skipped"


def test_a_failed_run_is_recorded_not_raised(app: App, le: FakeLE) -> None:
    le.stop()  # LE refuses every connection
    _, queued = app.post_trigger({"date": today().isoformat()})
    app.work(queued.get()[0])
    run_id = json.loads(queued.get()[0])["run_id"]
    record = body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))
    assert record["status"] == "failed"
    assert record["error"] and "Traceback" not in record["error"]


# -- POST /trigger: bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_body, says",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        ({"date": "2026-13-45"}, "date"),
        ({"date": "13/02/2026"}, "YYYY-MM-DD"),
        ({"date": "20260213"}, "YYYY-MM-DD"),
        ({"from": "2026-01-01", "to": "2026-02-15"}, "31"),
        ({"from": "2026-01-10", "to": "2026-01-01"}, "before"),
        ({"from": "2026-01-01"}, "go together"),
        ({"date": "2026-01-01", "from": "2026-01-01", "to": "2026-01-02"}, "not both"),
        ({"day": "2026-01-01"}, "unknown field"),
        ({"date": "2999-01-01"}, "after today"),
        ({"relogin": "yes"}, "relogin must be true or false"),
        # Hostile bodies: each a 400 that says why, never a 500 or a queued run.
        (b"[" * 4000, "not JSON"),
        (b'{"date": ' + b"[" * 500 + b"]" * 500 + b"}", "date must be a date in the form YYYY-MM-DD (got an array)"),
        (b" " * 4000, "holds only whitespace"),
        (b"\n", "holds only whitespace"),
        ({"date": None}, "(got null)"),
        ({"date": "0001-01-01"}, "date must be 2000-01-01 or later"),
        ({"date": "\u0662\u0660\u0662\u0666-\u0661\u0662-\u0660\u0667"}, "date must be a date in the form YYYY-MM-DD"),
        ({"date": "2026-02-13\n2026-02-13 23:59:59,999 - FORGED"}, "(got '2026-02-13\\n2026-"),
    ],
)
def test_bad_trigger_bodies_get_400_and_change_nothing(app: App, blob_container, bad_body, says: str) -> None:
    before = blob_names(blob_container)
    response, queued = app.post_trigger(bad_body)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert says in body(response)["error"]
    assert queued.get() is None
    assert blob_names(blob_container) == before


@pytest.mark.parametrize("size", [4097, 2 * 1024 * 1024])
def test_a_trigger_body_over_the_cap_gets_413_and_changes_nothing(app: App, blob_container, size: int) -> None:
    before = blob_names(blob_container)
    response, queued = app.post_trigger(b" " * size)
    assert response.status_code == 413
    assert body(response)["error"] == (
        f"the body is {size} bytes; /trigger takes at most 4096: no body, "
        '{"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
    )
    assert queued.get() is None
    assert blob_names(blob_container) == before


# -- GET /runs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-5", "abc", "101", "100000", "2.5"])
def test_a_runs_limit_out_of_range_gets_400(app: App, limit: str) -> None:
    response = app.get("runs", "/runs", params={"limit": limit})
    assert response.status_code == 400
    assert "1 to 100" in body(response)["error"]


@pytest.mark.parametrize(
    "run_id",
    ["nope", "20260213T180335123Z", "20260213T180335123Z-XYZXYZ", "../source.json", "20260213T180335123Z-1a2b3c.1"],
)
def test_a_malformed_run_id_gets_400(app: App, run_id: str, blob_container) -> None:
    response = app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id})
    assert response.status_code == 400
    assert "run id" in body(response)["error"]
    assert blob_names(blob_container) == []


def test_an_unknown_run_gets_404(app: App) -> None:
    run_id = "20260213T180335123Z-1a2b3c"
    response = app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id})
    assert response.status_code == 404
    assert run_id in body(response)["error"]


def test_runs_are_listed_newest_first_up_to_the_limit(app: App) -> None:
    ids = []
    for _ in range(3):
        response, queued = app.post_trigger({"date": today().isoformat()})
        ids.append(body(response)["run_id"])
    listed = body(app.get("runs", "/runs", params={"limit": "2"}))
    assert listed["count"] == 2
    assert [r["run_id"] for r in listed["runs"]] == ids[::-1][:2]
    assert body(app.get("runs", "/runs"))["count"] == 3


def _record_at(store: StateStore, started: datetime, status: str) -> str:
    """A finished timer run recorded as started at `started`, as the pipeline names and writes it."""
    from sync_core.state.records import RunRecord, new_run_id

    run_id = new_run_id(started)
    store.save_run(RunRecord(run_id=run_id, trigger="timer", status=status, started_at=started))  # type: ignore[arg-type]
    return run_id


def test_runs_filter_by_time_and_status(app: App, sync_env: dict[str, str]) -> None:
    store = StateStore(load_storage_target(sync_env))
    hour = datetime(2026, 2, 13, 10, tzinfo=UTC)
    ids = {
        (minutes, status): _record_at(store, hour + timedelta(minutes=minutes), status)
        for minutes, status in [(-10, "success"), (0, "success"), (10, "failed"), (50, "success"), (60, "failed")]
    }
    in_hour = {"since": "2026-02-13T10:00:00Z", "until": "2026-02-13T16:30:00+05:30"}  # 10:00 to 11:00 UTC
    listed = body(app.get("runs", "/runs", params=in_hour))
    assert [r["run_id"] for r in listed["runs"]] == [ids[(50, "success")], ids[(10, "failed")], ids[(0, "success")]]
    failed = body(app.get("runs", "/runs", params=in_hour | {"status": "failed"}))
    assert [r["run_id"] for r in failed["runs"]] == [ids[(10, "failed")]]
    every_failed = body(app.get("runs", "/runs", params={"status": "failed", "limit": "1"}))
    assert [r["run_id"] for r in every_failed["runs"]] == [ids[(60, "failed")]]
    since = body(app.get("runs", "/runs", params={"since": "2026-02-13T11:00:00Z"}))
    assert [r["run_id"] for r in since["runs"]] == [ids[(60, "failed")]]
    assert body(app.get("runs", "/runs", params={"until": "2026-02-13T10:00:00Z"}))["count"] == 1


@pytest.mark.parametrize(
    "params, says",
    [
        ({"since": "2026-02-13T10:00:00"}, "since must be a time in ISO 8601 with its offset"),
        ({"until": "yesterday"}, "until must be a time in ISO 8601 with its offset"),
        ({"since": "1739440800"}, "since must be a time"),
        ({"since": "2026-02-13T11:00:00Z", "until": "2026-02-13T10:00:00Z"}, "since must be before until"),
        ({"status": "broken"}, "status must be one of queued, running, success, warning, failed, skipped"),
    ],
)
def test_bad_runs_filters_get_400_naming_what_is_allowed(app: App, params: dict[str, str], says: str) -> None:
    response = app.get("runs", "/runs", params=params)
    assert response.status_code == 400
    assert says in body(response)["error"]


def test_relogin_drops_the_stored_session_so_the_next_run_logs_in(
    app: App, leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    app.tick()
    app.tick()
    assert leadpier.logins == 1  # the stored session is reused
    response, queued = app.post_trigger({"relogin": True})
    assert response.status_code == 202
    assert "source.json" not in blob_names(blob_container)
    app.work(queued.get()[0])
    assert leadpier.logins == 2
    assert "source.json" in blob_names(blob_container)


# -- the timer ------------------------------------------------------------------------------------------


def test_the_timer_runs_with_trigger_timer_and_keeps_its_schedule_status(app: App, caplog) -> None:
    # The firing after next: the host's word is shown (it is one of the schedule's), not the computed next.
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
        app.tick(status, past_due=True)
    assert any("past due" in r.getMessage() for r in caplog.records)
    listed = body(app.get("runs", "/runs"))
    assert listed["runs"][0]["trigger"] == "timer"
    assert listed["runs"][0]["status"] == "success"
    shown = body(app.get("status", "/status"))
    expected = upcoming.astimezone(IST)
    assert shown["scheduler"]["next_run"] == f"{expected:%Y-%m-%d %H:%M:%S} IST"
    assert shown["last_execution"]["status"] == "success"


# -- GET /status ----------------------------------------------------------------------------------------


def test_status_before_any_run(app: App) -> None:
    response = app.get("status", "/status")
    assert response.status_code == 200
    shown = body(response)
    assert shown["scheduler"] == {
        "running": True,
        "schedule": "0 */10 * * * *",
        "timezone": "Asia/Kolkata",
        "next_run": shown["scheduler"]["next_run"],
    }
    assert shown["scheduler"]["next_run"].endswith(" IST")
    assert shown["job_statistics"]["success_rate"] == "N/A"
    assert shown["last_execution"] is None


def test_status_with_the_timer_disabled(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobs.sync_timer.Disabled", "true")
    assert body(app.get("status", "/status"))["scheduler"]["running"] is False


def test_status_with_a_missing_setting_is_503_naming_it(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LE_API_URL")
    response = app.get("status", "/status")
    assert response.status_code == 503
    assert "LE_API_URL" in body(response)["error"]


# -- GET /logs, /logs/download ----------------------------------------------------------------------------


def test_logs_before_any_run_are_empty_with_a_message(app: App) -> None:
    response = app.get("logs", "/logs")
    assert response.status_code == 200
    shown = body(response)
    assert shown["logs"] == [] and shown["message"]
    assert shown["log_file"] == f"logs/scheduler_{today():%Y%m%d}.log"


def test_logs_show_the_last_lines_of_the_day(app: App) -> None:
    _, queued = app.post_trigger({"date": today().isoformat()})
    app.work(queued.get()[0])
    shown = body(app.get("logs", "/logs", params={"lines": "2", "date": today().isoformat()}))
    assert shown["showing"] == 2 and len(shown["logs"]) == 2
    assert shown["total_lines"] > 2
    assert " - sync_core." in shown["logs"][-1] and " - INFO - " in shown["logs"][-1]
    assert shown["log_file"] == f"logs/scheduler_{today():%Y%m%d}.log"


def test_logs_total_lines_matches_the_whole_day_log_after_several_runs(app: App) -> None:
    for _ in range(2):
        _, queued = app.post_trigger({"date": today().isoformat()})
        app.work(queued.get()[0])
    params = {"date": today().isoformat()}
    whole = app.get("logs_download", "/logs/download", params=params).get_body().decode("utf-8").splitlines()
    shown = body(app.get("logs", "/logs", params={"lines": "1000", **params}))
    assert shown["total_lines"] == len(whole)
    assert shown["logs"] == whole[-1000:]


def test_logs_of_an_old_day_count_their_lines_too(app: App, blob_container) -> None:
    # A day older than the counts job_stats.json keeps (a week): written here as an earlier run would have.
    blob_container.create_container()
    blob = blob_container.get_blob_client("logs/scheduler_20200101.log")
    blob.create_append_blob()
    blob.append_block(
        b"".join(f"2020-01-01 10:00:{i:02d},000 - sync_core.pipeline - INFO - line {i}\n".encode() for i in range(30))
    )
    shown = body(app.get("logs", "/logs", params={"lines": "5", "date": "2020-01-01"}))
    assert shown["total_lines"] == 30 and shown["showing"] == 5
    assert shown["logs"][-1].endswith("line 29")


@pytest.mark.parametrize("lines", ["0", "-5", "abc", "100000", "1001", ""])
def test_a_bad_lines_value_gets_400(app: App, lines: str, blob_container) -> None:
    response = app.get("logs", "/logs", params={"lines": lines})
    assert response.status_code == 400
    assert "1 to 1000" in body(response)["error"]
    assert blob_names(blob_container) == []


@pytest.mark.parametrize("name, path", [("logs", "/logs"), ("logs_download", "/logs/download")])
@pytest.mark.parametrize("day", ["2026-02-30", "13-02-2026", "yesterday", "2026-2-3", "1739404800"])
def test_a_malformed_log_date_gets_400(app: App, name: str, path: str, day: str) -> None:
    response = app.get(name, path, params={"date": day})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in body(response)["error"]


def test_the_day_log_downloads_as_a_text_file(app: App) -> None:
    _, queued = app.post_trigger({"date": today().isoformat()})
    app.work(queued.get()[0])
    response = app.get("logs_download", "/logs/download", params={"date": today().isoformat()})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="scheduler_{today():%Y%m%d}.log"'
    text = response.get_body().decode("utf-8")
    assert "Run " in text and text.endswith("\n")


def test_downloading_a_day_without_a_log_is_404(app: App) -> None:
    response = app.get("logs_download", "/logs/download", params={"date": "2020-01-01"})
    assert response.status_code == 404
    assert "2020-01-01" in body(response)["error"]


# -- failures inside a function, /openapi.json, /docs ---------------------------------------------------------


def test_an_unexpected_failure_is_a_json_500_with_the_invocation_id(app: App) -> None:
    context = Context("runs")
    response = app.user("runs")(req=None, context=context)  # a request the function cannot read
    assert response.status_code == 500
    answer = body(response)
    assert answer["invocation_id"] == context.invocation_id
    assert answer["error"] and "Traceback" not in answer["error"]


def test_openapi_and_docs_are_served(app: App) -> None:
    spec = app.get("openapi", "/openapi.json")
    assert spec.status_code == 200 and body(spec)["openapi"].startswith("3.")
    page = app.get("docs", "/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert b"swagger-ui" in page.get_body() and b"/openapi.json" in page.get_body()


def test_docs_runs_only_the_pinned_swagger_ui_and_keeps_no_key(app: App) -> None:
    page = app.get("docs", "/docs")
    html = page.get_body().decode()
    policy = page.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>", html)
    assert len(scripts) == 2
    # The CDN's file runs only with the hash of the pinned version's file; the inline lines only with theirs.
    assert 'integrity="sha384-' in scripts[0] and "swagger-ui-dist@5.17.14/swagger-ui-bundle.js" in scripts[0]
    assert re.search(r'<link rel="stylesheet" href="[^"]+@5\.17\.14/swagger-ui\.css" integrity="sha384-', html)
    inline = re.search(r"<script>(.*?)</script>", html, re.S)
    assert inline is not None
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "persistAuthorization: false" in html and "persistAuthorization: true" not in html


@pytest.mark.parametrize(
    "name, route",
    [("service_info", "/"), ("health", "/health"), ("status", "/status"), ("runs", "/runs"), ("logs", "/logs"),
     ("openapi", "/openapi.json"), ("docs", "/docs"), ("dashboard", "/dashboard")],
)  # fmt: skip
def test_every_answer_says_nosniff(app: App, name: str, route: str) -> None:
    assert app.get(name, route).headers["X-Content-Type-Options"] == "nosniff"


def test_trigger_answers_and_errors_say_nosniff(app: App) -> None:
    accepted, _ = app.post_trigger()
    refused, _ = app.post_trigger(b"{")
    failed = app.user("runs")(req=None, context=Context("runs"))
    for response in (accepted, refused, failed):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


# -- importing the app ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", [{}, {"SYNC_SCHEDULE": "0 */5 * * * MON-FRI"}], ids=["no-settings", "schedule"])
def test_the_app_imports_and_indexes_every_function_with_no_settings_at_all(tmp_path, environment) -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import function_app\n"
        "names = sorted(f.get_function_name() for f in function_app.app.get_functions())\n"
        "print(','.join(names))\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('sync_core'))) or '-')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'requests', 'tenacity'))) or '-')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(REPO_ROOT)],
        env={"PATH": os.environ.get("PATH", ""), **environment},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    names, core_modules, third_party = done.stdout.split()
    assert names.split(",") == sorted(
        [
            "sync_timer",
            "sync_worker",
            "service_info",
            "health",
            "status",
            "runs",
            "logs",
            "logs_download",
            "trigger",
            "openapi",
            "docs",
            "dashboard",
        ]
    )
    # Only the standard-library-only schedule grammar is loaded with the app; the rest waits for a function to run.
    assert core_modules == ("sync_core,sync_core.rules,sync_core.rules.ncrontab" if environment else "-")
    assert third_party == "-"


@pytest.mark.parametrize("schedule", ["every ten minutes", "*/10 * * * *", "99 * * * * *"])
def test_an_invalid_schedule_falls_back_to_the_default_at_import(
    schedule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_SCHEDULE", schedule)
    monkeypatch.setenv("SYNC_RUN_ON_STARTUP", "maybe")
    fresh = App()
    timer = fresh.functions["sync_timer"].get_trigger()
    assert isinstance(timer, TimerTrigger)
    assert timer.schedule == "0 */10 * * * *"
    assert timer.run_on_startup is False
    assert any("SYNC_SCHEDULE" in p for p in fresh.module.HOST_PROBLEMS)
    assert any("SYNC_RUN_ON_STARTUP" in p for p in fresh.module.HOST_PROBLEMS)


def test_a_valid_schedule_and_run_on_startup_reach_the_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_SCHEDULE", "0 0 */2 * * MON-FRI")
    monkeypatch.setenv("SYNC_RUN_ON_STARTUP", "true")
    timer = App().functions["sync_timer"].get_trigger()
    assert isinstance(timer, TimerTrigger)
    assert isinstance(timer, TimerTrigger)
    assert timer.schedule == "0 0 */2 * * MON-FRI"
    assert timer.run_on_startup is True
