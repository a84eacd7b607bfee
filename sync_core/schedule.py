"""The timer's NCRONTAB schedule: validation, and the next firing, evaluated in UTC as the host does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

DEFAULT_SCHEDULE = "0 */10 * * * *"


def validate_schedule(expression: str) -> str:
    """The expression, normalised, if it is a 6-field NCRONTAB (seconds first); else ValueError saying so."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 6 or not croniter.is_valid(" ".join(fields), second_at_beginning=True):
        raise ValueError(
            f"{expression!r} is not a 6-field NCRONTAB expression "
            "(second minute hour day month day-of-week, e.g. '0 */10 * * * *')"
        )
    return " ".join(fields)


def next_occurrence(expression: str, after: datetime) -> datetime:
    """The first firing strictly after `after`, in UTC."""
    from croniter import croniter

    it = croniter(expression, after.astimezone(timezone.utc), second_at_beginning=True)
    return it.get_next(datetime).astimezone(timezone.utc)


def interval(expression: str, around: datetime) -> timedelta:
    """The gap between two consecutive firings after `around`: what "three intervals" means for /health."""
    first = next_occurrence(expression, around)
    return next_occurrence(expression, first) - first
