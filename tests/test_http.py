"""sync_core.upstream.http.Caller against a real loopback server: retries, Retry-After, timeouts, the deadline, answers sorted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from pydantic import BaseModel

from sandbox.upstream import FakeLE, closed_port_url
from sync_core.errors import (
    AuthExpired,
    DeadlineExceeded,
    RequestNotSent,
    UnexpectedAnswer,
    UpstreamError,
    UpstreamRefused,
    UpstreamUnavailable,
)
from sync_core.upstream import http
from sync_core.upstream.http import Caller, Deadline, Verdict, classify, new_session

BODY = {"report_date": "2026-02-13", "data": []}


def caller(*, timeout_s: float = 2, deadline_s: float = 60, attempts: int = 4) -> Caller:
    # Tiny backoff: these tests check which calls are made, never how long the waits are.
    return Caller(
        new_session(), timeout_s=timeout_s, deadline=Deadline(deadline_s), attempts=attempts,
        backoff_initial_s=0.01, backoff_max_s=0.05,
    )  # fmt: skip


def put(c: Caller, server: FakeLE) -> requests.Response:
    return c.request("PUT", server.url + "/le_api.php", what="LE update", json=BODY, headers={"X-Test": "1"})


def statuses(server: FakeLE) -> list[int | None]:
    return [p["status"] for p in server.puts]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_429_or_5xx_is_retried_until_an_answer_comes(le: FakeLE, status: int) -> None:
    le.faults.add("put", status=status, times=2)
    c = caller()

    response = put(c, le)

    assert response.status_code == 200 and response.json()["success"] is True
    assert statuses(le) == [status, status, 200]
    assert c.calls == 3


def test_a_dropped_connection_is_retried(le: FakeLE) -> None:
    le.faults.add("put", close_connection=True)

    response = put(caller(), le)

    assert response.status_code == 200
    assert len(le.puts) == 2 and le.puts[-1]["status"] == 200


def test_a_hanging_call_times_out_and_is_retried(le: FakeLE) -> None:
    le.faults.add("put", delay_s=3, status=200, body={"success": True, "matched": 999})

    response = put(caller(timeout_s=1), le)

    assert response.json()["matched"] == 0  # the second, prompt answer; not the late one
    assert len(le.puts) == 2


def test_other_4xx_answers_are_returned_without_retrying(le: FakeLE) -> None:
    le.faults.add("put", status=400, body={"success": False, "message": "bad"}, times=3)
    c = caller()

    response = put(c, le)

    assert response.status_code == 400
    assert statuses(le) == [400] and c.calls == 1


def test_retries_are_bounded_and_the_error_is_one_sentence_without_the_url(le: FakeLE) -> None:
    le.faults.add("put", status=503, times=10)

    with pytest.raises(UpstreamError) as caught:
        put(caller(attempts=4), le)

    assert str(caught.value) == "LE update failed after 4 attempt(s): HTTP 503"
    assert len(le.puts) == 4
    assert le.faults.pending() == 6


@pytest.mark.parametrize("value", ["bearer abc\r\nX-Injected: 1", "bearer \u65e5\u672c"])
def test_a_header_that_cannot_be_sent_is_one_attempt_not_retried_and_never_quoted(le: FakeLE, value: str) -> None:
    with pytest.raises(RequestNotSent) as caught:
        caller().request("PUT", le.url + "/le_api.php", what="LE update", json=BODY, headers={"authorization": value})

    assert str(caught.value) in (
        "LE update failed after 1 attempt(s): InvalidHeader (not retried)",
        "LE update failed after 1 attempt(s): UnicodeEncodeError (not retried)",
    )
    assert "deadline" not in str(caught.value) and "abc" not in str(caught.value)
    assert le.puts == []  # nothing left the process


@pytest.mark.parametrize("status", [200, 503])
def test_an_answer_past_the_size_ceiling_is_not_read_and_not_retried(
    le: FakeLE, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 1000)
    le.faults.add("put", status=status, body=b"x" * 1001, times=4)

    with pytest.raises(UnexpectedAnswer) as caught:
        put(caller(), le)

    assert str(caught.value) == f"LE update failed: the answer (HTTP {status}) was larger than 1,000 bytes"
    assert len(le.puts) == 1


def test_an_answer_at_the_size_ceiling_is_read(le: FakeLE, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 1000)
    le.faults.add("put", status=200, body=b"x" * 1000)
    assert put(caller(), le).content == b"x" * 1000


def test_a_refused_connection_is_retried_then_reported() -> None:
    c = caller(attempts=3)

    with pytest.raises(UpstreamError) as caught:
        c.request("PUT", closed_port_url() + "/x?key=secret", what="LE update", json=BODY)

    assert str(caught.value) == "LE update failed after 3 attempt(s): the connection failed or was refused"
    assert "secret" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert c.calls == 3


def test_retry_after_zero_is_honoured_with_an_immediate_retry(le: FakeLE) -> None:
    le.faults.add("put", status=429, headers={"Retry-After": "0"}, times=2)

    response = put(caller(), le)

    assert response.status_code == 200 and statuses(le) == [429, 429, 200]


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_retry_after_that_would_pass_the_deadline_stops_the_retries(le: FakeLE, form: str) -> None:
    # With the tiny backoff a retry would follow at once; the Retry-After (seconds or a date) is what forbids it.
    # The date is made here, not at collection: a long suite would otherwise reach it before the test runs.
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    retry_after = "20" if form == "seconds" else later
    le.faults.add("put", status=503, headers={"Retry-After": retry_after}, times=5)

    with pytest.raises(UpstreamError, match="after 1 attempt"):
        put(caller(deadline_s=5), le)

    assert statuses(le) == [503]


def test_an_unreadable_retry_after_falls_back_to_backoff(le: FakeLE) -> None:
    le.faults.add("put", status=503, headers={"Retry-After": "soon-ish"}, times=1)

    assert put(caller(deadline_s=5), le).status_code == 200
    assert statuses(le) == [503, 200]


def test_no_call_is_started_past_the_deadline(le: FakeLE) -> None:
    c = caller(deadline_s=0.000001)

    with pytest.raises(DeadlineExceeded, match="SYNC_RUN_DEADLINE_SECONDS"):
        put(c, le)

    assert le.puts == [] and c.calls == 0


def test_a_hang_near_the_deadline_ends_at_the_deadline_not_after_more_retries(le: FakeLE) -> None:
    le.faults.add("put", delay_s=5, status=200, body={"success": True}, times=5)
    c = caller(timeout_s=30, deadline_s=1)

    with pytest.raises((UpstreamError, DeadlineExceeded)):
        put(c, le)

    assert len(le.puts) == 1


def test_the_session_ignores_proxy_variables(monkeypatch: pytest.MonkeyPatch, le: FakeLE) -> None:
    proxy = closed_port_url()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)

    response = put(caller(attempts=1), le)

    assert response.status_code == 200 and len(le.puts) == 1


def test_headers_and_json_body_reach_the_server(le: FakeLE) -> None:
    put(caller(), le)

    assert le.puts[0]["body"] == BODY
    assert le.puts[0]["headers"]["x-test"] == "1"


# --------------------------------------------------------------------------- sorting the answers


class Reply(BaseModel):
    success: bool
    matched: int = 0


def call(c: Caller, server: FakeLE) -> Reply:
    return c.call("PUT", server.url + "/le_api.php?key=secret", what="LE update", answer=Reply, json=BODY)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.ACCEPTED), (204, Verdict.ACCEPTED), (304, Verdict.ACCEPTED),
        (429, Verdict.RETRIABLE), (500, Verdict.RETRIABLE), (502, Verdict.RETRIABLE), (503, Verdict.RETRIABLE),
        (504, Verdict.RETRIABLE),
        (401, Verdict.AUTH_EXPIRED), (403, Verdict.AUTH_EXPIRED),
        (400, Verdict.REFUSED), (404, Verdict.REFUSED), (409, Verdict.REFUSED), (422, Verdict.REFUSED),
        (501, Verdict.REFUSED), (505, Verdict.REFUSED),
    ],
)  # fmt: skip
def test_every_status_is_sorted_once(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_an_accepted_answer_is_read_into_its_model(le: FakeLE) -> None:
    assert call(caller(), le) == Reply(success=True, matched=0)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_auth_expired_with_its_status(le: FakeLE, status: int) -> None:
    le.faults.add("put", status=status, body={"success": False})
    c = caller()

    with pytest.raises(AuthExpired) as caught:
        call(c, le)

    assert str(caught.value) == f"LE update failed: HTTP {status}" and caught.value.status == status
    assert c.calls == 1


@pytest.mark.parametrize("status", [400, 404, 501])
def test_another_error_status_is_refused_at_once(le: FakeLE, status: int) -> None:
    le.faults.add("put", status=status, body={"success": False, "message": "no"}, times=2)
    c = caller()

    with pytest.raises(UpstreamRefused) as caught:
        call(c, le)

    assert not isinstance(caught.value, AuthExpired)
    assert str(caught.value) == f"LE update failed: HTTP {status}"
    assert c.calls == 1


def test_retriable_answers_that_never_stop_are_upstream_unavailable(le: FakeLE) -> None:
    le.faults.add("put", status=503, times=10)

    with pytest.raises(UpstreamUnavailable) as caught:
        call(caller(attempts=2), le)

    assert str(caught.value) == "LE update failed after 2 attempt(s): HTTP 503" and caught.value.status == 503


def test_a_body_that_is_not_the_model_is_an_unexpected_answer_without_the_body_or_url(le: FakeLE) -> None:
    le.faults.add("put", status=200, body={"ok": "secret-echo"})

    with pytest.raises(UnexpectedAnswer) as caught:
        call(caller(), le)

    assert str(caught.value) == "LE update failed: the answer (HTTP 200) was not the expected JSON"
    assert isinstance(caught.value, UpstreamError)
