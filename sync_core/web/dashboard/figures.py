"""What the dashboard shows, worked out from run records alone: hourly columns, headline runs, days, unmatched codes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache

from sync_core.state.records import FINAL_STATUSES, RunRecord

HOURS = 7 * 24
STACK_ORDER = ("success", "warning", "failed", "skipped", "running", "queued")  # bottom to top
CODES_PER_REASON = 8


def run_time(record: RunRecord) -> datetime:
    """When a run sits in time: the UTC moment in its id (its start; for a queued run, when it was queued), the
    same moment GET /runs filters on, so a column and the list it opens always hold the same runs."""
    stamp = record.run_id  # YYYYMMDDTHHMMSSmmmZ-...: sliced rather than strptime'd, a week is a thousand of them
    return datetime(
        int(stamp[0:4]),
        int(stamp[4:6]),
        int(stamp[6:8]),
        int(stamp[9:11]),
        int(stamp[11:13]),
        int(stamp[13:15]),
        int(stamp[15:18]) * 1000,
        tzinfo=UTC,
    )


def window_start(now: datetime, tz: tzinfo) -> datetime:
    """The first hour of the chart: local hours, so columns start where the viewer's hours start."""
    local = now.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(UTC) - timedelta(hours=HOURS - 1)


@dataclass
class HourColumn:
    """One hour of the chart: its runs counted by status."""

    start: datetime
    counts: Counter[str] = field(default_factory=Counter)
    sent_records: int = 0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def hour_columns(runs: list[RunRecord], start: datetime) -> list[HourColumn]:
    """One column per hour from `start`, HOURS of them; runs outside are left out."""
    columns = [HourColumn(start + timedelta(hours=i)) for i in range(HOURS)]
    for run in runs:
        index = int((run_time(run) - start) // timedelta(hours=1))
        if 0 <= index < HOURS:
            columns[index].counts[run.status] += 1
            columns[index].sent_records += run.sent_records
    return columns


def latest(runs: list[RunRecord], *triggers: str, done_only: bool = False) -> RunRecord | None:
    """The newest run of these triggers (runs oldest first); `done_only` skips runs not finished and skipped ones,
    so a headline shows a run that did something."""
    for run in reversed(runs):
        if run.trigger not in triggers:
            continue
        if done_only and (run.status not in FINAL_STATUSES or run.status == "skipped"):
            continue
        return run
    return None


@dataclass
class DayFigures:
    """One report day as LE holds it: the figures of the latest run that LE answered for it."""

    report_date: str
    runs: int = 0
    sent_records: int = 0
    matched_records: int | None = None
    unmatched_records: int | None = None
    accepted: bool = True
    sent_at: datetime | None = None


def report_days(runs: list[RunRecord]) -> list[DayFigures]:
    """Per report day, newest first, only days LE answered for: the latest answer's figures, and how many runs
    LE answered for that day. A dry run, a failed send or a day not yet sent shows nothing LE holds."""
    days: dict[str, DayFigures] = {}
    for run in runs:  # oldest first, so the latest answer wins
        for result in run.days:
            if result.le_success is None:
                continue
            figures = days.setdefault(result.report_date, DayFigures(result.report_date))
            figures.runs += 1
            figures.sent_records = result.sent_records
            figures.matched_records = result.matched_records
            figures.unmatched_records = result.unmatched_records
            figures.accepted = result.le_success
            figures.sent_at = run.finished_at
    return [days[d] for d in sorted(days, reverse=True)]


@dataclass
class ReasonFigures:
    """One reason a campaign code did not match, as the latest run that met it counted it."""

    reason: str
    records: int  # records with this reason in that run (the run's own count, not its examples)
    codes: list[tuple[str, int | None]]  # that run's codes: by their records, or (counted=False) examples as met
    run: RunRecord
    runs_in_window: int  # runs of the window that met this reason
    counted: bool = True  # the run kept per-code counts (runs recorded before it did kept examples only)


def unmatched_by_reason(runs: list[RunRecord]) -> list[ReasonFigures]:
    """Per reason, the latest finished run's count and its codes ranked by their records, and how many runs of the
    window met it; the reason with the most records first."""
    met: Counter[str] = Counter()
    newest: dict[str, RunRecord] = {}
    for run in runs:  # oldest first: the newest run that met a reason wins
        if run.status not in FINAL_STATUSES:
            continue
        for reason, count in run.unmatched_counts.items():
            if count:
                met[reason] += 1
                newest[reason] = run
    figures = [_reason(reason, run, met[reason]) for reason, run in newest.items()]
    return sorted(figures, key=lambda f: (-f.records, f.reason))


def _reason(reason: str, run: RunRecord, runs_in_window: int) -> ReasonFigures:
    top = run.unmatched_top.get(reason)
    if top:
        ranked: list[tuple[str, int | None]] = [
            (code, count) for code, count in sorted(top.items(), key=lambda item: (-item[1], item[0]))
        ]
        return ReasonFigures(reason, run.unmatched_counts[reason], ranked, run, runs_in_window)
    examples: list[tuple[str, int | None]] = [(code, None) for code in run.unmatched_codes.get(reason, [])]
    return ReasonFigures(reason, run.unmatched_counts[reason], examples, run, runs_in_window, counted=False)


@cache
def schedule_in_words(schedule: str) -> str:
    """`0 */10 * * * *` as "Every 10 minutes", by cron-descriptor (seconds first, as NCRONTAB); "" if it cannot."""
    try:
        from cron_descriptor import ExpressionDescriptor, Options

        options = Options()
        options.verbose = False
        options.use_24hour_time_format = True
        return str(ExpressionDescriptor(schedule, options).get_description())
    except Exception:  # words are a nicety, never a reason for the page to fail; the schedule itself is shown
        return ""
