"""The state a dashboard render reads: the window's run records (kept by ETag between requests), health, status,
and the last lines of today's and yesterday's logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sync_core.errors import SettingsError, StorageError, SyncError
from sync_core.rules.schedule import DEFAULT_SCHEDULE
from sync_core.run.backfill import aggregate_backfill
from sync_core.services import services
from sync_core.settings import read_environment
from sync_core.state.records import RunRecord, utcnow
from sync_core.state.store import StateStore
from sync_core.state.summaries import DaySummary, add_runs, load_summary, run_day, settled
from sync_core.web.dashboard.figures import run_time, window_start
from sync_core.web.health import health_document
from sync_core.web.health_models import HealthDocument
from sync_core.web.status import StatusDocument, read_stats, status_document, timer_enabled

log = logging.getLogger("sync_core.dashboard.state")  # the name every log line shows: kept when the module moved

LOG_LINES_SHOWN = 8
DAY_SETTLED_AFTER = timedelta(hours=1)  # well past the function timeout (10 minutes)


class RunCache:
    """A worker keeps the run records it has read. A render lists the window's run ids (names only, one request per
    day); for runs it does not have, it reads their days' summaries (one blob a day), and only the runs a summary
    lacks or holds unsettled are read one by one, then folded into their summary (the repair: once per run)."""

    def __init__(self, *, summaries: bool = True) -> None:
        """`summaries=False`: every run read from its record, as before the summaries (the benchmark's baseline)."""
        self._lock = threading.Lock()
        self._records: dict[str, RunRecord] = {}
        self._summaries = summaries
        self._listed: dict[date, list[str]] = {}  # past days' run ids, kept once no run can be recorded on them
        self._target: object = None  # the container these were read from
        self.reads = 0  # run records read one by one
        self.summary_reads = 0

    def window(self, store: StateStore, since: datetime, until: datetime) -> list[RunRecord]:
        """The runs from `since` to `until`, oldest first, as GET /runs lists them: a backfill's days folded into
        its parent, the parent drawn once."""
        days = [since.date() + timedelta(days=i) for i in range((until.date() - since.date()).days + 1)]
        run_ids = self._list(store, days, until)
        with self._lock:
            self._listed = {day: ids for day, ids in self._listed.items() if day >= days[0]}  # the window's only
            wanted = [rid for rid in run_ids if rid not in self._records or not settled(self._records[rid])]
        summarised: dict[str, RunRecord] = {}
        behind: dict[date, tuple[DaySummary | None, str | None]] = {}
        if self._summaries and wanted:
            summarised, behind = self._from_summaries(store, wanted)
            wanted = [rid for rid in wanted if rid not in summarised]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-read") as pool:
            fresh = [(rid, r) for rid, r in zip(wanted, pool.map(store.load_run, wanted), strict=True) if r]
        if behind:
            _repair(store, behind, [r for _, r in fresh])
        with self._lock:
            self.reads += len(wanted)
            self._records.update(summarised)
            self._records.update(fresh)
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

    def listed_days(self) -> set[date]:
        """The days whose run names this worker keeps (no run is recorded on them any more)."""
        with self._lock:
            return set(self._listed)

    def listing(self, store: StateStore, now: datetime) -> Callable[[list[date]], list[str]]:
        """The run ids of some UTC days as this cache lists them (a day long over, once per worker): for the
        repairs look-up of the page's status and health parts, which lists yesterday and today as well."""
        return lambda days: self._list(store, days, now)

    def _list(self, store: StateStore, days: list[date], now: datetime) -> list[str]:
        """The run ids of these UTC days, listed concurrently; a day long over is listed once per worker (no run
        is recorded on it any more: a run's id is its start, and a run ends within the function timeout)."""
        with self._lock:
            if self._target != store.target:  # another container (a setting changed): nothing kept applies
                self._target, self._listed, self._records = store.target, {}, {}
            known = {day: ids for day, ids in self._listed.items() if day in days}
        unknown = [day for day in days if day not in known]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-list") as pool:
            listed = dict(zip(unknown, pool.map(lambda day: store.run_ids_on([day]), unknown), strict=True))
        with self._lock:
            self._listed |= {day: ids for day, ids in listed.items() if now - _day_end(day) >= DAY_SETTLED_AFTER}
        return sorted(rid for ids in (known | listed).values() for rid in ids)

    def _from_summaries(
        self, store: StateStore, wanted: list[str]
    ) -> tuple[dict[str, RunRecord], dict[date, tuple[DaySummary | None, str | None]]]:
        """The wanted runs their days' summaries hold settled; and the days whose summary lacks some (with the
        summary as read, for the repair)."""
        days = sorted({run_day(rid) for rid in wanted})
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-summary") as pool:
            read = dict(zip(days, pool.map(lambda day: load_summary(store, day), days), strict=True))
        with self._lock:
            self.summary_reads += len(days)
        found: dict[str, RunRecord] = {}
        behind: dict[date, tuple[DaySummary | None, str | None]] = {}
        for rid in wanted:
            day = run_day(rid)
            summary = read[day][0]
            record = summary.runs.get(rid) if summary else None
            if record is not None and settled(record):
                found[rid] = record
            else:  # missing, or held unsettled: read from its record, and folded in if that settles it
                behind[day] = read[day]
        return found, behind


def _day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def _repair(
    store: StateStore, behind: dict[date, tuple[DaySummary | None, str | None]], fresh: list[RunRecord]
) -> None:
    """Runs a summary lacked (its run could not write it, or was recorded without a run: queued, a backfill's
    parent), folded in from their records, so no later render reads them one by one again."""
    by_day: dict[date, list[RunRecord]] = {}
    for record in fresh:
        by_day.setdefault(run_day(record.run_id), []).append(record)
    for day, read in behind.items():
        if not by_day.get(day):
            continue
        try:
            if add_runs(store, day, by_day[day], read=read):
                log.info("Rebuilt the summary of %s from %d run record(s)", day.isoformat(), len(by_day[day]))
        except SyncError as exc:  # the page is right without it; the next render tries again
            log.warning("The summary of %s could not be rebuilt (%s)", day.isoformat(), exc)


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
    # Every read is I/O: all of them at once, so a render waits for the slowest, not for the sum. job_stats.json and
    # the pending repairs are read once, for the /status and the /health parts both.
    try:
        here = services(environ)
    except SettingsError:
        here = None  # the health part says which setting; the page says so too, below
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="dashboard-read") as pool:
        listing = (cache or _cache).listing(here.route_store, now) if here else None
        stats = pool.submit(read_stats, here.route_store, now, list_runs=listing) if here else None
        health_future = pool.submit(
            health_document,
            host_schedule=host_schedule,
            host_run_on_startup=host_run_on_startup,
            host_problems=host_problems,
            environ=env,
            now=now,
            read=stats,
        )
        try:
            here = here or services(environ)
            settings, store = here.settings, here.route_store
            enabled = timer_enabled(env)
            read = stats or pool.submit(read_stats, store, now)
            status = pool.submit(
                lambda: status_document(settings, store, timer_enabled=enabled, now=now, read=read.result())
            )
            runs = pool.submit((cache or _cache).window, store, window_start(now, settings.timezone), now)
            today = now.astimezone(settings.timezone).date()
            days = (today, today - timedelta(days=1))
            tails = [pool.submit(store.read_log_tail, day, LOG_LINES_SHOWN) for day in days]
            view = DashboardView(now, settings.timezone, settings.timezone_name, None, status.result(), [], key)
            view.runs = runs.result()
            for day, tail in zip(days, tails, strict=True):
                log_file, lines = tail.result()
                view.logs.append(DayLog(day, lines, log_file))
        except (SettingsError, StorageError) as exc:
            log.error("/dashboard could not read the state: %s", exc)
            view = DashboardView(now, UTC, "UTC", None, None, [], key, problem=str(exc))
        view.health = health_future.result()
    return view
