"""The NCRONTAB grammar of the Functions host's timer, and its next firing; standard library only.

`function_app.py` checks `SYNC_SCHEDULE` with this module when the host loads the app, and `/health` and `/status`
use it too, so the app never calls valid a schedule the host would not run. The host (NCrontab) takes six fields,
seconds first: `*`, numbers, ranges (`1-5`), steps (`*/10`, `5/15`, `0-30/10`), lists (`1,15,30`), and month and
day names (`JAN`, `Monday`: any case, and any prefix of the English name). It has no `L`, `W`, `#` or `?`. A day
must match both the day-of-month and the day-of-week field. Keep this module free of imports outside the standard
library: it runs while the host loads the app, where an import error hides every function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day of week", 0, 6, _DAY_NAMES),
)

# How far ahead a firing is looked for: a schedule such as 29 February on a Monday fires once in 28 years.
_HORIZON_DAYS = 366 * 29


class ScheduleError(ValueError):
    """The expression is not one the Functions host accepts; the message says which part and why."""


@dataclass(frozen=True)
class Schedule:
    """A parsed NCRONTAB expression: the allowed values of each field."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing strictly after `after`, in UTC (the host evaluates schedules in UTC); None if it never
        fires (for example the 31st of February)."""
        start = after.astimezone(UTC).replace(microsecond=0)
        day = start.date()
        for _ in range(_HORIZON_DAYS):
            if self._fires_on(day):
                earliest = start.time() if day == start.date() else None
                moment = self._first_time(earliest)
                if moment is not None:
                    return datetime.combine(day, moment, tzinfo=UTC)
            day += timedelta(days=1)
        return None

    def _fires_on(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python's Monday = 0 to cron's Sunday = 0
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def _first_time(self, after: time | None) -> time | None:
        for hour in self.hours:
            for minute in self.minutes:
                for second in self.seconds:
                    candidate = time(hour, minute, second)
                    if after is None or candidate > after:
                        return candidate
        return None


def parse(expression: str) -> Schedule:
    """The schedule, or ScheduleError naming the field that is wrong."""
    parts = expression.split()
    if len(parts) != 6:
        raise ScheduleError(f"it has {len(parts)} fields, not 6")
    values = [sorted(_parse_field(text, field)) for text, field in zip(parts, _FIELDS, strict=True)]
    return Schedule(
        expression=" ".join(parts),
        seconds=tuple(values[0]),
        minutes=tuple(values[1]),
        hours=tuple(values[2]),
        days=frozenset(values[3]),
        months=frozenset(values[4]),
        weekdays=frozenset(values[5]),
    )


def is_valid(expression: str) -> bool:
    try:
        parse(expression)
    except ScheduleError:
        return False
    return True


def _parse_field(text: str, field: _Field) -> set[int]:
    allowed: set[int] = set()
    for part in text.split(","):
        allowed |= _parse_part(part, field, text)
    return allowed


def _parse_part(part: str, field: _Field, whole: str) -> set[int]:
    def wrong(why: str) -> ScheduleError:
        return ScheduleError(f"the {field.name} field {whole!r} has {why}")

    if not part:
        raise wrong("an empty value")
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise wrong(f"a step in {part!r} that is not a whole number of 1 or more")
        step = int(step_text)
    if span == "*":
        low, high = field.low, field.high
    elif "-" in span:
        first, _, last = span.partition("-")
        low, high = _value(first, field, wrong), _value(last, field, wrong)
        low, high = min(low, high), max(low, high)  # the host swaps a reversed range
    else:
        low = _value(span, field, wrong)
        high = field.high if slash else low  # `5/15` means from 5 to the end, every 15
    return set(range(low, high + 1, step))


def _value(text: str, field: _Field, wrong: Callable[[str], ScheduleError]) -> int:
    if text.isdigit():
        number = int(text)
        if not field.low <= number <= field.high:
            raise wrong(f"{number}, outside {field.low}-{field.high}")
        return number
    if text and text.isalpha() and field.names:
        for index, name in enumerate(field.names):
            if name.lower().startswith(text.lower()):
                return field.low + index
    names = f" or a name such as {field.names[0][:3].upper()}" if field.names else ""
    raise wrong(f"{text!r}, which is not a number {field.low}-{field.high}{names}")
