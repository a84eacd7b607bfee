"""summaries/YYYYMMDD.json: per UTC day, a digest of each run recorded that day, so the dashboard reads days, not runs."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from sync_core.errors import ConcurrentUpdate
from sync_core.state.records import FINAL_STATUSES, RUN_ID_PATTERN, RunRecord
from sync_core.state.store import StateStore

log = logging.getLogger("sync_core.summaries")

CONFLICT_RETRIES = 8
CONFLICT_BACKOFF_S = 0.02


class DaySummary(BaseModel):
    """One UTC day's runs (the day in their ids, as in runs/YYYYMMDD/), each as its record without what the
    dashboard never shows (log lines, LE's error lines, invalid rows' samples, the days' messages), keyed by run id:
    writing a run again replaces its digest, never adds a second."""

    model_config = ConfigDict(extra="ignore")

    runs: dict[str, RunRecord] = Field(default_factory=dict)


def summary_blob_name(day: date) -> str:
    return f"summaries/{day:%Y%m%d}.json"


def run_day(run_id: str) -> date:
    """The UTC day in a run id: its record's folder and its summary."""
    match = RUN_ID_PATTERN.fullmatch(run_id)
    if not match:
        raise ValueError(f"{run_id!r} is not a run id")
    return date(int(match["day"][:4]), int(match["day"][4:6]), int(match["day"][6:8]))


def digest(record: RunRecord) -> RunRecord:
    """What a summary keeps of a run."""
    return record.model_copy(
        update={
            "log_lines": [],
            "le_errors": [],
            "invalid_samples": [],
            "recording": None,
            "days": [day.model_copy(update={"le_message": None, "error": None}) for day in record.days],
        }
    )


def settled(record: RunRecord) -> bool:
    """A record that no writer changes any more: finished, except a queued run recorded skipped, which the queue
    may deliver again. (A backfill parent is folded from its days on every read, so it never changes.)"""
    if record.child_run_ids:
        return True
    if record.status not in FINAL_STATUSES:
        return False
    return not (record.status == "skipped" and record.trigger == "manual")


def load_summary(store: StateStore, day: date) -> tuple[DaySummary | None, str | None]:
    return store.read_document(summary_blob_name(day), DaySummary)


def record_run(store: StateStore, record: RunRecord) -> None:
    """A run's digest in its day's summary, replacing any earlier digest of the same run (the run's own word)."""
    add_runs(store, run_day(record.run_id), [record], replace=True)


def add_runs(
    store: StateStore,
    day: date,
    records: Iterable[RunRecord],
    *,
    replace: bool = False,
    read: tuple[DaySummary | None, str | None] | None = None,
) -> bool:
    """Fold runs into the day's summary by ETag read-modify-write, again on conflict; True when it was written.

    `replace=False` (a repair from records read earlier) only adds runs the summary lacks, or settles a run it
    holds unsettled: a digest the run wrote itself meanwhile is never overwritten by an older read.
    """
    digests = [digest(r) for r in records]
    summary, etag = read if read is not None else load_summary(store, day)
    for attempt in range(CONFLICT_RETRIES):
        document = summary.model_copy(deep=True) if summary else DaySummary()
        changed = False
        for new in digests:
            old = document.runs.get(new.run_id)
            if old == new or (old is not None and not replace and (settled(old) or not settled(new))):
                continue
            document.runs[new.run_id] = new
            changed = True
        if not changed:
            return False
        document.runs = dict(sorted(document.runs.items()))
        try:
            store.write_document(summary_blob_name(day), document, etag)
            return True
        except ConcurrentUpdate:
            log.info("The summary of %s changed under us; reading it again", day.isoformat())
            time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * 2**attempt))
        summary, etag = load_summary(store, day)
    raise ConcurrentUpdate(f"{summary_blob_name(day)} kept changing; gave up after {CONFLICT_RETRIES} tries")
