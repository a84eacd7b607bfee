"""The timer's NCRONTAB schedule: six fields with seconds first, evaluated in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sync_core.rules.schedule import DEFAULT_SCHEDULE, interval, next_occurrence, validate_schedule

UTC = UTC


@pytest.mark.parametrize("expression", ["0 */10 * * * *", "0 0 * * * *", "30 5 2 * * 1-5", "0 0 0 1 1 *"])
def test_six_field_expressions_are_accepted(expression: str) -> None:
    assert validate_schedule(expression) == expression


def test_extra_whitespace_is_normalised() -> None:
    assert validate_schedule("  0   */10 *  * * * ") == "0 */10 * * * *"


@pytest.mark.parametrize("expression", ["*/10 * * * *", "", "0 */10 * * * * *", "0 61 * * * *", "every 10 minutes x y"])
def test_other_expressions_are_refused_with_an_example(expression: str) -> None:
    with pytest.raises(ValueError, match="NCRONTAB") as caught:
        validate_schedule(expression)
    assert "0 */10 * * * *" in str(caught.value)


def test_the_default_fires_every_ten_minutes_on_the_minute() -> None:
    after = datetime(2026, 2, 13, 17, 53, 35, tzinfo=UTC)

    assert next_occurrence(DEFAULT_SCHEDULE, after) == datetime(2026, 2, 13, 18, 0, 0, tzinfo=UTC)


def test_the_next_occurrence_is_strictly_after_the_given_moment() -> None:
    at = datetime(2026, 2, 13, 18, 0, 0, tzinfo=UTC)

    assert next_occurrence(DEFAULT_SCHEDULE, at) == datetime(2026, 2, 13, 18, 10, 0, tzinfo=UTC)


def test_the_schedule_is_evaluated_in_utc_whatever_zone_the_moment_is_in() -> None:
    # 05:30 in Kolkata is 00:00 UTC: a daily "0 0 1 * * *" (01:00 UTC) fires at 06:30 Kolkata time.
    after = datetime(2026, 2, 13, 5, 30, tzinfo=ZoneInfo("Asia/Kolkata"))

    nxt = next_occurrence("0 0 1 * * *", after)

    assert nxt == datetime(2026, 2, 13, 1, 0, tzinfo=UTC)
    assert nxt.utcoffset() == timedelta(0)


def test_seconds_are_the_first_field() -> None:
    after = datetime(2026, 2, 13, 18, 0, 0, tzinfo=UTC)

    assert next_occurrence("30 * * * * *", after) == datetime(2026, 2, 13, 18, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */10 * * * *", timedelta(minutes=10)),
        ("0 0 * * * *", timedelta(hours=1)),
        ("*/15 * * * * *", timedelta(seconds=15)),
    ],
)
def test_the_interval_is_the_gap_between_two_firings(expression: str, expected: timedelta) -> None:
    assert interval(expression, datetime(2026, 2, 13, 17, 53, 35, tzinfo=UTC)) == expected
