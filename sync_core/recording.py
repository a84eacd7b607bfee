"""Step 8 of a run: the run record, job_stats.json (counters, the finalized days) and the run's lines in the day's log."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta, tzinfo
from zoneinfo import ZoneInfo

from . import days as days_planner
from . import telemetry
from .errors import SyncError
from .records import JobStats, RunRecord, TimerStatus, utcnow
from .runlog import RunLog
from .settings import DEFAULT_TIMEZONE, Settings, load_storage_target
from .store import StateStore

# A run's lines keep the one logger name the run log and its queries know, whichever module writes them.
log = logging.getLogger("sync_core.pipeline")


def finalized_days(record: RunRecord, tz: tzinfo) -> list[str]:
    """Days LE accepted from a run that started after the day ended; dry runs finalize nothing."""
    if record.dry_run or record.started_at is None:
        return []
    started_day = record.started_at.astimezone(tz).date()
    return [
        d.report_date
        for d in record.days
        if d.le_success is True or (d.error is None and d.sent_records == 0 and d.le_success is None)
        if date.fromisoformat(d.report_date) < started_day
    ]


def persist(
    store: StateStore,
    record: RunRecord,
    runlog: RunLog,
    settings: Settings,
    timer: TimerStatus | None,
    stats_read: tuple[JobStats, str | None] | None,
    *,
    planned: bool,
) -> None:
    """Step 8: the run record, job_stats.json, and the run's lines appended to the day's log, in one append."""
    finalized = finalized_days(record, settings.timezone)
    log_day = (record.started_at or utcnow()).astimezone(settings.timezone).date()
    record.finalized_dates = finalized
    if planned:  # a backfill's days are not a catch-up
        record.caught_up_dates = [d for d in finalized if date.fromisoformat(d) < log_day - timedelta(days=1)]
    if record.caught_up_dates:
        log.info("Caught up %s after an outage", ", ".join(record.caught_up_dates))
    log.info(
        "Run %s finished: %s in %s ms; %d rows fetched, %d sent, matched %d, unmatched %d, invalid %d%s",
        record.run_id,
        record.status,
        record.duration_ms,
        record.fetched_rows,
        record.sent_records,
        record.matched_records,
        record.unmatched_records,
        record.invalid_rows,
        f"; {record.error}" if record.error else "",
        extra={
            telemetry.STATUS: record.status,
            telemetry.FETCHED_ROWS: record.fetched_rows,
            telemetry.SENT_RECORDS: record.sent_records,
            telemetry.MATCHED_RECORDS: record.matched_records,
            telemetry.UNMATCHED_RECORDS: record.unmatched_records,
            telemetry.INVALID_ROWS: record.invalid_rows,
            telemetry.DURATION_MS: record.duration_ms,
        },
    )
    text = runlog.text()
    log_lines = text.count("\n")

    def change(stats: JobStats) -> None:
        if stats.has_counted(record):
            return  # our first write landed though its answer was lost: nothing is applied twice
        stats.count(record)
        if record.status != "skipped" and not record.dry_run:
            _advance_finalized(stats, log_day, settings.catchup_days, finalized, planned=planned)
        if timer is not None:
            stats.timer = timer
        stats.count_log_lines(f"{log_day:%Y%m%d}", log_lines)
        stats.updated_at = utcnow()

    try:
        # Three independent blobs: written at once, the run ends one storage round trip later instead of three.
        # Each write runs in a copy of this context: its span (and any log line) stays with this run.
        def traced(blob: str, action: Callable[..., object], *args: object) -> Callable[[], object]:
            context = contextvars.copy_context()
            return lambda: context.run(
                telemetry.in_span, telemetry.STATE_WRITE_SPAN, {telemetry.BLOB: blob}, action, *args
            )

        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="run-record") as pool:
            writes = [
                pool.submit(traced("run_record", store.save_run, record)),
                pool.submit(traced("job_stats", lambda: store.update_job_stats(change, read=stats_read))),
                pool.submit(traced("log", store.append_log, log_day, text)),
            ]
            for write in writes:
                write.result()
    except SyncError as exc:
        if record.status != "failed":
            record.finish("failed", f"the run's results could not be recorded: {exc}")
        log.error("Recording run %s failed: %s", record.run_id, exc)


def _advance_finalized(
    stats: JobStats, run_day: date, catchup_days: int, finalized: list[str], *, planned: bool
) -> None:
    state = days_planner.advance(
        run_day,
        days_planner.parse_stored_day(stats.last_finalized_day),
        catchup_days,
        days_planner.parse_stored_days(finalized),
        finalized=days_planner.parse_stored_days(stats.finalized_days),
        unsynced=days_planner.parse_stored_days(stats.unsynced_days),
        planned=planned,
    )
    stats.last_finalized_day = state.last_finalized.isoformat() if state.last_finalized else None
    stats.finalized_days = [d.isoformat() for d in state.finalized]
    stats.unsynced_days = [d.isoformat() for d in state.unsynced]


def record_without_settings(record: RunRecord, env: Mapping[str, str], runlog: RunLog) -> None:
    """Bad settings: still record the failed run where the state container can be reached."""
    try:
        store = StateStore(load_storage_target(env), timeout_s=10, retries=0)
        store.save_run(record)
        log_day, text = utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date(), runlog.text()

        def change(stats: JobStats) -> None:
            stats.count(record)
            stats.count_log_lines(f"{log_day:%Y%m%d}", text.count("\n"))

        store.update_job_stats(change)
        store.append_log(log_day, text)
    except (SyncError, ValueError) as exc:
        log.error("The failed run could not be recorded: %s", exc)
