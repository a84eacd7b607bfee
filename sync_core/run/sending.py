"""The days of one run, in order: each day fetched, transformed and sent, its PUT on the wire while the next day is
fetched.

Each page is transformed, and its LE records serialised, as soon as it arrives, while the later pages are on the
wire: the day keeps the JSON of its records (the PUT's body in pieces), not the records. A day's PUT is sent from a
thread of its own, so the next day's pages are fetched meanwhile; the next PUT waits for its answer, so LE still gets
one PUT a day, in the days' order, each after the lock was checked, and each day's result is recorded before the next
day's PUT is sent. A failure of a PUT that ends the run (the deadline) ends it as it did when nothing overlapped:
the day being fetched meanwhile is left out of the run's days.

Each day runs in a context of its own, in which its span is opened, its pages are fetched (their threads copy it) and
its PUT is sent, so the page and PUT spans are children of the day's span, the day's of the run's, and the day's span
ends when its PUT has its answer, in whichever thread that is.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sync_core import telemetry
from sync_core.errors import DeadlineExceeded, LoginError, StorageError, SyncError
from sync_core.rules.transform import transform_rows
from sync_core.run.findings import DayFindings, Tally, check_page, log_findings
from sync_core.state.lock import RunLock
from sync_core.state.records import LE_ERRORS_KEPT, DayResult
from sync_core.untrusted import one_line
from sync_core.upstream.le import DayBody, LeClient, records_json
from sync_core.upstream.leadpier import LeadPierClient

log = logging.getLogger("sync_core.pipeline")  # the name every line of a run shows

# Failures after which the next day would fail the same way: the run stops instead of trying it.
ENDS_THE_RUN = (StorageError, DeadlineExceeded, LoginError)


@dataclass
class _Day:
    """One day under way: its result, its context, its span (open in that context) and the span's manager."""

    day: date
    result: DayResult
    context: contextvars.Context
    span_manager: AbstractContextManager[telemetry.Span]
    span: telemetry.Span

    def run(self, action: Callable[..., Any], *args: Any) -> Any:
        return self.context.run(action, *args)

    def failed(self, exc: SyncError) -> None:
        self.result.error = one_line(str(exc))
        self.span.fail(self.result.error)
        self.run(log.error, "Day %s failed: %s", self.day.isoformat(), self.result.error)

    def close(self, exc: BaseException | None = None) -> None:
        """End the day's span (in its own context, from any thread), with the error that leaves the day if any."""
        self.span.set(telemetry.FETCHED_ROWS, self.result.fetched_rows)
        self.span.set(telemetry.SENT_RECORDS, self.result.sent_records)
        if exc is None:
            self.run(self.span_manager.__exit__, None, None, None)
        else:
            self.run(self.span_manager.__exit__, type(exc), exc, exc.__traceback__)


class DaySender:
    """Syncs a run's days one after the other (`sync`), then `finish` waits for the last PUT; `close` always."""

    def __init__(
        self,
        *,
        days: list[DayResult],
        tally: Tally,
        lock: RunLock,
        domain_codes: dict[str, str],
        dry_run: bool,
        leadpier: LeadPierClient,
        le: LeClient,
    ) -> None:
        self._days, self._tally, self._lock = days, tally, lock
        self._domain_codes, self._dry_run = domain_codes, dry_run
        self._leadpier, self._le = leadpier, le
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="le-put")
        self._pending: Future[None] | None = None

    def sync(self, day: date) -> None:
        """Fetch and transform the day; then, the previous day's PUT answered, send it in the background."""
        result = DayResult(report_date=day.isoformat())
        self._days.append(result)
        context = contextvars.copy_context()
        manager = telemetry.span(telemetry.DAY_SPAN, {telemetry.REPORT_DATE: result.report_date})
        this = _Day(day, result, context, manager, context.run(manager.__enter__))
        try:
            this.run(self._lock.check)
            body = this.run(self._fetch, this)
        except BaseException as exc:
            self._answered(this)  # the previous day first, as when the days did not overlap
            self._left(this, exc)
            return
        self._answered(this)  # the previous day's PUT answered and recorded before this day's is sent
        if body is None:
            this.close()
            return
        try:
            this.run(self._lock.check)  # never send once another run may have taken over
        except BaseException as exc:
            self._left(this, exc)
            return
        self._pending = self._pool.submit(self._send, this, body)

    def finish(self) -> None:
        """Wait for the last day's PUT; its failure that ends the run is raised here."""
        self._answered(None)

    def close(self) -> None:
        """No PUT outlives the run: wait for one still on the wire (after an unexpected error)."""
        self._pool.shutdown(wait=True)

    def _answered(self, fetching: _Day | None) -> None:
        """Wait for the PUT on the wire, if any. When it failed in a way that ends the run, the day fetched meanwhile
        (`fetching`) is left out, as it was never begun when days did not overlap, and the failure is raised."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except BaseException:
            if fetching is not None:
                self._days.remove(fetching.result)
                fetching.close()
            raise

    def _fetch(self, this: _Day) -> DayBody | None:
        """The day's pages, each transformed, serialised and its codes checked as it arrives; the body to send, or
        None (a dry run, or no records)."""
        day, result = this.day, this.result
        body = DayBody(day)
        findings = DayFindings()
        invalid = without_visitors = 0
        for rows in self._leadpier.iter_pages(day):
            result.fetched_rows += len(rows)
            part = transform_rows(rows)
            del rows  # the page's rows are let go here, its records once their codes are checked
            body.add(records_json(part.records), len(part.records))
            invalid += len(part.invalid)
            without_visitors += part.without_visitors
            check_page(part, findings, self._tally, self._domain_codes)
        result.invalid_rows = invalid
        result.rows_without_visitors = without_visitors
        log.info(
            "%s: %d rows fetched, %d records to send, %d without visitors, %d invalid",
            day.isoformat(),
            result.fetched_rows,
            body.records,
            without_visitors,
            invalid,
        )
        log_findings(day, findings)
        if self._dry_run:
            log.info("Dry run: nothing sent to LE for %s", day.isoformat())
            return None
        if not body.records:
            log.info("No records for %s; nothing sent to LE", day.isoformat())
            return None
        return body

    def _send(self, this: _Day, body: DayBody) -> None:
        """In the PUT's thread: the PUT (in the day's context), its answer on the day's result, the day's span ended."""
        try:
            this.run(self._put, this, body)
        except BaseException as exc:
            self._left(this, exc)
            return
        this.close()

    @staticmethod
    def _left(this: _Day, exc: BaseException) -> None:
        """A day's failure: recorded on the day, which ends; raised again when it ends the run (or is unexpected)."""
        if isinstance(exc, SyncError):
            this.failed(exc)
            if not isinstance(exc, ENDS_THE_RUN):
                this.close()
                return
        this.close(exc)
        raise exc

    def _put(self, this: _Day, body: DayBody) -> None:
        day, result, records = this.day, this.result, body.records
        with telemetry.span(
            telemetry.LE_PUT_SPAN, {telemetry.REPORT_DATE: day.isoformat(), telemetry.RECORDS: records}
        ) as put_span:
            answer = self._le.put_body(body)
            put_span.set(telemetry.LE_SUCCESS, answer.success)
            put_span.set(telemetry.LE_MATCHED, answer.matched)
            put_span.set(telemetry.LE_UNMATCHED, answer.unmatched)
            kept_errors = [one_line(error) for error in answer.errors[:LE_ERRORS_KEPT]]
            put_span.set(telemetry.LE_ERRORS, telemetry.le_errors_dimension(kept_errors))
            message = one_line(answer.message) if answer.message else None
            if not answer.success:
                put_span.fail(message or "success: false")
        result.sent_records = records
        result.le_success = answer.success
        result.le_message = message
        result.matched_records = answer.matched
        result.unmatched_records = answer.unmatched
        room = max(LE_ERRORS_KEPT - len(self._tally.le_errors), 0)
        self._tally.le_errors.extend(kept_errors[:room])
        if not answer.success:
            self._tally.le_errors.append(f"{day.isoformat()}: {message or 'success: false'}")
            log.warning("LE did not accept %s: %s", day.isoformat(), message or "no message")
