"""The LE API misbehaving: faults served by the fake LE; the run's status, counters and the next run are checked."""

from __future__ import annotations

from typing import Any

from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier
from tests.faults.conftest import (
    ATTEMPTS,
    DAY,
    assert_recovered,
    day_log,
    expected_records,
    job_stats,
    sent_days,
    state,
    sync,
)
from tests.faults.test_leadpier_faults import _readable

LE_UPDATE = f"LE update for {DAY.isoformat()}"


def test_500_after_retries_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", status=500, body="Internal Server Error", times=ATTEMPTS)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{LE_UPDATE} failed after {ATTEMPTS} attempt(s): HTTP 500"
    assert [p["status"] for p in le.puts] == [500] * ATTEMPTS
    # Every attempt carried the whole day, so a retry never sends a partial day.
    assert all(len(p["body"]["data"]) == expected_records(rows) for p in le.puts)
    assert record.fetched_rows == len(rows)
    stats = job_stats()
    assert (stats.total_runs, stats.failed_runs, stats.last_finalized_day) == (1, 1, None)
    assert_recovered(le, leadpier, rows)


def test_500_once_then_success(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", status=500, body="Internal Server Error")

    record = sync()

    assert record.status == "success", record.error
    assert [p["status"] for p in le.puts] == [500, 200]
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)


def test_timeout_on_every_attempt_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", delay_s=5, times=ATTEMPTS)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{LE_UPDATE} failed after {ATTEMPTS} attempt(s): no answer before the timeout"
    assert len(le.puts) == ATTEMPTS
    assert record.matched_records == 0 and record.sent_records == 0
    assert_recovered(le, leadpier, rows)


def test_timeout_once_then_success(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", delay_s=3)

    record = sync()

    assert record.status == "success", record.error
    assert len(le.puts) == 2
    assert record.sent_records == expected_records(rows)


def test_success_false_is_a_warning(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]], blob_container: ContainerClient
) -> None:
    le.faults.add("put", status=200, body={"success": False, "message": "database is busy"})

    record = sync()

    assert record.status == "warning"
    assert record.error == f"LE did not accept {DAY.isoformat()}: database is busy"
    assert record.days[0].le_success is False
    assert f"{DAY.isoformat()}: database is busy" in record.le_errors
    assert len(le.puts) == 1  # an answer, not a fault: not retried
    stats = job_stats()
    # Counted as failed, as the old service did, and the day is not finalized.
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (1, 0, 1)
    assert stats.last_finalized_day is None
    assert "LE did not accept 2026-02-13: database is busy" in day_log(blob_container)
    assert_recovered(le, leadpier, rows)


def test_response_not_json_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", status=200, body="<br />\n<b>Fatal error</b>: Uncaught PDOException in le_api.php")

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{LE_UPDATE} failed: the answer (HTTP 200) was not the expected JSON"
    assert "PDOException" not in record.model_dump_json()
    assert len(le.puts) == 1
    assert_recovered(le, leadpier, rows)


def test_client_error_is_not_retried(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    le.faults.add("put", status=400, body={"success": False, "message": "expected {report_date, data[]}"})

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{LE_UPDATE} failed: HTTP 400"
    assert len(le.puts) == 1
    assert not state().lock_is_held()
