"""LeadPierAuth against the loopback stand-in and Azurite: the header it hands out, the stored session, re-login."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLeadPier
from sync_core.errors import LoginError, UnexpectedAnswer
from sync_core.settings import ConnectionStringTarget
from sync_core.state.store import StateStore
from sync_core.upstream.http import Caller, Deadline, new_session
from sync_core.upstream.leadpier_auth import LeadPierAuth, token_expiry

LEADPIER_USERNAME, LEADPIER_PASSWORD = "sandbox-user", "sandbox-password"  # the stand-in's (tests/conftest.py)
HEADERS = {
    "accept": "application/json", "content-type": "application/json", "origin": "https://dash.leadpier.com",
    "referer": "https://dash.leadpier.com/", "user-agent": "Chrome-like/1.0",
}  # fmt: skip


@pytest.fixture
def store(azurite: Azurite, container_name: str) -> StateStore:
    return StateStore(
        ConnectionStringTarget(connection_string=SecretStr(azurite.connection_string), container=container_name)
    )


def auth(server: FakeLeadPier, store: StateStore, *, password: str = LEADPIER_PASSWORD) -> LeadPierAuth:
    caller = Caller(new_session(), timeout_s=5, deadline=Deadline(60), backoff_initial_s=0.01, backoff_max_s=0.05)
    return LeadPierAuth(
        base_url=server.url + "/", username=LEADPIER_USERNAME, password=password, headers=HEADERS,
        token_ttl=timedelta(hours=2), caller=caller, sessions=store,
    )  # fmt: skip


def make_jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


def test_the_header_is_the_bearer_token_of_one_login_sent_with_the_given_headers(
    leadpier: FakeLeadPier, store: StateStore
) -> None:
    session = auth(leadpier, store)

    first, second = session.authorization(), session.authorization()

    assert first == second == f"bearer {leadpier.issued_tokens[0]}"
    assert leadpier.logins == 1 and session.logins == 1
    sent = leadpier.login_requests[0]
    assert sent["json"] == {"username": LEADPIER_USERNAME, "password": LEADPIER_PASSWORD}
    assert sent["headers"]["user-agent"] == "Chrome-like/1.0"


def test_a_new_auth_reuses_the_stored_session(leadpier: FakeLeadPier, store: StateStore) -> None:
    auth(leadpier, store).token()

    later = auth(leadpier, store)

    assert later.token() == leadpier.issued_tokens[0]
    assert leadpier.logins == 1 and later.logins == 0


def test_a_refused_header_means_a_new_login_that_is_stored(leadpier: FakeLeadPier, store: StateStore) -> None:
    session = auth(leadpier, store)
    refused = session.authorization()

    renewed = session.refused(refused)

    assert renewed == f"bearer {leadpier.issued_tokens[1]}" != refused
    assert session.authorization() == renewed
    stored, _ = store.load_session()
    assert stored is not None and stored.token == leadpier.issued_tokens[1]


def test_a_header_refused_after_another_thread_logged_in_again_needs_no_further_login(
    leadpier: FakeLeadPier, store: StateStore
) -> None:
    session = auth(leadpier, store)
    stale = session.authorization()

    with ThreadPoolExecutor(max_workers=4) as pool:
        renewed = set(pool.map(session.refused, [stale] * 4))

    assert renewed == {f"bearer {leadpier.issued_tokens[1]}"}
    assert leadpier.logins == 2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_login_answered_with_a_4xx_is_a_login_error_naming_only_the_status(
    leadpier: FakeLeadPier, store: StateStore, status: int
) -> None:
    leadpier.faults.add("login", status=status, body={"errorCode": "FORBIDDEN", "data": None})

    with pytest.raises(LoginError) as caught:
        auth(leadpier, store).token()

    assert str(caught.value) == f"LeadPier login failed: HTTP {status}"
    assert len(leadpier.login_requests) == 1
    assert store.load_session()[0] is None


def test_refused_credentials_are_a_login_error_without_the_password(leadpier: FakeLeadPier, store: StateStore) -> None:
    with pytest.raises(LoginError) as caught:
        auth(leadpier, store, password="wrong-Secret-pw").token()

    assert str(caught.value) == "LeadPier login failed: INVALID_CREDENTIALS"


def test_a_login_answer_that_is_not_json_is_an_unexpected_answer(leadpier: FakeLeadPier, store: StateStore) -> None:
    leadpier.faults.add("login", status=200, body="<html>maintenance</html>")

    with pytest.raises(UnexpectedAnswer) as caught:
        auth(leadpier, store).token()

    assert not isinstance(caught.value, LoginError)
    assert str(caught.value) == "LeadPier login failed: the answer (HTTP 200) was not the expected JSON"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (make_jwt({"exp": 1771000000}), datetime(2026, 2, 13, 16, 26, 40, tzinfo=UTC)),
        (make_jwt({"expires": 1771000000}), datetime(2026, 2, 13, 16, 26, 40, tzinfo=UTC)),
        (make_jwt({"exp": 1771000000000}), datetime(2026, 2, 13, 16, 26, 40, tzinfo=UTC)),
        (make_jwt({"expires": "2026-02-13T16:26:40Z"}), datetime(2026, 2, 13, 16, 26, 40, tzinfo=UTC)),
        (make_jwt({"expires": "2026-02-13T16:26:40"}), datetime(2026, 2, 13, 16, 26, 40, tzinfo=UTC)),
        (make_jwt({"sub": "x"}), None),
        (make_jwt({"exp": True}), None),
        (make_jwt({"exp": "soon"}), None),
        ("not-a-jwt", None),
        ("a.!!!.c", None),
        ("a." + base64.urlsafe_b64encode(b"[1,2]").decode() + ".c", None),
    ],
)
def test_the_jwt_expiry_is_read_from_exp_or_expires(token: str, expected: datetime | None) -> None:
    assert token_expiry(token) == expected
