"""Catch-up after an outage: missed days synced oldest first within SYNC_CATCHUP_DAYS, older ones reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.services import timing, use_timing
from sync_core.settings import load_settings
from sync_core.state.store import StateStore
from sync_core.web.health import health
from sync_core.web.status import status_document

IST = ZoneInfo("Asia/Kolkata")
TODAY = date(2026, 2, 20)


class Clock:
    """The moment the pipeline sees (report days, finalization); lease and deadline keep real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock(datetime(2026, 2, 16, 10, 0, tzinfo=IST))
    with use_timing(replace(timing(), clock=clock)):
        yield clock


def d(day: int) -> date:
    return date(2026, 2, day)


def rows_for(day: date, count: int = 3) -> list[dict[str, Any]]:
    return [{"source": f"mta_{day:%m%d}-lbe-e{i}", "visitors": i + 1, "clicks": i} for i in range(count)]


def timer(**request: Any) -> Any:
    return run_sync(RunRequest(trigger="timer", **request))


def stats(container: ContainerClient) -> dict[str, Any]:
    return dict(json.loads(container.download_blob("job_stats.json").readall()))


def health_at(now: datetime) -> dict[str, Any]:
    return dict(json.loads(health(now=now).body))


def finalized_before(clock: Clock, leadpier: FakeLeadPier, day: date) -> None:
    """A run on `day` + 1 that finalizes `day`: the state an outage then starts from."""
    leadpier.set_rows(day, rows_for(day))
    clock.now = datetime(day.year, day.month, day.day, 12, 0, tzinfo=IST) + timedelta(days=1)
    assert timer().status == "success"


def test_after_a_three_day_outage_the_missed_days_are_sent_oldest_first(
    sync_env: dict[str, str], clock: Clock, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    finalized_before(clock, leadpier, d(16))
    for day in range(17, 21):
        leadpier.set_rows(d(day), rows_for(d(day), count=day - 14))
    leadpier.set_rows(d(18), [])  # a past day with no records: nothing to send, finalized all the same
    le.puts.clear()
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    record = timer()

    assert record.status == "success", record.error
    assert record.report_dates == ["2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20"]
    assert record.caught_up_dates == ["2026-02-17", "2026-02-18"]
    assert record.finalized_dates == ["2026-02-17", "2026-02-18", "2026-02-19"]
    assert [p["body"]["report_date"] for p in le.puts] == ["2026-02-17", "2026-02-19", "2026-02-20"]
    held = le.received_days()
    assert len(held["2026-02-17"]) == 3 and len(held["2026-02-19"]) == 5
    assert stats(blob_container)["last_finalized_day"] == "2026-02-19"
    # Catch-up ends by itself.
    clock.now += timedelta(minutes=10)
    assert timer().report_dates == ["2026-02-20"]


def test_a_failed_day_is_retried_and_the_days_finalized_after_it_are_not_sent_again(
    sync_env: dict[str, str], clock: Clock, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    finalized_before(clock, leadpier, d(16))
    for day in range(17, 21):
        leadpier.set_rows(d(day), rows_for(d(day)))
    le.puts.clear()
    le.faults.add("put")  # the 17th goes through
    le.faults.add("put", status=400, body={"success": False, "message": "bad day"})  # the 18th fails, not retried
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    first = timer()

    assert first.status == "failed"
    assert first.finalized_dates == ["2026-02-17", "2026-02-19"]
    state = stats(blob_container)
    assert (state["last_finalized_day"], state["finalized_days"]) == ("2026-02-17", ["2026-02-19"])
    assert health_at(clock.now)["checks"]["catch_up"]["oldest_unfinalized_day"] == "2026-02-18"

    clock.now += timedelta(minutes=10)
    second = timer()

    assert second.status == "success", second.error
    assert second.report_dates == ["2026-02-18", "2026-02-20"]  # the 19th is final already: not sent again
    assert second.caught_up_dates == ["2026-02-18"]
    state = stats(blob_container)
    assert (state["last_finalized_day"], state["finalized_days"]) == ("2026-02-19", [])
    assert [p["body"]["report_date"] for p in le.puts].count("2026-02-19") == 1


def test_a_run_stopped_by_its_deadline_keeps_the_days_it_finalized(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clock: Clock, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    finalized_before(clock, leadpier, d(16))
    for day in range(17, 21):
        leadpier.set_rows(d(day), rows_for(d(day)))
    monkeypatch.setenv("SYNC_RUN_DEADLINE_SECONDS", "2")
    leadpier.faults.add("stats", times=2)  # the 17th and 18th answer at once
    leadpier.faults.add("stats", delay_s=4)  # the 19th never answers before the deadline
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    stopped = timer()

    assert stopped.status == "failed"
    assert stopped.finalized_dates == ["2026-02-17", "2026-02-18"]
    assert stats(blob_container)["last_finalized_day"] == "2026-02-18"
    leadpier.faults.clear()
    monkeypatch.setenv("SYNC_RUN_DEADLINE_SECONDS", "480")
    clock.now += timedelta(minutes=10)
    assert timer().report_dates == ["2026-02-19", "2026-02-20"]  # the next run continues


def test_days_older_than_the_window_are_reported_with_the_backfill_to_run(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clock: Clock, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    monkeypatch.setenv("SYNC_CATCHUP_DAYS", "3")
    finalized_before(clock, leadpier, d(10))
    for day in range(11, 21):
        leadpier.set_rows(d(day), rows_for(d(day)))
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    before = health_at(clock.now)
    record = timer()
    after = health_at(clock.now)

    assert before["status"] == "degraded"
    assert before["checks"]["catch_up"]["oldest_unfinalized_day"] == "2026-02-11"
    assert record.report_dates == ["2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20"]
    assert after["status"] == "degraded"
    check = after["checks"]["catch_up"]
    assert check["beyond_window"] == [f"2026-02-{day}" for day in range(11, 17)]
    assert check["backfill"] == ['POST /trigger {"from": "2026-02-11", "to": "2026-02-16"}']
    assert 'POST /trigger {"from": "2026-02-11", "to": "2026-02-16"}' in after["reason"]
    shown = status_document(load_settings(), StateStore(load_settings().storage), now=clock.now).catch_up
    assert shown.oldest_unfinalized_day == "2026-02-11" and shown.pending_days == []

    # The backfill the check names (one queued run per day, as the worker makes them) clears it.
    for day in range(11, 17):
        assert run_sync(RunRequest(trigger="manual", dates=[d(day)])).status == "success"
    healed = health_at(clock.now)
    assert healed["checks"]["catch_up"]["status"] == "ok"
    assert healed["checks"]["catch_up"]["oldest_unfinalized_day"] is None
    assert stats(blob_container)["unsynced_days"] == []
    assert set(le.received_days()) >= {f"2026-02-{day}" for day in range(11, 21)}


def test_catch_up_days_zero_syncs_only_yesterday_and_today_and_reports_the_rest(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clock: Clock, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    monkeypatch.setenv("SYNC_CATCHUP_DAYS", "0")
    finalized_before(clock, leadpier, d(16))
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    record = timer()

    assert record.report_dates == ["2026-02-19", "2026-02-20"]
    assert stats(blob_container)["unsynced_days"] == ["2026-02-17", "2026-02-18"]


def test_a_fresh_install_does_not_reach_back_a_week(
    sync_env: dict[str, str], clock: Clock, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    record = timer()

    assert record.report_dates == ["2026-02-15", "2026-02-16"]
    assert health_at(clock.now)["checks"]["catch_up"]["status"] == "ok"


def test_a_dry_run_catches_nothing_up(
    sync_env: dict[str, str], clock: Clock, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    finalized_before(clock, leadpier, d(16))
    clock.now = datetime(2026, 2, 20, 9, 0, tzinfo=IST)

    record = timer(dry_run=True)

    assert record.report_dates == ["2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20"]
    assert record.finalized_dates == [] and record.caught_up_dates == []
    assert stats(blob_container)["last_finalized_day"] == "2026-02-16"
