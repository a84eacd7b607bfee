"""A made-up run history (by default 7 days of a run every 10 minutes) for the dashboard's tests and benchmark."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sync_core.state.records import DayResult, JobStats, RunRecord, RunStatus, new_run_id

if TYPE_CHECKING:
    from sync_core.state.store import StateStore

STATUS_WEIGHTS: dict[RunStatus, float] = {"success": 0.90, "warning": 0.04, "failed": 0.03, "skipped": 0.03}
ERRORS = {
    "warning": "LE answered success: false for {day}: campaign table is being rebuilt",
    "failed": "LeadPier statistics for {day} failed after 4 attempts: HTTP 503",
}


def synthetic_runs(
    now: datetime, *, days: int = 7, per_day: int = 144, tz: object = None, seed: int = 7
) -> Iterator[RunRecord]:
    """`days * per_day` timer runs ending just before `now`, oldest first, with a realistic mix of outcomes."""
    rng = random.Random(seed)
    step = timedelta(days=1) / per_day
    total = days * per_day
    for i in range(total):
        started = now - (total - i) * step + timedelta(seconds=5)
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        day = started.astimezone(tz).date() if tz else started.date()  # type: ignore[arg-type]
        record = RunRecord(
            run_id=new_run_id(started),
            trigger="timer",
            status=status,
            started_at=started,
            finished_at=started + timedelta(seconds=2),
            duration_ms=2000,
            report_dates=[day.isoformat()],
        )
        if status != "skipped":
            sent = 250 + (i % per_day) + rng.randint(0, 40) if status != "failed" else 0
            unmatched = sent // 7
            record.fetched_rows = record.sent_records = sent
            record.matched_records, record.unmatched_records = sent - unmatched, unmatched
            record.unmatched_counts = {"invalid_format": unmatched // 2, "unknown_domain": unmatched - unmatched // 2}
            record.unmatched_codes = {
                "invalid_format": [f"vr-b-{rng.choice('abcdef')}Z{j}-t-0213" for j in range(3)],
                "unknown_domain": [f"mta_0213-{rng.choice(['xyz', 'qqq', 'nwd'])}-e{j}" for j in range(2)],
            }
            record.days = [
                DayResult(
                    report_date=day.isoformat(),
                    fetched_rows=sent,
                    sent_records=sent,
                    matched_records=sent - unmatched if status != "failed" else None,
                    unmatched_records=unmatched if status != "failed" else None,
                    le_success=None if status == "failed" else status == "success",
                )
            ]
            if status in ERRORS:
                record.error = ERRORS[status].format(day=day.isoformat())
        else:
            record.error = "another run held the lock (already running)"
        yield record


def record_counted(store: StateStore, runs: list[RunRecord], checked_at: datetime) -> None:
    """The runs as they leave storage: each run record written and counted in job_stats.json, the last complete
    look for repairs at `checked_at` (nothing left to repair before it)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.save_run, runs))

    def counted(stats: JobStats) -> None:
        for record in runs:
            stats.count(record)
        stats.repairs_checked_at = checked_at

    store.update_job_stats(counted)
