"""The LE client against the loopback stand-in: one PUT per day, X-API-Key when configured, the answer read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from azure.storage.blob import ContainerClient

from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.errors import UpstreamError
from sync_core.rules.transform import LePayload, LeRecord, transform_rows
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.upstream.http import Caller, Deadline, new_session
from sync_core.upstream.le import DayBody, LeClient, records_json

DAY = date(2026, 2, 13)
API_KEY = "le-Secret-Key-789"
RECORD = LeRecord(
    campaign_code="mta-b_0213-lbe-e2", clicks=812, leads=97, lead_percent=11.95, sales=61,
    sale_percent=62.89, revenue=1234.5, epc=12.73, rpc=1.52,
)  # fmt: skip


def le_client(server: FakeLE, api_key: str | None = None) -> LeClient:
    caller = Caller(new_session(), timeout_s=5, deadline=Deadline(60), backoff_initial_s=0.01, backoff_max_s=0.05)
    return LeClient(url=f"{server.url}/email_dashboard/stats/le_api.php", api_key=api_key, caller=caller)


@pytest.fixture
def keyed_le() -> Iterator[FakeLE]:
    with FakeLE(api_key=API_KEY) as server:
        yield server


def test_a_day_is_put_as_one_body_with_every_record(le: FakeLE) -> None:
    answer = le_client(le).put_day(DAY, [RECORD, replace(RECORD, campaign_code="mta_0213-xyz-e1")])

    assert len(le.puts) == 1
    put = le.puts[0]
    assert put["path"] == "/email_dashboard/stats/le_api.php"
    assert put["body"] == {
        "report_date": "2026-02-13",
        "data": [
            {"campaign_code": "mta-b_0213-lbe-e2", "clicks": 812, "leads": 97, "lead_percent": 11.95, "sales": 61,
             "sale_percent": 62.89, "revenue": 1234.5, "epc": 12.73, "rpc": 1.52},
            {"campaign_code": "mta_0213-xyz-e1", "clicks": 812, "leads": 97, "lead_percent": 11.95, "sales": 61,
             "sale_percent": 62.89, "revenue": 1234.5, "epc": 12.73, "rpc": 1.52},
        ],
    }  # fmt: skip
    assert (answer.success, answer.matched, answer.unmatched, answer.total_received) == (True, 1, 1, 2)
    assert answer.errors == ["unknown domain code 'xyz' in 'mta_0213-xyz-e1'"]


def test_no_api_key_header_is_sent_when_none_is_configured(le: FakeLE) -> None:
    le_client(le).put_day(DAY, [RECORD])

    assert "x-api-key" not in le.puts[0]["headers"]


def test_the_api_key_is_sent_as_x_api_key(keyed_le: FakeLE) -> None:
    answer = le_client(keyed_le, API_KEY).put_day(DAY, [RECORD])

    assert answer.success is True
    assert keyed_le.puts[0]["headers"]["x-api-key"] == API_KEY


def test_success_false_is_read_with_its_message() -> None:
    with FakeLE(respond={"success": False, "message": "database is read-only"}) as server:
        answer = le_client(server).put_day(DAY, [RECORD])

    assert answer.success is False and answer.message == "database is read-only"


def test_a_refused_put_is_an_error_without_the_key_or_url(keyed_le: FakeLE) -> None:
    with pytest.raises(UpstreamError) as caught:
        le_client(keyed_le, "wrong-key").put_day(DAY, [RECORD])

    assert str(caught.value) == "LE update for 2026-02-13 failed: HTTP 401"


def test_an_answer_that_is_not_json_is_an_error(le: FakeLE) -> None:
    le.faults.add("put", status=200, body="<html>PHP Fatal error</html>")

    with pytest.raises(UpstreamError, match="not the expected JSON"):
        le_client(le).put_day(DAY, [RECORD])


def test_a_5xx_put_is_retried_and_the_day_is_sent_whole(le: FakeLE) -> None:
    le.faults.add("put", status=503, headers={"Retry-After": "0"})

    assert le_client(le).put_day(DAY, [RECORD]).success is True
    assert [p["status"] for p in le.puts] == [503, 200]
    assert le.puts[0]["body"] == le.puts[1]["body"]


# --------------------------------------------------------------------------- through whole runs


def test_a_run_sends_le_api_key_as_x_api_key(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, keyed_le: FakeLE, leadpier: FakeLeadPier,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    monkeypatch.setenv("LE_API_URL", f"{keyed_le.url}/email_dashboard/stats/le_api.php")
    monkeypatch.setenv("LE_API_KEY", API_KEY)
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 10}])

    record = run_sync(RunRequest(trigger="cli", dates=[DAY]))

    assert record.status == "success", record.error
    assert [p["headers"].get("x-api-key") for p in keyed_le.puts] == [API_KEY]
    for blob in blob_container.list_blobs():  # the key never lands in a run record, the stats or the log
        assert API_KEY.encode() not in blob_container.download_blob(blob.name).readall()


def test_a_run_without_the_key_that_le_requires_fails(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, keyed_le: FakeLE, leadpier: FakeLeadPier
) -> None:
    monkeypatch.setenv("LE_API_URL", f"{keyed_le.url}/email_dashboard/stats/le_api.php")
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 10}])

    record = run_sync(RunRequest(trigger="cli", dates=[DAY]))

    assert record.status == "failed" and "HTTP 401" in (record.error or "")


def test_a_body_built_page_by_page_is_the_bytes_of_the_whole_day_serialised_at_once() -> None:
    rows = generate_rows(2500, DAY, seed=11)
    whole = transform_rows(rows).records
    body = DayBody(DAY)
    for start in range(0, len(rows), 1000):
        page = transform_rows(rows[start : start + 1000]).records
        body.add(records_json(page), len(page))
    body.add(records_json([]), 0)  # a page without records adds nothing, not an empty element

    assert body.records == len(whole)
    assert body.encode() == LePayload(report_date=DAY.isoformat(), data=whole).model_dump_json().encode()
    assert DayBody(DAY).encode() == b'{"report_date":"2026-02-13","data":[]}'
