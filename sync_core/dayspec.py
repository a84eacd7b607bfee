"""The days a person may ask to sync: YYYY-MM-DD calendar dates, ranges of at most 31 days, nothing after today.

`/trigger`, `/logs` and the command line all read days through here, so they accept and refuse the same input with
the same words.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

MAX_RANGE_DAYS = 31

_DAY_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(text: str) -> date:
    """A YYYY-MM-DD calendar date; ValueError saying which of the two it is not ("must be ..." follows a name)."""
    if not _DAY_TEXT.fullmatch(text):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        year, month, day = (int(part) for part in text.split("-"))
        if not 1 <= month <= 12:
            why = f"there is no month {month}"
        elif day == 0:
            why = "days start at 01"
        else:
            why = f"{calendar.month_name[month]} {year} has {calendar.monthrange(year, month)[1]} days"
        raise ValueError(f"must be a calendar date (YYYY-MM-DD), and {text} is not one: {why}") from None


def day_range(first: date, last: date) -> list[date]:
    """Every day from first to last inclusive; ValueError past 31 days or when reversed."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    count = (last - first).days + 1
    if count > MAX_RANGE_DAYS:
        raise ValueError(f"the range covers {count} days; at most {MAX_RANGE_DAYS} are allowed")
    return [first + timedelta(days=i) for i in range(count)]


def refuse_future(days: list[date], today: date, zone_name: str) -> None:
    """ValueError when a day is after today in the service's zone: its figures do not exist yet."""
    if days and max(days) > today:
        raise ValueError(
            f"{max(days).isoformat()} is after today ({today.isoformat()} in {zone_name}); "
            "only past days and today can be synced"
        )
