"""The local stand-ins (fake LeadPier, fake LE, Azurite, sample rows) behave as the other tests assume."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.azurite import Azurite
from sandbox.data import CAMPAIGN_CODE, KNOWN_DOMAINS, generate_rows
from sandbox.upstream import LOGIN_PATH, STATS_PATH, FakeLE, FakeLeadPier, closed_port_url

DAY = "2026-02-13"
DASHBOARD = {"origin": "https://dash.leadpier.com", "referer": "https://dash.leadpier.com/"}


def login(server: FakeLeadPier, password: str = "sandbox-password") -> requests.Response:
    return requests.post(
        server.url + LOGIN_PATH,
        json={"username": "sandbox-user", "password": password},
        headers=DASHBOARD,
        timeout=5,
    )


def token_of(server: FakeLeadPier) -> str:
    return str(login(server).json()["data"]["token"])


def stats(
    server: FakeLeadPier,
    token: str,
    *,
    offset: int = 0,
    limit: int = 1000,
    day: str = DAY,
    timeout: float = 5,
    session: requests.Session | None = None,
) -> requests.Response:
    body: dict[str, Any] = {
        "limit": limit,
        "offset": offset,
        "orderBy": "source",
        "orderDirection": "DESC",
        "periodFrom": day,
        "periodTo": day,
    }
    headers = {**DASHBOARD, "authorization": f"bearer {token}"}
    post = session.post if session is not None else requests.post
    return post(server.url + STATS_PATH, json=body, headers=headers, timeout=timeout)


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def le_put(server: FakeLE, codes: list[str], headers: dict[str, str] | None = None) -> requests.Response:
    data: list[dict[str, Any]] = [{"campaign_code": code, "clicks": 10, "revenue": 1.5} for code in codes]
    return requests.put(
        server.url + "/email_dashboard/stats/le_api.php",
        json={"report_date": DAY, "data": data},
        headers=headers or {},
        timeout=5,
    )


# --------------------------------------------------------------------------- LeadPier


def test_statistics_pages_are_slices_of_the_day_sorted_by_source_descending(leadpier: FakeLeadPier) -> None:
    leadpier.set_rows(DAY, [{"source": f"mta_0213-lbe-e{i:02d}", "visitors": i} for i in range(25)])
    token = token_of(leadpier)

    pages = [stats(leadpier, token, offset=offset, limit=10).json()["data"] for offset in (0, 10, 20)]

    assert [page["count"] for page in pages] == [25, 25, 25]
    assert [len(page["statistics"]) for page in pages] == [10, 10, 5]
    sources = [row["source"] for page in pages for row in page["statistics"]]
    assert sources == sorted(sources, reverse=True) and len(set(sources)) == 25
    assert leadpier.stats_requests[0]["json"]["periodFrom"] == DAY


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.integers(0, 40), limit=st.integers(1, 15))
def test_paging_by_offset_reads_every_row_once(leadpier: FakeLeadPier, total: int, limit: int) -> None:
    leadpier.set_rows(DAY, generate_rows(total, date.fromisoformat(DAY)))
    token = token_of(leadpier)
    read: list[str] = []
    offset = 0
    while True:
        page = stats(leadpier, token, offset=offset, limit=limit).json()["data"]
        read += [row["source"] for row in page["statistics"]]
        offset += limit
        if offset >= page["count"]:
            break
    assert len(read) == total and len(set(read)) == total


def test_a_day_without_rows_has_count_zero(leadpier: FakeLeadPier) -> None:
    data = stats(leadpier, token_of(leadpier), day="2026-01-01").json()

    assert data == {"errorCode": "NO_ERROR", "data": {"count": 0, "statistics": []}}


def test_wrong_password_is_invalid_credentials_with_http_200(leadpier: FakeLeadPier) -> None:
    response = login(leadpier, password="wrong")

    assert response.status_code == 200
    assert response.json() == {"errorCode": "INVALID_CREDENTIALS", "data": None}
    assert leadpier.logins == 0


@pytest.mark.parametrize(
    ("lifetime", "claim"), [(3600, "exp"), (3600, "expires"), (None, "exp")]
)  # fmt: skip
def test_each_login_issues_a_new_jwt_carrying_the_configured_expiry(lifetime: int | None, claim: str) -> None:
    with FakeLeadPier(token_lifetime_s=lifetime, expiry_claim=claim) as server:
        first, second = token_of(server), token_of(server)

    assert first != second and server.logins == 2 and server.issued_tokens == [first, second]
    claims = jwt_claims(first)
    if lifetime is None:
        assert "exp" not in claims and "expires" not in claims
    else:
        assert claims[claim] - claims["iat"] == lifetime


def test_revoked_and_expired_tokens_get_401(leadpier: FakeLeadPier) -> None:
    token = token_of(leadpier)
    assert stats(leadpier, token).status_code == 200

    leadpier.revoke_tokens()
    assert stats(leadpier, token).status_code == 401
    assert stats(leadpier, token_of(leadpier)).status_code == 200

    leadpier.token_lifetime_s = 0
    assert stats(leadpier, token_of(leadpier)).status_code == 401


def test_requests_without_the_dashboard_origin_get_403(leadpier: FakeLeadPier) -> None:
    response = requests.post(
        leadpier.url + LOGIN_PATH,
        json={"username": "sandbox-user", "password": "sandbox-password"},
        timeout=5,
    )

    assert response.status_code == 403
    assert leadpier.requests[-1]["headers"].get("origin") is None


def test_a_fault_answers_its_status_for_its_times_then_the_server_behaves(leadpier: FakeLeadPier) -> None:
    token = token_of(leadpier)
    leadpier.faults.add("stats", status=503, headers={"Retry-After": "1"}, times=2)

    answers = [stats(leadpier, token) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "1"
    assert leadpier.faults.pending() == 0
    assert [r["status"] for r in leadpier.stats_requests] == [503, 503, 200]


def test_fault_bodies_are_json_for_a_dict_and_raw_for_a_string(leadpier: FakeLeadPier) -> None:
    leadpier.faults.add("login", status=200, body={"errorCode": "SERVER_BUSY", "data": None})
    leadpier.faults.add("login", status=200, body="not json")

    assert login(leadpier).json() == {"errorCode": "SERVER_BUSY", "data": None}
    raw = login(leadpier)
    assert raw.text == "not json" and raw.headers["Content-Type"].startswith("text/plain")
    assert login(leadpier).json()["errorCode"] == "NO_ERROR"


def test_connection_faults_drop_or_outlast_the_client(leadpier: FakeLeadPier) -> None:
    token = token_of(leadpier)
    leadpier.faults.add("stats", close_connection=True)
    leadpier.faults.add("stats", delay_s=0.5)

    with pytest.raises(requests.ConnectionError):
        stats(leadpier, token)
    with pytest.raises(requests.Timeout):
        stats(leadpier, token, timeout=0.1)
    assert stats(leadpier, token).status_code == 200


def test_stop_cuts_pooled_connections_and_start_reuses_the_port(leadpier: FakeLeadPier) -> None:
    url, token = leadpier.url, token_of(leadpier)
    with requests.Session() as session:
        assert stats(leadpier, token, session=session).status_code == 200

        leadpier.stop()
        with pytest.raises(requests.ConnectionError):
            stats(leadpier, token, session=session)

        leadpier.start()
        assert leadpier.url == url
        assert stats(leadpier, token, session=session).status_code == 200


def test_closed_port_url_refuses_connections() -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(closed_port_url(), timeout=2)


# --------------------------------------------------------------------------- LE


def test_le_counts_matched_and_unmatched_codes(le: FakeLE) -> None:
    answer = le_put(le, ["mta-b_0213-lbe-e2", "SPG_0301-AFW-E1", "mta_0213-xyz-e1", "vr-b-oZaR5m-t-mlYq6o-0213"]).json()

    assert answer["success"] is True
    assert (answer["matched"], answer["unmatched"], answer["total_received"]) == (2, 2, 4)
    assert answer["details"][0] == {
        "le_code": "mta-b_0213-lbe-e2",
        "domain": "loanboostexpress.com",
        "pp_campaign": "0213-lbe-e2",
        "sends": answer["details"][0]["sends"],
        "revenue": 1.5,
    }
    assert "unknown domain code 'xyz' in 'mta_0213-xyz-e1'" in answer["errors"]
    assert le.received_days()[DAY][0]["campaign_code"] == "mta-b_0213-lbe-e2"
    assert le.puts[0]["path"] == "/email_dashboard/stats/le_api.php"


def test_le_checks_the_api_key_when_it_has_one() -> None:
    with FakeLE(api_key="k-123") as server:
        assert le_put(server, ["mta_0213-lbe-e1"]).status_code == 401
        assert le_put(server, ["mta_0213-lbe-e1"], headers={"X-API-Key": "k-123"}).status_code == 200
    assert [put["status"] for put in server.puts] == [401, 200]


def test_le_can_refuse_and_then_holds_nothing_for_the_day(le: FakeLE) -> None:
    le.respond = {"success": False, "message": "database locked"}

    assert le_put(le, ["mta_0213-lbe-e1"]).json() == {"success": False, "message": "database locked"}
    assert le.received_days() == {}


# --------------------------------------------------------------------------- sample rows


def test_generated_rows_are_deterministic_unique_and_mixed() -> None:
    day = date(2026, 2, 13)
    rows = generate_rows(400, day, seed=7)

    assert rows == generate_rows(400, day, seed=7)
    assert rows != generate_rows(400, day, seed=8)
    sources = [row["source"] for row in rows]
    assert len({s.lower() for s in sources}) == 400
    valid = [s for s in sources if CAMPAIGN_CODE.match(s)]
    known = [s for s in valid if CAMPAIGN_CODE.match(s).group(2).lower() in KNOWN_DOMAINS]  # type: ignore[union-attr]
    assert len(sources) - len(valid) == 40  # invalid format
    assert len(valid) - len(known) == 20  # unknown domain
    assert all("_0213-" in s for s in valid)
    assert any(s != s.lower() for s in valid)
    assert sum(1 for row in rows if row["visitors"] in (0, "0")) == 20
    assert any(isinstance(v, str) for row in rows for k, v in row.items() if k != "source")
    assert any(None in row.values() or len(row) < 9 for row in rows)
    for row in rows:
        if all(row.get(k) is not None for k in ("visitors", "totalLeads", "soldLeads", "totalRevenue")):
            visitors, leads, sold = (float(row[k]) for k in ("visitors", "totalLeads", "soldLeads"))
            assert sold <= leads <= visitors and float(row["totalRevenue"]) >= 0


def test_unreadable_rows_only_on_request() -> None:
    def unreadable(row: dict[str, Any]) -> bool:
        return not row.get("source") or "n/a" in row.values()

    assert not any(unreadable(row) for row in generate_rows(50, date(2026, 2, 13)))
    assert sum(unreadable(row) for row in generate_rows(50, date(2026, 2, 13), include_unreadable=True)) == 3


# --------------------------------------------------------------------------- Azurite and the environment


def test_azurite_keeps_blobs_across_a_stop_and_start_on_the_same_port(azurite_fresh: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite_fresh.connection_string)
    service.create_container("outage").upload_blob("state.json", b'{"ok": true}')
    blob_port = azurite_fresh.blob_port

    azurite_fresh.stop()
    # No retries: the SDK's default policy would back off for over a minute before giving up.
    impatient = BlobServiceClient.from_connection_string(azurite_fresh.connection_string, retry_total=0)
    with pytest.raises(ServiceRequestError):
        impatient.get_container_client("outage").download_blob("state.json").readall()
    azurite_fresh.start()

    assert azurite_fresh.blob_port == blob_port
    assert service.get_container_client("outage").download_blob("state.json").readall() == b'{"ok": true}'


def test_sync_env_points_the_app_at_the_stand_ins(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, tmp_path: Path
) -> None:
    assert os.environ["LEADPIER_BASE_URL"] == leadpier.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/email_dashboard/stats/le_api\.php", os.environ["LE_API_URL"])
    assert "QueueEndpoint=http://127.0.0.1:" in os.environ["AzureWebJobsStorage"]
    assert Path.cwd() == tmp_path
    assert not any(name.startswith("AzureWebJobsStorage__") for name in os.environ)
