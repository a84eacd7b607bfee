"""LeadPier misbehaving: each fault is served by the fake LeadPier; the run ends as documented and the next one is clean."""

from __future__ import annotations

from typing import Any

from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier, closed_port_url
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
    wait_for,
)

FIRST_PAGE = f"LeadPier statistics for {DAY.isoformat()} (offset 0)"


def _readable(error: str | None) -> str:
    """A run's error is one sentence for a person: no traceback, no exception repr, no URL."""
    assert error, "a failed run must say why"
    assert "\n" not in error and "Traceback" not in error
    assert "http://" not in error and "127.0.0.1" not in error
    return error


def test_503_with_retry_after_then_success(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]], blob_container: ContainerClient
) -> None:
    leadpier.faults.add("stats", status=503, headers={"Retry-After": "0"}, body="Service Unavailable", times=2)

    record = sync()

    assert record.status == "success", record.error
    assert [r["status"] for r in leadpier.stats_requests] == [503, 503, 200]
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    # Retry-After: 0 was honoured instead of the 1 s backoff, and the log says so.
    log = day_log(blob_container)
    assert f"{FIRST_PAGE} failed (HTTP 503); retry 1 of 3 in 0.0 s" in log
    assert f"{FIRST_PAGE} failed (HTTP 503); retry 2 of 3 in 0.0 s" in log
    assert not state().lock_is_held()


def test_429_with_retry_after_then_success(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]], blob_container: ContainerClient
) -> None:
    leadpier.faults.add(
        "stats", status=429, headers={"Retry-After": "1"}, body={"errorCode": "TOO_MANY_REQUESTS", "data": None}
    )

    record = sync()

    assert record.status == "success", record.error
    assert [r["status"] for r in leadpier.stats_requests] == [429, 200]
    assert f"{FIRST_PAGE} failed (HTTP 429); retry 1 of 3 in 1.0 s" in day_log(blob_container)
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)


def test_503_every_time_fails_after_the_retry_budget(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("stats", status=503, headers={"Retry-After": "0"}, times=ATTEMPTS)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{FIRST_PAGE} failed after {ATTEMPTS} attempt(s): HTTP 503"
    assert len(leadpier.stats_requests) == ATTEMPTS
    assert le.puts == []
    assert job_stats().failed_runs == 1
    assert_recovered(le, leadpier, rows)


def test_connection_refused_fails_after_the_retry_budget(
    env: dict[str, str], monkeypatch: Any, le: FakeLE, leadpier: FakeLeadPier, rows: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("LEADPIER_BASE_URL", closed_port_url())

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == (
        f"LeadPier login failed after {ATTEMPTS} attempt(s): the connection failed or was refused"
    )
    assert record.upstream_requests == ATTEMPTS
    assert le.puts == []
    monkeypatch.setenv("LEADPIER_BASE_URL", leadpier.url)
    assert_recovered(le, leadpier, rows)


def test_server_that_never_answers_ends_the_run_within_the_retry_budget(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    # HTTP_TIMEOUT_SECONDS is 1: each attempt gives up long before the fake would answer.
    leadpier.faults.add("stats", delay_s=5, times=ATTEMPTS)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{FIRST_PAGE} failed after {ATTEMPTS} attempt(s): no answer before the timeout"
    assert len(leadpier.stats_requests) == ATTEMPTS
    assert len(leadpier.login_requests) == 1
    assert le.puts == []
    assert_recovered(le, leadpier, rows)


def test_body_that_is_not_json_fails_without_retrying(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("stats", status=200, body="<html><body>Bad gateway (cached)</body></html>")

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{FIRST_PAGE} failed: the answer (HTTP 200) was not the expected JSON"
    assert len(leadpier.stats_requests) == 1
    assert le.puts == []
    assert_recovered(le, leadpier, rows)


def test_login_answer_that_is_not_json_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("login", status=200, body=b"\x00\xff garbage")

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == "LeadPier login failed: the answer (HTTP 200) was not the expected JSON"
    assert_recovered(le, leadpier, rows)


def test_error_code_other_than_no_error_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("stats", status=200, body={"errorCode": "INTERNAL_ERROR", "data": None})

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{FIRST_PAGE} failed: LeadPier answered INTERNAL_ERROR"
    assert le.puts == []
    assert_recovered(le, leadpier, rows)


def test_token_revoked_mid_pagination_logs_in_again_and_reads_every_page(
    env: dict[str, str],
    monkeypatch: Any,
    leadpier: FakeLeadPier,
    le: FakeLE,
    rows: list[dict[str, Any]],
    blob_container: ContainerClient,
    background: Any,
) -> None:
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "10")  # 40 rows: 4 pages
    leadpier.faults.add("stats")  # page 1 as usual
    leadpier.faults.add("stats", delay_s=0.5)  # page 2 is held while the tokens are revoked

    run = background()
    wait_for(lambda: len(leadpier.stats_requests) >= 2, "the second page to be asked for")
    leadpier.revoke_tokens()
    record = run.result()

    assert record.status == "success", record.error
    assert record.fetched_rows == len(rows)
    assert leadpier.logins == 2  # one re-login, shared by every page that met the revoked token
    assert 401 in [r["status"] for r in leadpier.stats_requests]
    assert sorted(r["json"]["offset"] for r in leadpier.stats_requests if r["status"] == 200) == [0, 10, 20, 30]
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    session = state().load_session()[0]
    assert session is not None and session.token == leadpier.issued_tokens[-1]
    assert "the token was refused; logging in again" in day_log(blob_container)


def test_token_refused_on_every_retry_gives_up_after_two_relogins(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("stats", status=401, body={"errorCode": "UNAUTHORIZED", "data": None}, times=3)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"{FIRST_PAGE} failed: HTTP 401"
    assert leadpier.logins == 3  # the first login and two re-logins, as the old service allowed
    assert le.puts == []
    assert_recovered(le, leadpier, rows)


def test_login_refused_fails_with_a_readable_sentence(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("login", status=200, body={"errorCode": "INVALID_CREDENTIALS", "data": None})

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == "LeadPier login failed: INVALID_CREDENTIALS"
    assert record.days[0].error == record.error
    assert len(leadpier.login_requests) == 1  # a refused login is not retried
    assert leadpier.stats_requests == [] and le.puts == []
    stats = job_stats()
    assert (stats.total_runs, stats.failed_runs) == (1, 1)
    assert stats.last_execution is not None and stats.last_execution.error == record.error
    assert state().load_session()[0] is None  # nothing stored from a refused login
    assert_recovered(le, leadpier, rows)


def test_wrong_password_is_refused_by_the_server(
    env: dict[str, str], monkeypatch: Any, leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("LEADPIER_PASSWORD", "not-the-password")

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == "LeadPier login failed: INVALID_CREDENTIALS"
    assert "not-the-password" not in record.model_dump_json()
    monkeypatch.setenv("LEADPIER_PASSWORD", env["LEADPIER_PASSWORD"])
    assert_recovered(le, leadpier, rows)


def test_login_server_error_is_retried_then_fails(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("login", status=502, headers={"Retry-After": "0"}, times=ATTEMPTS)

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error) == f"LeadPier login failed after {ATTEMPTS} attempt(s): HTTP 502"
    assert len(leadpier.login_requests) == ATTEMPTS
    assert_recovered(le, leadpier, rows)


def test_connection_dropped_mid_request_is_retried(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    leadpier.faults.add("stats", close_connection=True)

    record = sync()

    assert record.status == "success", record.error
    assert len(leadpier.stats_requests) == 2
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
