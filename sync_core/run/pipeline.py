"""One sync run, the steps of docs/REFERENCE.md: lock, token, report days, fetch, transform, match, send, record.

`run_sync` is the entry point every trigger uses; a `SyncRun` is one run, built from the process's services (settings,
store, upstream session) and holding what the run needs while it lasts: its record, lock, clients and tally.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sync_core import telemetry
from sync_core.errors import LockBusy, SettingsError, SyncError
from sync_core.rules.days import parse_stored_day, parse_stored_days, report_days
from sync_core.rules.flags import parse_flag
from sync_core.run.findings import Tally
from sync_core.run.recording import persist, record_without_settings, unrecorded
from sync_core.run.repairs import repair
from sync_core.run.sending import DaySender
from sync_core.services import Services
from sync_core.services import services as process_services
from sync_core.services import timing as process_timing
from sync_core.settings import DEFAULT_TIMEZONE, read_environment
from sync_core.state.lock import RunLock
from sync_core.state.records import (
    LE_ERRORS_KEPT,
    JobStats,
    RunRecord,
    TimerStatus,
    Trigger,
    new_run_id,
    top_codes,
)
from sync_core.telemetry.runlog import RunLog
from sync_core.untrusted import one_line
from sync_core.upstream.http import Caller, Deadline
from sync_core.upstream.le import LeClient
from sync_core.upstream.leadpier import LeadPierClient

log = logging.getLogger("sync_core.pipeline")  # the name every log line shows: kept when the module moved


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


def days_to_report(
    now: datetime,
    zone: tzinfo,
    last_finalized_day: str | None,
    catchup_days: int = 7,
    finalized_days: list[str] | None = None,
) -> list[date]:
    """Today in the service's zone, preceded by every unfinalized past day within the catch-up window (see days.py)."""
    return report_days(
        now.astimezone(zone).date(),
        parse_stored_day(last_finalized_day),
        catchup_days,
        finalized=parse_stored_days(finalized_days),
    )


def run_sync(
    request: RunRequest,
    *,
    services: Services | None = None,
) -> RunRecord:
    """Run once and return the run record; every failure is recorded in it, never raised (LockBusy aside).

    `services`: what the run uses (settings, store, upstream session); by default this process's, built once from
    the settings in the environment (and local.settings.json).
    """
    clock = (services.timing if services else process_timing()).clock
    started = clock()
    record = RunRecord(
        run_id=request.run_id or new_run_id(started),
        trigger=request.trigger,
        status="running",
        started_at=started,
        queued_at=request.queued_at,
        report_dates=[d.isoformat() for d in request.dates or []],
        parent_run_id=request.parent_run_id,
    )
    with (
        RunLog(record.run_id, request.trigger, ZoneInfo(DEFAULT_TIMEZONE)) as runlog,
        telemetry.run_span(record) as span,
    ):
        log.info("Run %s started (trigger: %s)", record.run_id, request.trigger)
        try:
            here = services or process_services()
        except SettingsError as exc:
            log.error("Settings are invalid: %s", exc)
            env = read_environment()
            # Still say what was asked: a dry run that failed on its settings was a dry run.
            record.dry_run = _asked_dry_run(env) if request.dry_run is None else request.dry_run
            record.finish("failed", str(exc), clock())
            record_without_settings(record, env, runlog)
            return record
        return SyncRun(request, record, here, runlog, span=span).execute()


def _asked_dry_run(env: Mapping[str, str]) -> bool:
    """SYNC_DRY_RUN as the settings model reads it, for a run whose settings as a whole are invalid."""
    try:
        return parse_flag(env.get("SYNC_DRY_RUN") or "false")
    except ValueError:
        return False


class SyncRun:
    """One run: its request and record, the settings and store it was given, its lock, clients and tally."""

    def __init__(
        self,
        request: RunRequest,
        record: RunRecord,
        services: Services,
        runlog: RunLog,
        *,
        span: telemetry.Span | None = None,
    ) -> None:
        self.request = request
        self.record = record
        self.settings = services.settings
        self.store = services.store
        self.upstream = services.upstream
        self.timing = services.timing
        self.clock = services.timing.clock
        self.runlog = runlog
        self.span = span
        self.tally = Tally()
        self.lock: RunLock | None = None
        self.stats_read: tuple[JobStats, str | None] | None = None
        self.repairs_checked_at: datetime | None = None
        runlog.set_timezone(self.settings.timezone)
        record.dry_run = self.settings.dry_run if request.dry_run is None else request.dry_run

    def execute(self) -> RunRecord:
        """Steps 1 to 8; the lock is released and the run recorded whatever happens."""
        storage_requests_before = self.store.requests
        try:
            candidate = self.store.lock()
            if not candidate.acquire(self.request.wait_for_lock_s):
                return self._skip()
            self.lock = candidate
            if self.request.trigger == "manual":
                self.store.save_run(self.record)  # /runs/<id> shows `running` while it runs
            self.stats_read = self.store.load_job_stats()  # its ETag serves the update at the end (one read per run)
            # What earlier runs could not write, written before this run chooses its days (so a day an earlier run
            # finalized is not sent again).
            repaired = repair(self.store, self.stats_read, self.settings, self.record.run_id, self.clock())
            self.stats_read = repaired.stats_read or self.store.load_job_stats()
            self.repairs_checked_at = repaired.checked_at
            stats = self.stats_read[0]
            days = self.request.dates or days_to_report(
                self.record.started_at or self.clock(),
                self.settings.timezone,
                stats.last_finalized_day,
                self.settings.catchup_days,
                stats.finalized_days,
            )
            self.record.report_dates = [d.isoformat() for d in days]
            self._sync_days(days)
        except LockBusy:
            raise
        except SyncError as exc:
            log.error("Run failed: %s", one_line(str(exc)))
            self.record.finish("failed", str(exc), self.clock())
        except Exception as exc:
            log.exception("Run failed with an unexpected error")
            self.record.finish("failed", f"unexpected error ({type(exc).__name__}); see the run's log", self.clock())
        finally:
            if self.lock is not None:
                try:
                    # Safe even after the lease was lost: the run's own blob, a conditional update, an append.
                    self._persist(planned=self.request.dates is None)
                finally:
                    self.lock.release()
            elif self.record.status == "failed":  # the lock could not be taken: storage failed or is unreachable
                unrecorded(self.record, self.record.error or "the lock could not be taken")
            if self.span is not None:
                self.span.set(telemetry.STORAGE_REQUESTS, self.store.requests - storage_requests_before)
        return self.record

    def _skip(self) -> RunRecord:
        if self.request.wait_for_lock_s > 0:
            raise LockBusy("another run still holds the lock")
        log.info("Another run holds the lock; this run is skipped")
        self.record.finish("skipped", "already running", self.clock())
        self._persist(planned=False)
        return self.record

    def _persist(self, *, planned: bool) -> None:
        persist(
            self.store,
            self.record,
            self.runlog,
            self.settings,
            self.request.timer,
            self.stats_read,
            planned=planned,
            now=self.clock(),
            repairs_checked_at=self.repairs_checked_at,
        )

    # -- the days ------------------------------------------------------------------------------------------------

    def _clients(self, caller: Caller) -> tuple[LeadPierClient, LeClient]:
        settings = self.settings
        leadpier = LeadPierClient(
            base_url=str(settings.leadpier_base_url),
            username=settings.leadpier_username,
            password=settings.leadpier_password.get_secret_value(),
            user_agent=settings.leadpier_user_agent,
            page_size=settings.leadpier_page_size,
            concurrency=settings.leadpier_concurrency,
            max_rows_per_day=settings.leadpier_max_rows_per_day,
            token_ttl=timedelta(minutes=settings.leadpier_token_ttl_minutes),
            caller=caller,
            sessions=self.store,
        )
        le = LeClient(
            url=str(settings.le_api_url),
            api_key=settings.le_api_key.get_secret_value() if settings.le_api_key else None,
            caller=caller,
        )
        return leadpier, le

    def _sync_days(self, days: list[date]) -> None:
        record = self.record
        caller = Caller(
            self.upstream,
            timeout_s=self.settings.http_timeout_seconds,
            deadline=Deadline(self.settings.run_deadline_seconds),
            backoff_initial_s=self.timing.backoff_initial_s,
            backoff_max_s=self.timing.backoff_max_s,
        )
        leadpier, le = self._clients(caller)
        assert self.lock is not None, "a run's days are synced under its lock"
        sender = DaySender(
            days=record.days,
            tally=self.tally,
            lock=self.lock,
            domain_codes=self.settings.domain_codes,
            dry_run=bool(record.dry_run),
            leadpier=leadpier,
            le=le,
        )
        try:
            log.info(
                "Report days: %s%s", ", ".join(d.isoformat() for d in days), " (dry run)" if record.dry_run else ""
            )
            for day in days:
                sender.sync(day)  # its PUT goes on while the next day is fetched
            sender.finish()
        finally:
            sender.close()
            record.upstream_requests = caller.calls
            self._add_up()
        self._judge()

    # -- the outcome ---------------------------------------------------------------------------------------------

    def _add_up(self) -> None:
        """The run's totals from its days, also when it stopped early (deadline, storage, login)."""
        record, tally = self.record, self.tally
        record.fetched_rows = sum(d.fetched_rows for d in record.days)
        record.sent_records = sum(d.sent_records for d in record.days)
        record.invalid_rows = sum(d.invalid_rows for d in record.days)
        record.matched_records = sum(d.matched_records or 0 for d in record.days)
        record.unmatched_records = sum(d.unmatched_records or 0 for d in record.days)
        record.unmatched_counts = tally.unmatched_counts
        record.unmatched_codes = tally.unmatched_codes
        record.unmatched_top = {reason: top_codes(counts) for reason, counts in tally.code_counts.items()}
        record.invalid_samples = tally.invalid_samples
        record.le_errors = tally.le_errors[:LE_ERRORS_KEPT]

    def _judge(self) -> None:
        """success, warning (LE refused a day, or rows were unreadable) or failed (a day failed)."""
        record = self.record
        failures = [d.error for d in record.days if d.error]
        refused = [d for d in record.days if d.le_success is False]
        if failures:
            many = f"{len(failures)} days failed; first: {failures[0]}"
            record.finish("failed", failures[0] if len(failures) == 1 else many, self.clock())
        elif refused:
            record.finish(
                "warning",
                f"LE did not accept {refused[0].report_date}: {refused[0].le_message or 'no message'}",
                self.clock(),
            )
        elif record.invalid_rows:
            record.finish("warning", f"{record.invalid_rows} row(s) could not be read and were left out", self.clock())
        else:
            record.finish("success", None, self.clock())
