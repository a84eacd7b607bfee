"""Calling the app's functions the way the library documents: a fresh function_app, its indexed functions, stand-ins
for the context and the queue output binding, and requests built with azure.functions' own types."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from sandbox.serve import (  # Out: the output binding's stand-in, shared with the sandbox's host
    Host,
    Out,
    _Server,
    index,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_function_app() -> Any:
    """A fresh function_app module: app.get_functions() works once per app instance, and the import reads settings."""
    name = f"function_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "function_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def indexed_functions(module: Any | None = None) -> dict[str, Function]:
    module = module or load_function_app()
    return {fn.get_function_name(): fn for fn in module.app.get_functions()}


class Context:
    """The parts of func.Context this app uses."""

    def __init__(self, function_name: str = "") -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = str(REPO_ROOT)
        self.thread_local_storage = threading.local()


class App:
    """One fresh function_app, with its functions callable as the host would call them."""

    def __init__(self) -> None:
        self.module = load_function_app()
        self.functions = indexed_functions(self.module)

    def user(self, name: str) -> Callable[..., Any]:
        return self.functions[name].get_user_function()

    def get(
        self,
        name: str,
        path: str,
        params: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> func.HttpResponse:
        request = func.HttpRequest(
            "GET",
            f"http://localhost:7071{path}",
            params=params or {},
            route_params=route_params or {},
            headers=headers or {},
            body=b"",
        )
        return self.user(name)(req=request, context=Context(name))

    def post_trigger(self, body: bytes | str | dict[str, Any] | None = None) -> tuple[func.HttpResponse, Out]:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        headers = {"Content-Type": "application/json"} if body else {}
        request = func.HttpRequest("POST", "http://localhost:7071/trigger", headers=headers, body=body or b"")
        out = Out()
        response = self.user("trigger")(req=request, queued_runs=out, context=Context("trigger"))
        return response, out

    def work(self, message_body: str, dequeue_count: int = 1, context: Context | None = None) -> None:
        message = QueueMessage(id=str(uuid.uuid4()), body=message_body, dequeue_count=dequeue_count)
        self.user("sync_worker")(message=message, context=context or Context("sync_worker"))

    def tick(
        self, schedule_status: dict[str, str] | None = None, past_due: bool = False, context: Context | None = None
    ) -> None:
        timer = TimerRequest(past_due=past_due, schedule_status=schedule_status or {})
        self.user("sync_timer")(timer=timer, context=context or Context("sync_timer"))


def body(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


@contextlib.contextmanager
def serving(key: str) -> Iterator[str]:
    """Every HTTP route of a fresh app on 127.0.0.1, through the same code as `scripts/sandbox.sh --serve` (its
    function key checked), against the storage in the environment; yields the base URL."""
    routes, _ = index(load_function_app())
    host = Host(routes, None, None, key, os.environ["AzureWebJobsStorage"], "0 */10 * * * *")
    server = _Server(0, host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
