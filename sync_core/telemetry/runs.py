"""A run's telemetry: its span's outcome and counts, LE's errors as a dimension, the run metrics."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sync_core.errors import LockBusy
from sync_core.state.records import FINAL_STATUSES
from sync_core.telemetry.export import enabled
from sync_core.telemetry.names import (
    DRY_RUN,
    DURATION_METRIC,
    DURATION_MS,
    ERROR,
    FETCHED_ROWS,
    INSTRUMENTATION_SCOPE,
    INVALID_METRIC,
    INVALID_ROWS,
    LE_ERRORS_MAX_CHARS,
    LOCK_BUSY,
    MATCHED_RECORDS,
    RECORDING,
    REPORT_DATES,
    RUN_ID,
    RUN_SPAN,
    RUNS_METRIC,
    SENT_METRIC,
    SENT_RECORDS,
    STATUS,
    TRIGGER,
    UNMATCHED_METRIC,
    UNMATCHED_RECORDS,
    UPSTREAM_REQUESTS,
)
from sync_core.telemetry.spans import Span, span

if TYPE_CHECKING:
    from sync_core.state.records import RunRecord

_lock = threading.Lock()
_instruments: dict[str, Any] = {}


@contextlib.contextmanager
def run_span(record: RunRecord) -> Iterator[Span]:
    """The run's span; on the way out it takes the run's outcome and counts, and the metrics are recorded.
    A queued run that met the lock (LockBusy, raised so the host delivers it again) is not a failure of the run:
    the span says so in LOCK_BUSY and keeps an unset status."""
    with span(RUN_SPAN, {RUN_ID: record.run_id, TRIGGER: record.trigger}, not_errors=(LockBusy,)) as current:
        try:
            yield current
        except LockBusy:
            current.set(LOCK_BUSY, True)
            raise
        finally:
            finish_run(current, record)


def finish_run(current: Span, record: RunRecord) -> None:
    if not enabled():
        return
    current.set(REPORT_DATES, ",".join(record.report_dates))
    if record.status in FINAL_STATUSES:  # not `running`: a run that met the lock has no outcome yet
        current.set(STATUS, record.status)
    current.set(ERROR, record.error)
    current.set(DRY_RUN, record.dry_run)
    current.set(RECORDING, recording_state(record))
    for key, value in (
        (FETCHED_ROWS, record.fetched_rows),
        (SENT_RECORDS, record.sent_records),
        (MATCHED_RECORDS, record.matched_records),
        (UNMATCHED_RECORDS, record.unmatched_records),
        (INVALID_ROWS, record.invalid_rows),
        (UPSTREAM_REQUESTS, record.upstream_requests),
        (DURATION_MS, record.duration_ms),
    ):
        current.set(key, value)
    if record.status == "failed":
        current.fail(record.error)
    if record.status in FINAL_STATUSES:  # a backfill that met the lock is delivered again, not counted
        record_metrics(record)


def recording_state(record: RunRecord) -> str:
    """What the run's bookkeeping came to: all written, some left to the next run, or no record at all."""
    if record.recording is None:
        return "complete"
    return "unrecorded" if "run_record" in record.recording.missing else record.recording.status


def le_errors_dimension(errors: list[str]) -> str:
    """LE's error strings as a JSON array short enough to be kept whole."""
    kept: list[str] = []
    size = 2
    for error in errors:
        size += len(json.dumps(error)) + 1
        if size > LE_ERRORS_MAX_CHARS:
            break
        kept.append(error)
    return json.dumps(kept)


# -- metrics ---------------------------------------------------------------------------------------------------


def _meters() -> dict[str, Any]:
    with _lock:
        if "runs" not in _instruments:
            from opentelemetry import metrics

            meter = metrics.get_meter(INSTRUMENTATION_SCOPE)
            _instruments.update(
                runs=meter.create_counter(RUNS_METRIC, unit="{run}", description="Runs by status"),
                sent=meter.create_counter(SENT_METRIC, unit="{record}", description="Records sent to LE"),
                unmatched=meter.create_counter(
                    UNMATCHED_METRIC, unit="{record}", description="Records whose campaign code did not parse or match"
                ),
                invalid=meter.create_counter(INVALID_METRIC, unit="{row}", description="Unreadable rows left out"),
                duration=meter.create_histogram(DURATION_METRIC, unit="s", description="Run duration"),
            )
        return _instruments


def record_metrics(record: RunRecord) -> None:
    if not enabled():
        return
    instruments = _meters()
    dimensions = {STATUS: record.status, TRIGGER: record.trigger}
    instruments["runs"].add(1, dimensions)
    instruments["sent"].add(record.sent_records, dimensions)
    instruments["unmatched"].add(sum(record.unmatched_counts.values()), dimensions)
    instruments["invalid"].add(record.invalid_rows, dimensions)
    if record.duration_ms is not None:
        instruments["duration"].record(record.duration_ms / 1000, dimensions)
