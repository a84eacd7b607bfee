"""Report days, as pure functions: the days a person may ask for (YYYY-MM-DD calendar dates, ranges of at most 31 days,
nothing after today; `/trigger`, `/logs` and the command line read days through here), the days a run reports
(catch-up after an outage), and how the finalized-day marker moves.

The state is kept in job_stats.json as `last_finalized_day` (every day up to it is finalized, or was left
behind the catch-up window and is listed in `unsynced_days`) and `finalized_days` (days after the marker
already finalized out of order, e.g. when an older day failed; kept until the marker passes them).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_RANGE_DAYS = 31  # what POST /trigger and the command line accept in one backfill
MAX_UNSYNCED = 731  # days left behind that job_stats.json lists; past two years only the newest are kept


# -- days a person asks for --------------------------------------------------------------------------------

_DAY_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # \d alone would take other scripts' digits
# No report day is older: earlier dates are typing mistakes (0001-01-01), never sent to LeadPier or LE.
EARLIEST_DAY = date(2000, 1, 1)


def parse_day(text: str) -> date:
    """A YYYY-MM-DD calendar date; ValueError saying which of the two it is not ("must be ..." follows a name)."""
    if not _DAY_TEXT.fullmatch(text):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        day_asked = date.fromisoformat(text)
    except ValueError:
        year, month, day = (int(part) for part in text.split("-"))
        if not 1 <= month <= 12:
            why = f"there is no month {month}"
        elif day == 0:
            why = "days start at 01"
        else:
            why = f"{calendar.month_name[month]} {year} has {calendar.monthrange(year, month)[1]} days"
        raise ValueError(f"must be a calendar date (YYYY-MM-DD), and {text} is not one: {why}") from None
    if day_asked < EARLIEST_DAY:
        raise ValueError(f"must be {EARLIEST_DAY.isoformat()} or later")
    return day_asked


def _day_text(value: Any) -> Any:
    """Only YYYY-MM-DD text: pydantic's own date parsing would also take timestamps, numbers and null."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    return parse_day(value)


Day = Annotated[date, BeforeValidator(_day_text)]  # a model's day field: YYYY-MM-DD text only
OptionalDay = Annotated[date | None, BeforeValidator(_day_text)]  # may be absent, never null


def parse_stored_day(text: str | None) -> date | None:
    """A day as job_stats.json keeps it; None for none, or for one that cannot be read (it is then rewritten)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_stored_days(texts: list[str] | None) -> list[date]:
    return [d for d in map(parse_stored_day, texts or []) if d is not None]


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


# -- days a run reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatchUp:
    """Where the days stand on `today`: what the next run syncs and what it cannot reach by itself."""

    today: date
    pending: list[date] = field(default_factory=list)  # past days within the window, not yet finalized, oldest first
    beyond_window: list[date] = field(default_factory=list)  # unfinalized days older than the window, oldest first

    @property
    def oldest_unfinalized(self) -> date | None:
        days = [*self.beyond_window, *self.pending]
        return min(days) if days else None

    @property
    def catching_up(self) -> bool:
        """Days before yesterday still to sync: more than the everyday 'yesterday until it is final'."""
        return any(d < self.today - timedelta(days=1) for d in self.pending)

    def backfills(self) -> list[tuple[date, date]]:
        """The beyond-window days as runs of consecutive days, each at most MAX_RANGE_DAYS long."""
        ranges: list[tuple[date, date]] = []
        for day in self.beyond_window:
            if ranges and day == ranges[-1][1] + timedelta(days=1) and (day - ranges[-1][0]).days < MAX_RANGE_DAYS:
                ranges[-1] = (ranges[-1][0], day)
            else:
                ranges.append((day, day))
        return ranges


def window_start(today: date, catchup_days: int) -> date:
    """The oldest day a run syncs by itself: `catchup_days` back, and at least yesterday (0 means 'as before')."""
    return today - timedelta(days=max(1, catchup_days))


def _marker(last_finalized: date | None, today: date) -> date:
    # A fresh install (nothing finalized yet) starts as if the day before yesterday were finalized: there is no
    # outage to catch up, and sending a week of figures that an earlier system already sent would only overwrite them.
    return last_finalized if last_finalized is not None else today - timedelta(days=2)


def catch_up(
    today: date,
    last_finalized: date | None,
    catchup_days: int,
    *,
    finalized: Iterable[date] = (),
    unsynced: Iterable[date] = (),
) -> CatchUp:
    """The past days not yet finalized on `today`, split into those a run syncs and those beyond its window."""
    marker = _marker(last_finalized, today)
    done = set(finalized)
    start = window_start(today, catchup_days)
    pending: list[date] = []
    beyond = sorted(d for d in set(unsynced) if d < today and d not in done)
    day = marker + timedelta(days=1)
    while day < today:
        if day not in done:
            (pending if day >= start else beyond).append(day)
        day += timedelta(days=1)
    return CatchUp(today=today, pending=pending, beyond_window=sorted(set(beyond)))


def report_days(
    today: date,
    last_finalized: date | None,
    catchup_days: int,
    *,
    finalized: Iterable[date] = (),
) -> list[date]:
    """The days a run syncs: every unfinalized past day within the window, oldest first, then today."""
    return [*catch_up(today, last_finalized, catchup_days, finalized=finalized).pending, today]


@dataclass(frozen=True)
class Finalization:
    """The finalized-day state after a run."""

    last_finalized: date | None
    finalized: list[date]
    unsynced: list[date]


def advance(
    run_day: date,
    last_finalized: date | None,
    catchup_days: int,
    newly_finalized: Iterable[date],
    *,
    finalized: Iterable[date] = (),
    unsynced: Iterable[date] = (),
    planned: bool = True,
) -> Finalization:
    """Fold the days a run finalized (`run_day`: the day it started, in the service's zone) into the state.

    The marker moves over days the run's window left behind (they go to `unsynced`, reported until a backfill
    finalizes them), then over every finalized day that directly follows it. A day finalized after a gap (an
    older day failed) is kept in `finalized`, so it is never sent again while the older one is retried.
    `planned`: the run chose its own days; only such a run starts the marker on a fresh install (a backfill of
    an old day must not make every day since then look missed).
    Applying the same run twice gives the same state (a retried write cannot move anything twice).
    """
    new = {d for d in newly_finalized if d < run_day}
    if last_finalized is None and not planned:
        return Finalization(None, sorted(set(finalized)), sorted(set(unsynced) - new))
    marker = _marker(last_finalized, run_day)
    done = {d for d in finalized if d > marker} | {d for d in new if d > marker}
    left_behind = set(unsynced)
    start = window_start(run_day, catchup_days)
    day = marker + timedelta(days=1)
    while day < start:
        if day not in done:
            left_behind.add(day)
        day += timedelta(days=1)
    marker = max(marker, start - timedelta(days=1))
    while marker + timedelta(days=1) in done:
        marker += timedelta(days=1)
    left_behind -= new
    return Finalization(
        last_finalized=marker,  # stored even when nothing was finalized: a fresh install's start is kept
        finalized=sorted(d for d in done if d > marker),
        unsynced=sorted(left_behind)[-MAX_UNSYNCED:],
    )
