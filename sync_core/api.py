"""What the functions do behind their bindings: request validation, trigger planning, runs, logs, and the response models."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from . import SERVICE_NAME, __version__
from .errors import LockBusy, SettingsError, StorageError
from .days import day_range, parse_day, refuse_future
from .pipeline import BACKFILL_LOCK_WAIT_S, LE_ERRORS_KEPT, RunRequest, run_sync
from .queues import MAX_DEQUEUE_COUNT, POISON_QUEUE
from .records import FINAL_STATUSES, SAMPLE_LIMIT, RunRecord, TimerStatus, is_run_id, new_run_id, utcnow
from .runlog import MAX_LOG_LINES
from .settings import Settings, load_settings
from .status import current_status
from .store import StateStore, log_blob_name

log = logging.getLogger(__name__)

MAX_RUNS_LIMIT = 100

JSON = "application/json"
TEXT = "text/plain"


# -- answers ---------------------------------------------------------------------------------------


@dataclass
class ApiResponse:
    """What a function answers; function_app.py turns it into a func.HttpResponse as it is."""

    status_code: int
    body: bytes
    mimetype: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    queue_messages: list[str] = field(default_factory=list)  # for /trigger's queue output binding

    @classmethod
    def json(cls, status_code: int, document: BaseModel | Mapping[str, Any], **extra: Any) -> ApiResponse:
        if isinstance(document, BaseModel):
            body = document.model_dump_json(by_alias=True).encode()
        else:
            body = json.dumps(document).encode()
        return cls(status_code, body, JSON, **extra)


class ApiError(Exception):
    """A refusal with its status code and body; raised inside sync_core, answered by `answers`."""

    def __init__(self, status_code: int, body: BaseModel) -> None:
        super().__init__(getattr(body, "error", None) or getattr(body, "message", ""))
        self.status_code = status_code
        self.body = body


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one sentence saying what is wrong and what is allowed."""

    error: str
    invocation_id: str | None = Field(None, description="only on a 500: the invocation to look up in Application Insights")


def bad_request(message: str) -> ApiError:
    return ApiError(400, ErrorBody(error=message))


def not_found(message: str) -> ApiError:
    return ApiError(404, ErrorBody(error=message))


def answers(handler: Callable[..., ApiResponse]) -> Callable[..., ApiResponse]:
    """Turn the refusals a handler raises into answers: ApiError as it says, settings or storage trouble as 503."""

    def answer(*args: Any, **kwargs: Any) -> ApiResponse:
        try:
            return handler(*args, **kwargs)
        except ApiError as exc:
            return ApiResponse.json(exc.status_code, exc.body)
        except (SettingsError, StorageError) as exc:
            log.error("%s answered 503: %s", handler.__name__, exc)
            return ApiResponse.json(503, ErrorBody(error=str(exc)))

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer


# -- request models --------------------------------------------------------------------------------

def _day(value: Any) -> Any:
    """Only YYYY-MM-DD text: pydantic's own date parsing would also take timestamps, numbers and null."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    return parse_day(value)


def _bool(value: Any) -> Any:
    """Only JSON true or false: pydantic's lax booleans would take 0, "yes", "off" and 1.0."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Day = Annotated[date, BeforeValidator(_day)]
OptionalDay = Annotated[date | None, BeforeValidator(_day)]  # may be absent, never null
OptionalBool = Annotated[bool | None, BeforeValidator(_bool)]


def _plain_fields(schema: dict[str, Any]) -> None:
    """Fields that may be absent but not null: say so, and drop the `default: null` that string schemas cannot hold."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", "") is None:
            del prop["default"]
        if "anyOf" in prop:
            prop.update(next(p for p in prop.pop("anyOf") if p.get("type") != "null"))


def _trigger_schema(schema: dict[str, Any]) -> None:
    _plain_fields(schema)
    present = [{"required": [name]} for name in ("date", "from", "to")]
    schema["oneOf"] = [
        {"title": "today", "not": {"anyOf": present}},
        {"title": "one day", "required": ["date"], "not": {"anyOf": present[1:]}},
        {"title": "a range", "required": ["from", "to"], "not": present[0]},
    ]


class LogsQuery(BaseModel):
    """Query of GET /logs and GET /logs/download."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_plain_fields)

    lines: int = Field(50, ge=1, le=MAX_LOG_LINES, description=f"how many of the last lines, a whole number from 1 to {MAX_LOG_LINES}")
    date: OptionalDay = Field(None, description="the day, YYYY-MM-DD (default: today in SYNC_TIMEZONE)")


class LogDownloadQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_plain_fields)

    date: OptionalDay = Field(None, description="the day, YYYY-MM-DD (default: today in SYNC_TIMEZONE)")


class RunsQuery(BaseModel):
    """Query of GET /runs."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(20, ge=1, le=MAX_RUNS_LIMIT, description=f"how many runs, newest first, a whole number from 1 to {MAX_RUNS_LIMIT}")


class TriggerBody(BaseModel):
    """Optional body of POST /trigger: no body runs today (and yesterday until final), `date` one day, `from`/`to` a range."""

    # By the JSON names only: "day" or "first" are unknown fields. The schema states the three shapes as oneOf.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_trigger_schema)

    day: OptionalDay = Field(None, alias="date", description="sync this one day, YYYY-MM-DD")
    first: OptionalDay = Field(None, alias="from", description="first day of a range, YYYY-MM-DD (31 days at most)")
    last: OptionalDay = Field(None, alias="to", description="last day of the range, YYYY-MM-DD")
    dry_run: OptionalBool = Field(None, description="fetch, transform and record, but send nothing to LE (default: SYNC_DRY_RUN)")

    @model_validator(mode="after")
    def _one_shape(self) -> TriggerBody:
        if self.day and (self.first or self.last):
            raise ValueError('give either "date" or "from" and "to", not both')
        if bool(self.first) != bool(self.last):
            raise ValueError('"from" and "to" go together')
        return self


_ALLOWED = {
    "lines": f"lines must be a whole number from 1 to {MAX_LOG_LINES}",
    "limit": f"limit must be a whole number from 1 to {MAX_RUNS_LIMIT}",
}


def parse(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """The validated model, or a 400 that names the input, what is wrong and what is allowed."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else ""
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f'"{f.alias or n}"' for n, f in model.model_fields.items())
                problems.append(f'unknown field "{name}"; allowed fields: {allowed}')
            elif name in _ALLOWED:
                problems.append(f"{_ALLOWED[name]} (got {err.get('input')!r})")
            elif err["type"] == "value_error" and name:  # our own validators say what the value must be
                problems.append(f"{name} {str(err['msg']).removeprefix('Value error, ')} (got {err.get('input')!r})")
            else:
                problems.append(str(err.get("msg", "invalid input")).removeprefix("Value error, "))
        raise bad_request("; ".join(problems)) from None


# -- response models --------------------------------------------------------------------------------


class ServiceInfo(BaseModel):
    service: str
    version: str
    status: Literal["running"]
    endpoints: dict[str, str]


class RunList(BaseModel):
    runs: list[RunRecord]
    count: int


class LogTail(BaseModel):
    log_file: str
    total_lines: int
    showing: int
    logs: list[str]
    message: str | None = None


class TriggerAccepted(BaseModel):
    status: Literal["triggered"]
    message: str
    run_id: str
    report_dates: list[str] = Field(default_factory=list, description="the days asked for; empty: today (and yesterday until final)")
    child_run_ids: list[str] = Field(default_factory=list, description="a range: one run per day, each its own queue message")


class AlreadyRunning(BaseModel):
    status: Literal["already_running"]
    message: str


class RunMessage(BaseModel):
    """One message on the leadpier-sync-runs queue: the run /trigger accepted, for sync_worker to do."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    dates: list[Day] | None = None
    dry_run: bool | None = None
    parent_run_id: str | None = None
    queued_at: AwareDatetime


# -- GET / -------------------------------------------------------------------------------------------

ENDPOINTS = {
    "health": "/health",
    "status": "/status",
    "runs": "/runs",
    "run": "/runs/{run_id}",
    "logs": "/logs?lines=50&date=YYYY-MM-DD",
    "logs_download": "/logs/download?date=YYYY-MM-DD",
    "trigger": "POST /trigger",
    "openapi": "/openapi.json",
    "docs": "/docs",
    "dashboard": "/dashboard",
}


def service_info() -> ApiResponse:
    return ApiResponse.json(
        200, ServiceInfo(service=SERVICE_NAME, version=__version__, status="running", endpoints=ENDPOINTS)
    )


# -- GET /status --------------------------------------------------------------------------------------


ROUTE_STORAGE_TIMEOUT_S = 5  # per storage request of an HTTP route, and one retry: a stalled account gets a 503 in ~11 s


def _settings_and_store() -> tuple[Settings, StateStore]:
    settings = load_settings()
    return settings, StateStore(settings.storage, timeout_s=ROUTE_STORAGE_TIMEOUT_S, retries=1)


@answers
def status(environ: Mapping[str, str] | None = None) -> ApiResponse:
    settings, store = _settings_and_store()
    return ApiResponse.json(200, current_status(environ, settings=settings, store=store))


# -- GET /runs, /runs/{run_id} ------------------------------------------------------------------------


@answers
def runs(params: Mapping[str, str], run_id: str | None) -> ApiResponse:
    if run_id:
        if not is_run_id(run_id):
            raise bad_request(
                f"{run_id[:80]!r} is not a run id; a run id looks like 20260213T180335123Z-1a2b3c "
                "(a UTC timestamp and 6 hex digits, and .NN for one day of a backfill)"
            )
        _, store = _settings_and_store()
        record = store.load_run(run_id)
        if record is None:
            raise not_found(f"no run {run_id}")
        return ApiResponse.json(200, _with_children(store, record))
    query: RunsQuery = parse(RunsQuery, params)
    _, store = _settings_and_store()
    records = [_with_children(store, r) for r in store.list_runs(query.limit, include_children=False)]
    return ApiResponse.json(200, RunList(runs=records, count=len(records)))


def _with_children(store: StateStore, record: RunRecord) -> RunRecord:
    """A backfill parent as it stands now: its status and counts folded from its per-day runs."""
    if not record.child_run_ids:
        return record
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="runs-read") as pool:
        children = list(pool.map(store.load_run, record.child_run_ids))
    return aggregate_backfill(record, children)


def aggregate_backfill(parent: RunRecord, children: list[RunRecord | None]) -> RunRecord:
    """Fold a backfill's per-day runs into its parent record (a missing child counts as still queued)."""
    result = parent.model_copy(deep=True)
    found = [c for c in children if c is not None]
    statuses = [c.status if c else "queued" for c in children]
    pending = [s for s in statuses if s not in FINAL_STATUSES]
    if pending:
        result.status = "running" if len(pending) < len(statuses) or "running" in pending else "queued"
    elif "failed" in statuses:
        result.status = "failed"
    elif "warning" in statuses or ("skipped" in statuses and set(statuses) != {"skipped"}):
        result.status = "warning"
    elif set(statuses) == {"skipped"}:
        result.status = "skipped"
    else:
        result.status = "success"
    for name in ("fetched_rows", "sent_records", "invalid_rows", "matched_records", "unmatched_records", "upstream_requests"):
        setattr(result, name, sum(getattr(c, name) for c in found))
    result.unmatched_counts, result.unmatched_codes = {}, {}
    for child in found:
        for reason, count in child.unmatched_counts.items():
            result.unmatched_counts[reason] = result.unmatched_counts.get(reason, 0) + count
        for reason, codes in child.unmatched_codes.items():
            kept = result.unmatched_codes.setdefault(reason, [])
            kept.extend(c for c in codes if c not in kept and len(kept) < SAMPLE_LIMIT)
    result.le_errors = [e for c in found for e in c.le_errors][:LE_ERRORS_KEPT]
    result.invalid_samples = [s for c in found for s in c.invalid_samples][:SAMPLE_LIMIT]
    result.days = [d for c in found for d in c.days]
    starts = [c.started_at for c in found if c.started_at]
    result.started_at = min(starts) if starts else None
    if not pending and found:
        result.finished_at = max((c.finished_at for c in found if c.finished_at), default=None)
        if result.started_at and result.finished_at:
            result.duration_ms = int((result.finished_at - result.started_at).total_seconds() * 1000)
    troubled = [c for c in found if c.status in ("failed", "warning", "skipped")]
    result.error = None
    if troubled and not pending:
        first = troubled[0]
        result.error = f"{len(troubled)} of {len(children)} days did not succeed; first: {first.report_dates[:1]} {first.status}: {first.error}"
    return result


# -- GET /logs, /logs/download -----------------------------------------------------------------------


@answers
def logs(params: Mapping[str, str]) -> ApiResponse:
    query: LogsQuery = parse(LogsQuery, params)
    settings, store = _settings_and_store()
    day = query.date or utcnow().astimezone(settings.timezone).date()
    # The tail comes from ranged reads at the blob's end; the total from the count each run adds to job_stats.json.
    log_file, shown = store.read_log_tail(day, query.lines)
    if log_file is None:
        return ApiResponse.json(200, LogTail(
            log_file=log_blob_name(day), total_lines=0, showing=0, logs=[],
            message=f"No log for {day.isoformat()} yet: no run has finished that day (in {settings.timezone_name})",
        ))
    total = store.load_job_stats()[0].log_lines.get(f"{day:%Y%m%d}")
    if total is None or total < len(shown):  # a day older than the counts kept: count it the long way
        total = (store.read_log(day) or b"").count(b"\n")
    return ApiResponse.json(200, LogTail(log_file=log_file, total_lines=total, showing=len(shown), logs=shown))


@answers
def logs_download(params: Mapping[str, str]) -> ApiResponse:
    query: LogDownloadQuery = parse(LogDownloadQuery, params)
    settings, store = _settings_and_store()
    day = query.date or utcnow().astimezone(settings.timezone).date()
    text = store.read_log(day)
    if text is None:
        raise not_found(f"no log for {day.isoformat()}")
    filename = f"scheduler_{day:%Y%m%d}.log"
    return ApiResponse(200, text, TEXT, {"Content-Disposition": f'attachment; filename="{filename}"'})


# -- POST /trigger -----------------------------------------------------------------------------------


@answers
def trigger(body: bytes) -> ApiResponse:
    """Validate, refuse a plain run while one is going (409), write the queued record(s), answer 202 with the messages."""
    request = _trigger_body(body)
    settings, store = _settings_and_store()
    today = utcnow().astimezone(settings.timezone).date()
    days: list[date] = []
    if request.day:
        days = [request.day]
    elif request.first and request.last:
        try:
            days = day_range(request.first, request.last)
        except ValueError as exc:
            raise bad_request(f"{exc} (send {{\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}})") from None
    try:
        refuse_future(days, today, settings.timezone_name)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    if not days and store.lock_is_held():
        return ApiResponse.json(409, AlreadyRunning(
            status="already_running", message="A sync run is already in progress; try again when it finishes (GET /status shows it)",
        ))
    plan = plan_runs(days, request.dry_run, settings.dry_run)
    for record in plan.records:
        store.save_run(record)
    accepted = TriggerAccepted(
        status="triggered", message=plan.message, run_id=plan.run_id,
        report_dates=[d.isoformat() for d in days], child_run_ids=plan.child_run_ids,
    )
    log.info("Trigger accepted: run %s queued%s", plan.run_id, f" for {len(days)} day(s)" if days else "",
             extra={"run_id": plan.run_id})
    return ApiResponse.json(202, accepted, queue_messages=[m.model_dump_json() for m in plan.messages])


def _trigger_body(body: bytes) -> TriggerBody:
    if not body or not body.strip():
        return TriggerBody()
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(
            'the body is not JSON; send no body, {"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
        ) from None
    if not isinstance(document, dict):
        raise bad_request('the body must be a JSON object: {"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}')
    return parse(TriggerBody, document)


@dataclass
class RunPlan:
    run_id: str
    message: str
    records: list[RunRecord]
    messages: list[RunMessage]
    child_run_ids: list[str] = field(default_factory=list)


def plan_runs(days: list[date], dry_run: bool | None, default_dry_run: bool, now: datetime | None = None) -> RunPlan:
    """The queued records and queue messages for a trigger: one run, or a range as one run per day under a parent."""
    now = now or utcnow()
    run_id = new_run_id(now)
    recorded_dry_run = default_dry_run if dry_run is None else dry_run

    def queued(rid: str, dates: list[date], **extra: Any) -> RunRecord:
        return RunRecord(run_id=rid, trigger="manual", status="queued", queued_at=now,
                         report_dates=[d.isoformat() for d in dates], dry_run=recorded_dry_run, **extra)

    if len(days) <= 1:
        message = RunMessage(run_id=run_id, dates=days or None, dry_run=dry_run, queued_at=now)
        what = f"for {days[0].isoformat()}" if days else "for today"
        return RunPlan(run_id, f"Sync run {what} queued", [queued(run_id, days)], [message])
    children = [f"{run_id}.{i:02d}" for i in range(1, len(days) + 1)]
    records = [queued(cid, [day], parent_run_id=run_id) for cid, day in zip(children, days)]
    records.append(queued(run_id, days, child_run_ids=children))
    messages = [
        RunMessage(run_id=cid, dates=[day], dry_run=dry_run, parent_run_id=run_id, queued_at=now)
        for cid, day in zip(children, days)
    ]
    text = f"Backfill of {len(days)} days ({days[0].isoformat()} to {days[-1].isoformat()}) queued, one run per day"
    return RunPlan(run_id, text, records, messages, children)


# -- the queue worker and the timer --------------------------------------------------------------------


def run_queued(
    body: bytes | str,
    *,
    dequeue_count: int | None = None,
    thread_init: Callable[[], None] | None = None,
) -> RunRecord | None:
    """Do the run a /trigger message asked for, under its own run id; a dated run waits for the lock.

    A failed run is recorded, not raised. LockBusy is raised so the host delivers the message again;
    on the last delivery the record says so first, since the message then goes to the poison queue.
    A message for a run that already finished (redelivered after the host lost track) is not run twice.
    """
    try:
        message = RunMessage.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(f"not a run message: {exc.error_count()} problem(s); it goes to the poison queue") from None
    existing = _existing_record(message.run_id)
    if existing is not None and existing.status in FINAL_STATUSES - {"skipped"}:
        log.warning("Run %s already finished (%s); the redelivered message is not run again",
                    message.run_id, existing.status, extra={"run_id": message.run_id})
        return existing
    request = RunRequest(
        trigger="manual",
        run_id=message.run_id,
        dates=list(message.dates) if message.dates else None,
        dry_run=message.dry_run,
        parent_run_id=message.parent_run_id,
        wait_for_lock_s=BACKFILL_LOCK_WAIT_S if message.dates else 0.0,
        queued_at=message.queued_at,
    )
    try:
        return run_sync(request, thread_init=thread_init)
    except LockBusy:
        if (dequeue_count or 0) >= MAX_DEQUEUE_COUNT:
            _record_abandoned(message)
        log.warning("Run %s could not take the lock (delivery %s of %d); the host delivers it again",
                    message.run_id, dequeue_count or "?", MAX_DEQUEUE_COUNT, extra={"run_id": message.run_id})
        raise


def _existing_record(run_id: str) -> RunRecord | None:
    try:
        _, store = _settings_and_store()
        return store.load_run(run_id)
    except (SettingsError, StorageError):
        return None  # run_sync records the failure with its reason


def _record_abandoned(message: RunMessage) -> None:
    try:
        _, store = _settings_and_store()
        record = store.load_run(message.run_id) or RunRecord(
            run_id=message.run_id, trigger="manual", status="queued", queued_at=message.queued_at,
            parent_run_id=message.parent_run_id,
        )
        record.status = "failed"
        record.finished_at = utcnow()
        record.error = (
            f"another run held the lock through {MAX_DEQUEUE_COUNT} deliveries of this queued run; "
            f"its message went to the poison queue ({POISON_QUEUE})"
        )
        store.save_run(record)
    except (SettingsError, StorageError) as exc:
        log.error("Could not record that run %s was abandoned: %s", message.run_id, exc)


def timer_status(schedule_status: Mapping[str, Any] | None, past_due: bool, now: datetime | None = None) -> TimerStatus:
    """The TimerRequest's ScheduleStatus (Last, Next, LastUpdated) as job_stats.json keeps it."""
    status = schedule_status or {}
    return TimerStatus(
        last=_host_time(status.get("Last")),
        next=_host_time(status.get("Next")),
        past_due=past_due,
        seen_at=now or utcnow(),
    )


def _host_time(value: Any) -> datetime | None:
    """The host's times are ISO 8601, in UTC on Linux; one without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_from_timer(
    schedule_status: Mapping[str, Any] | None,
    *,
    past_due: bool,
    thread_init: Callable[[], None] | None = None,
) -> RunRecord:
    """A run with trigger `timer`; a past-due firing is logged and run normally."""
    timer = timer_status(schedule_status, past_due)
    if past_due:
        log.warning("The timer fired past due (last %s, next %s); running now", timer.last, timer.next)
    return run_sync(RunRequest(trigger="timer", timer=timer), thread_init=thread_init)
