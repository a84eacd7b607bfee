"""`scripts/sandbox.sh --serve`: a local stand-in for the Functions host: the app's own functions behind HTTP, timer and queue.

Not the Functions host: it reads the functions that `app.get_functions()` indexes and calls them the way the host
does (a func.HttpRequest with route parameters in, a func.HttpResponse out; the function key checked for FUNCTION
level routes; the timer on its schedule; queue messages from the output binding delivered to the queue trigger),
so a person can use every endpoint, the dashboard and the CLI without Core Tools. `func start` runs the real host.
"""

from __future__ import annotations

import argparse
import hmac
import importlib.util
import json
import logging
import os
import re
import secrets
import shlex
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from sandbox.world import World, workspace, world
from sync_core.settings import DEFAULT_TIMEZONE
from sync_core.state.queues import MAX_DEQUEUE_COUNT, POISON_QUEUE, RUNS_QUEUE

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
QUEUE_POLL_S = 1.0
RETRY_VISIBILITY_S = 5
STOP_WAIT_S = 30  # a run in progress gets this long to finish on Ctrl-C

log = logging.getLogger("sandbox.serve")


# -- the app's functions, as the host indexes them ---------------------------------------------------------------


@dataclass
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: set[str]
    protected: bool  # FUNCTION or ADMIN level: the key is needed
    call: Callable[..., Any]
    trigger_arg: str
    outputs: dict[str, str]  # argument name -> queue name, for queue output bindings


class Context:
    """What func.Context gives a function: its invocation id and name, and thread-local storage."""

    def __init__(self, function_name: str) -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = str(REPO_ROOT)
        self.thread_local_storage = threading.local()


class Out:
    """An output binding's value, as func.Out holds it."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def load_app() -> ModuleType:
    """function_app.py, imported as the host imports it (it reads SYNC_SCHEDULE from the environment now)."""
    spec = importlib.util.spec_from_file_location("function_app", REPO_ROOT / "function_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    spec.loader.exec_module(module)
    return module


def route_pattern(template: str) -> re.Pattern[str]:
    """A route template (`runs/{run_id?}`, `{ignored:maxlength(0)?}`) as a regex over the path without its slash."""
    parts = []
    for i, segment in enumerate(template.strip("/").split("/")):
        slash = "/" if i else ""
        match = re.fullmatch(r"\{(\w+)((?::[\w]+(?:\([^)]*\))?)*)(\?)?\}", segment)
        if not match:
            parts.append(re.escape(slash + segment))
            continue
        name, constraints, optional = match[1], match[2], match[3]
        body = "" if "maxlength(0)" in constraints else "[^/]+"
        group = f"{re.escape(slash)}(?P<{name}>{body})"
        parts.append(f"(?:{group})?" if optional else group)
    return re.compile("".join(parts))


def index(app_module: ModuleType) -> tuple[list[Route], dict[str, Callable[..., Any]]]:
    """HTTP routes, and the other functions by trigger type (timerTrigger, queueTrigger)."""
    routes: list[Route] = []
    others: dict[str, Callable[..., Any]] = {}
    for function in app_module.app.get_functions():
        bindings = [json.loads(b) for b in function.get_raw_bindings()]
        trigger = next(b for b in bindings if b["type"].endswith("Trigger"))
        user = function.get_user_function()
        if trigger["type"] != "httpTrigger":
            others[trigger["type"]] = user
            continue
        outputs = {
            b["name"]: b["queueName"] for b in bindings if b["type"] == "queue" and b["direction"].lower() == "out"
        }
        routes.append(
            Route(
                name=function.get_function_name(),
                pattern=route_pattern(trigger.get("route") or function.get_function_name()),
                methods={m.upper() for m in trigger.get("methods") or ["GET", "POST"]},
                protected=str(trigger.get("authLevel", "function")).lower() in ("function", "admin"),
                call=user,
                trigger_arg=trigger["name"],
                outputs=outputs,
            )
        )
    return routes, others


# -- HTTP --------------------------------------------------------------------------------------------------------


class Host:
    """What the sandbox runs: routes, the key, the queue, the timer; and how to stop it all."""

    def __init__(
        self,
        routes: list[Route],
        timer: Callable[..., Any] | None,
        worker: Callable[..., Any] | None,
        key: str,
        connection_string: str,
        schedule: str,
        identity_queue: tuple[str, str] | None = None,
    ) -> None:
        """`identity_queue`: (queue endpoint, client id) when the host reaches its queues with a managed identity,
        as it does in Azure with AzureWebJobsStorage__queueServiceUri; else the connection string."""
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        def queue_client(name: str, **policies: Any) -> QueueClient:
            if identity_queue is None:
                return QueueClient.from_connection_string(connection_string, name, **policies)
            from azure.identity import ManagedIdentityCredential

            endpoint, client_id = identity_queue
            return QueueClient(endpoint, name, credential=ManagedIdentityCredential(client_id=client_id), **policies)

        self.routes = routes
        self.timer = timer
        self.worker = worker
        self.key = key
        self.schedule = schedule
        self.stopping = threading.Event()
        # Base64 both ways, as the host writes and reads queue messages by default.
        self.queue = queue_client(
            RUNS_QUEUE,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        self.poison = queue_client(POISON_QUEUE, message_encode_policy=TextBase64EncodePolicy())
        for queue in (self.queue, self.poison):
            try:
                queue.create_queue()
            except Exception:
                pass

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        path = split.path.strip("/")
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        allowed = sorted({m for r in self.routes if r.pattern.fullmatch(path) for m in r.methods})
        if allowed and method not in allowed:  # a known route asked with another method
            return 405, {"Allow": ", ".join(allowed)}, b""
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None or method not in route.methods:
                continue
            if route.protected and not self._key_ok(params.get("code") or headers.get("x-functions-key", "")):
                return 401, {}, b""
            route_params = {k: v for k, v in match.groupdict().items() if v}
            request = func.HttpRequest(
                method,
                f"http://{headers.get('host', HOST)}{target}",
                headers=headers,
                params=params,
                route_params=route_params,
                body=body,
            )
            outputs = {name: Out() for name in route.outputs}
            response = route.call(**{route.trigger_arg: request}, **outputs, context=Context(route.name))
            for out in outputs.values():
                self._enqueue(out.get())
            return _response(response)
        return 404, {}, b""

    def _key_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.key.encode())

    def _enqueue(self, value: Any) -> None:
        if value is None:
            return
        for message in value if isinstance(value, list) else [value]:
            self.queue.send_message(message if isinstance(message, str) else json.dumps(message))

    # -- the queue worker and the timer

    def work_queue(self) -> None:
        """Deliver each message to the queue trigger; a raised exception leaves it for redelivery, as the host does."""
        while not self.stopping.is_set():
            try:
                messages = list(self.queue.receive_messages(max_messages=1, visibility_timeout=600))
            except Exception as exc:
                if not self.stopping.is_set():
                    say(f"queue: could not read {RUNS_QUEUE} ({type(exc).__name__})")
                self.stopping.wait(QUEUE_POLL_S)
                continue
            if not messages:
                self.stopping.wait(QUEUE_POLL_S)
                continue
            message = messages[0]
            delivered = QueueMessage(
                id=message.id,
                body=message.content,
                dequeue_count=message.dequeue_count,
                pop_receipt=message.pop_receipt,
            )
            run_id = _run_id(message.content)
            deliveries = message.dequeue_count or 1  # a received message always carries its count
            try:
                assert self.worker is not None
                self.worker(message=delivered, context=Context("sync_worker"))
            except Exception as exc:
                if deliveries >= MAX_DEQUEUE_COUNT:
                    self.poison.send_message(message.content)
                    self.queue.delete_message(message)
                    say(
                        f"queue: run {run_id} failed {deliveries} deliveries ({type(exc).__name__}); "
                        f"moved to {POISON_QUEUE}"
                    )
                else:
                    self.queue.update_message(message, visibility_timeout=RETRY_VISIBILITY_S)
                    say(f"queue: run {run_id} raised {type(exc).__name__}; delivered again in {RETRY_VISIBILITY_S} s")
                continue
            self.queue.delete_message(message)
            say_run("queued run", run_id)

    def run_timer(self, first_now: bool = True) -> None:
        """The timer function on the schedule (UTC, as the host evaluates it); once right away to start with."""
        from sync_core.rules.schedule import next_occurrence
        from sync_core.state.records import utcnow

        last: datetime | None = None
        due = utcnow() if first_now else next_occurrence(self.schedule, utcnow())
        while due is not None and not self.stopping.wait(max(0.0, (due - utcnow()).total_seconds())):
            following = next_occurrence(self.schedule, utcnow())
            status = {
                "Last": last.isoformat() if last else None,
                "Next": following.isoformat() if following else None,
                "LastUpdated": utcnow().isoformat(),
            }
            try:
                assert self.timer is not None
                self.timer(timer=TimerRequest(past_due=False, schedule_status=status), context=Context("sync_timer"))
                say_run("timer run", None)
            except Exception as exc:
                say(f"timer: the invocation raised {type(exc).__name__}: {exc}")
            last, due = utcnow(), following
        if due is None:
            say("timer: the schedule never fires again; no more timer runs")


def _response(response: func.HttpResponse) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items()}
    if not any(k.lower() == "content-type" for k in headers):
        mimetype = response.mimetype or "text/plain"
        headers["Content-Type"] = (
            f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype
        )
    return response.status_code, headers, response.get_body()


def _run_id(content: str) -> str:
    try:
        return str(json.loads(content).get("run_id"))
    except (ValueError, AttributeError):
        return "?"


def say(text: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {text}", flush=True)


def say_run(what: str, run_id: str | None) -> None:
    """One line per finished run, from the state the dashboard reads."""
    from sync_core.settings import load_settings
    from sync_core.state.store import StateStore

    try:
        store = StateStore(load_settings().storage)
        record = store.load_run(run_id) if run_id else None
        if record is None:
            stats, _ = store.load_job_stats()
            last = stats.last_execution
            if last is None:
                say(f"{what}: skipped (another run held the lock)")
                return
            record = store.load_run(last.run_id)
        if record is None:
            return
        say(
            f"{what} {record.run_id}: {record.status}, {record.sent_records:,} sent "
            f"({record.matched_records:,} matched, {record.unmatched_records:,} unmatched)"
            + (f": {record.error}" if record.error else "")
        )
    except Exception as exc:
        say(f"{what}: finished (state not readable: {type(exc).__name__})")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if self.server.host is None:  # serve() sets the host before it serves
                raise RuntimeError("no functions loaded yet")
            status, out_headers, payload = self.server.host.answer(self.command, self.path, headers, body)
        except Exception as exc:
            status, out_headers, payload = 500, {"Content-Type": "text/plain; charset=utf-8"}, b"the function raised\n"
            say(f"{self.command} {urlsplit(self.path).path}: {type(exc).__name__}: {exc}")
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        # The path only: the query can hold the function key.
        say(f"{self.command} {urlsplit(self.path).path} {status} {(time.perf_counter() - started) * 1000:.0f} ms")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (QUERY, PROPFIND, ...) gets the route's answer too: 405 on a known route, else 404.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, host: Host | None = None) -> None:
        super().__init__((HOST, port), _Handler)
        self.host = host


# -- the command ---------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    try:
        server = _Server(args.port)  # bound first: a port in use is said before anything starts
    except OSError as exc:
        print(
            f"Cannot listen on {HOST}:{args.port}: {exc.strerror}; pick another with --port N (0: any free port)",
            file=sys.stderr,
        )
        return 2
    port = server.server_address[1]
    try:
        with (
            workspace() as workdir,
            world(workdir, sources=args.sources, dry_run=args.dry_run, identity=args.identity) as here,
        ):
            os.environ["SYNC_SCHEDULE"] = args.schedule
            # The printed environment is what is served: `status` from it shows the same schedule and time zone.
            here.settings["SYNC_SCHEDULE"] = args.schedule
            here.settings.setdefault("SYNC_TIMEZONE", os.environ.get("SYNC_TIMEZONE") or DEFAULT_TIMEZONE)
            routes, others = index(load_app())
            key = secrets.token_urlsafe(24)
            host = Host(
                routes,
                others.get("timerTrigger"),
                others.get("queueTrigger"),
                key,
                here.azurite.connection_string,
                args.schedule,
                identity_queue=(
                    (here.azurite.queue_endpoint, here.settings["AzureWebJobsStorage__clientId"])
                    if here.identity
                    else None
                ),
            )
            server.host = host
            threads = [
                threading.Thread(target=host.run_timer, name="timer", daemon=True),
                threading.Thread(target=host.work_queue, name="queue", daemon=True),
            ]
            print(banner(here, port, key, args.schedule, str(workdir)), flush=True)
            for thread in threads:
                thread.start()
            try:
                server.serve_forever(poll_interval=0.2)
            except KeyboardInterrupt:
                print(
                    "\nStopping: the HTTP server, the timer, the queue worker, the stand-ins and Azurite ...",
                    flush=True,
                )
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                host.stopping.set()
                for thread in threads:  # a run in progress finishes while storage is still there
                    thread.join(STOP_WAIT_S)
    except KeyboardInterrupt:  # while starting: the context managers have stopped what had started
        print("\nStopped while starting.", flush=True)
    finally:
        server.server_close()
    print("Stopped; nothing left running.", flush=True)
    return 0


def banner(here: World, port: int, key: str, schedule: str, workdir: str) -> str:
    base = f"http://{HOST}:{port}"
    exports = " \\\n    ".join(f"{name}={shlex.quote(value)}" for name, value in here.settings.items())
    every = "every minute" if schedule == "0 * * * * *" else f"on {schedule!r}"
    return f"""
LeadPier Sync sandbox, serving. This is a local stand-in for the Azure Functions host, not the host:
it calls the app's own functions (app.get_functions()) behind a small HTTP server, timer and queue loop.
`func start` with Core Tools runs the real host (docs/DEPLOY.md).

  Dashboard       {base}/dashboard?code={key}
  API docs        {base}/docs   ("Authorize" with the key below; Swagger UI loads from a CDN)
  Function key    {key}
                  (as ?code= or the x-functions-key header; FUNCTION-level routes answer 401 without it)
  Try             curl -s '{base}/status?code={key}'
                  curl -s -X POST '{base}/trigger?code={key}'

The timer runs {every} (first run now; UTC, as the host evaluates it); the queue worker takes
/trigger's runs from {RUNS_QUEUE}. Stand-ins: LeadPier {here.leadpier.url}, LE {here.le.url}.
State: Azurite in {workdir} (removed when this stops).

The CLI against the same state, from another terminal in this folder:
  env {exports} \\
    .venv/bin/python -m sync_core status

Ctrl-C stops everything.
"""
