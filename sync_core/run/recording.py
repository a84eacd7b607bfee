"""Step 8 of a run: the run record first, then job_stats.json and the day's log derived from it (`repairs` writes what
a run could not); a run that could not record itself."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sync_core import telemetry
from sync_core.errors import SyncError
from sync_core.rules.days import advance, parse_stored_day, parse_stored_days
from sync_core.settings import DEFAULT_TIMEZONE, Settings, load_storage_target
from sync_core.state import summaries
from sync_core.state.records import Bookkeeping, JobStats, Recording, RunRecord, TimerStatus
from sync_core.state.store import StateStore
from sync_core.telemetry.runlog import RunLog

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
    now: datetime,
    repairs_checked_at: datetime | None = None,
) -> None:
    """Step 8: the run record (with the run's lines) first; then its lines in the day's log and its counts in
    job_stats.json, both derived from the record. What could not be written is noted on the record
    (`recording`) and written by the next run; the run's outcome stands."""
    finalized = finalized_days(record, settings.timezone)
    log_day = log_day_of(record, settings.timezone)
    record.finalized_dates = finalized
    record.planned = planned
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
    record.log_lines = runlog.bounded()
    try:
        _traced("run_record", store.save_run, record)
    except SyncError as exc:
        unrecorded(record, str(exc))
        return
    text = log_text(record)
    missing: list[Bookkeeping] = []
    try:
        _traced("log", store.append_log, log_day, text)
        logged = True
    except SyncError as exc:
        logged = False
        missing.append("day_log")
        log.warning("Run %s: its lines could not be added to the day's log (%s)", record.run_id, exc)

    def change(stats: JobStats) -> None:
        if stats.has_counted(record):
            return  # our first write landed though its answer was lost: nothing is applied twice
        count_recorded(stats, record, settings, logged=logged)
        if timer is not None:
            stats.timer = timer
        note_checked(stats, repairs_checked_at)
        stats.updated_at = now

    try:
        _traced("job_stats", lambda: store.update_job_stats(change, read=stats_read))
    except SyncError as exc:
        missing.append("job_stats")
        log.warning("Run %s: job_stats.json could not be updated (%s)", record.run_id, exc)
    _summarise(store, record)
    if missing:
        record.recording = Recording(status="incomplete", missing=missing)
        log.warning(
            "Run %s is recorded, but %s could not be written; the next run writes it from the run record",
            record.run_id,
            " and ".join(_BOOKKEEPING_NAMES[m] for m in missing),
        )
        try:
            store.save_run(record)
        except SyncError as exc:  # the next run finds the run uncounted all the same, once it has settled
            log.warning("Run %s: noting the deferred bookkeeping on its record failed (%s)", record.run_id, exc)


_BOOKKEEPING_NAMES: dict[str, str] = {
    "run_record": "its record",
    "job_stats": "job_stats.json",
    "day_log": "the day's log",
}


def _traced(blob: str, action: Callable[..., object], *args: object) -> object:
    return telemetry.in_span(telemetry.STATE_WRITE_SPAN, {telemetry.BLOB: blob}, action, *args)


def log_text(record: RunRecord) -> str:
    """What a run appends to the day's log: the lines its record holds."""
    return "".join(line + "\n" for line in record.log_lines)


def log_day_of(record: RunRecord, tz: tzinfo) -> date:
    """The day whose log holds the run's lines: the day it started (or, never started, ended or was queued)."""
    moment = record.started_at or record.finished_at or record.queued_at
    assert moment is not None, "a recorded run has a time"
    return moment.astimezone(tz).date()


def count_recorded(stats: JobStats, record: RunRecord, settings: Settings, *, logged: bool) -> None:
    """Fold one recorded run into job_stats.json: its counters, the days it finalized, its lines (when they are
    in the day's log; else it waits in `unlogged_runs`)."""
    log_day = log_day_of(record, settings.timezone)
    stats.count(record)
    if record.status != "skipped" and not record.dry_run:
        _advance_finalized(stats, log_day, settings.catchup_days, record.finalized_dates, planned=record.planned)
    if logged:
        stats.count_log_lines(f"{log_day:%Y%m%d}", log_text(record).count("\n"))
    else:
        stats.unlogged_runs[record.run_id] = f"{log_day:%Y%m%d}"


# -- a run that could not record itself ------------------------------------------------------------------------

UNRECORDED_KEPT = 20
_unrecorded: deque[UnrecordedRun] = deque(maxlen=UNRECORDED_KEPT)
_unrecorded_lock = threading.Lock()


@dataclass(frozen=True)
class UnrecordedRun:
    """A run of this worker that could not write its record: only its log lines and telemetry tell of it."""

    run_id: str
    status: str
    at: datetime  # when it ended, by the run's clock
    error: str


def unrecorded(record: RunRecord, error: str) -> None:
    """The run could not write its record (no lease, or storage unreachable): say so where an operator looks."""
    record.recording = Recording(status="incomplete", missing=["run_record", "job_stats", "day_log"])
    log.error(
        "Run %s could not record itself (%s); its outcome (%s) is only in these lines and its telemetry",
        record.run_id,
        error,
        record.status,
    )
    with _unrecorded_lock:
        ended = record.finished_at or record.started_at
        assert ended is not None, "a run is unrecorded once it has ended"
        _unrecorded.append(UnrecordedRun(record.run_id, record.status, ended, error))


def forget_unrecorded() -> None:
    """Start again with no run remembered (a new worker process; each test)."""
    with _unrecorded_lock:
        _unrecorded.clear()


def last_unrecorded() -> UnrecordedRun | None:
    """The latest run of this worker that could not record itself (for /health), if any."""
    with _unrecorded_lock:
        return _unrecorded[-1] if _unrecorded else None


def note_checked(stats: JobStats, checked_at: datetime | None) -> None:
    if checked_at is not None and (stats.repairs_checked_at is None or checked_at > stats.repairs_checked_at):
        stats.repairs_checked_at = checked_at


def _advance_finalized(
    stats: JobStats, run_day: date, catchup_days: int, finalized: list[str], *, planned: bool
) -> None:
    state = advance(
        run_day,
        parse_stored_day(stats.last_finalized_day),
        catchup_days,
        parse_stored_days(finalized),
        finalized=parse_stored_days(stats.finalized_days),
        unsynced=parse_stored_days(stats.unsynced_days),
        planned=planned,
    )
    stats.last_finalized_day = state.last_finalized.isoformat() if state.last_finalized else None
    stats.finalized_days = [d.isoformat() for d in state.finalized]
    stats.unsynced_days = [d.isoformat() for d in state.unsynced]


def record_without_settings(record: RunRecord, env: Mapping[str, str], runlog: RunLog) -> None:
    """Bad settings: still record the failed run where the state container can be reached."""
    try:
        store = StateStore(load_storage_target(env), timeout_s=10, retries=0)
    except (SyncError, ValueError) as exc:
        unrecorded(record, str(exc))
        return
    day = log_day_of(record, ZoneInfo(DEFAULT_TIMEZONE))
    record.log_lines = runlog.bounded()
    try:
        store.save_run(record)
    except SyncError as exc:
        unrecorded(record, str(exc))
        return
    text = log_text(record)

    def change(stats: JobStats) -> None:
        stats.count(record)
        stats.count_log_lines(f"{day:%Y%m%d}", text.count("\n"))

    try:
        store.append_log(day, text)
        store.update_job_stats(change)
    except SyncError as exc:
        log.error("The failed run's counters or log lines could not be written: %s", exc)


def _summarise(store: StateStore, record: RunRecord) -> None:
    """The run's digest in its day's summary. One that cannot be written is rebuilt from the record by the dashboard
    when it meets the run missing from the summary, so it never fails the run nor counts as missing bookkeeping."""
    try:
        telemetry.in_span(
            telemetry.STATE_WRITE_SPAN, {telemetry.BLOB: "day_summary"}, summaries.record_run, store, record
        )
    except SyncError as exc:
        log.warning(
            "Run %s: the day's summary could not be written (%s); the dashboard rebuilds it from the run record",
            record.run_id,
            exc,
        )
