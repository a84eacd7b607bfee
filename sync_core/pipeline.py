"""One sync run, the steps of docs/REFERENCE.md: lock, token, report days, fetch, transform, match, send, record."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from . import telemetry
from . import days as days_planner
from .campaign import UnmatchedCode, parse_campaign_code
from .errors import DeadlineExceeded, LockBusy, LoginError, SettingsError, StorageError, SyncError
from .http import Caller, Deadline, new_session
from .le import LeClient
from .leadpier import LeadPierClient
from .records import (
    SAMPLE_LIMIT,
    DayResult,
    JobStats,
    RunRecord,
    TimerStatus,
    Trigger,
    new_run_id,
    utcnow,
)
from .runlog import RunLog
from .settings import DEFAULT_TIMEZONE, Settings, load_settings, load_storage_target, read_environment
from .lock import RunLock
from .store import StateStore
from .transform import TransformResult, transform_rows

log = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo(DEFAULT_TIMEZONE)
LE_ERRORS_KEPT = 50
BACKFILL_LOCK_WAIT_S = 120  # a queued backfill waits out a running timer run rather than being skipped


@dataclass
class RunRequest:
    """What to run: who asked, which days (None: today and, until it is finalized, yesterday)."""

    trigger: Trigger
    run_id: str | None = None
    dates: list[date] | None = None
    dry_run: bool | None = None
    parent_run_id: str | None = None
    wait_for_lock_s: float = 0.0
    timer: TimerStatus | None = None
    queued_at: datetime | None = None


@dataclass
class _Tally:
    """Per-run accumulation of matching results."""

    unmatched_counts: dict[str, int] = field(default_factory=dict)
    unmatched_codes: dict[str, list[str]] = field(default_factory=dict)
    invalid_samples: list[str] = field(default_factory=list)
    le_errors: list[str] = field(default_factory=list)


def report_days(
    now: datetime,
    tz: tzinfo,
    last_finalized_day: str | None,
    catchup_days: int = 7,
    finalized_days: list[str] | None = None,
) -> list[date]:
    """Today in the service's zone, preceded by every unfinalized past day within the catch-up window (see days.py)."""
    return days_planner.report_days(
        now.astimezone(tz).date(), _parse_day(last_finalized_day), catchup_days,
        finalized=_parse_days(finalized_days),
    )


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _parse_days(texts: list[str] | None) -> list[date]:
    return [d for d in map(_parse_day, texts or []) if d is not None]


def run_sync(
    request: RunRequest,
    *,
    environ: Mapping[str, str] | None = None,
    thread_init: Callable[[], None] | None = None,
    store: StateStore | None = None,
) -> RunRecord:
    """Run once and return the run record; every failure is recorded in it, never raised (LockBusy aside).

    `store`: the state store to use instead of one built from the settings (the benchmark reads its request count).
    """
    started = utcnow()
    record = RunRecord(
        run_id=request.run_id or new_run_id(started),
        trigger=request.trigger,
        status="running",
        started_at=started,
        queued_at=request.queued_at,
        report_dates=[d.isoformat() for d in request.dates or []],
        parent_run_id=request.parent_run_id,
    )
    with RunLog(record.run_id, request.trigger, DEFAULT_TZ) as runlog, telemetry.run_span(record) as span:
        log.info("Run %s started (trigger: %s)", record.run_id, request.trigger)
        try:
            settings = load_settings(environ)
        except SettingsError as exc:
            log.error("Settings are invalid: %s", exc)
            env = read_environment(environ)
            # Still say what was asked: a dry run that failed on its settings was a dry run.
            record.dry_run = _asked_dry_run(env) if request.dry_run is None else request.dry_run
            _finish(record, "failed", str(exc))
            _record_without_settings(record, env, runlog)
            return record
        runlog.set_timezone(settings.timezone)
        record.dry_run = settings.dry_run if request.dry_run is None else request.dry_run
        return _run_locked(request, record, settings, runlog, thread_init, store, span)


def _asked_dry_run(env: Mapping[str, str]) -> bool:
    """SYNC_DRY_RUN as the settings model reads it, for a run whose settings as a whole are invalid."""
    try:
        return TypeAdapter(bool).validate_python((env.get("SYNC_DRY_RUN") or "false").strip())
    except ValidationError:
        return False


def _run_locked(
    request: RunRequest,
    record: RunRecord,
    settings: Settings,
    runlog: RunLog,
    thread_init: Callable[[], None] | None,
    store: StateStore | None = None,
    span: telemetry.Span | None = None,
) -> RunRecord:
    lock: RunLock | None = None
    stats_read: tuple[JobStats, str | None] | None = None
    storage_requests_before = store.requests if store is not None else 0
    try:
        store = store or StateStore(settings.storage)
        candidate = store.lock(thread_init)
        if not candidate.acquire(request.wait_for_lock_s):
            if request.wait_for_lock_s > 0:
                raise LockBusy("another run still holds the lock")
            log.info("Another run holds the lock; this run is skipped")
            _finish(record, "skipped", "already running")
            _persist(store, record, runlog, settings, request.timer, None, planned=False)
            return record
        lock = candidate
        if request.trigger == "manual":
            store.save_run(record)  # /runs/<id> shows `running` while it runs
        stats_read = store.load_job_stats()  # its ETag serves the update at the end (one read per run)
        days = request.dates or report_days(record.started_at or utcnow(), settings.timezone,
                                            stats_read[0].last_finalized_day, settings.catchup_days,
                                            stats_read[0].finalized_days)
        record.report_dates = [d.isoformat() for d in days]
        _sync_days(record, days, settings, store, lock, thread_init)
    except LockBusy:
        raise
    except SyncError as exc:
        log.error("Run failed: %s", exc)
        _finish(record, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded as a failed run; the traceback stays in the log only
        log.exception("Run failed with an unexpected error")
        _finish(record, "failed", f"unexpected error ({type(exc).__name__}); see the run's log")
    finally:
        if lock is not None and store is not None:
            try:
                # Safe even after the lease was lost: the run's own blob, a conditional update, an append.
                _persist(store, record, runlog, settings, request.timer, stats_read, planned=request.dates is None)
            finally:
                lock.release()
        if span is not None and store is not None:
            span.set(telemetry.STORAGE_REQUESTS, store.requests - storage_requests_before)
    return record


def _sync_days(
    record: RunRecord,
    days: list[date],
    settings: Settings,
    store: StateStore,
    lock: RunLock,
    thread_init: Callable[[], None] | None,
) -> None:
    deadline = Deadline(settings.run_deadline_seconds)
    session = new_session(settings.leadpier_concurrency)
    caller = Caller(session, timeout_s=settings.http_timeout_seconds, deadline=deadline)
    leadpier = LeadPierClient(
        base_url=str(settings.leadpier_base_url),
        username=settings.leadpier_username,
        password=settings.leadpier_password.get_secret_value(),
        user_agent=settings.leadpier_user_agent,
        page_size=settings.leadpier_page_size,
        concurrency=settings.leadpier_concurrency,
        token_ttl=timedelta(minutes=settings.leadpier_token_ttl_minutes),
        caller=caller,
        sessions=store,
        thread_init=thread_init,
    )
    le = LeClient(
        url=str(settings.le_api_url),
        api_key=settings.le_api_key.get_secret_value() if settings.le_api_key else None,
        caller=caller,
    )
    tally = _Tally()
    try:
        log.info("Report days: %s%s", ", ".join(d.isoformat() for d in days), " (dry run)" if record.dry_run else "")
        for day in days:
            result = DayResult(report_date=day.isoformat())
            record.days.append(result)
            with telemetry.span(telemetry.DAY_SPAN, {telemetry.REPORT_DATE: result.report_date}) as day_span:
                try:
                    lock.check()
                    _sync_day(day, result, leadpier, le, settings, tally, lock, dry_run=record.dry_run)
                except SyncError as exc:
                    result.error = str(exc)
                    day_span.fail(result.error)
                    log.error("Day %s failed: %s", day.isoformat(), exc)
                    if isinstance(exc, (StorageError, DeadlineExceeded, LoginError)):
                        raise  # the next day would fail the same way
                finally:
                    day_span.set(telemetry.FETCHED_ROWS, result.fetched_rows)
                    day_span.set(telemetry.SENT_RECORDS, result.sent_records)
    finally:
        session.close()
        record.upstream_requests = caller.calls
        _add_up(record, tally)
    failures = [d.error for d in record.days if d.error]
    if failures:
        _finish(record, "failed", failures[0] if len(failures) == 1 else f"{len(failures)} days failed; first: {failures[0]}")
    elif any(d.le_success is False for d in record.days):
        refused = next(d for d in record.days if d.le_success is False)
        _finish(record, "warning", f"LE did not accept {refused.report_date}: {refused.le_message or 'no message'}")
    elif record.invalid_rows:
        _finish(record, "warning", f"{record.invalid_rows} row(s) could not be read and were left out")
    else:
        _finish(record, "success", None)


def _add_up(record: RunRecord, tally: _Tally) -> None:
    """The run's totals from its days, also when it stopped early (deadline, storage, login)."""
    record.fetched_rows = sum(d.fetched_rows for d in record.days)
    record.sent_records = sum(d.sent_records for d in record.days)
    record.invalid_rows = sum(d.invalid_rows for d in record.days)
    record.matched_records = sum(d.matched_records or 0 for d in record.days)
    record.unmatched_records = sum(d.unmatched_records or 0 for d in record.days)
    record.unmatched_counts = tally.unmatched_counts
    record.unmatched_codes = tally.unmatched_codes
    record.invalid_samples = tally.invalid_samples
    record.le_errors = tally.le_errors[:LE_ERRORS_KEPT]


def _sync_day(
    day: date,
    result: DayResult,
    leadpier: LeadPierClient,
    le: LeClient,
    settings: Settings,
    tally: _Tally,
    lock: RunLock,
    *,
    dry_run: bool,
) -> None:
    transformed = TransformResult()
    # Each page is transformed and its codes checked while the later pages are still on the wire; its raw rows
    # are freed once done, so a run never holds the whole day twice.
    for page in leadpier.iter_pages(day):
        result.fetched_rows += len(page)
        part = transform_rows(page)
        transformed.records.extend(part.records)
        transformed.invalid.extend(part.invalid)
        transformed.without_visitors += part.without_visitors
        _check_page(part, settings, tally)
    result.invalid_rows = len(transformed.invalid)
    result.rows_without_visitors = transformed.without_visitors
    log.info(
        "%s: %d rows fetched, %d records to send, %d without visitors, %d invalid",
        day.isoformat(), result.fetched_rows, len(transformed.records), transformed.without_visitors, len(transformed.invalid),
    )
    if dry_run:
        log.info("Dry run: nothing sent to LE for %s", day.isoformat())
        return
    if not transformed.records:
        log.info("No records for %s; nothing sent to LE", day.isoformat())
        return
    lock.check()  # never send once another run may have taken over
    with telemetry.span(telemetry.LE_PUT_SPAN, {telemetry.REPORT_DATE: day.isoformat(),
                                                telemetry.RECORDS: len(transformed.records)}) as put_span:
        answer = le.put_day(day, transformed.records)
        put_span.set(telemetry.LE_SUCCESS, answer.success)
        put_span.set(telemetry.LE_MATCHED, answer.matched)
        put_span.set(telemetry.LE_UNMATCHED, answer.unmatched)
        put_span.set(telemetry.LE_ERRORS, telemetry.le_errors_dimension(answer.errors))
        if not answer.success:
            put_span.fail(answer.message or "success: false")
    result.sent_records = len(transformed.records)
    result.le_success = answer.success
    result.le_message = answer.message
    result.matched_records = answer.matched
    result.unmatched_records = answer.unmatched
    tally.le_errors.extend(answer.errors)
    if not answer.success:
        tally.le_errors.append(f"{day.isoformat()}: {answer.message or 'success: false'}")
        log.warning("LE did not accept %s: %s", day.isoformat(), answer.message or "no message")


def _check_page(part: TransformResult, settings: Settings, tally: _Tally) -> None:
    """Log and tally one page's invalid rows and unmatched campaign codes (the records are sent all the same)."""
    for bad in part.invalid:
        log.warning("Invalid row left out (%s): source %s", bad.reason, bad.source)
        if len(tally.invalid_samples) < SAMPLE_LIMIT:
            tally.invalid_samples.append(f"{bad.source}: {bad.reason}")
    for record in part.records:
        parsed = parse_campaign_code(record.campaign_code, settings.domain_codes)
        if isinstance(parsed, UnmatchedCode):
            log.warning("Unmatched campaign code %r (%s); sending it anyway", parsed.raw, parsed.reason)
            tally.unmatched_counts[parsed.reason] = tally.unmatched_counts.get(parsed.reason, 0) + 1
            samples = tally.unmatched_codes.setdefault(parsed.reason, [])
            if len(samples) < SAMPLE_LIMIT and parsed.raw not in samples:
                samples.append(parsed.raw)


def _finish(record: RunRecord, status: str, error: str | None) -> None:
    record.status = status  # type: ignore[assignment]
    record.error = error
    record.finished_at = utcnow()
    if record.started_at:
        record.duration_ms = int((record.finished_at - record.started_at).total_seconds() * 1000)


def _finalized_days(record: RunRecord, tz: tzinfo) -> list[str]:
    """Days LE accepted from a run that started after the day ended; dry runs finalize nothing."""
    if record.dry_run or record.started_at is None:
        return []
    started_day = record.started_at.astimezone(tz).date()
    return [
        d.report_date for d in record.days
        if d.le_success is True or (d.error is None and d.sent_records == 0 and d.le_success is None)
        if date.fromisoformat(d.report_date) < started_day
    ]


def _persist(
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
    finalized = _finalized_days(record, settings.timezone)
    log_day = (record.started_at or utcnow()).astimezone(settings.timezone).date()
    record.finalized_dates = finalized
    if planned:  # a backfill's days are not a catch-up
        record.caught_up_dates = [d for d in finalized if date.fromisoformat(d) < log_day - timedelta(days=1)]
    if record.caught_up_dates:
        log.info("Caught up %s after an outage", ", ".join(record.caught_up_dates))
    log.info(
        "Run %s finished: %s in %s ms; %d rows fetched, %d sent, matched %d, unmatched %d, invalid %d%s",
        record.run_id, record.status, record.duration_ms, record.fetched_rows, record.sent_records,
        record.matched_records, record.unmatched_records, record.invalid_rows,
        f"; {record.error}" if record.error else "",
        extra={
            "run_status": record.status,
            "fetched_rows": record.fetched_rows,
            "sent_records": record.sent_records,
            "matched_records": record.matched_records,
            "unmatched_records": record.unmatched_records,
            "invalid_rows": record.invalid_rows,
            "duration_ms": record.duration_ms,
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
            return lambda: context.run(telemetry.in_span, telemetry.STATE_WRITE_SPAN, {telemetry.BLOB: blob}, action, *args)

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
            _finish(record, "failed", f"the run's results could not be recorded: {exc}")
        log.error("Recording run %s failed: %s", record.run_id, exc)


def _advance_finalized(stats: JobStats, run_day: date, catchup_days: int, finalized: list[str], *, planned: bool) -> None:
    state = days_planner.advance(
        run_day, _parse_day(stats.last_finalized_day), catchup_days, _parse_days(finalized),
        finalized=_parse_days(stats.finalized_days), unsynced=_parse_days(stats.unsynced_days), planned=planned,
    )
    stats.last_finalized_day = state.last_finalized.isoformat() if state.last_finalized else None
    stats.finalized_days = [d.isoformat() for d in state.finalized]
    stats.unsynced_days = [d.isoformat() for d in state.unsynced]


def _record_without_settings(record: RunRecord, env: Mapping[str, str], runlog: RunLog) -> None:
    """Bad settings: still record the failed run where the state container can be reached."""
    try:
        store = StateStore(load_storage_target(env), timeout_s=10, retries=0)
        store.save_run(record)
        log_day, text = utcnow().astimezone(DEFAULT_TZ).date(), runlog.text()

        def change(stats: JobStats) -> None:
            stats.count(record)
            stats.count_log_lines(f"{log_day:%Y%m%d}", text.count("\n"))

        store.update_job_stats(change)
        store.append_log(log_day, text)
    except (SyncError, ValueError) as exc:
        log.error("The failed run could not be recorded: %s", exc)
