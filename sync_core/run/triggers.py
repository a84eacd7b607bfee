"""The runs the host starts: one per timer firing, and one per message that /trigger put on the runs queue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from sync_core import telemetry
from sync_core.errors import LockBusy, SettingsError, StorageError
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.services import services, timing
from sync_core.state.queues import MAX_DEQUEUE_COUNT, POISON_QUEUE, RunMessage
from sync_core.state.records import FINAL_STATUSES, RunRecord, TimerStatus

log = logging.getLogger("sync_core.triggers")  # the name every log line shows: kept when the module moved


def run_queued(
    body: bytes | str,
    *,
    dequeue_count: int | None = None,
    trace_context: object = None,
) -> RunRecord | None:
    """Do the run a /trigger message asked for, under its own run id; a dated run waits for the lock.

    A failed run is recorded, not raised. LockBusy is raised so the host delivers the message again;
    on the last delivery the record says so first, since the message then goes to the poison queue.
    A message for a run that already finished (redelivered after the host lost track) is not run twice.
    `trace_context`: the host's invocation (func.Context.trace_context), the parent of the run's telemetry.
    """
    with telemetry.invocation(trace_context):
        return _run_queued(body, dequeue_count)


def _run_queued(body: bytes | str, dequeue_count: int | None) -> RunRecord | None:
    try:
        message = RunMessage.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(f"not a run message: {exc.error_count()} problem(s); it goes to the poison queue") from None
    existing = _existing_record(message.run_id)
    if existing is not None and existing.status in FINAL_STATUSES - {"skipped"}:
        log.warning(
            "Run %s already finished (%s); the redelivered message is not run again",
            message.run_id,
            existing.status,
            extra={telemetry.RUN_ID: message.run_id},
        )
        return existing
    request = RunRequest(
        trigger="manual",
        run_id=message.run_id,
        dates=list(message.dates) if message.dates else None,
        dry_run=message.dry_run,
        parent_run_id=message.parent_run_id,
        wait_for_lock_s=timing().backfill_lock_wait_s if message.dates else 0.0,
        queued_at=message.queued_at,
    )
    try:
        return run_sync(request)
    except LockBusy:
        if (dequeue_count or 0) >= MAX_DEQUEUE_COUNT:
            _record_abandoned(message)
        log.warning(
            "Run %s could not take the lock (delivery %s of %d); the host delivers it again",
            message.run_id,
            dequeue_count or "?",
            MAX_DEQUEUE_COUNT,
            extra={telemetry.RUN_ID: message.run_id},
        )
        raise


def _existing_record(run_id: str) -> RunRecord | None:
    try:
        return services().store.load_run(run_id)  # the run's store: this is the start of a run
    except (SettingsError, StorageError):
        return None  # run_sync records the failure with its reason


def _record_abandoned(message: RunMessage) -> None:
    try:
        store = services().store
        record = store.load_run(message.run_id) or RunRecord(
            run_id=message.run_id,
            trigger="manual",
            status="queued",
            queued_at=message.queued_at,
            parent_run_id=message.parent_run_id,
        )
        record.status = "failed"
        record.finished_at = timing().clock()
        record.error = (
            f"another run held the lock through {MAX_DEQUEUE_COUNT} deliveries of this queued run; "
            f"its message went to the poison queue ({POISON_QUEUE})"
        )
        store.save_run(record)
    except (SettingsError, StorageError) as exc:
        log.error("Could not record that run %s was abandoned: %s", message.run_id, exc)


def timer_status(schedule_status: Mapping[str, Any] | None, past_due: bool, now: datetime | None = None) -> TimerStatus:
    """The TimerRequest's ScheduleStatus (Last, Next, LastUpdated) as job_stats.json keeps it."""
    status = schedule_status or {}
    return TimerStatus(
        last=_host_time(status.get("Last")),
        next=_host_time(status.get("Next")),
        past_due=past_due,
        seen_at=now or timing().clock(),
    )


def _host_time(value: Any) -> datetime | None:
    """The host's times are ISO 8601, in UTC on Linux; one without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_from_timer(
    schedule_status: Mapping[str, Any] | None,
    *,
    past_due: bool,
    trace_context: object = None,
) -> RunRecord:
    """A run with trigger `timer`; a past-due firing is logged and run normally.
    `trace_context`: the host's invocation (func.Context.trace_context), the parent of the run's telemetry."""
    with telemetry.invocation(trace_context):
        timer = timer_status(schedule_status, past_due)
        if past_due:
            log.warning("The timer fired past due (last %s, next %s); running now", timer.last, timer.next)
        return run_sync(RunRequest(trigger="timer", timer=timer))
