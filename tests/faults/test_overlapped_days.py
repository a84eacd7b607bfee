"""A run of several days: each day's PUT is on the wire while the next day is fetched. What LE receives, the order
of the days and what ends a run stay as they were when one day waited for the other."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobLeaseClient, ContainerClient

import sync_core.state.lock as lock_module
from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier

from .conftest import DAY, Background, sync, wait_for

DAYS = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]


@pytest.fixture
def three_days(env: dict[str, str], leadpier: FakeLeadPier) -> dict[str, list[dict[str, Any]]]:
    served = {day.isoformat(): generate_rows(30 + 10 * i, day, seed=i) for i, day in enumerate(DAYS)}
    for day, rows in served.items():
        leadpier.set_rows(day, rows)
    return served


def test_a_day_le_refuses_leaves_the_next_days_fetched_sent_and_recorded_in_order(
    three_days: dict[str, list[dict[str, Any]]], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    le.faults.add("put", status=400, body={"error": "bad request"})

    record = sync(dates=DAYS)

    assert record.status == "failed"
    assert [d.report_date for d in record.days] == [d.isoformat() for d in DAYS]
    assert record.days[0].error == f"LE update for {DAYS[0].isoformat()} failed: HTTP 400"
    assert [d.error for d in record.days[1:]] == [None, None]
    assert [p["body"]["report_date"] for p in le.puts] == [d.isoformat() for d in DAYS]  # one PUT a day, in order
    assert [d.sent_records for d in record.days] == [0, *(len(p["body"]["data"]) for p in le.puts[1:])]
    assert [d.le_success for d in record.days] == [None, True, True]
    assert [d.fetched_rows for d in record.days] == [len(rows) for rows in three_days.values()]


def test_the_lease_lost_while_a_put_is_on_the_wire_stops_the_next_put(
    three_days: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    le: FakeLE,
    blob_container: ContainerClient,
) -> None:
    monkeypatch.setattr(lock_module, "RENEW_EVERY_SECONDS", 0.1)
    le.faults.add("put", delay_s=0.8)  # the first day's PUT (within the 1 s timeout): the lease is taken over meanwhile
    run = Background(dates=DAYS).start()
    wait_for(lambda: len(le.puts) == 1, "the first day's PUT")
    lock_blob = blob_container.get_blob_client(lock_module.LOCK_BLOB)
    BlobLeaseClient(lock_blob).break_lease(lease_break_period=0)
    intruder = lock_blob.acquire_lease(lease_duration=15)
    record = run.result()
    intruder.release()

    assert record.status == "failed" and "lease" in (record.error or "")
    assert [p["body"]["report_date"] for p in le.puts] == [DAYS[0].isoformat()]  # none once another run may send
    first, second = record.days[:2]
    assert first.le_success is True and first.error is None  # its answer was waited for and recorded
    assert "lease" in (second.error or "") and second.sent_records == 0
    assert [d.report_date for d in record.days] == [DAYS[0].isoformat(), DAYS[1].isoformat()]


def test_the_deadline_passing_during_an_overlapped_put_ends_the_run_as_before(
    three_days: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, le: FakeLE
) -> None:
    monkeypatch.setenv("SYNC_RUN_DEADLINE_SECONDS", "2")
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "5")
    le.faults.add("put", delay_s=4)  # the first day's PUT outlives the deadline

    record = sync(dates=DAYS)

    assert record.status == "failed" and "deadline" in (record.error or "")
    # The second day, fetched while the first day's PUT was on the wire, is not sent past the deadline, and the
    # deadline ends the run there: the third day is left out of the run, as it was never begun before.
    assert [d.report_date for d in record.days] == [DAYS[0].isoformat(), DAYS[1].isoformat()]
    assert "no time was left" in (record.days[0].error or "")
    assert "deadline" in (record.days[1].error or "")
    assert len(le.puts) == 1
    assert record.fetched_rows == sum(d.fetched_rows for d in record.days)
