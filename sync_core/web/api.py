"""The HTTP routes behind function_app.py: each parses its request, does one thing with the state, and answers."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from datetime import date

from sync_core import SERVICE_NAME, __version__, telemetry
from sync_core.rules.days import day_range, refuse_future
from sync_core.run.backfill import plan_runs, with_children
from sync_core.services import services
from sync_core.state.day_log import log_blob_name
from sync_core.state.records import RunRecord, is_run_id, utcnow
from sync_core.telemetry.runlog import MAX_LINE_CHARS
from sync_core.untrusted import one_line
from sync_core.web.api_models import (
    AlreadyRunning,
    LogDownloadQuery,
    LogsQuery,
    LogTail,
    RunList,
    RunsQuery,
    ServiceInfo,
    TriggerAccepted,
    TriggerBody,
    json_kind,
    parse,
)
from sync_core.web.responses import TEXT, ApiError, ApiResponse, ErrorBody, answers, bad_request, not_found
from sync_core.web.status import current_status

log = logging.getLogger("sync_core.api")  # the name every log line shows: kept when the module moved

MAX_TRIGGER_BODY_BYTES = 4096  # a valid body is under 100 bytes; nothing larger is read

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


@answers
def status() -> ApiResponse:
    here = services()
    return ApiResponse.json(200, current_status(settings=here.settings, store=here.route_store))


@answers
def runs(params: Mapping[str, str], run_id: str | None) -> ApiResponse:
    if run_id:
        if not is_run_id(run_id):
            raise bad_request(
                f"{run_id[:80]!r} is not a run id; a run id looks like 20260213T180335123Z-1a2b3c "
                "(a UTC timestamp and 6 hex digits, and .NN for one day of a backfill)"
            )
        store = services().route_store
        record = store.load_run(run_id)
        if record is None:
            raise not_found(f"no run {run_id}")
        return ApiResponse.json(200, with_children(record, store.load_run))
    query: RunsQuery = parse(RunsQuery, params)
    store = services().route_store
    run_ids = store.iter_run_ids(include_children=False, since=query.since, until=query.until)
    records: list[RunRecord] = []
    # A status filter is applied to what a record says after its days are folded in, so ids are read in batches
    # until enough match; without it the first batch is the answer.
    while len(records) < query.limit and (batch := list(itertools.islice(run_ids, query.limit))):
        folded = (with_children(r, store.load_run) for r in store.load_runs(batch))
        records.extend(r for r in folded if query.status is None or r.status == query.status)
    records = records[: query.limit]
    return ApiResponse.json(200, RunList(runs=records, count=len(records)))


@answers
def logs(params: Mapping[str, str]) -> ApiResponse:
    query: LogsQuery = parse(LogsQuery, params)
    here = services()
    settings, store = here.settings, here.route_store
    day = query.date or utcnow().astimezone(settings.timezone).date()
    # The tail comes from ranged reads at the blob's end; the total from the count each run adds to job_stats.json.
    log_file, shown = store.read_log_tail(day, query.lines)
    if log_file is None:
        return ApiResponse.json(
            200,
            LogTail(
                log_file=log_blob_name(day),
                total_lines=0,
                showing=0,
                logs=[],
                message=f"No log for {day.isoformat()} yet: no run has finished that day (in {settings.timezone_name})",
            ),
        )
    total = store.load_job_stats()[0].log_lines.get(f"{day:%Y%m%d}")
    if total is None or total < len(shown):  # a day older than the counts kept: count it the long way
        total = (store.read_log(day) or b"").count(b"\n")
    shown = [one_line(line, MAX_LINE_CHARS) for line in shown]  # lines an older version may have left unbounded
    return ApiResponse.json(200, LogTail(log_file=log_file, total_lines=total, showing=len(shown), logs=shown))


@answers
def logs_download(params: Mapping[str, str]) -> ApiResponse:
    query: LogDownloadQuery = parse(LogDownloadQuery, params)
    here = services()
    day = query.date or utcnow().astimezone(here.settings.timezone).date()
    text = here.route_store.read_log(day)
    if text is None:
        raise not_found(f"no log for {day.isoformat()}")
    filename = f"scheduler_{day:%Y%m%d}.log"
    return ApiResponse(200, text, TEXT, {"Content-Disposition": f'attachment; filename="{filename}"'})


def trigger(body: bytes, trace_context: object = None) -> ApiResponse:
    """Validate, refuse a plain run while one is going (409), write the queued record(s), answer 202 with the messages.
    `trace_context`: the host's invocation (func.Context.trace_context), the parent of this work's telemetry."""
    with telemetry.invocation(trace_context):
        return _trigger(body)


@answers
def _trigger(body: bytes) -> ApiResponse:
    request = _trigger_body(body)
    here = services()
    settings, store = here.settings, here.route_store
    days = _asked_days(request, today=utcnow().astimezone(settings.timezone).date(), zone_name=settings.timezone_name)
    if not days and store.lock_is_held():
        return ApiResponse.json(
            409,
            AlreadyRunning(
                status="already_running",
                message="A sync run is already in progress; try again when it finishes (GET /status shows it)",
            ),
        )
    if request.relogin:
        # Dropped before the run is queued, so whichever run comes next (this one or the timer's) logs in afresh:
        # after a password change, a wrong new password shows at once instead of when the old token expires.
        store.drop_session()
        log.info("Trigger: the stored LeadPier session was dropped; the next run logs in again")
    plan = plan_runs(days, request.dry_run, settings.dry_run)
    for record in plan.records:
        store.save_run(record)
    accepted = TriggerAccepted(
        status="triggered",
        message=plan.message,
        run_id=plan.run_id,
        report_dates=[d.isoformat() for d in days],
        child_run_ids=plan.child_run_ids,
    )
    log.info(
        "Trigger accepted: run %s queued%s",
        plan.run_id,
        f" for {len(days)} day(s)" if days else "",
        extra={telemetry.RUN_ID: plan.run_id},
    )
    return ApiResponse.json(202, accepted, queue_messages=[m.model_dump_json() for m in plan.messages])


def _trigger_body(body: bytes) -> TriggerBody:
    if len(body) > MAX_TRIGGER_BODY_BYTES:
        raise ApiError(
            413,
            ErrorBody(
                error=f"the body is {len(body)} bytes; /trigger takes at most {MAX_TRIGGER_BODY_BYTES}: no body, "
                '{"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
            ),
        )
    if not body:
        return TriggerBody()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep to read
        raise bad_request(
            "the body is not JSON"
            + (" (it holds only whitespace)" if not body.strip() else "")
            + '; send no body, {"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
        ) from None
    if not isinstance(document, dict):
        raise bad_request(
            f"the body must be a JSON object, not {json_kind(document)}: "
            '{"date": "YYYY-MM-DD"} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
        )
    result: TriggerBody = parse(TriggerBody, document)
    return result


def _asked_days(request: TriggerBody, *, today: date, zone_name: str) -> list[date]:
    """The days the body names (none: today, and the days not yet final); a 400 for a long range or a future day."""
    days: list[date] = []
    if request.day:
        days = [request.day]
    elif request.first and request.last:
        try:
            days = day_range(request.first, request.last)
        except ValueError as exc:
            raise bad_request(f'{exc} (send {{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}})') from None
    try:
        refuse_future(days, today, zone_name)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return days
