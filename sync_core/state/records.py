"""The documents kept in blobs: the LeadPier session, run records and job statistics."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from sync_core.untrusted import CODE_CHARS, MESSAGE_CHARS, one_line

RunStatus = Literal["queued", "running", "success", "warning", "failed", "skipped"]
# The blobs a run's bookkeeping writes: its record first, then the day's log and job_stats.json derived from it.
Bookkeeping = Literal["run_record", "job_stats", "day_log"]
Trigger = Literal["timer", "manual", "cli"]
FINAL_STATUSES: frozenset[str] = frozenset({"success", "warning", "failed", "skipped"})
SAMPLE_LIMIT = 20  # sample codes kept per reason; the counts stay exact
TOP_CODES_KEPT = 20  # codes kept per reason with their counts, the most frequent first
LE_ERRORS_KEPT = 50  # LE's error lines kept on a run record
COUNTED_RUNS_KEPT = 200  # far more runs than can retry or be redelivered at once

# Text that came from outside, cut and escaped when a record is built or read back (a record written before the
# bounds existed is bounded on read): a record's size has a ceiling whatever LeadPier or LE sent.
KeptCode = Annotated[str, AfterValidator(lambda text: one_line(text, CODE_CHARS))]
KeptMessage = Annotated[str, AfterValidator(lambda text: one_line(text, MESSAGE_CHARS))]
Samples = Annotated[list[KeptCode], AfterValidator(lambda items: items[:SAMPLE_LIMIT])]
LeErrors = Annotated[list[KeptMessage], AfterValidator(lambda items: items[:LE_ERRORS_KEPT])]
InvalidSamples = Annotated[list[KeptMessage], AfterValidator(lambda items: items[:SAMPLE_LIMIT])]


def top_codes(counts: dict[str, int]) -> dict[str, int]:
    """The TOP_CODES_KEPT most frequent codes, most frequent first (ties by code), each cut like any kept code
    (two codes that cut to the same text add up)."""
    kept: dict[str, int] = {}
    for code, count in counts.items():
        cut = one_line(code, CODE_CHARS)
        kept[cut] = kept.get(cut, 0) + count
    ranked = sorted(kept.items(), key=lambda item: (-item[1], item[0]))[:TOP_CODES_KEPT]
    return dict(ranked)


TopCodes = Annotated[dict[str, int], AfterValidator(top_codes)]

# A UTC timestamp and a short random suffix, so ids sort by start time; a backfill day adds ".NN".
RUN_ID_PATTERN = re.compile(r"(?P<day>\d{8})T\d{6}\d{3}Z-[0-9a-f]{6}(?:\.\d{2})?", re.ASCII)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_run_id(started_at: datetime) -> str:
    moment = started_at.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def is_run_id(text: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(text) is not None


class LeadPierSession(BaseModel):
    """source.json: the LeadPier session, as the old service's file held it."""

    model_config = ConfigDict(extra="ignore")

    token: str
    last_login_time: AwareDatetime
    expires_at: AwareDatetime
    user_email: str | None = None
    user_name: str | None = None


class DayResult(BaseModel):
    """What happened to one report day within a run."""

    report_date: str
    fetched_rows: int = 0
    sent_records: int = 0
    invalid_rows: int = 0
    rows_without_visitors: int = 0
    matched_records: int | None = None
    unmatched_records: int | None = None
    le_success: bool | None = None
    le_message: KeptMessage | None = None
    error: KeptMessage | None = None


class Recording(BaseModel):
    """Whether a run's bookkeeping got through: null on a run record means all of it did.

    `incomplete`: what could not be written (`missing`); the next run that takes the lock writes it (the run's
    outcome stands either way). `repaired`: a later run (`repaired_by`) wrote what was missing.
    """

    status: Literal["incomplete", "repaired"]
    missing: list[Bookkeeping] = Field(default_factory=list)
    repaired_by: str | None = None


class RunRecord(BaseModel):
    """runs/YYYYMMDD/<run_id>.json: one run, as /runs shows it."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    trigger: Trigger
    status: RunStatus
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    queued_at: AwareDatetime | None = None
    duration_ms: int | None = None
    report_dates: list[str] = Field(default_factory=list)
    dry_run: bool = False
    fetched_rows: int = 0
    sent_records: int = 0
    invalid_rows: int = 0
    matched_records: int = 0
    unmatched_records: int = 0
    unmatched_counts: dict[str, int] = Field(default_factory=dict)
    unmatched_codes: dict[str, Samples] = Field(default_factory=dict)
    # Per reason, the codes met most often in this run with their counts (a bounded tally, not examples).
    unmatched_top: dict[str, TopCodes] = Field(default_factory=dict)
    invalid_samples: InvalidSamples = Field(default_factory=list)
    le_errors: LeErrors = Field(default_factory=list)
    days: list[DayResult] = Field(default_factory=list)
    upstream_requests: int = 0
    error: KeptMessage | None = None
    parent_run_id: str | None = None
    child_run_ids: list[str] = Field(default_factory=list)
    # Past days whose final figures LE accepted in this run; of those, the ones older than yesterday (catch-up).
    finalized_dates: list[str] = Field(default_factory=list)
    caught_up_dates: list[str] = Field(default_factory=list)
    # The run chose its own report days (today and the unfinalized ones), rather than days asked of it.
    planned: bool = False
    # The run's own lines (at most MAX_LOG_LINES), written with the record: the day's log is derived from them.
    log_lines: list[str] = Field(default_factory=list)
    recording: Recording | None = None

    def finish(self, status: RunStatus, error: str | None, at: datetime) -> None:
        """The run's outcome, when it ended (`at`, by the run's clock), and how long it took."""
        self.status = status
        self.error = None if error is None else one_line(error, MESSAGE_CHARS)
        self.finished_at = at
        if self.started_at:
            self.duration_ms = int((self.finished_at - self.started_at).total_seconds() * 1000)


class LastExecution(BaseModel):
    """The last run that did something (not skipped), kept in job_stats.json for /status."""

    run_id: str
    timestamp: AwareDatetime
    status: RunStatus
    trigger: Trigger
    duration_ms: int | None = None
    report_dates: list[str] = Field(default_factory=list)
    sent_records: int = 0
    matched_records: int = 0
    unmatched_records: int = 0
    error: KeptMessage | None = None
    unmatched_codes: dict[str, Samples] = Field(default_factory=dict)


class TimerStatus(BaseModel):
    """What the host told the timer function about its own schedule."""

    last: AwareDatetime | None = None
    next: AwareDatetime | None = None
    past_due: bool = False
    seen_at: AwareDatetime | None = None


class JobStats(BaseModel):
    """job_stats.json: counters, the last execution, the last finalized day, the timer's last occurrence."""

    model_config = ConfigDict(extra="ignore")

    total_runs: int = 0
    successful_runs: int = 0
    failed_runs: int = 0
    skipped_runs: int = 0
    last_execution: LastExecution | None = None
    last_success_at: AwareDatetime | None = None
    last_finalized_day: str | None = None
    # Days after last_finalized_day already finalized (an older one failed), and unfinalized days older than the
    # catch-up window that no run syncs by itself (a backfill does): see sync_core/rules/days.py.
    finalized_days: list[str] = Field(default_factory=list)
    unsynced_days: list[str] = Field(default_factory=list)
    # The latest runs counted, with the status counted: a retried write (its first answer lost) or a redelivered
    # run is never counted twice.
    counted_runs: dict[str, str] = Field(default_factory=dict)
    # The newest run id dropped from counted_runs: a repair never counts a run up to it.
    forgotten_through: str | None = None
    # The start of the last run that looked at every recorded run for missing bookkeeping and left none behind:
    # the next look lists the run records from shortly before it (and at least yesterday's and today's).
    repairs_checked_at: AwareDatetime | None = None
    timer: TimerStatus | None = None
    updated_at: AwareDatetime | None = None
    # Lines appended to each recent day's log (YYYYMMDD): /logs shows the total without reading the whole blob.
    log_lines: dict[str, int] = Field(default_factory=dict)
    # Counted runs whose lines are not in the day's log yet (run id: YYYYMMDD of the log): the next run appends them.
    unlogged_runs: dict[str, str] = Field(default_factory=dict)

    def count_log_lines(self, day_key: str, added: int, keep_days: int = 7) -> None:
        self.log_lines[day_key] = self.log_lines.get(day_key, 0) + added
        for old in sorted(self.log_lines)[:-keep_days]:
            del self.log_lines[old]

    def has_counted(self, record: RunRecord) -> bool:
        return self.counted_runs.get(record.run_id) == record.status

    def repair_floor(self) -> str | None:
        """Run ids up to this one may have been counted and forgotten since: never counted again by a repair."""
        if self.forgotten_through is not None:
            return self.forgotten_through
        return min(self.counted_runs) if len(self.counted_runs) >= COUNTED_RUNS_KEPT else None

    def count(self, record: RunRecord) -> bool:
        """Fold one finished run into the counters (skipped runs are kept apart from the success rate).

        Idempotent per run id: the same run and status again changes nothing (False); a run counted before with
        another status (a redelivered queued run) moves from the old bucket to the new one.
        """
        if self.has_counted(record):
            return False
        if (before := self.counted_runs.pop(record.run_id, None)) is not None:
            self._bump(before, -1)
        self.counted_runs[record.run_id] = record.status
        while len(self.counted_runs) > COUNTED_RUNS_KEPT:
            forgotten = next(iter(self.counted_runs))
            del self.counted_runs[forgotten]
            self.forgotten_through = max(self.forgotten_through or forgotten, forgotten)
        self._bump(record.status, +1)
        if record.status == "skipped":
            return True
        if record.status == "success":
            self.last_success_at = record.finished_at
        # When the run ended, by its own clock; a record with no time at all is counted but shown as no execution.
        moment = record.finished_at or record.started_at or record.queued_at
        if moment is None:
            return True
        self.last_execution = LastExecution(
            run_id=record.run_id,
            timestamp=moment,
            status=record.status,
            trigger=record.trigger,
            duration_ms=record.duration_ms,
            report_dates=record.report_dates,
            sent_records=record.sent_records,
            matched_records=record.matched_records,
            unmatched_records=record.unmatched_records,
            error=record.error,
            unmatched_codes=record.unmatched_codes,
        )
        return True

    def _bump(self, status: str, by: int) -> None:
        if status == "skipped":
            self.skipped_runs += by
            return
        self.total_runs += by
        if status == "success":
            self.successful_runs += by
        else:
            self.failed_runs += by

    def success_rate(self) -> str:
        if not self.total_runs:
            return "N/A"
        return f"{100 * self.successful_runs / self.total_runs:.2f}%"
