"""The HTTP side on its own: trigger planning, the queue message, backfill folding, timer status, input validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sync_core.run.backfill import aggregate_backfill, plan_runs
from sync_core.run.triggers import timer_status
from sync_core.state.queues import RunMessage
from sync_core.state.records import RunRecord, RunStatus, is_run_id
from sync_core.web.api_models import LogsQuery, RunsQuery, TriggerBody, parse
from sync_core.web.responses import ApiError, ErrorBody
from sync_core.web.status import timer_enabled

NOW = datetime(2026, 2, 13, 18, 3, 35, 123000, tzinfo=UTC)


def test_a_plain_plan_is_one_queued_run_and_one_message() -> None:
    plan = plan_runs([], None, False, now=NOW)
    assert is_run_id(plan.run_id) and plan.run_id.startswith("20260213T180335123Z-")
    (record,) = plan.records
    assert (record.status, record.trigger, record.queued_at, record.report_dates) == ("queued", "manual", NOW, [])
    (message,) = plan.messages
    assert message.run_id == plan.run_id and message.dates is None


def test_a_range_plan_is_one_run_per_day_under_a_parent() -> None:
    days = [date(2026, 2, 1) + timedelta(days=i) for i in range(31)]
    plan = plan_runs(days, True, False, now=NOW)
    assert len(plan.messages) == 31
    assert plan.child_run_ids == [f"{plan.run_id}.{i:02d}" for i in range(1, 32)]
    assert all(is_run_id(c) for c in plan.child_run_ids)
    parent = next(r for r in plan.records if r.run_id == plan.run_id)
    assert parent.child_run_ids == plan.child_run_ids and parent.dry_run is True
    assert [m.dates for m in plan.messages] == [[d] for d in days]
    assert {m.parent_run_id for m in plan.messages} == {plan.run_id}


def test_the_queue_message_round_trips_as_json() -> None:
    message = plan_runs([date(2026, 2, 12)], None, False, now=NOW).messages[0]
    text = message.model_dump_json()
    assert '"2026-02-12"' in text
    assert RunMessage.model_validate_json(text) == message


def child(status: RunStatus, day: str, **counts: Any) -> RunRecord:
    return RunRecord(
        run_id=f"20260213T180335123Z-1a2b3c.{day[-2:]}",
        trigger="manual",
        status=status,
        report_dates=[day],
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=int(day[-2:])),
        **counts,
    )


PARENT = RunRecord(
    run_id="20260213T180335123Z-1a2b3c",
    trigger="manual",
    status="queued",
    child_run_ids=["20260213T180335123Z-1a2b3c.01", "20260213T180335123Z-1a2b3c.02"],
)


@pytest.mark.parametrize(
    "statuses, folded",
    [
        (["queued", "queued"], "queued"),
        (["success", "queued"], "running"),
        (["running", "queued"], "running"),
        (["success", "success"], "success"),
        (["success", "warning"], "warning"),
        (["failed", "warning"], "failed"),
        (["skipped", "skipped"], "skipped"),
        (["skipped", "success"], "warning"),
    ],
)
def test_a_backfill_parent_status_folds_its_days(statuses, folded) -> None:
    children: list[RunRecord | None] = [child(s, f"2026-02-0{i + 1}") for i, s in enumerate(statuses)]
    assert aggregate_backfill(PARENT, children).status == folded


def test_a_backfill_parent_sums_its_days() -> None:
    children: list[RunRecord | None] = [
        child("success", "2026-02-01", fetched_rows=5, sent_records=4, unmatched_codes={"unknown_domain": ["a"]}),
        child("failed", "2026-02-02", fetched_rows=2, error="LE refused"),
    ]
    folded = aggregate_backfill(PARENT, children)
    assert (folded.fetched_rows, folded.sent_records) == (7, 4)
    assert folded.unmatched_codes == {"unknown_domain": ["a"]}
    assert folded.duration_ms == 2000
    assert "LE refused" in (folded.error or "")
    assert aggregate_backfill(PARENT, [children[0], None]).status == "running"  # a day not yet recorded


def test_timer_status_reads_the_hosts_schedule_status() -> None:
    status = timer_status(
        {"Last": "2026-02-13T17:50:00", "Next": "2026-02-13T18:00:00+00:00", "LastUpdated": "2026-02-13T17:50:00Z"},
        True,
        now=NOW,
    )
    assert status.last == datetime(2026, 2, 13, 17, 50, tzinfo=UTC)
    assert status.next == datetime(2026, 2, 13, 18, 0, tzinfo=UTC)
    assert status.past_due is True and status.seen_at == NOW
    assert timer_status({}, False).last is None
    assert timer_status({"Next": "soon"}, False).next is None


@pytest.mark.parametrize(
    "model, data, says",
    [
        (LogsQuery, {"lines": "0"}, "lines must be a whole number from 1 to 1000"),
        (LogsQuery, {"lines": "abc"}, "(got 'abc')"),
        (
            LogsQuery,
            {"date": "2026-02-30"},
            "date must be a calendar date (YYYY-MM-DD), and 2026-02-30 is not one: February 2026 has 28 days",
        ),
        (LogsQuery, {"date": "2026-13-01"}, "there is no month 13"),
        (LogsQuery, {"date": "13/02/2026"}, "date must be a date in the form YYYY-MM-DD"),
        (TriggerBody, {"date": "2026-02-29"}, "date must be a calendar date (YYYY-MM-DD), and 2026-02-29 is not one"),
        (TriggerBody, {"date": None}, "date must be a date in the form YYYY-MM-DD"),
        (RunsQuery, {"limit": "101"}, "limit must be a whole number from 1 to 100"),
        (TriggerBody, {"from": "2026-02-01", "to": "x"}, "to must be a date"),
        (TriggerBody, {"date": "2026-02-01", "dry_run": "perhaps"}, "dry_run must be true or false"),
        *[
            (
                TriggerBody,
                {"dry_run": lax},
                f"dry_run must be true or false (got {'null' if lax is None else repr(lax)})",
            )
            for lax in (0, 1, 1.0, "yes", "off", "1", "true", None)
        ],
        (TriggerBody, {"extra": 1}, 'unknown field "extra"; allowed fields: "date", "from", "to", "dry_run"'),
    ],
)
def test_bad_input_says_what_is_allowed(model, data, says) -> None:
    with pytest.raises(ApiError) as raised:
        parse(model, data)
    assert raised.value.status_code == 400
    assert isinstance(raised.value.body, ErrorBody)
    assert says in raised.value.body.error


def test_good_input_is_parsed() -> None:
    assert parse(LogsQuery, {"lines": "7", "date": "2026-02-13"}) == LogsQuery(lines=7, date=date(2026, 2, 13))
    assert parse(RunsQuery, {}).limit == 20
    assert parse(TriggerBody, {"from": "2026-02-01", "to": "2026-02-03"}).last == date(2026, 2, 3)


@pytest.mark.parametrize(
    "environ, enabled",
    [
        ({}, True),
        ({"AzureWebJobs.sync_timer.Disabled": "false"}, True),
        ({"AzureWebJobs.sync_timer.Disabled": "true"}, False),
        ({"AzureWebJobs.sync_timer.Disabled": "1"}, False),
        ({"AzureWebJobs_sync_timer_Disabled": "True"}, False),
    ],
)
def test_the_timer_is_disabled_by_its_app_setting(environ, enabled) -> None:
    assert timer_enabled(environ) is enabled
