"""GET /health: settings, storage reachability, staleness of the last success, the poison queue; bounded in time."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_core import __version__
from sync_core.errors import SettingsError, SyncError
from sync_core.rules.schedule import DEFAULT_SCHEDULE, interval
from sync_core.run.recording import last_unrecorded
from sync_core.run.repairs import Repair
from sync_core.services import PROBE_TIMEOUT_S, services
from sync_core.settings import DEFAULT_TIMEZONE, Settings, load_storage_target, read_environment
from sync_core.state.queues import POISON_QUEUE, poison_queue_client
from sync_core.state.records import JobStats, utcnow
from sync_core.state.store import StateStore
from sync_core.web.health_models import (
    CatchUpCheck,
    CheckState,
    HealthChecks,
    HealthDocument,
    HealthStatus,
    LastSuccessCheck,
    PoisonQueueCheck,
    RecordingCheck,
    SettingsCheck,
    StorageCheck,
    TimerCheck,
)
from sync_core.web.responses import ApiResponse
from sync_core.web.runtime_info import asked_python, runtime_check
from sync_core.web.status import StatsRead, read_stats, timer_enabled

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger("sync_core.health")  # the name every log line shows: kept when the module moved

CHECKS_DEADLINE_S = 8  # storage and queue checks run side by side; one still going by then counts as timed out
STALE_AFTER_INTERVALS = 3
PROCESS_STARTED = utcnow()  # with no success yet, staleness counts from when this instance started


def health(
    *,
    host_schedule: str = DEFAULT_SCHEDULE,
    host_run_on_startup: bool = False,
    host_problems: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ApiResponse:
    """200 healthy or degraded, 503 unhealthy with the reason; `host_*`: what function_app.py gave the host at load."""
    document = health_document(
        host_schedule=host_schedule,
        host_run_on_startup=host_run_on_startup,
        host_problems=host_problems,
        environ=environ,
        now=now,
    )
    if document.status == "unhealthy":
        log.warning("/health: unhealthy: %s", document.reason)
    return ApiResponse.json(503 if document.status == "unhealthy" else 200, document)


def health_document(
    *,
    host_schedule: str = DEFAULT_SCHEDULE,
    host_run_on_startup: bool = False,
    host_problems: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    read: Future[StatsRead] | None = None,
) -> HealthDocument:
    """The checks behind /health (the dashboard shows the same verdict); `read`: job_stats.json and the pending
    repairs being read for this moment by the caller (the storage check is then that read)."""
    now = now or utcnow()
    env = read_environment(environ)
    settings: Settings | None = None
    probe: StateStore | None = None
    poison_queue: QueueClient | None = None
    try:
        here = services(environ)  # the process's clients: no new connection pool or credential per call
        settings, probe, poison_queue = here.settings, here.probe_store, here.poison_queue
        settings_check = SettingsCheck(status="ok", detail="all settings are present and valid")
    except SettingsError as exc:
        settings_check = SettingsCheck(status="error", detail=str(exc))
        try:  # settings are broken, but storage may still be checked (built for this call only)
            probe = StateStore(load_storage_target(env), timeout_s=PROBE_TIMEOUT_S, retries=0)
        except SettingsError:
            probe = None

    storage_check, stats, repairs = _bounded_checks(probe, poison_queue, env, now, read)
    scheduler_running = timer_enabled(env)
    schedule = settings.schedule if settings else host_schedule
    last_success = _staleness(stats, schedule, now, settings, scheduler_running, env)
    poison_check = storage_check[1]
    storage = storage_check[0]
    timer = TimerCheck(
        status="warning" if host_problems else "ok",
        schedule=host_schedule,
        run_on_startup=host_run_on_startup,
        problems=list(host_problems or []),
    )

    catch_up = _catch_up(stats, settings, env, now)
    runtime = runtime_check(asked_python(env))
    recording = _recording(stats, repairs, schedule, now)
    problems = [c.detail for c in (settings_check, storage) if c.status == "error"]
    warnings = [c.detail for c in (last_success, poison_check, catch_up) if c.status in ("warning", "error")]
    warnings += [runtime.detail] if runtime.status == "warning" else []
    warnings += [recording.detail] if recording.status == "warning" else []
    warnings += timer.problems
    overall: HealthStatus
    reason: str | None
    if problems:
        overall, reason = "unhealthy", "; ".join(problems)
    elif warnings:
        overall, reason = "degraded", "; ".join(warnings)
    else:
        overall, reason = "healthy", None
    return HealthDocument(
        status=overall,
        scheduler_running=scheduler_running,
        timestamp=now.astimezone(_zone(settings, env)).isoformat(timespec="seconds"),
        version=__version__,
        reason=reason,
        checks=HealthChecks(
            settings=settings_check,
            storage=storage,
            last_success=last_success,
            poison_queue=poison_check,
            timer=timer,
            catch_up=catch_up,
            runtime=runtime,
            recording=recording,
        ),
    )


def _zone(settings: Settings | None, env: Mapping[str, str]) -> Any:
    if settings:
        return settings.timezone
    try:
        return ZoneInfo(env.get("SYNC_TIMEZONE") or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _bounded_checks(
    probe: StateStore | None,
    poison_queue: QueueClient | None,
    env: Mapping[str, str],
    now: datetime,
    read: Future[StatsRead] | None = None,
) -> tuple[tuple[StorageCheck, PoisonQueueCheck], JobStats | None, list[Repair] | None]:
    """Storage and the poison queue side by side, each without retries, both within CHECKS_DEADLINE_S."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")
    repairs: list[Repair] | None = None
    try:
        stats_future: Future[StatsRead] | None = read or (pool.submit(read_stats, probe, now) if probe else None)
        poison_future: Future[int] = pool.submit(poison_messages, poison_queue, env)
        end = time.monotonic() + CHECKS_DEADLINE_S
        stats: JobStats | None = None
        target = probe.target if probe else None
        if target is None or stats_future is None:
            storage = StorageCheck(status="error", detail="storage is not configured (see the settings check)")
        else:
            try:
                stats, found = stats_future.result(timeout=max(0.1, end - time.monotonic()))
                repairs = None if isinstance(found, SyncError) else found
                storage = StorageCheck(status="ok", detail="the state container answered", target=target.describe())
            except TimeoutError:
                storage = StorageCheck(
                    status="error",
                    detail=f"storage did not answer within {CHECKS_DEADLINE_S} s",
                    target=target.describe(),
                )
            except SyncError as exc:
                storage = StorageCheck(status="error", detail=str(exc), target=target.describe())
            except Exception as exc:
                storage = StorageCheck(
                    status="error", detail=f"storage unreachable: {type(exc).__name__}", target=target.describe()
                )
        try:
            count = poison_future.result(timeout=max(0.1, end - time.monotonic()))
            poison = PoisonQueueCheck(
                status="warning" if count else "ok",
                messages=count,
                detail=(
                    f"{count} queued run(s) failed every delivery; inspect and clear {POISON_QUEUE}"
                    if count
                    else "no abandoned runs"
                ),
            )
        except TimeoutError:
            poison = PoisonQueueCheck(
                status="error", detail=f"the queue service did not answer within {CHECKS_DEADLINE_S} s"
            )
        except Exception as exc:
            poison = PoisonQueueCheck(status="error", detail=f"the poison queue could not be read: {_short(exc)}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung request must not hold the answer back
    return (storage, poison), stats, repairs


def _recording(stats: JobStats | None, repairs: list[Repair] | None, schedule: str, now: datetime) -> RecordingCheck:
    """Degraded while runs wait for their bookkeeping, or after a run of this instance could not record itself."""
    lost = last_unrecorded()
    try:
        recent = interval(schedule, now) or timedelta(minutes=10)
    except ValueError:
        recent = timedelta(minutes=10)
    if lost is not None and now - lost.at <= STALE_AFTER_INTERVALS * recent:
        return RecordingCheck(
            status="warning",
            detail=f"storage trouble: run {lost.run_id} ({lost.status}) could not record itself: {lost.error}",
            pending_repairs=[r.record.run_id for r in repairs or []],
            unrecorded_run=lost.run_id,
        )
    if stats is None or repairs is None:
        return RecordingCheck(status="skipped", detail="unknown: storage could not be read")
    if repairs:
        return RecordingCheck(
            status="warning",
            detail=f"{len(repairs)} run(s) recorded with their counters or log lines not yet written; "
            "the next run writes them",
            pending_repairs=[r.record.run_id for r in repairs],
        )
    return RecordingCheck(status="ok", detail="every recorded run is counted and in the day's log")


def poison_messages(client: QueueClient | None, env: Mapping[str, str]) -> int:
    """Messages in the poison queue on the host's storage (AzureWebJobsStorage); no queue yet is 0.
    `client`: the process's; None builds one for this call (settings broken, or the host's storage not set)."""
    from azure.core.exceptions import ResourceNotFoundError

    if client is None:
        with poison_queue_client(env, timeout_s=PROBE_TIMEOUT_S) as own:
            return poison_messages(own, env)
    try:
        return int(client.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


def _short(exc: Exception) -> str:
    """The error's kind and status code only: SDK messages can carry request URLs."""
    code = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' (HTTP {code})' if code else ''}"


def _staleness(
    stats: JobStats | None,
    schedule: str,
    now: datetime,
    settings: Settings | None,
    scheduler_running: bool,
    env: Mapping[str, str],
) -> LastSuccessCheck:
    tz = _zone(settings, env)
    if stats is None:
        return LastSuccessCheck(status="skipped", detail="unknown: storage could not be read")
    try:
        gap = interval(schedule, now)
    except ValueError:  # an invalid schedule is reported by the settings check
        gap = None
    limit = STALE_AFTER_INTERVALS * (gap or timedelta(minutes=10))
    finished = stats.last_success_at
    shown = finished.astimezone(tz).isoformat(timespec="seconds") if finished else None
    age = int((now - finished).total_seconds()) if finished else None
    status: CheckState
    if not scheduler_running:
        status, detail = "skipped", "the timer is disabled; no runs are expected"
    elif finished is not None:
        if now - finished > limit:
            status = "warning"
            detail = (
                f"the last successful run finished {_hours_minutes(now - finished)} ago, "
                f"more than {STALE_AFTER_INTERVALS} schedule intervals"
            )
        else:
            status, detail = "ok", f"the last successful run finished {_hours_minutes(now - finished)} ago"
    else:
        # None yet: count from the earliest sign of life (this instance's start, or a run already recorded).
        since = min([PROCESS_STARTED, *([stats.last_execution.timestamp] if stats.last_execution else [])])
        if now - since > limit:
            status, detail = "warning", f"no successful run yet after {_hours_minutes(now - since)}"
        else:
            status, detail = "ok", "no successful run yet; the app started recently"
    return LastSuccessCheck(
        status=status,
        detail=detail,
        finished_at=shown,
        age_seconds=age,
        stale_after_seconds=int(limit.total_seconds()),
    )


def _catch_up(stats: JobStats | None, settings: Settings | None, env: Mapping[str, str], now: datetime) -> CatchUpCheck:
    """Degraded while missed days are being caught up, or while days older than the window wait for a backfill."""
    from sync_core.web.status import catch_up_view

    if stats is None:
        return CatchUpCheck(status="skipped", detail="unknown: storage could not be read")
    view = catch_up_view(stats, _zone(settings, env), settings.catchup_days if settings else 7, now)
    yesterday = (now.astimezone(_zone(settings, env)).date() - timedelta(days=1)).isoformat()
    behind = [d for d in view.pending_days if d < yesterday]
    status: CheckState
    if view.beyond_window:
        status = "warning"
        detail = (
            f"{len(view.beyond_window)} day(s) from {view.beyond_window[0]} are older than the catch-up window "
            f"and not finalized; start the backfill: {'; '.join(view.backfill)}"
        )
    elif behind:
        status = "warning"
        detail = f"catching up {len(behind)} missed day(s) from {behind[0]}; the next runs sync them"
    elif not view.pending_days:
        status, detail = "ok", "every past day is finalized"
    else:
        status, detail = "ok", "yesterday is synced until its final figures are in LE"
    return CatchUpCheck(
        status=status,
        detail=detail,
        oldest_unfinalized_day=view.oldest_unfinalized_day,
        pending_days=view.pending_days,
        beyond_window=view.beyond_window,
        backfill=view.backfill,
    )


def _hours_minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
