"""The LeadPier client against the loopback stand-in: login, session reuse from source.json, paging, re-login."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from pydantic import SecretStr

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLE, FakeLeadPier, InboundRequest, Reply, closed_port_url
from sync_core.errors import LoginError, UpstreamError
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.settings import ConnectionStringTarget
from sync_core.state.records import LeadPierSession
from sync_core.state.store import StateStore
from sync_core.upstream.http import Caller, Deadline, new_session
from sync_core.upstream.leadpier import LeadPierClient

USERNAME, PASSWORD = "sandbox-user", "sandbox-password"
DAY = date(2026, 2, 13)
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"


def rows(n: int, prefix: str = "mta") -> list[dict[str, Any]]:
    return [{"source": f"{prefix}_0213-lbe-e{i}", "visitors": i + 1} for i in range(n)]


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture
def store(azurite: Azurite, container_name: str) -> StateStore:
    return StateStore(
        ConnectionStringTarget(connection_string=SecretStr(azurite.connection_string), container=container_name)
    )


def client(
    server: FakeLeadPier, store: StateStore, *, page_size: int = 1000, ttl_minutes: int = 120,
    concurrency: int = 4, password: str = PASSWORD,
) -> LeadPierClient:  # fmt: skip
    caller = Caller(new_session(), timeout_s=5, deadline=Deadline(60), backoff_initial_s=0.01, backoff_max_s=0.05)
    return LeadPierClient(
        base_url=server.url, username=USERNAME, password=password, user_agent=UA, page_size=page_size,
        concurrency=concurrency, token_ttl=timedelta(minutes=ttl_minutes), caller=caller, sessions=store,
    )  # fmt: skip


def fetch_day(leadpier: LeadPierClient, day: date) -> list[Any]:
    """Every row of the day, as a run reads them page by page."""
    return [row for page in leadpier.iter_pages(day) for row in page]


def token_of(leadpier: LeadPierClient) -> str:
    """The token the client would send now: the stored one while valid, else a fresh login saved to source.json."""
    return leadpier._auth.token()


def stored_session(container: ContainerClient) -> dict[str, Any]:
    return dict(json.loads(container.download_blob("source.json").readall()))


@pytest.fixture
def custom_leadpier(request: pytest.FixtureRequest) -> Iterator[FakeLeadPier]:
    with FakeLeadPier(username=USERNAME, password=PASSWORD, **request.param) as server:
        yield server


# --------------------------------------------------------------------------- paging


def test_every_page_of_the_day_is_read(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(180))

    fetched = fetch_day(client(leadpier, store, page_size=50), DAY)

    assert sorted(r["source"] for r in fetched) == sorted(r["source"] for r in rows(180))
    bodies = [r["json"] for r in leadpier.stats_requests]
    assert sorted(b["offset"] for b in bodies) == [0, 50, 100, 150]
    assert all(
        {k: b[k] for k in ("limit", "orderBy", "orderDirection", "periodFrom", "periodTo")}
        == {
            "limit": 50,
            "orderBy": "source",
            "orderDirection": "DESC",
            "periodFrom": "2026-02-13",
            "periodTo": "2026-02-13",
        }
        for b in bodies
    )


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (49, 1), (50, 2), (150, 3), (151, 4)])
def test_pages_stop_when_count_rows_are_read(leadpier: FakeLeadPier, store: StateStore, count: int, pages: int) -> None:
    leadpier.set_rows(DAY, rows(count))

    fetched = fetch_day(client(leadpier, store, page_size=50), DAY)

    assert len(fetched) == count
    assert len(leadpier.stats_requests) == pages - (1 if count == 50 else 0)


def test_a_page_with_an_error_code_is_an_api_failure(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.faults.add("stats", status=200, body={"errorCode": "INTERNAL_ERROR", "data": None})

    with pytest.raises(UpstreamError, match="INTERNAL_ERROR"):
        fetch_day(client(leadpier, store), DAY)


def test_a_5xx_page_is_retried(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(3))
    leadpier.faults.add("stats", status=502, times=2)

    assert len(fetch_day(client(leadpier, store), DAY)) == 3
    assert [r["status"] for r in leadpier.stats_requests] == [502, 502, 200]


def test_every_call_carries_the_dashboard_headers(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(3))

    fetch_day(client(leadpier, store), DAY)

    assert [r["kind"] for r in leadpier.requests] == ["login", "stats"]
    for request in leadpier.requests:
        headers = request["headers"]
        assert headers["origin"] == "https://dash.leadpier.com"
        assert headers["referer"] == "https://dash.leadpier.com/"
        assert headers["user-agent"] == UA
        assert headers["accept"] == "application/json"
        assert headers["content-type"] == "application/json"
    assert leadpier.stats_requests[0]["headers"]["authorization"] == f"bearer {leadpier.issued_tokens[0]}"


# --------------------------------------------------------------------------- login and the stored session


def test_a_login_stores_the_session_in_source_json(
    leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    token_of(client(leadpier, store))

    saved = stored_session(blob_container)
    assert set(saved) == {"token", "last_login_time", "expires_at", "user_email", "user_name"}
    assert saved["token"] == leadpier.issued_tokens[0]
    assert (saved["user_email"], saved["user_name"]) == ("ops@example.com", "Ops Team")
    assert datetime.fromisoformat(saved["last_login_time"]).tzinfo is not None


def test_a_stored_token_is_reused_by_the_next_client(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(2))
    fetch_day(client(leadpier, store), DAY)

    fetch_day(client(leadpier, store), DAY)

    assert leadpier.logins == 1
    assert [r["headers"]["authorization"] for r in leadpier.stats_requests] == [
        f"bearer {leadpier.issued_tokens[0]}"
    ] * 2


@pytest.mark.parametrize("custom_leadpier", [{"expiry_claim": "exp"}, {"expiry_claim": "expires"}], indirect=True)
def test_the_expiry_is_the_jwts_own_claim(
    custom_leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    token_of(client(custom_leadpier, store, ttl_minutes=1))

    claims = claims_of(custom_leadpier.issued_tokens[0])
    expected = datetime.fromtimestamp(claims[custom_leadpier.expiry_claim], UTC)
    assert datetime.fromisoformat(stored_session(blob_container)["expires_at"]) == expected


@pytest.mark.parametrize("custom_leadpier", [{"token_lifetime_s": None}], indirect=True)
def test_without_an_expiry_claim_the_token_lives_the_configured_ttl(
    custom_leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    token_of(client(custom_leadpier, store, ttl_minutes=7))

    saved = stored_session(blob_container)
    lifetime = datetime.fromisoformat(saved["expires_at"]) - datetime.fromisoformat(saved["last_login_time"])
    assert lifetime == timedelta(minutes=7)


@pytest.mark.parametrize("custom_leadpier", [{"token_lifetime_s": 120}], indirect=True)
def test_a_token_within_the_margin_of_its_expiry_is_not_reused(
    custom_leadpier: FakeLeadPier, store: StateStore
) -> None:
    token_of(client(custom_leadpier, store))

    token_of(client(custom_leadpier, store))

    assert custom_leadpier.logins == 2


def test_an_expired_stored_session_means_a_new_login(
    leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    past = datetime.now(UTC) - timedelta(hours=3)
    store.save_session(LeadPierSession(token="old", last_login_time=past, expires_at=past + timedelta(hours=2)), None)

    token = token_of(client(leadpier, store))

    assert leadpier.logins == 1 and token == leadpier.issued_tokens[0]
    assert stored_session(blob_container)["token"] == token


def test_a_corrupt_source_json_means_a_new_login(
    leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    store.ensure_container()
    blob_container.upload_blob("source.json", b"garbage", overwrite=True)

    token = token_of(client(leadpier, store))

    assert leadpier.logins == 1 and stored_session(blob_container)["token"] == token


def test_a_wrong_password_is_a_login_error_that_does_not_show_it(leadpier: FakeLeadPier, store: StateStore) -> None:
    with pytest.raises(LoginError) as caught:
        token_of(client(leadpier, store, password="wrong-Secret-pw"))

    assert "INVALID_CREDENTIALS" in str(caught.value) and "wrong-Secret-pw" not in str(caught.value)


# --------------------------------------------------------------------------- re-login on 401/403


class RevokingLeadPier(FakeLeadPier):
    """Resets every session right after serving the first page, as a server-side logout would."""

    def _answer(self, request: InboundRequest) -> Reply:
        reply = super()._answer(request)
        if request.path.endswith("/sources") and reply.status == 200 and request.json["offset"] == 0:
            self.revoke_tokens()
        return reply


def test_a_session_revoked_between_pages_means_one_new_login_and_every_row(store: StateStore) -> None:
    with RevokingLeadPier({DAY: rows(180)}, username=USERNAME, password=PASSWORD) as server:
        fetched = fetch_day(client(server, store, page_size=50, concurrency=4), DAY)

    assert len(fetched) == 180 and len({r["source"] for r in fetched}) == 180
    assert server.logins == 2
    # Pages 2 to 4 run at once: each is refused at most once; one that starts after the new login is not refused.
    assert 1 <= [r["status"] for r in server.stats_requests].count(401) <= 3


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_mid_pagination_means_login_and_retry(
    leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient, status: int
) -> None:
    leadpier.set_rows(DAY, rows(180))
    leadpier.faults.add("stats")  # the first page goes through
    leadpier.faults.add("stats", status=status, body={"errorCode": "UNAUTHORIZED", "data": None})

    fetched = fetch_day(client(leadpier, store, page_size=50, concurrency=1), DAY)

    assert len(fetched) == 180
    assert leadpier.logins == 2
    assert [r["status"] for r in leadpier.stats_requests] == [200, status, 200, 200, 200]
    assert stored_session(blob_container)["token"] == leadpier.issued_tokens[-1]


def test_a_token_refused_by_the_server_though_stored_as_valid_is_replaced(
    leadpier: FakeLeadPier, store: StateStore
) -> None:
    leadpier.set_rows(DAY, rows(2))
    token_of(client(leadpier, store))
    leadpier.revoke_tokens()

    assert len(fetch_day(client(leadpier, store), DAY)) == 2
    assert leadpier.logins == 2


def test_two_relogins_per_call_are_allowed(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(2))
    leadpier.faults.add("stats", status=401, times=2)

    assert len(fetch_day(client(leadpier, store), DAY)) == 2
    assert leadpier.logins == 3


def test_a_third_refusal_of_the_same_call_is_a_failure(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(2))
    leadpier.faults.add("stats", status=401, times=3)

    with pytest.raises(UpstreamError, match="HTTP 401"):
        fetch_day(client(leadpier, store), DAY)

    assert leadpier.logins == 3  # the first login and two re-logins, no more
    assert len(leadpier.stats_requests) == 3


# --------------------------------------------------------------------------- through whole runs


def test_the_second_run_reuses_the_token_of_the_first(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    first = run_sync(RunRequest(trigger="cli", dates=[DAY]))
    second = run_sync(RunRequest(trigger="cli", dates=[DAY]))

    assert (first.status, second.status) == ("success", "success")
    assert leadpier.logins == 1
    saved = stored_session(blob_container)
    assert saved["token"] == leadpier.issued_tokens[0]
    assert set(saved) == {"token", "last_login_time", "expires_at", "user_email", "user_name"}


def test_runs_ignore_proxy_variables(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    # Storage may go through a corporate proxy (the SDK honours NO_PROXY); LeadPier calls never do.
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string.replace("127.0.0.1", "localhost"))
    proxy = closed_port_url()
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "localhost")
    leadpier.set_rows(DAY, rows(3))

    record = run_sync(RunRequest(trigger="cli", dates=[DAY]))

    assert record.status == "success", record.error
    assert leadpier.logins == 1 and len(le.puts) == 1


def test_a_custom_user_agent_setting_is_sent(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier
) -> None:
    monkeypatch.setenv("LEADPIER_USER_AGENT", "Chrome-like/1.0")

    assert run_sync(RunRequest(trigger="cli", dates=[DAY])).status == "success"
    assert {r["headers"]["user-agent"] for r in leadpier.requests} == {"Chrome-like/1.0"}


# --------------------------------------------------------------------------- what LeadPier claims, what arrives


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_a_claimed_count_plans_no_more_than_the_window_ahead(
    leadpier: FakeLeadPier, store: StateStore, concurrency: int
) -> None:
    leadpier.set_rows(DAY, rows(250))
    leadpier.claimed_count = 1_000_000_000
    assert len(fetch_day(client(leadpier, store, page_size=100, concurrency=concurrency), DAY)) == 250
    # Pages 1 to 3 (the third is short), and at most one window asked for past the last one.
    assert 3 <= len(leadpier.stats_requests) <= 3 + concurrency


def test_an_empty_page_ends_the_day_whatever_the_count(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.set_rows(DAY, rows(200))
    leadpier.claimed_count = 5000
    assert len(fetch_day(client(leadpier, store, page_size=100, concurrency=1), DAY)) == 200
    assert [r["json"]["offset"] for r in leadpier.stats_requests] == [0, 100, 200]


def test_a_stored_token_the_http_stack_will_not_send_is_dropped_for_a_new_login(
    leadpier: FakeLeadPier, store: StateStore, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, rows(5))
    reader = client(leadpier, store)
    token_of(reader)
    reader._auth._token = "stale\r\ntoken"  # as if a check had let it through
    assert len(fetch_day(reader, DAY)) == 5
    assert reader.logins == 2
    assert stored_session(blob_container)["token"] == leadpier.issued_tokens[-1]


def test_later_pages_are_fetched_while_the_caller_still_works_on_a_page(
    leadpier: FakeLeadPier, store: StateStore
) -> None:
    leadpier.set_rows(DAY, rows(430))
    pages = client(leadpier, store, page_size=50, concurrency=2).iter_pages(DAY)

    first = next(pages)  # the caller holds page 1 and asks for nothing more
    # Each page thread that gets a full page starts the next one itself: two on the wire and two more waiting,
    # fetched, for the caller (no more: a slow caller does not make the day's rows pile up).
    end = time.monotonic() + 20
    while len(leadpier.stats_requests) < 5 and time.monotonic() < end:
        time.sleep(0.02)
    assert len(leadpier.stats_requests) == 5
    fetched = first + [row for page in pages for row in page]

    served = [row["source"] for request in sorted(leadpier.stats_requests, key=lambda r: r["json"]["offset"])
              for row in request["response"]["data"]["statistics"]]  # fmt: skip
    assert [row["source"] for row in fetched] == served and len(fetched) == 430  # in order, each row once
    assert sorted(r["json"]["offset"] for r in leadpier.stats_requests) == list(range(0, 450, 50))
