"""A backfill's parent as a person reads it: the sentence that says which day did not succeed and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync_core.run.backfill import aggregate_backfill
from sync_core.state.records import RunRecord, RunStatus

NOW = datetime(2026, 2, 13, 18, 3, 35, tzinfo=UTC)
PARENT_ID = "20260213T180335123Z-1a2b3c"


def day_run(number: int, status: RunStatus, error: str | None = None) -> RunRecord:
    return RunRecord(
        run_id=f"{PARENT_ID}.{number:02d}",
        trigger="manual",
        status=status,
        report_dates=[f"2026-02-{9 + number:02d}"],
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=number),
        error=error,
    )


def folded(*days: RunRecord) -> RunRecord:
    parent = RunRecord(run_id=PARENT_ID, trigger="manual", status="queued", child_run_ids=[d.run_id for d in days])
    return aggregate_backfill(parent, list(days))


def test_a_failed_day_is_named_in_words() -> None:
    parent = folded(day_run(1, "failed", "LeadPier is unavailable (503)"), day_run(2, "success"), day_run(3, "failed"))

    assert parent.error == "2 of 3 days did not succeed; the first, 2026-02-10, failed: LeadPier is unavailable (503)"


def test_a_warning_or_a_skipped_day_says_how_it_ended() -> None:
    assert folded(day_run(1, "success"), day_run(2, "warning", "LE did not accept 2026-02-11: no")).error == (
        "1 of 2 days did not succeed; the first, 2026-02-11, ended with a warning: LE did not accept 2026-02-11: no"
    )
    assert folded(day_run(1, "skipped"), day_run(2, "success")).error == (
        "1 of 2 days did not succeed; the first, 2026-02-10, was skipped"
    )


def test_a_backfill_whose_days_all_succeeded_has_no_error() -> None:
    assert folded(day_run(1, "success"), day_run(2, "success")).error is None
