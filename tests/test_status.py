"""/status's next run: the host's own next firing while it belongs to the schedule in force, else computed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sync_core.settings import load_settings
from sync_core.state.records import JobStats, TimerStatus
from sync_core.web.status import next_run
from tests.test_settings import minimal

NOW = datetime(2026, 2, 13, 17, 53, 20, tzinfo=UTC)


def stats_with_host_next(moment: datetime) -> JobStats:
    return JobStats(timer=TimerStatus(last=NOW, next=moment, seen_at=NOW))


def test_the_hosts_next_firing_is_shown_when_it_is_one_of_the_schedule(tmp_path: Path) -> None:
    settings = load_settings(minimal(), tmp_path)
    later = datetime(2026, 2, 13, 18, 10, tzinfo=UTC)  # a firing of every 10 minutes, though not the next one

    assert next_run(settings, stats_with_host_next(later), NOW) == later


def test_after_a_schedule_change_the_old_schedules_firing_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(minimal(SYNC_SCHEDULE="0 0 * * * *"), tmp_path)
    now = datetime(2026, 2, 13, 17, 33, 20, tzinfo=UTC)
    told_under_the_old_schedule = datetime(2026, 2, 13, 17, 40, tzinfo=UTC)  # every 10 minutes, the default

    assert next_run(settings, stats_with_host_next(told_under_the_old_schedule), now) == datetime(
        2026, 2, 13, 18, 0, tzinfo=UTC
    )


def test_a_host_value_already_past_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(minimal(), tmp_path)
    past = datetime(2026, 2, 13, 17, 50, tzinfo=UTC)

    assert next_run(settings, stats_with_host_next(past), NOW) == datetime(2026, 2, 13, 18, 0, tzinfo=UTC)
