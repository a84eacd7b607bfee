"""Counting runs in job_stats.json: once per run id, whatever retries or redeliveries bring."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_core.state.records import JobStats, RunRecord

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


def test_runs_forgotten_from_the_window_are_never_offered_for_counting_again() -> None:
    stats = JobStats()
    assert stats.repair_floor() is None  # nothing forgotten: every uncounted recorded run may be counted
    # A run queued long ago and counted late sits among the newest: the floor is the newest id forgotten.
    stats.count(record("20260211T000000000Z-000000", "success"))
    for i in range(1, 201):
        stats.count(record(f"20260213T180000000Z-{i:06x}", "success"))
    assert stats.forgotten_through == "20260211T000000000Z-000000"
    stats.count(record("20260210T000000000Z-000000", "success"))
    assert stats.forgotten_through == "20260213T180000000Z-000001"
    assert stats.repair_floor() == "20260213T180000000Z-000001"


def test_a_full_window_written_before_the_floor_was_kept_starts_at_its_oldest_id() -> None:
    stats = JobStats(counted_runs={f"20260213T180000000Z-{i:06x}": "success" for i in range(200)})

    assert stats.repair_floor() == "20260213T180000000Z-000000"
