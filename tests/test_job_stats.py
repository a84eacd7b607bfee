"""Counting runs in job_stats.json: once per run id, whatever retries or redeliveries bring."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_core.records import JobStats, RunRecord

STARTED = datetime(2026, 2, 13, 18, 0, tzinfo=UTC)


def record(run_id: str, status: str) -> RunRecord:
    return RunRecord(run_id=run_id, trigger="timer", status=status, started_at=STARTED, finished_at=STARTED)  # type: ignore[arg-type]


def test_the_same_run_counted_twice_is_counted_once() -> None:
    stats = JobStats()
    assert stats.count(record("20260213T180000000Z-aaaaaa", "success"))
    assert not stats.count(record("20260213T180000000Z-aaaaaa", "success"))  # a retried write whose answer was lost
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (1, 1, 0)


def test_a_redelivered_run_moves_between_counters_instead_of_adding_one() -> None:
    stats = JobStats()
    stats.count(record("20260213T180000000Z-bbbbbb", "failed"))
    stats.count(record("20260213T180000000Z-bbbbbb", "success"))
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (1, 1, 0)
    stats.count(record("20260213T180000000Z-cccccc", "skipped"))
    stats.count(record("20260213T180000000Z-cccccc", "success"))
    assert (stats.total_runs, stats.successful_runs, stats.skipped_runs) == (2, 2, 0)


def test_only_the_latest_run_ids_are_kept() -> None:
    stats = JobStats()
    for i in range(250):
        stats.count(record(f"20260213T180000000Z-{i:06x}", "success"))
    assert stats.total_runs == 250
    assert len(stats.counted_runs) == 200
    assert "20260213T180000000Z-0000f9" in stats.counted_runs
