"""Step 8 of a run: the run record first, then job_stats.json and the day's log derived from it; repairs of both."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sync_core import telemetry
from sync_core.errors import SyncError
from sync_core.rules import days as days_planner
from sync_core.run.runlog import RunLog
from sync_core.settings import DEFAULT_TIMEZONE, Settings, load_storage_target
from sync_core.state import summaries
from sync_core.state.records import FINAL_STATUSES, Bookkeeping, JobStats, Recording, RunRecord, TimerStatus, utcnow
from sync_core.state.store import StateStore

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
    repairs_checked_at: datetime | None = None,
) -> None:
    """Step 8: the run record (with the run's lines) first; then its lines in the day's log and its counts in
    job_stats.json, both derived from the record. What could not be written is noted on the record
    (`recording`) and written by the next run; the run's outcome stands."""
    finalized = finalized_days(record, settings.timezone)
    log_day = _log_day(record, settings.timezone)
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
        _count(stats, record, settings, logged=logged)
        if timer is not None:
            stats.timer = timer
        _checked(stats, repairs_checked_at)
        stats.updated_at = utcnow()

    try:
        _traced("job_stats", lambda: store.update_job_stats(change, read=stats_read))
    except SyncError as exc:
        missing.append("job_stats")
        log.warning("Run %s: job_stats.json could not be updated (%s)", record.run_id, exc)
    summaries.record_run_or_defer(store, record)
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


def _log_day(record: RunRecord, tz: tzinfo) -> date:
    return (record.started_at or utcnow()).astimezone(tz).date()


def _count(stats: JobStats, record: RunRecord, settings: Settings, *, logged: bool) -> None:
    """Fold one recorded run into job_stats.json: its counters, the days it finalized, its lines (when they are
    in the day's log; else it waits in `unlogged_runs`)."""
    log_day = _log_day(record, settings.timezone)
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
    at: datetime
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
        _unrecorded.append(UnrecordedRun(record.run_id, record.status, record.finished_at or utcnow(), error))


def forget_unrecorded() -> None:
    """Start again with no run remembered (a new worker process; each test)."""
    with _unrecorded_lock:
        _unrecorded.clear()


def last_unrecorded() -> UnrecordedRun | None:
    """The latest run of this worker that could not record itself (for /health), if any."""
    with _unrecorded_lock:
        return _unrecorded[-1] if _unrecorded else None


# -- repairs: what earlier runs could not write, written from their records ------------------------------------

SETTLED_AFTER = timedelta(minutes=10)  # the function timeout: a run that did not hold the lock has ended by then
REPAIRS_PER_RUN = 20
DAYS_LISTED_AT_MOST = 31  # after a longer outage, older runs' bookkeeping is not looked for


@dataclass
class Repair:
    """A recorded run whose bookkeeping is not done, and what is missing."""

    record: RunRecord
    missing: list[Bookkeeping]


def pending_repairs(
    store: StateStore,
    stats: JobStats,
    now: datetime,
    *,
    own_run_id: str | None = None,
    gone: list[str] | None = None,
    left: list[str] | None = None,
) -> list[Repair]:
    """Recorded runs (listed since shortly before the last complete look) not counted in job_stats.json, and
    counted runs whose lines are not in the day's log; oldest first, at most REPAIRS_PER_RUN. Name listings, plus
    one read per candidate.
    `gone` collects the runs of `unlogged_runs` whose record no longer exists; `left`, the runs left for a later
    look (not settled yet, or past REPAIRS_PER_RUN)."""
    floor = stats.repair_floor()
    listed = store.run_ids_on(_days_to_list(stats, now))
    candidates = [
        run_id
        for run_id in listed
        if run_id not in stats.counted_runs and run_id != own_run_id and (floor is None or run_id > floor)
    ]
    candidates += [run_id for run_id in stats.unlogged_runs if run_id not in candidates]
    repairs: list[Repair] = []
    for position, run_id in enumerate(sorted(candidates)):
        if len(repairs) >= REPAIRS_PER_RUN:
            if left is not None:
                left.extend(sorted(candidates)[position:])
            break
        record = store.load_run(run_id)
        if record is None:
            if gone is not None and run_id in stats.unlogged_runs:
                gone.append(run_id)  # its record was removed (the lifecycle rule): its lines cannot come back
            continue
        if run_id in stats.counted_runs and stats.has_counted(record):
            if run_id in stats.unlogged_runs:
                repairs.append(Repair(record, ["day_log"]))
            continue
        if record.status not in FINAL_STATUSES:
            continue  # queued or running: counted when it ends
        if not _settled(record, now):
            if left is not None:
                left.append(run_id)  # a run without the lock that may still be writing
            continue
        day_log_done = record.recording is not None and "day_log" not in record.recording.missing
        repairs.append(Repair(record, ["job_stats"] if day_log_done else ["job_stats", "day_log"]))
    return repairs


def _days_to_list(stats: JobStats, now: datetime) -> list[date]:
    """The UTC days whose run records are looked at: from shortly before the last complete look (so a gap of days
    since, an outage, is covered), and at least yesterday and today."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=1)
    if stats.repairs_checked_at is not None:
        first = min(first, (stats.repairs_checked_at - SETTLED_AFTER).astimezone(UTC).date())
    first = max(first, today - timedelta(days=DAYS_LISTED_AT_MOST - 1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def _settled(record: RunRecord, now: datetime) -> bool:
    """Whether the run has stopped writing: it said what it could not write, or it held the lock (the lock is
    ours now), or it ended long enough ago."""
    if record.recording is not None:
        return True
    if record.status != "skipped":
        return True
    return record.finished_at is not None and now - record.finished_at >= SETTLED_AFTER


@dataclass
class RepairOutcome:
    """`stats_read`: job_stats.json as read, or None when the repair changed it (read it again); `checked_at`:
    the run's start when it looked at every recorded run and left nothing behind (kept by its own update)."""

    stats_read: tuple[JobStats, str | None] | None
    checked_at: datetime | None


def repair(
    store: StateStore,
    stats_read: tuple[JobStats, str | None],
    settings: Settings,
    run_id: str,
    now: datetime,
) -> RepairOutcome:
    """Under the lock, at the start of a run: write what earlier runs could not, idempotently by run id (a run is
    counted once, its lines appended once). Failures are logged and left for the next run."""
    gone: list[str] = []
    left: list[str] = []
    try:
        repairs = pending_repairs(store, stats_read[0], now, own_run_id=run_id, gone=gone, left=left)
    except SyncError as exc:
        log.warning("Could not look for earlier runs' missing bookkeeping (%s); the next run looks again", exc)
        return RepairOutcome(stats_read, None)
    if not repairs and not gone:
        return RepairOutcome(stats_read, None if left else now)
    tz = settings.timezone
    logged: dict[str, bool] = {}
    logs: dict[date, str] = {}
    for item in repairs:
        if "day_log" not in item.missing:
            continue
        record = item.record
        day = _log_day(record, tz)
        try:
            if day not in logs:
                logs[day] = (store.read_log(day) or b"").decode("utf-8", "replace")
            if f"Run {record.run_id} finished" not in logs[day]:
                store.append_log(day, log_text(record))
                logs[day] += log_text(record)
            logged[record.run_id] = True
        except SyncError as exc:
            logged[record.run_id] = False
            log.warning("Run %s: its lines are still not in the day's log (%s)", record.run_id, exc)
    checked_at = None if left or not all(logged.values()) else now

    def change(stats: JobStats) -> None:
        for stale in gone:
            stats.unlogged_runs.pop(stale, None)
        for item in repairs:
            record = item.record
            in_log = logged.get(record.run_id, True)
            if "job_stats" in item.missing:
                if not stats.has_counted(record):
                    _count(stats, record, settings, logged=in_log)
            elif record.run_id in stats.unlogged_runs and in_log:
                del stats.unlogged_runs[record.run_id]
                stats.count_log_lines(f"{_log_day(record, tz):%Y%m%d}", log_text(record).count("\n"))
        _checked(stats, checked_at)
        stats.updated_at = utcnow()

    try:
        store.update_job_stats(change, read=stats_read)
    except SyncError as exc:
        log.warning("Could not write the repaired counters to job_stats.json (%s); the next run tries again", exc)
        return RepairOutcome(None, None)
    done = [i for i in repairs if logged.get(i.record.run_id, True)]
    if done:
        log.info(
            "Wrote the missing bookkeeping of %d earlier run(s): %s",
            len(done),
            ", ".join(f"{i.record.run_id} ({', '.join(i.missing)})" for i in done),
        )
    for item in done:
        item.record.recording = Recording(status="repaired", missing=item.missing, repaired_by=run_id)
        try:
            store.save_run(item.record)
        except SyncError as exc:
            log.info("Run %s: noting the repair on its record failed (%s)", item.record.run_id, exc)
    return RepairOutcome(None, checked_at)


def _checked(stats: JobStats, checked_at: datetime | None) -> None:
    if checked_at is not None and (stats.repairs_checked_at is None or checked_at > stats.repairs_checked_at):
        stats.repairs_checked_at = checked_at


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
    except (SyncError, ValueError) as exc:
        unrecorded(record, str(exc))
        return
    log_day = utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    record.log_lines = runlog.bounded()
    try:
        store.save_run(record)
    except SyncError as exc:
        unrecorded(record, str(exc))
        return
    text = log_text(record)

    def change(stats: JobStats) -> None:
        stats.count(record)
        stats.count_log_lines(f"{log_day:%Y%m%d}", text.count("\n"))

    try:
        store.append_log(log_day, text)
        store.update_job_stats(change)
    except SyncError as exc:
        log.error("The failed run's counters or log lines could not be written: %s", exc)
