"""What Application Insights receives from a run of the CLI: its span, its steps, its lines and its metrics, and no
secret. (Inside the Functions host the same run is a child of the host's invocation: tests/runtime.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core import telemetry as names
from tests.conftest import LEADPIER_PASSWORD
from tests.telemetry.conftest import REPO, run_cli
from tests.telemetry.ingestion import INSTRUMENTATION_KEY, FakeIngestion, base_data, dimensions

DAY = "2026-02-13"
ROWS = [
    {"source": "mta_0213-lbe-e1", "visitors": 10},
    {"source": "mta-b_0213-ivr-e2", "visitors": 7},
    {"source": "mta_0213-xyz-e1", "visitors": 3},  # unknown domain: LE does not match it
    {"source": "organic-x", "visitors": 5},  # invalid format
    {"source": "spg_0213-afw-e1", "visitors": 4},
]
LE_KEY = "le-header-key-5f1c"
LE_QUERY_KEY = "le-query-key-93ad"


@pytest.fixture
def upstreams(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Five rows on pages of two (page 1, then two pages fetched concurrently); an LE key in a header and in the URL."""
    leadpier.set_rows(DAY, ROWS)
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "2")
    monkeypatch.setenv("LE_API_KEY", LE_KEY)
    monkeypatch.setenv("LE_API_URL", f"{sync_env['LE_API_URL']}?key={LE_QUERY_KEY}")
    return sync_env


def named(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [i for i in items if base_data(i).get("name") == name]


def test_a_run_is_one_span_with_its_outcome_and_counts(upstreams: dict[str, str], ingestion: FakeIngestion) -> None:
    run = run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    assert run.exit_code == 0 and run.record["status"] == "success"
    [request] = named(ingestion.items("dependencies"), names.RUN_SPAN)
    assert base_data(request)["type"] == "InProc" and "ai.operation.parentId" not in request["tags"]
    assert ingestion.items("requests") == []  # a request is an invocation's, and the CLI has none
    dims = dimensions(request)
    record = run.record
    assert dims[names.RUN_ID] == record["run_id"]
    assert dims[names.TRIGGER] == "cli"
    assert dims[names.STATUS] == "success" and base_data(request)["success"] is True
    assert dims[names.REPORT_DATES] == DAY
    assert dims[names.DRY_RUN] == "False"
    assert dims[names.RECORDING] == "complete" and record["recording"] is None
    counts = {
        names.FETCHED_ROWS: "fetched_rows",
        names.SENT_RECORDS: "sent_records",
        names.MATCHED_RECORDS: "matched_records",
        names.UNMATCHED_RECORDS: "unmatched_records",
        names.INVALID_ROWS: "invalid_rows",
        names.UPSTREAM_REQUESTS: "upstream_requests",
        names.DURATION_MS: "duration_ms",
    }
    assert {key: dims[key] for key in counts} == {key: str(record[field]) for key, field in counts.items()}
    assert (record["fetched_rows"], record["sent_records"], record["upstream_requests"]) == (5, 5, 5)
    assert int(dims[names.STORAGE_REQUESTS]) >= 7
    assert names.ERROR not in dims


def test_the_steps_of_a_run_are_its_dependencies(upstreams: dict[str, str], ingestion: FakeIngestion) -> None:
    run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    [request] = named(ingestion.items("dependencies"), names.RUN_SPAN)
    operation = request["tags"]["ai.operation.id"]
    deps = ingestion.items("dependencies")
    assert {d["tags"]["ai.operation.id"] for d in deps} == {operation}  # threads included
    [day] = named(deps, names.DAY_SPAN)
    assert day["tags"]["ai.operation.parentId"] == base_data(request)["id"]
    assert dimensions(day)[names.REPORT_DATE] == DAY
    pages = named(deps, names.PAGE_SPAN)
    assert sorted(dimensions(p)[names.PAGE_OFFSET] for p in pages) == ["0", "2", "4"]
    assert {p["tags"]["ai.operation.parentId"] for p in pages} == {base_data(day)["id"]}  # pool threads too
    assert sum(int(dimensions(p)[names.PAGE_ROWS]) for p in pages) == 5
    assert len(named(deps, names.LOGIN_SPAN)) == 1
    [put] = named(deps, names.LE_PUT_SPAN)
    put_dims = dimensions(put)
    assert (
        put_dims[names.RECORDS],
        put_dims[names.LE_SUCCESS],
        put_dims[names.LE_MATCHED],
        put_dims[names.LE_UNMATCHED],
    ) == ("5", "True", "3", "2")
    assert sorted(json.loads(put_dims[names.LE_ERRORS])) == [
        "invalid campaign code format 'organic-x'",
        "unknown domain code 'xyz' in 'mta_0213-xyz-e1'",
    ]
    writes = named(deps, names.STATE_WRITE_SPAN)
    assert sorted(dimensions(w)[names.BLOB] for w in writes) == ["day_summary", "job_stats", "log", "run_record"]
    assert {w["tags"]["ai.operation.parentId"] for w in writes} == {base_data(request)["id"]}


def test_leadpier_and_le_calls_are_http_dependencies_with_target_and_result(
    upstreams: dict[str, str], ingestion: FakeIngestion, leadpier: FakeLeadPier, le: FakeLE,
) -> None:  # fmt: skip
    run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    http = [base_data(d) for d in ingestion.items("dependencies") if base_data(d).get("type") == "HTTP"]
    leadpier_host, le_host = leadpier.url.split("//")[1], le.url.split("//")[1]
    login = [d for d in http if d["name"] == "POST /v1/frontend/authenticate"]
    stats = [d for d in http if d["name"] == "POST /v1/api/stats/user/org/sources"]
    put = [d for d in http if d["name"] == "PUT /email_dashboard/stats/le_api.php"]
    assert [(d["target"], d["resultCode"], d["success"]) for d in login] == [(leadpier_host, "200", True)]
    assert [(d["target"], d["resultCode"]) for d in stats] == [(leadpier_host, "200")] * 3
    assert [(d["target"], d["resultCode"]) for d in put] == [(le_host, "200")]
    assert put[0]["data"].endswith("/email_dashboard/stats/le_api.php?key=REDACTED")
    storage = [d for d in http if d["name"].startswith(("PUT /devstoreaccount1/", "GET /devstoreaccount1/"))]
    assert storage and all(d["resultCode"].isdigit() for d in storage)


def test_every_line_of_a_run_carries_its_id_and_the_last_its_outcome(
    upstreams: dict[str, str], ingestion: FakeIngestion
) -> None:
    run = run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    lines = ingestion.items("traces")
    assert len(lines) >= 8
    assert all(
        dimensions(t).get(names.RUN_ID) == run.record["run_id"] and dimensions(t).get(names.TRIGGER) == "cli"
        for t in lines
    )  # the span's names: one query reads both
    [last] = [t for t in lines if base_data(t)["message"].startswith(f"Run {run.record['run_id']} finished")]
    outcome = (names.STATUS, names.SENT_RECORDS, names.UNMATCHED_RECORDS, names.INVALID_ROWS, names.DURATION_MS)
    assert {k: dimensions(last)[k] for k in outcome} == {
        names.STATUS: "success",
        names.SENT_RECORDS: "5",
        names.UNMATCHED_RECORDS: "2",
        names.INVALID_ROWS: "0",
        names.DURATION_MS: str(run.record["duration_ms"]),
    }
    assert any(
        "campaign codes unmatched, sent anyway" in base_data(t)["message"] and "organic-x" in base_data(t)["message"]
        for t in lines
    )


def test_metrics_have_the_status_and_trigger_as_dimensions(upstreams: dict[str, str], ingestion: FakeIngestion) -> None:
    run = run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    points = {}
    for item in ingestion.items("customMetrics"):
        for point in base_data(item)["metrics"]:
            points[point["name"]] = (point, dimensions(item))
    expected = {names.RUNS_METRIC: 1, names.SENT_METRIC: 5, names.UNMATCHED_METRIC: 2, names.INVALID_METRIC: 0}
    assert {name: points[name][0]["value"] for name in expected} == expected
    duration, duration_dims = points[names.DURATION_METRIC]
    assert duration["count"] == 1 and duration["value"] == pytest.approx(run.record["duration_ms"] / 1000, abs=0.001)
    assert all(
        points[n][1] == {names.STATUS: "success", names.TRIGGER: "cli"} for n in [*expected, names.DURATION_METRIC]
    )
    assert duration_dims == {names.STATUS: "success", names.TRIGGER: "cli"}


def test_a_failed_run_is_an_unsuccessful_request_with_its_error(
    upstreams: dict[str, str], ingestion: FakeIngestion, le: FakeLE
) -> None:
    le.faults.add("put", status=400, body={"error": "bad request"})

    run = run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    assert run.exit_code == 1 and run.record["status"] == "failed"
    [request] = named(ingestion.items("dependencies"), names.RUN_SPAN)
    assert base_data(request)["success"] is False
    assert dimensions(request)[names.STATUS] == "failed"
    assert dimensions(request)[names.ERROR] == run.record["error"] == f"LE update for {DAY} failed: HTTP 400"
    [put] = named(ingestion.items("dependencies"), names.LE_PUT_SPAN)
    assert base_data(put)["success"] is False
    assert any(
        x["tags"]["ai.operation.id"] == request["tags"]["ai.operation.id"] for x in ingestion.items("exceptions")
    )
    runs = [
        (base_data(m)["metrics"][0]["value"], dimensions(m))
        for m in ingestion.items("customMetrics")
        if base_data(m)["metrics"][0]["name"] == names.RUNS_METRIC
    ]
    assert runs == [(1, {names.STATUS: "failed", names.TRIGGER: "cli"})]


def test_no_item_carries_a_secret(
    upstreams: dict[str, str], ingestion: FakeIngestion, leadpier: FakeLeadPier, azurite: Azurite
) -> None:
    run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)
    leadpier.revoke_tokens()  # a second run logs in again after a 401: two tokens, both must stay out
    run_cli("sync", "--date", DAY, ingestion_url=ingestion.url)

    sent = b"\n".join(ingestion.bodies).decode()
    assert len(leadpier.issued_tokens) == 2 and len(named(ingestion.items("dependencies"), names.RUN_SPAN)) == 2
    account_key = dict(p.split("=", 1) for p in azurite.connection_string.split(";") if "=" in p)["AccountKey"]
    for secret in (LEADPIER_PASSWORD, *leadpier.issued_tokens, LE_KEY, LE_QUERY_KEY, account_key):
        assert secret not in sent
    assert "authorization" not in sent.lower() and "x-api-key" not in sent.lower()
    assert {json.loads(b)[0]["iKey"] if b.startswith(b"[") else INSTRUMENTATION_KEY for b in ingestion.bodies} == {
        INSTRUMENTATION_KEY
    }  # the instrumentation key, which addresses the resource, is all of it that travels


@pytest.mark.parametrize("endpoint", ["answers 500", "never answers", "is down"])
def test_a_run_succeeds_and_the_process_ends_when_the_ingestion_endpoint_fails(
    endpoint: str, upstreams: dict[str, str], le: FakeLE, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeIngestion(answer_status=None if endpoint == "never answers" else 500) as failing:
        url = failing.url
        if endpoint != "is down":
            run = run_cli("sync", "--date", DAY, ingestion_url=url)  # a process still there after 2 minutes fails
            assert failing.bodies  # it was tried
    if endpoint == "is down":
        run = run_cli("sync", "--date", DAY, ingestion_url=url)  # the server is closed: connection refused

    assert run.exit_code == 0 and run.record["status"] == "success"
    assert [p["body"]["report_date"] for p in le.puts] == [DAY]
    with capsys.disabled():
        print(f"\n[telemetry endpoint {endpoint}: the CLI process took {run.seconds:.2f} s]")


def test_without_a_connection_string_nothing_is_exported_and_opentelemetry_is_not_loaded(
    upstreams: dict[str, str], le: FakeLE
) -> None:
    probe = (
        "import sys, json\n"
        "from sync_core.run.pipeline import RunRequest, run_sync\n"
        "from datetime import date\n"
        f"record = run_sync(RunRequest(trigger='cli', dates=[date.fromisoformat('{DAY}')]))\n"
        "print(json.dumps({'status': record.status, 'otel': sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor')))}))\n"
    )
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINSIGHTS_"))
    }
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=Path.cwd(), env=env, capture_output=True, text=True, timeout=120
    )

    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"status": "success", "otel": []}, done.stderr[-2000:]
    assert len(le.puts) == 1


def test_importing_function_app_loads_no_opentelemetry() -> None:
    probe = (
        "import sys, function_app\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor', 'sync_core'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert done.stdout.strip() == "[]", done.stderr[-2000:]


def test_each_days_put_sent_while_the_next_day_is_fetched_is_a_child_of_its_day(
    upstreams: dict[str, str], ingestion: FakeIngestion, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    leadpier.set_rows("2026-02-14", ROWS[:3])
    le.latency_s = 0.3  # the first day's PUT is still on the wire while the second day is fetched

    run_cli("sync", "--from", DAY, "--to", "2026-02-14", ingestion_url=ingestion.url)

    deps = ingestion.items("dependencies")
    [request] = named(deps, names.RUN_SPAN)
    days = {dimensions(d)[names.REPORT_DATE]: d for d in named(deps, names.DAY_SPAN)}
    assert sorted(days) == [DAY, "2026-02-14"]
    assert {d["tags"]["ai.operation.parentId"] for d in days.values()} == {base_data(request)["id"]}
    puts = named(deps, names.LE_PUT_SPAN)
    assert sorted(
        (dimensions(p)[names.REPORT_DATE], p["tags"]["ai.operation.parentId"], dimensions(p)[names.RECORDS])
        for p in puts
    ) == [(DAY, base_data(days[DAY])["id"], "5"), ("2026-02-14", base_data(days["2026-02-14"])["id"], "3")]
    put_http = [d for d in deps if base_data(d).get("type") == "HTTP" and base_data(d)["name"].startswith("PUT /email")]
    assert sorted(d["tags"]["ai.operation.parentId"] for d in put_http) == sorted(base_data(p)["id"] for p in puts)
    assert {dimensions(d)[names.SENT_RECORDS] for d in days.values()} == {"5", "3"}  # set once each PUT answered
