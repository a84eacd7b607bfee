"""The state a dashboard render reads: the window's run records (kept by ETag between requests), health, status,
and the last lines of today's and yesterday's logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sync_core.errors import SettingsError, StorageError
from sync_core.rules.schedule import DEFAULT_SCHEDULE
from sync_core.run.backfill import aggregate_backfill
from sync_core.services import services
from sync_core.settings import read_environment
from sync_core.state.records import FINAL_STATUSES, RunRecord, utcnow
from sync_core.state.store import StateStore
from sync_core.web.dashboard.figures import run_time, window_start
from sync_core.web.health import health_document
from sync_core.web.health_models import HealthDocument
from sync_core.web.status import StatusDocument, status_document, timer_enabled

log = logging.getLogger("sync_core.dashboard.state")  # the name every log line shows: kept when the module moved

LOG_LINES_SHOWN = 8


class RunCache:
    """A worker keeps the run records it has read: a render lists the window's run ids (names only, one request per
    day) and reads only the runs it does not have or that may still change (1,008 reads the first time at a run
    every 10 minutes, a handful after)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, RunRecord] = {}
        self.reads = 0

    def window(self, store: StateStore, since: datetime, until: datetime) -> list[RunRecord]:
        """The runs from `since` to `until`, oldest first, as GET /runs lists them: a backfill's days folded into
        its parent, the parent drawn once."""
        days = [since.date() + timedelta(days=i) for i in range((until.date() - since.date()).days + 1)]
        run_ids = store.run_ids_on(days)
        with self._lock:
            wanted = [rid for rid in run_ids if rid not in self._records or not _settled(self._records[rid])]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-read") as pool:
            fresh = list(zip(wanted, pool.map(store.load_run, wanted), strict=True))
        with self._lock:
            self.reads += len(wanted)
            for rid, record in fresh:
                if record is not None:
                    self._records[rid] = record
            listed = set(run_ids)
            for rid in set(self._records) - listed:  # older than the window, or removed
                del self._records[rid]
            kept = {rid: record for rid, record in self._records.items() if rid in listed}
        shown = [
            aggregate_backfill(r, [kept.get(c) for c in r.child_run_ids]) if r.child_run_ids else r
            for r in kept.values()
            if not r.parent_run_id and since <= run_time(r) <= until
        ]
        return sorted(shown, key=run_time)


def _settled(record: RunRecord) -> bool:
    """A record that no writer changes any more: finished, except a queued run recorded skipped, which the queue
    may deliver again. (A backfill parent is folded from its days on every render, so it never needs a re-read.)"""
    if record.child_run_ids:
        return True
    if record.status not in FINAL_STATUSES:
        return False
    return not (record.status == "skipped" and record.trigger == "manual")


_cache = RunCache()


@dataclass
class DayLog:
    day: date
    lines: list[str]
    log_file: str | None


@dataclass
class DashboardView:
    now: datetime
    tz: tzinfo
    timezone_name: str
    health: HealthDocument | None
    status: StatusDocument | None
    runs: list[RunRecord] = field(default_factory=list)  # the window's runs, oldest first
    key: str | None = None  # the function key the browser sent as ?code=, carried on to the page's links
    problem: str | None = None  # settings or storage trouble: the page says so instead of the figures
    logs: list[DayLog] = field(default_factory=list)  # today's, then yesterday's last lines

    @property
    def start(self) -> datetime:
        return window_start(self.now, self.tz)


def collect(
    params: Mapping[str, str],
    *,
    host_schedule: str = DEFAULT_SCHEDULE,
    host_run_on_startup: bool = False,
    host_problems: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    cache: RunCache | None = None,
) -> DashboardView:
    now = now or utcnow()
    env = read_environment(environ)
    key = params.get("code") or None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-health") as pool:
        health_future = pool.submit(
            health_document,
            host_schedule=host_schedule,
            host_run_on_startup=host_run_on_startup,
            host_problems=host_problems,
            environ=env,
            now=now,
        )
        try:
            here = services(environ)
            settings, store = here.settings, here.route_store
            status = status_document(settings, store, timer_enabled=timer_enabled(env), now=now)
            view = DashboardView(now, settings.timezone, settings.timezone_name, None, status, [], key)
            view.runs = (cache or _cache).window(store, view.start, now)
            today = now.astimezone(settings.timezone).date()
            for day in (today, today - timedelta(days=1)):
                log_file, lines = store.read_log_tail(day, LOG_LINES_SHOWN)
                view.logs.append(DayLog(day, lines, log_file))
        except (SettingsError, StorageError) as exc:
            log.error("/dashboard could not read the state: %s", exc)
            view = DashboardView(now, UTC, "UTC", None, None, [], key, problem=str(exc))
        view.health = health_future.result()
    return view
