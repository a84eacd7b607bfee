"""The names operators query: the run's spans, their attributes and the log lines' dimensions, the metrics."""

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
