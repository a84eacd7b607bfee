"""Run telemetry: the names of a run's spans, attributes and metrics, and their export through OpenTelemetry.

In the Functions host a run is a child of the host's invocation (the `requests` item the host sends); the run span
and its steps are `dependencies` (InProc), log lines are `traces`, the instruments `customMetrics`; attributes and
the run's log dimensions share one set of names and become `customDimensions`. docs/OPERATIONS.md lists them with a
query per question. Nothing here imports OpenTelemetry until telemetry is on: in the Functions host the Python
worker configures the Azure Monitor distro (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`); elsewhere (CLI,
sandbox) `configure_from_environment` does it when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from sync_core.state.records import RunRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
WORKER_TELEMETRY_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
INSTRUMENTATION_SCOPE = "leadpier_sync"

# -- spans -----------------------------------------------------------------------------------------------------
RUN_SPAN = "leadpier_sync.run"  # INTERNAL, the child of the host's invocation span (a root span from the CLI)
DAY_SPAN = "leadpier_sync.day"  # one report day of the run
LOGIN_SPAN = "leadpier_sync.login"  # a LeadPier login and the saving of its session
PAGE_SPAN = "leadpier_sync.fetch_page"  # one page of statistics (re-logins and retries included)
LE_PUT_SPAN = "leadpier_sync.le_put"  # the PUT of one day to LE
STATE_WRITE_SPAN = "leadpier_sync.write_state"  # one of the blobs written at the end of a run

# -- span attributes and the run's log dimensions (customDimensions) -------------------------------------------
RUN_ID = "sync.run_id"
TRIGGER = "sync.trigger"
REPORT_DATES = "sync.report_dates"  # comma-separated YYYY-MM-DD
STATUS = "sync.status"  # success / warning / failed / skipped
ERROR = "sync.error"  # the run's one-sentence error, when it has one
FETCHED_ROWS = "sync.fetched_rows"
SENT_RECORDS = "sync.sent_records"
MATCHED_RECORDS = "sync.matched_records"
UNMATCHED_RECORDS = "sync.unmatched_records"
INVALID_ROWS = "sync.invalid_rows"
UPSTREAM_REQUESTS = "sync.upstream_requests"
STORAGE_REQUESTS = "sync.storage_requests"
DURATION_MS = "sync.duration_ms"
DRY_RUN = "sync.dry_run"
LOCK_BUSY = "sync.lock_busy"  # True on the span of a queued run that met the lock and is delivered again
REPORT_DATE = "sync.report_date"  # day, page and PUT spans
PAGE_OFFSET = "sync.page_offset"
PAGE_ROWS = "sync.page_rows"
RECORDS = "sync.records"  # records in the PUT
LE_SUCCESS = "sync.le_success"
LE_MATCHED = "sync.le_matched"
LE_UNMATCHED = "sync.le_unmatched"
LE_ERRORS = "sync.le_errors"  # JSON array of LE's `errors` (the codes it did not match), cut to whole entries
RECORDING = "sync.recording"  # complete / incomplete (the next run writes the rest) / unrecorded
BLOB = "sync.blob"  # which state blob a write span wrote: run_record / job_stats / log / day_summary

# -- metrics (customMetrics), each with the dimensions STATUS and TRIGGER --------------------------------------
RUNS_METRIC = "leadpier_sync.runs"  # counter: runs by status
SENT_METRIC = "leadpier_sync.sent_records"  # counter: records sent to LE
UNMATCHED_METRIC = "leadpier_sync.unmatched_codes"  # counter: records whose campaign code did not parse or match
INVALID_METRIC = "leadpier_sync.invalid_rows"  # counter: unreadable LeadPier rows left out
DURATION_METRIC = "leadpier_sync.run.duration"  # histogram, seconds (OpenTelemetry's unit for durations)

# Bounds on what the host passes, not format checks (the W3C propagator checks the format and ignores a bad one).
TRACEPARENT_MAX_CHARS = 256
TRACESTATE_MAX_CHARS = 512  # the W3C limit
FLUSH_BUDGET_S = 0.5  # the most a process that ends waits for its telemetry to be sent, whatever the endpoint does
LE_ERRORS_MAX_CHARS = 8000  # the exporter cuts a dimension at 8 KiB; whole entries only, so the JSON stays valid
_FINAL_STATUSES = frozenset({"success", "warning", "failed", "skipped"})

_lock = threading.Lock()
_enabled: bool | None = None  # None: not decided yet (read from the environment on first use)
_configured_here = False
_instruments: dict[str, Any] = {}


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def enabled() -> bool:
    """Whether spans and metrics are made: the worker configured the distro, or this process did."""
    global _enabled
    if _enabled is None:
        _enabled = _is_true(os.environ.get(WORKER_TELEMETRY_SETTING))
    return _enabled


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Outside the Functions host: configure the Azure Monitor distro once per process when a connection string
    is set; without one nothing is exported and nothing fails. Returns whether telemetry is on."""
    global _enabled, _configured_here
    env = os.environ if environ is None else environ
    if not (env.get(CONNECTION_STRING_SETTING) or "").strip():
        return enabled()
    with _lock:
        if _configured_here:
            return True
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry.sdk.resources import Resource

            from sync_core.run.runlog import install

            # The run handler first: its filter gives each record the run's dimensions before the exporter's
            # handler, added next to the same logger, reads them.
            install()
            options: dict[str, Any] = {
                "connection_string": env[CONNECTION_STRING_SETTING].strip(),
                "logger_name": "sync_core",  # the run's lines; the CLI's own stderr logging stays as it is
                # cloud_RoleName; in the Functions host the worker's resource detector names the app instead.
                "resource": Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "leadpier-sync"}),
                # A one-off process: no files left behind to retry from, no live metrics stream, no counters.
                "disable_offline_storage": True,
                "enable_live_metrics": False,
                "enable_performance_counters": False,
                "span_processors": [QueryRedactingSpanProcessor()],
                # An unreachable or failing endpoint costs one attempt per batch, not a retry loop at exit.
                "retry_total": 0,
                "timeout": 5.0,
            }
            if not env.get("OTEL_TRACES_SAMPLER"):
                # The distro's default rate-limited sampler drops spans of a short process; keep every run.
                options["sampling_ratio"] = 1.0
            configure_azure_monitor(**options)
        except Exception as exc:
            log.warning(
                "Application Insights telemetry is off: the distro could not be configured (%s)", type(exc).__name__
            )
            return enabled()
        _configured_here = True
        _enabled = True
        return True


def add_redaction_to_worker_provider() -> None:
    """In the Functions host, the worker configured the tracer provider: add the query-string redaction once."""
    if _configured_here or not enabled() or "redaction" in _instruments:
        return
    with _lock:
        if "redaction" in _instruments:
            return
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        add = getattr(provider, "add_span_processor", None)
        if callable(add):
            add(QueryRedactingSpanProcessor())
        _instruments["redaction"] = True


def flush(budget_s: float = FLUSH_BUDGET_S) -> None:
    """At the end of a process that configured telemetry: send what is buffered (spans, log records, metrics),
    waiting `budget_s` at most, whether the endpoint answers, fails or never answers; what is not sent by then is
    dropped. The providers are shut down, each on a daemon thread: the interpreter's exit does not wait for a
    thread still in an export, and the providers' own exit hooks find them shut down and return at once."""
    if not _configured_here:
        return
    from opentelemetry import _logs, metrics, trace

    def shut(provider: Any) -> None:
        try:
            provider.shutdown()
        except Exception:
            log.debug("flushing telemetry failed", exc_info=True)

    threads = [
        threading.Thread(target=shut, args=(provider,), name="telemetry-flush", daemon=True)
        for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(), metrics.get_meter_provider())
        if callable(getattr(provider, "shutdown", None))
    ]
    deadline = time.monotonic() + budget_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def redact_query(url: str) -> str:
    """A URL with every query value replaced: settings such as LE_API_URL could carry a key there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    query = "&".join(p.split("=", 1)[0] + ("=REDACTED" if "=" in p else "") for p in parts.query.split("&"))
    return urlunsplit(parts._replace(query=query, netloc=parts.netloc.rsplit("@", 1)[-1]))


class QueryRedactingSpanProcessor:
    """Replaces query values in the URL attributes of HTTP spans as they start (before any exporter sees them)."""

    _URL_KEYS = ("url.full", "http.url", "http.target", "url.query")

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        attributes = getattr(span, "attributes", None) or {}
        for key in self._URL_KEYS:
            value = attributes.get(key)
            if not isinstance(value, str) or not value:
                continue
            if key == "url.query":
                span.set_attribute(key, "REDACTED")
            elif "?" in value:
                span.set_attribute(key, redact_query(value))

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- spans -----------------------------------------------------------------------------------------------------


class Span:
    """A span of this app, or nothing when telemetry is off (the same calls either way)."""

    def __init__(self, otel_span: Any = None) -> None:
        self._span = otel_span

    def set(self, key: str, value: Any) -> None:
        if self._span is not None and value is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str | None) -> None:
        if self._span is not None:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, description))


@contextlib.contextmanager
def invocation(trace_context: Any) -> Iterator[None]:
    """While a handler runs: the host's invocation span (`context.trace_context` of the Functions host, its
    `trace_parent` and `trace_state`) is the current span, so the run span, the storage and HTTP calls and the log
    lines are its children and share its operation id. Explicit because the Python worker attaches the host's context
    on its event loop, not on the thread that runs a sync function. Without telemetry, or without a valid
    traceparent, nothing changes."""
    traceparent = getattr(trace_context, "trace_parent", None)
    if not enabled() or not isinstance(traceparent, str) or not traceparent.strip():
        yield
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    add_redaction_to_worker_provider()  # before the first span of the invocation, whoever starts it
    carrier = {"traceparent": traceparent.strip()[:TRACEPARENT_MAX_CHARS]}
    tracestate = getattr(trace_context, "trace_state", None)
    if isinstance(tracestate, str) and tracestate.strip():
        carrier["tracestate"] = tracestate.strip()[:TRACESTATE_MAX_CHARS]
    token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, not_errors: tuple[type[BaseException], ...] = ()
) -> Iterator[Span]:
    """An INTERNAL child span of the current one (OpenTelemetry's context follows contextvars into copied
    contexts). An exception leaving it marks it failed and is recorded on it, unless it is one of `not_errors`."""
    if not enabled():
        yield Span()
        return
    from opentelemetry import trace

    add_redaction_to_worker_provider()
    tracer = trace.get_tracer(INSTRUMENTATION_SCOPE)
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.INTERNAL, attributes=clean, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield Span(current)
        except not_errors:
            raise
        except BaseException as exc:
            current.record_exception(exc)
            current.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def in_span(name: str, attributes: Mapping[str, Any], action: Callable[..., T], *args: Any) -> T:
    """`action(*args)` inside a span: for work handed to a thread pool in a copied context."""
    with span(name, attributes):
        return action(*args)


@contextlib.contextmanager
def run_span(record: RunRecord) -> Iterator[Span]:
    """The run's span; on the way out it takes the run's outcome and counts, and the metrics are recorded.
    A queued run that met the lock (LockBusy, raised so the host delivers it again) is not a failure of the run:
    the span says so in LOCK_BUSY and keeps an unset status."""
    from sync_core.errors import LockBusy

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
    if record.status in _FINAL_STATUSES:  # not `running`: a run that met the lock has no outcome yet
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
    if record.status in _FINAL_STATUSES:  # a backfill that met the lock is delivered again, not counted
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
