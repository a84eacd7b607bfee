"""Backfills: a range asked of /trigger planned as one queued run per day under a parent, and the parent read back as
the sum of its days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sync_core.state.queues import RunMessage
from sync_core.state.records import (
    FINAL_STATUSES,
    LE_ERRORS_KEPT,
    SAMPLE_LIMIT,
    RunRecord,
    RunStatus,
    new_run_id,
    top_codes,
    utcnow,
)

# How a day that did not succeed ended, in the parent's one sentence.
_OUTCOME = {"failed": "failed", "warning": "ended with a warning", "skipped": "was skipped"}
# The counts a parent adds up from its days.
_SUMMED = ("fetched_rows", "sent_records", "invalid_rows", "matched_records", "unmatched_records", "upstream_requests")


@dataclass
class RunPlan:
    run_id: str
    message: str
    records: list[RunRecord]
    messages: list[RunMessage]
    child_run_ids: list[str] = field(default_factory=list)


def plan_runs(days: list[date], dry_run: bool | None, default_dry_run: bool, now: datetime | None = None) -> RunPlan:
    """The queued records and queue messages for a trigger: one run, or a range as one run per day under a parent."""
    now = now or utcnow()
    run_id = new_run_id(now)
    recorded_dry_run = default_dry_run if dry_run is None else dry_run

    def queued(rid: str, dates: list[date], **extra: Any) -> RunRecord:
        return RunRecord(
            run_id=rid,
            trigger="manual",
            status="queued",
            queued_at=now,
            report_dates=[d.isoformat() for d in dates],
            dry_run=recorded_dry_run,
            **extra,
        )

    if len(days) <= 1:
        message = RunMessage(run_id=run_id, dates=days or None, dry_run=dry_run, queued_at=now)
        what = f"for {days[0].isoformat()}" if days else "for today"
        return RunPlan(run_id, f"Sync run {what} queued", [queued(run_id, days)], [message])
    children = [f"{run_id}.{i:02d}" for i in range(1, len(days) + 1)]
    records = [queued(cid, [day], parent_run_id=run_id) for cid, day in zip(children, days, strict=True)]
    records.append(queued(run_id, days, child_run_ids=children))
    messages = [
        RunMessage(run_id=cid, dates=[day], dry_run=dry_run, parent_run_id=run_id, queued_at=now)
        for cid, day in zip(children, days, strict=True)
    ]
    text = f"Backfill of {len(days)} days ({days[0].isoformat()} to {days[-1].isoformat()}) queued, one run per day"
    return RunPlan(run_id, text, records, messages, children)


def with_children(record: RunRecord, load_run: Callable[[str], RunRecord | None]) -> RunRecord:
    """A backfill parent as it stands now: its status and counts folded from its per-day runs."""
    if not record.child_run_ids:
        return record
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="runs-read") as pool:
        children = list(pool.map(load_run, record.child_run_ids))
    return aggregate_backfill(record, children)


def aggregate_backfill(parent: RunRecord, children: list[RunRecord | None]) -> RunRecord:
    """Fold a backfill's per-day runs into its parent record (a missing child counts as still queued)."""
    result = parent.model_copy(deep=True)
    found = [c for c in children if c is not None]
    statuses = [c.status if c else "queued" for c in children]
    settled = all(s in FINAL_STATUSES for s in statuses)
    result.status = _folded_status(statuses)
    _add_figures(result, found)
    _add_times(result, found, settled=settled)
    result.error = _first_trouble(found, len(children)) if settled else None
    return result


def _add_figures(result: RunRecord, found: list[RunRecord]) -> None:
    """The days' counts added up, their samples merged (each list kept to its limit), their days listed."""
    for name in _SUMMED:
        setattr(result, name, sum(getattr(c, name) for c in found))
    result.unmatched_counts, result.unmatched_codes = _merged_unmatched(found)
    result.unmatched_top = _merged_top(found)
    result.le_errors = [e for c in found for e in c.le_errors][:LE_ERRORS_KEPT]
    result.invalid_samples = [s for c in found for s in c.invalid_samples][:SAMPLE_LIMIT]
    result.days = [d for c in found for d in c.days]


def _add_times(result: RunRecord, found: list[RunRecord], *, settled: bool) -> None:
    """Started with its first day; finished, and timed, only once every day has ended."""
    result.started_at = min((c.started_at for c in found if c.started_at), default=None)
    if not (settled and found):
        return
    result.finished_at = max((c.finished_at for c in found if c.finished_at), default=None)
    if result.started_at and result.finished_at:
        result.duration_ms = int((result.finished_at - result.started_at).total_seconds() * 1000)


def _folded_status(statuses: Sequence[RunStatus]) -> RunStatus:
    """Queued until a day starts, running until every day ends; then the worst day decides (all skipped: skipped)."""
    pending = [s for s in statuses if s not in FINAL_STATUSES]
    if pending:
        return "running" if len(pending) < len(statuses) or "running" in pending else "queued"
    kinds = set(statuses)
    if "failed" in kinds:
        return "failed"
    if kinds == {"skipped"}:
        return "skipped"
    if kinds & {"warning", "skipped"}:
        return "warning"
    return "success"


def _merged_unmatched(found: list[RunRecord]) -> tuple[dict[str, int], dict[str, list[str]]]:
    counts: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    for child in found:
        for reason, count in child.unmatched_counts.items():
            counts[reason] = counts.get(reason, 0) + count
        for reason, codes in child.unmatched_codes.items():
            kept = samples.setdefault(reason, [])
            kept.extend(c for c in codes if c not in kept and len(kept) < SAMPLE_LIMIT)
    return counts, samples


def _merged_top(found: list[RunRecord]) -> dict[str, dict[str, int]]:
    """The days' per-code counts added up, the top ones kept per reason."""
    counts: dict[str, dict[str, int]] = {}
    for child in found:
        for reason, codes in child.unmatched_top.items():
            merged = counts.setdefault(reason, {})
            for code, count in codes.items():
                merged[code] = merged.get(code, 0) + count
    return {reason: top_codes(codes) for reason, codes in counts.items()}


def _first_trouble(found: list[RunRecord], days: int) -> str | None:
    troubled = [c for c in found if c.status in ("failed", "warning", "skipped")]
    if not troubled:
        return None
    first = troubled[0]
    day = first.report_dates[0] if first.report_dates else first.run_id
    sentence = f"{len(troubled)} of {days} days did not succeed; the first, {day}, {_OUTCOME[first.status]}"
    return f"{sentence}: {first.error}" if first.error else sentence
