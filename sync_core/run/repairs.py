"""Repairs: what earlier runs could not write (their counts in job_stats.json, their lines in the day's log), found by
run id and written from their records by a later run, under the lock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sync_core.errors import SyncError
from sync_core.run.recording import count_recorded, log_day_of, log_text, note_checked
from sync_core.settings import Settings
from sync_core.state.records import FINAL_STATUSES, Bookkeeping, JobStats, Recording, RunRecord
from sync_core.state.store import StateStore

# A run's lines keep the one logger name the run log and its queries know, whichever module writes them.
log = logging.getLogger("sync_core.pipeline")

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
    list_runs: Callable[[list[date]], list[str]] | None = None,
) -> list[Repair]:
    """Recorded runs (listed since shortly before the last complete look) not counted in job_stats.json, and
    counted runs whose lines are not in the day's log; oldest first, at most REPAIRS_PER_RUN. Name listings, plus
    one read per candidate.
    `gone` collects the runs of `unlogged_runs` whose record no longer exists; `left`, the runs left for a later
    look (not settled yet, or past REPAIRS_PER_RUN); `list_runs`, the listing to use instead of the store's (the
    dashboard's, which keeps the names of days no run is recorded on any more)."""
    floor = stats.repair_floor()
    listed = (list_runs or store.run_ids_on)(_days_to_list(stats, now))
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
        day = log_day_of(record, tz)
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
                    count_recorded(stats, record, settings, logged=in_log)
            elif record.run_id in stats.unlogged_runs and in_log:
                del stats.unlogged_runs[record.run_id]
                stats.count_log_lines(f"{log_day_of(record, tz):%Y%m%d}", log_text(record).count("\n"))
        note_checked(stats, checked_at)
        stats.updated_at = now

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
