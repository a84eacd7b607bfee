"""The /status document (also `python -m sync_core status`): scheduler, counters, last execution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

from sync_core.errors import SyncError
from sync_core.rules.days import catch_up, parse_stored_day, parse_stored_days
from sync_core.rules.flags import is_true
from sync_core.rules.schedule import next_occurrence
from sync_core.run.repairs import Repair, pending_repairs
from sync_core.services import services
from sync_core.settings import Settings, read_environment
from sync_core.state.records import Bookkeeping, JobStats, utcnow
from sync_core.state.store import StateStore

TIMER_DISABLED_SETTING = "AzureWebJobs.sync_timer.Disabled"


def shown(moment: datetime | None, tz: tzinfo) -> str | None:
    """A time as people read it in /status: `2026-02-13 23:33:35 IST`."""
    if moment is None:
        return None
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


class SchedulerView(BaseModel):
    running: bool
    schedule: str
    timezone: str
    next_run: str | None
    # The same moment as a datetime for the app's own pages (never in the JSON: /status shows `next_run`).
    _next_run_at: datetime | None = PrivateAttr(default=None)

    @property
    def next_run_at(self) -> datetime | None:
        return self._next_run_at


class JobStatisticsView(BaseModel):
    total_runs: int
    successful_runs: int
    failed_runs: int
    skipped_runs: int
    success_rate: str


class LastExecutionView(BaseModel):
    timestamp: str | None
    status: str
    matched_records: int
    unmatched_records: int
    currently_running: bool
    run_id: str
    duration_ms: int | None
    report_dates: list[str]
    sent_records: int
    error: str | None


class CatchUpView(BaseModel):
    """Past days not yet finalized in LE: those the next runs sync by themselves, and those only a backfill reaches."""

    oldest_unfinalized_day: str | None
    last_finalized_day: str | None
    catchup_days: int
    pending_days: list[str] = Field(description="past days within the catch-up window the next run syncs")
    beyond_window: list[str] = Field(description="unfinalized days older than the window: not synced automatically")
    backfill: list[str] = Field(description="the manual runs that would sync the days beyond the window")


class PendingRepairView(BaseModel):
    run_id: str
    missing: list[Bookkeeping] = Field(description="what the next run writes from this run's record")


class RecordingView(BaseModel):
    """Runs whose counters or log lines could not be written yet; the next run that takes the lock writes them."""

    status: Literal["ok", "repairs_pending", "unknown"]
    detail: str
    pending_repairs: list[PendingRepairView] = Field(default_factory=list)


class StatusDocument(BaseModel):
    scheduler: SchedulerView
    job_statistics: JobStatisticsView
    last_execution: LastExecutionView | None
    unmatched_codes: dict[str, list[str]]
    catch_up: CatchUpView
    recording: RecordingView = Field(
        default_factory=lambda: RecordingView(status="unknown", detail="the runs were not looked at")
    )


def catch_up_view(stats: JobStats, tz: tzinfo, catchup_days: int, now: datetime) -> CatchUpView:
    last = parse_stored_day(stats.last_finalized_day)
    view = catch_up(
        now.astimezone(tz).date(),
        last,
        catchup_days,
        finalized=parse_stored_days(stats.finalized_days),
        unsynced=parse_stored_days(stats.unsynced_days),
    )
    oldest = view.oldest_unfinalized
    return CatchUpView(
        oldest_unfinalized_day=oldest.isoformat() if oldest else None,
        last_finalized_day=last.isoformat() if last else None,
        catchup_days=catchup_days,
        pending_days=[d.isoformat() for d in view.pending],
        beyond_window=[d.isoformat() for d in view.beyond_window],
        backfill=[f'POST /trigger {{"from": "{first}", "to": "{last_day}"}}' for first, last_day in view.backfills()],
    )


def next_run(settings: Settings, stats: JobStats, now: datetime) -> datetime | None:
    """The timer's own next occurrence when the host told us one still ahead and it is a firing of the schedule in
    force (after SYNC_SCHEDULE changed, the host's last word is about the old one), else computed."""
    host_next = stats.timer.next if stats.timer else None
    if (
        host_next
        and host_next > now
        and next_occurrence(settings.schedule, host_next - timedelta(seconds=1)) == host_next
    ):
        return host_next
    return next_occurrence(settings.schedule, now)


StatsRead = tuple[JobStats, list[Repair] | SyncError]


def read_stats(
    store: StateStore, now: datetime, *, list_runs: Callable[[list[date]], list[str]] | None = None
) -> StatsRead:
    """job_stats.json, and the runs whose bookkeeping the next run writes (run records listed by name since the last
    complete look), or why they could not be listed: what /status and /health both read (the dashboard reads it
    once for both)."""
    stats, _ = store.load_job_stats()
    try:
        return stats, pending_repairs(store, stats, now, list_runs=list_runs)
    except SyncError as exc:
        return stats, exc


def recording_view(repairs: list[Repair] | SyncError) -> RecordingView:
    if isinstance(repairs, SyncError):
        return RecordingView(status="unknown", detail=f"the runs could not be listed: {repairs}")
    if not repairs:
        return RecordingView(status="ok", detail="every recorded run is counted and in the day's log")
    return RecordingView(
        status="repairs_pending",
        detail=f"{len(repairs)} run(s) recorded with their counters or log lines not yet written; "
        "the next run writes them",
        pending_repairs=[PendingRepairView(run_id=r.record.run_id, missing=r.missing) for r in repairs],
    )


def timer_enabled(environ: Mapping[str, str]) -> bool:
    """False when the app setting AzureWebJobs.sync_timer.Disabled is true (Linux may turn its dots into underscores)."""
    for name in (TIMER_DISABLED_SETTING, TIMER_DISABLED_SETTING.replace(".", "_")):
        if is_true(environ.get(name)):
            return False
    return True


def current_status(
    environ: Mapping[str, str] | None = None, *, settings: Settings | None = None, store: StateStore | None = None
) -> StatusDocument:
    """The /status document for these settings (the environment over local.settings.json), as the CLI prints it too."""
    env = read_environment(environ)
    if settings is None or store is None:
        here = services(environ)
        settings, store = here.settings, here.route_store
    return status_document(settings, store, timer_enabled=timer_enabled(env))


def status_document(
    settings: Settings,
    store: StateStore,
    *,
    timer_enabled: bool = True,
    now: datetime | None = None,
    read: StatsRead | None = None,
) -> StatusDocument:
    """`read`: job_stats.json and the pending repairs as already read for this moment (else read here)."""
    now = now or utcnow()
    tz = settings.timezone
    stats, repairs = read or read_stats(store, now)
    running = store.lock_is_held()
    last = stats.last_execution
    upcoming = next_run(settings, stats, now) if timer_enabled else None
    scheduler = SchedulerView(
        running=timer_enabled, schedule=settings.schedule, timezone=settings.timezone_name, next_run=shown(upcoming, tz)
    )
    scheduler._next_run_at = upcoming
    return StatusDocument(
        scheduler=scheduler,
        job_statistics=JobStatisticsView(
            total_runs=stats.total_runs,
            successful_runs=stats.successful_runs,
            failed_runs=stats.failed_runs,
            skipped_runs=stats.skipped_runs,
            success_rate=stats.success_rate(),
        ),
        last_execution=None
        if last is None
        else LastExecutionView(
            timestamp=shown(last.timestamp, tz),
            status=last.status,
            matched_records=last.matched_records,
            unmatched_records=last.unmatched_records,
            currently_running=running,
            run_id=last.run_id,
            duration_ms=last.duration_ms,
            report_dates=last.report_dates,
            sent_records=last.sent_records,
            error=last.error,
        ),
        unmatched_codes=last.unmatched_codes if last else {},
        catch_up=catch_up_view(stats, tz, settings.catchup_days, now),
        recording=recording_view(repairs),
    )
