"""The Azure Functions entry point: triggers and bindings only. The work is in sync_core, imported when a function runs,
so a missing setting or a broken dependency shows in /health instead of hiding every function of the app."""

import functools
import json
import logging
import os
import typing

import azure.functions as func

log = logging.getLogger("function_app")

RUNS_QUEUE = "leadpier-sync-runs"
STORAGE = "AzureWebJobsStorage"
DEFAULT_SCHEDULE = "0 */10 * * * *"

# -- the two settings the host needs when it loads the app: read now, never raising --------------------------


def _is_ncrontab(expression: str) -> bool:
    """The host's own NCRONTAB grammar, the one /health and /status use too. sync_core.rules.ncrontab and
    sync_core.rules.flags are the modules of sync_core loaded here: they import only the standard library, and even
    so a failure falls back to the default."""
    try:
        from sync_core.rules import ncrontab
    except Exception:  # never hide the functions over a schedule check
        log.exception("the schedule grammar could not be loaded; the timer uses the default schedule")
        return False
    return ncrontab.is_valid(expression)


def _setting(name: str, default: str, valid: typing.Callable[[str], bool]) -> tuple[str, str | None]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default, None
    if valid(raw.strip()):
        return raw.strip(), None
    problem = f"{name} {raw.strip()[:60]!r} is invalid; the host uses the default {default!r}"
    log.warning(problem)
    return default, problem


def _flag(text: str) -> bool | None:
    """The settings' one true/false grammar (sync_core.rules.flags, which Settings uses too; standard library only);
    None for a word outside it, or when the grammar could not be loaded."""
    try:
        from sync_core.rules.flags import parse_flag
    except Exception:  # never hide the functions over a flag
        log.exception("the true/false grammar could not be loaded; the host uses the default")
        return None
    try:
        return parse_flag(text)
    except ValueError:
        return None


SYNC_SCHEDULE, _schedule_problem = _setting("SYNC_SCHEDULE", DEFAULT_SCHEDULE, _is_ncrontab)
_startup_text, _startup_problem = _setting("SYNC_RUN_ON_STARTUP", "false", lambda v: _flag(v) is not None)
# The default needs no grammar: an app without the setting loads no module of sync_core.
SYNC_RUN_ON_STARTUP = _startup_text != "false" and _flag(_startup_text) is True
HOST_PROBLEMS = [p for p in (_schedule_problem, _startup_problem) if p]

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
NOSNIFF = {"X-Content-Type-Options": "nosniff"}  # on every answer: a browser takes each as the type it says


# -- plumbing shared by the handlers --------------------------------------------------------------------------


def _http_answer(answer: typing.Any) -> func.HttpResponse:
    """sync_core.web.responses.ApiResponse (status, body, mimetype, headers) as the host's response."""
    if isinstance(answer, func.HttpResponse):
        return answer
    # Content-Type spelled out as the host will send it (the library adds the charset to text/* only).
    content_type = f"{answer.mimetype}; charset=utf-8" if answer.mimetype.startswith("text/") else answer.mimetype
    return func.HttpResponse(
        answer.body,
        status_code=answer.status_code,
        headers={"Content-Type": content_type, **NOSNIFF, **answer.headers},
        mimetype=answer.mimetype,
        charset="utf-8",
    )


def _json_errors(handler: typing.Callable[..., func.HttpResponse]) -> typing.Callable[..., func.HttpResponse]:
    """An unexpected exception becomes a JSON 500 with the invocation id; the traceback goes to the log only."""

    @functools.wraps(handler)  # keeps the signature: the worker matches binding names to parameters
    def guarded(*args: typing.Any, **kwargs: typing.Any) -> func.HttpResponse:
        context = kwargs.get("context")
        invocation_id = getattr(context, "invocation_id", None)
        try:
            return handler(*args, **kwargs)
        except Exception:
            log.exception("%s failed with an unexpected error (invocation %s)", handler.__name__, invocation_id)
            body = {
                "error": f"{handler.__name__} failed unexpectedly; the app's log has the details under this invocation id",
                "invocation_id": invocation_id,
            }
            return func.HttpResponse(
                json.dumps(body), status_code=500, headers=NOSNIFF, mimetype="application/json", charset="utf-8"
            )

    return guarded


def _trace(context: func.Context) -> typing.Any:
    """The host's invocation span (traceparent, tracestate), the parent of the run's telemetry; None where a
    context has none (the sandbox's host)."""
    return getattr(context, "trace_context", None)


# -- the runs ----------------------------------------------------------------------------------------------------


@app.timer_trigger(arg_name="timer", schedule=SYNC_SCHEDULE, run_on_startup=SYNC_RUN_ON_STARTUP, use_monitor=True)
def sync_timer(timer: func.TimerRequest, context: func.Context) -> None:
    from sync_core.run import triggers

    # The worker's TimerRequest carries the host's ScheduleStatus; the library's abstract type does not declare it.
    triggers.run_from_timer(
        getattr(timer, "schedule_status", None), past_due=timer.past_due, trace_context=_trace(context)
    )


@app.queue_trigger(arg_name="message", queue_name=RUNS_QUEUE, connection=STORAGE)
def sync_worker(message: func.QueueMessage, context: func.Context) -> None:
    # A failed run is recorded, not raised; LockBusy is raised, so the host delivers the message again.
    from sync_core.run import triggers

    triggers.run_queued(message.get_body(), dequeue_count=message.dequeue_count, trace_context=_trace(context))


# -- HTTP --------------------------------------------------------------------------------------------------------


@app.route(route="{ignored:maxlength(0)?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_json_errors
def service_info(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import api

    return _http_answer(api.service_info())


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_json_errors
def health(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    try:
        from sync_core.web.health import health as check
    except Exception as exc:  # a broken deployment: say so here rather than nowhere
        log.exception("sync_core could not be imported")
        body = {"status": "unhealthy", "reason": f"the app's code could not be loaded: {type(exc).__name__}: {exc}"}
        return func.HttpResponse(
            json.dumps(body), status_code=503, headers=NOSNIFF, mimetype="application/json", charset="utf-8"
        )
    return _http_answer(
        check(host_schedule=SYNC_SCHEDULE, host_run_on_startup=SYNC_RUN_ON_STARTUP, host_problems=HOST_PROBLEMS)
    )


@app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_json_errors
def status(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import api

    return _http_answer(api.status())


@app.route(route="runs/{run_id?}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_json_errors
def runs(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import api

    return _http_answer(api.runs(req.params, req.route_params.get("run_id")))


@app.route(route="logs", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_json_errors
def logs(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import api

    return _http_answer(api.logs(req.params))


@app.route(route="logs/download", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_json_errors
def logs_download(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import api

    return _http_answer(api.logs_download(req.params))


@app.route(route="trigger", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.queue_output(arg_name="queued_runs", queue_name=RUNS_QUEUE, connection=STORAGE)
@_json_errors
def trigger(
    req: func.HttpRequest,
    queued_runs: func.Out[typing.List[str]],  # noqa: UP006 - the worker refuses func.Out[list[str]]
    context: func.Context,
) -> func.HttpResponse:
    # The run is done by sync_worker, never in a thread left behind after this response.
    from sync_core.web import api

    answer = api.trigger(req.get_body(), trace_context=_trace(context))
    if answer.queue_messages:
        queued_runs.set(answer.queue_messages)
    return _http_answer(answer)


@app.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@_json_errors
def dashboard(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    # A browser passes the function key as ?code=; the page's links carry it on.
    from sync_core.web.dashboard import dashboard_page

    return _http_answer(
        dashboard_page(
            req.params,
            accept_encoding=req.headers.get("Accept-Encoding", ""),
            host_schedule=SYNC_SCHEDULE,
            host_run_on_startup=SYNC_RUN_ON_STARTUP,
            host_problems=HOST_PROBLEMS,
        )
    )


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_json_errors
def openapi(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web import openapi as answers

    return _http_answer(answers.openapi())


@app.route(route="docs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@_json_errors
def docs(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from sync_core.web.openapi import docs as page

    return _http_answer(page())
