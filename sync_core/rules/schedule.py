"""The timer's schedule as the app sees it: validation, and the next firing, in the host's own NCRONTAB grammar."""

from __future__ import annotations

from datetime import datetime, timedelta

from sync_core.rules import ncrontab

DEFAULT_SCHEDULE = "0 */10 * * * *"


def validate_schedule(expression: str) -> str:
    """The expression, normalised, if the Functions host accepts it; else ValueError saying what is wrong."""
    try:
        return ncrontab.parse(expression).expression
    except ncrontab.ScheduleError as exc:
        raise ValueError(
            f"{expression!r} is not an NCRONTAB schedule the Functions host accepts: {exc}; it takes 6 fields, "
            "second minute hour day month day-of-week, with *, numbers, ranges, steps, lists and names "
            "(for example '0 */10 * * * *')"
        ) from None


def next_occurrence(expression: str, after: datetime) -> datetime | None:
    """The first firing strictly after `after`, in UTC; None for a schedule that never fires."""
    return ncrontab.parse(expression).next_after(after)


def interval(expression: str, around: datetime) -> timedelta | None:
    """The gap between two consecutive firings after `around`: what "three intervals" means for /health."""
    first = next_occurrence(expression, around)
    second = next_occurrence(expression, first) if first else None
    return second - first if first and second else None
